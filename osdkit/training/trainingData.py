"""The main job's data step: OSDB files -> filtered events -> splits -> augmented training events -> windows.

`read_events` runs once per run (writing the simulated database first when the config asks for it);
`fold_splits` gives the (train, validation, test) events of each fold; `prepare_split` augments and
windows one split and checks that it can train and test a detector. Each returns what the next needs.
"""
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osdkit.data import osdbData, osdbFilters, osdbSplit, windowing
from osdkit.io import fileUtils
from osdkit.sim import osdbSim
from osdkit.training import distUtils


@dataclass
class PreparedData:
    """One split's windows and events, and the facts about them (data_summary.json)."""
    train: windowing.WindowSet
    val: windowing.WindowSet
    test: windowing.WindowSet
    train_events: list  # before augmentation
    val_events: list
    test_events: list
    summary: dict


def osdb_paths(run):
    """The config's OSDB files (osdbFiles in cacheDir, then dailyLifeFiles as given); OsdbFileError naming
    the first one missing."""
    paths = [Path(run.osdb.cacheDir) / name for name in run.osdb.osdbFiles] + [Path(p) for p in run.osdb.dailyLifeFiles]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise osdbData.OsdbFileError(f"{missing[0]}: OSDB file not found (osdbConfig.cacheDir/osdbFiles)")
    return paths


def write_missing_simulation(run):
    """Write the simulated database into each missing OSDB file when `osdbConfig.simulate` is true."""
    sim = run.osdb.simulation
    for name in run.osdb.osdbFiles:
        path = Path(run.osdb.cacheDir) / name
        if run.osdb.simulate and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            print(f"writing the simulated OSDB database {path}")
            osdbSim.simulate_database(path, n_users=sim.users, seizures_per_user=sim.seizuresPerUser,
                                      nda_per_user=sim.ndaPerUser, false_alarms_per_user=sim.falseAlarmsPerUser,
                                      seed=sim.seed, quirk_rate=sim.quirkRate)


def provenance(events):
    """"simulated" (every event written by osdbSim), "OSDB" (none) or "OSDB and simulated"."""
    simulated = sum(e.desc.endswith("osdbSim") for e in events)
    return "simulated" if simulated == len(events) else "OSDB" if simulated == 0 else "OSDB and simulated"


def read_events(run):
    """(events, source): every event of the config's files after eventFilters and invalidEvents, and
    what was read, dropped and filtered. Refuses data that cannot train a detector (one class only)."""
    if distUtils.is_main_process():
        write_missing_simulation(run)
    distUtils.barrier()  # other ranks read the database once it is written
    paths = osdb_paths(run)
    events, stats = osdbData.read_osdb_files(paths)
    events, filter_stats = osdbFilters.filter_events(events, run.eventFilters, run.osdb.invalidEvents)
    names = ", ".join(str(p) for p in paths)
    counts = Counter(e.label for e in events)
    if not counts[0] or not counts[1]:
        kept = f"{counts[1]} seizure and {counts[0]} non-seizure events"
        raise ValueError(f"{names}: {kept} after eventFilters; training needs both classes")
    source = {"provenance": provenance(events), "files": [str(p) for p in paths],
              "read": {"events_kept": stats.events_kept, "events_in": stats.events_in,
                       "datapoints_kept": stats.datapoints_kept, "skipped": dict(stats.skipped),
                       "repaired": dict(stats.repaired)},
              "filters": filter_stats}
    return events, source


def fold_splits(run, events, kfold=1):
    """[(train, val, test)]: one split by testProp/validationProp, or `kfold` folds (each event or user
    in one test fold), by user when splitByUser."""
    dp = run.data
    if kfold <= 1:
        return [osdbSplit.split_events(events, dp.testProp, dp.validationProp, run.randomSeed, dp.splitByUser,
                                       dp.testPropBySource)]
    return list(osdbSplit.kfold_splits(events, kfold, run.randomSeed, dp.splitByUser, dp.validationProp))


def resample(windows, oversample, undersample, rng):
    """`dataProcessing` over/undersample "random": drop majority windows at random down to the minority
    count, then repeat minority windows at random up to the majority count; "none" leaves them."""
    if oversample == undersample == "none":
        return windows
    minority = int(np.argmin(np.bincount(windows.labels, minlength=2)))
    is_minority = windows.labels == minority
    idx = np.arange(len(windows))
    if undersample == "random":
        kept_majority = rng.choice(np.flatnonzero(~is_minority), int(is_minority.sum()), replace=False)
        idx = np.sort(np.r_[np.flatnonzero(is_minority), kept_majority])
    if oversample == "random":
        short = int((~is_minority[idx]).sum() - is_minority[idx].sum())
        idx = np.r_[idx, rng.choice(idx[is_minority[idx]], short, replace=True)]
    return windows.select(idx)


def make_windows(run, events):
    return windowing.make_windows(events, run.model.sampleFreq * run.model.bufferSeconds, run.data.step,
                                  run.data.labelMode, run.data.minOverlapS)


def prepare_split(run, split, source, folder=None):
    """PreparedData of one (train, val, test) split: training events augmented, all windowed, training
    windows resampled as configured; data_summary.json in `folder` (main process)."""
    start = time.perf_counter()
    train, val, test = split
    rng = np.random.default_rng(run.randomSeed)
    train_windows = resample(make_windows(run, osdbSplit.augment_events(train, run.data, rng)),
                             run.data.oversample, run.data.undersample, rng)
    data = PreparedData(train_windows, make_windows(run, val), make_windows(run, test), train, val, test,
                        {**source, "split_by": "user" if run.data.splitByUser else "event"})
    return _summarize(data, {"train": train, "val": val, "test": test}, folder, start)


def with_test_events(run, data, test_events, folder=None):
    """`data` with another test split (the outer fold of a nested k-fold), summarized in `folder`."""
    start = time.perf_counter()
    tested = PreparedData(data.train, data.val, make_windows(run, test_events), data.train_events,
                          data.val_events, test_events, dict(data.summary))
    events = {"train": data.train_events, "val": data.val_events, "test": test_events}
    return _summarize(tested, events, folder, start)


def _summarize(data, events, folder, start):
    """Check that each split holds both classes; fill data.summary and write it to `folder`."""
    windows = {"train": data.train, "val": data.val, "test": data.test}
    for name, w in windows.items():
        n_seizure = int(w.labels.sum())
        if n_seizure == 0 or n_seizure == len(w):
            raise ValueError(f"{', '.join(data.summary['files'])}: the {name} split has {n_seizure} seizure "
                             f"windows of {len(w)}; it needs both classes (more data, or other split settings)")
    data.summary.update(
        events={name: count_events(evs) for name, evs in events.items()},
        windows={name: {"n": len(w), "seizure": int(w.labels.sum())} for name, w in windows.items()},
        users={name: sorted({str(e.user_id) for e in evs}) for name, evs in events.items()},
        seconds=round(time.perf_counter() - start, 1))
    if distUtils.is_main_process():
        if folder is not None:
            fileUtils.write_json_atomic(Path(folder) / "data_summary.json", data.summary)
        print(f"data: {'/'.join(str(len(evs)) for evs in events.values())} train/val/test events, windows "
              + ", ".join(f"{k} {v['n']} ({v['seizure']} seizure)" for k, v in data.summary["windows"].items())
              + f" [{data.summary['seconds']} s]")
    return data


def count_events(events):
    return dict(sorted(Counter(f"{e.type}/{e.sub_type}" for e in events).items()))
