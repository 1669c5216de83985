"""The main job's data step: OSDB files -> filtered events -> splits -> augmented training events -> windows.

`read_events` runs once per run (writing the simulated database first when the config asks for it);
`fold_splits` gives the (train, validation, test) events of each fold; `prepare_split` augments and
windows one split and checks that it can train and test a detector. Each returns what the next needs.
"""
import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osdkit.data import osdbData, osdbFilters, osdbSplit, windowing
from osdkit.io import fileUtils
from osdkit.sim import osdbSim
from osdkit.training import configUtils, distUtils

SPLIT_RECORD = "split_events.json"


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
        simulated = run.osdb.simulate and "simulated" not in missing[0].name
        note = "; osdbConfig.simulate writes only a file whose name contains 'simulated'" if simulated else ""
        raise osdbData.OsdbFileError(f"{missing[0]}: OSDB file not found (osdbConfig.cacheDir/osdbFiles, "
                                     f"or --dbDir){note}")
    return paths


def simulation_fingerprint(run):
    """What a cached simulated file was written from: the simulation parameters and the simulator version."""
    return {"simulation": dataclasses.asdict(run.osdb.simulation), "sim_version": osdbSim.SIM_VERSION}


def fingerprint_path(path):
    return Path(path).with_name(Path(path).name + ".params.json")


def stale_simulation(path, fingerprint):
    """Why the simulated file at `path` must be (re)written, or None when it is current."""
    if not path.exists():
        return "missing"
    try:
        stored = json.loads(fingerprint_path(path).read_text())
    except (OSError, ValueError):
        return "no record of its parameters"
    return None if stored == fingerprint else "written with other parameters or another simulator version"


def simulated_paths(run):
    """The OSDB files to simulate: none unless `osdbConfig.simulate` is true; then the files whose name
    says they are simulated (a real file's name is never written)."""
    if not run.osdb.simulate:
        return []
    return [Path(run.osdb.cacheDir) / name for name in run.osdb.osdbFiles if "simulated" in name]


def write_simulation(run):
    """(Re)write each simulated OSDB file that is missing or stale, with its fingerprint beside it."""
    sim, fingerprint = run.osdb.simulation, simulation_fingerprint(run)
    for path in simulated_paths(run):
        reason = stale_simulation(path, fingerprint)
        if reason is None:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"writing the simulated OSDB database {path} ({reason})")
        osdbSim.simulate_database(path, n_users=sim.users, seizures_per_user=sim.seizuresPerUser,
                                  nda_per_user=sim.ndaPerUser, false_alarms_per_user=sim.falseAlarmsPerUser,
                                  seed=sim.seed, quirk_rate=sim.quirkRate)
        fileUtils.write_json_atomic(fingerprint_path(path), fingerprint)


def check_database_on_every_rank(run):
    """Under torchrun: every rank must see the OSDB files rank 0 reads (and the same simulated ones); when
    one does not (no shared disk), every rank stops with the same one-line message."""
    if not distUtils.is_distributed():
        return
    local = [str(p) for p in (Path(run.osdb.cacheDir) / n for n in run.osdb.osdbFiles) if not p.exists()]
    local += [f"{p} (stale)" for p in simulated_paths(run) if p.exists()
              and stale_simulation(p, simulation_fingerprint(run))]
    problems = [(rank, files) for rank, files in enumerate(distUtils.gather_from_all(local)) if files]
    if problems:
        rank, files = problems[0]
        where = "" if rank == 0 else (f" on the host of rank {rank} (rank 0 has it): put cacheDir on a disk "
                                      "every host shares, or copy the database to each host")
        raise osdbData.OsdbFileError(f"{files[0]}: OSDB file not found{where}")


def provenance(events):
    """"simulated" (every event written by osdbSim), "OSDB" (none) or "OSDB and simulated"."""
    simulated = sum(e.desc.endswith("osdbSim") for e in events)
    return "simulated" if simulated == len(events) else "OSDB" if simulated == 0 else "OSDB and simulated"


def drop_duplicate_events(events):
    """The events without repeats of an event id already read (OSDB's tcSeizures file is a subset of
    allSeizures); events without an id are kept. Returns (events, number dropped)."""
    seen, kept = set(), []
    for event in events:
        key = None if event.id is None else osdbData.norm_key(event.id)
        if key is not None and key in seen:
            continue
        seen.add(key)
        kept.append(event)
    return kept, len(events) - len(kept)


def read_events(run):
    """(events, source): every event of the config's files (each event id once) after eventFilters and
    invalidEvents, and what was read, dropped and filtered. Refuses data that cannot train a detector."""
    distUtils.run_on_main(lambda: write_simulation(run))  # other ranks read the database once it is written
    check_database_on_every_rank(run)
    paths = osdb_paths(run)
    events, stats = osdbData.read_osdb_files(paths)
    events, duplicates = drop_duplicate_events(events)
    if duplicates and distUtils.is_main_process():
        print(f"{', '.join(map(str, paths))}: {duplicates} repeated events (same event id) dropped")
    source_read = {"events_kept": len(events), "events_in": stats.events_in, "duplicate_events": duplicates,
                   "datapoints_kept": sum(len(e.dp_times) for e in events), "skipped": dict(stats.skipped),
                   "repaired": dict(stats.repaired)}
    events, filter_stats = osdbFilters.filter_events(events, run.eventFilters, run.osdb.invalidEvents)
    names = ", ".join(str(p) for p in paths)
    counts = Counter(e.label for e in events)
    if not counts[0] or not counts[1]:
        kept = f"{counts[1]} seizure and {counts[0]} non-seizure events"
        raise ValueError(f"{names}: {kept} after eventFilters; training needs both classes")
    source = {"provenance": provenance(events), "files": [str(p) for p in paths],
              "read": source_read,
              "filters": filter_stats}
    return events, source


def fold_splits(run, events, kfold=1):
    """[(train, val, test)]: one split by testProp/validationProp, or `kfold` folds (each event or user
    in one test fold), by user when splitByUser. Refused up front (ConfigError naming the config) when the
    folds or windows cannot work: more folds than users (events), a bufferSeconds longer than every
    event, or a split without seizure or non-seizure events."""
    dp = run.data
    check_fold_count(run, events, kfold)
    check_buffer_length(run, events)
    if kfold <= 1:
        splits = [osdbSplit.split_events(events, dp.testProp, dp.validationProp, run.randomSeed, dp.splitByUser,
                                          dp.testPropBySource)]
    else:
        splits = list(osdbSplit.kfold_splits(events, kfold, run.randomSeed, dp.splitByUser, dp.validationProp))
    for k, split in enumerate(splits):
        for name, part in zip(("train", "validation", "test"), split):
            labels = {e.label for e in part}
            if labels != {0, 1}:
                fold = f"fold {k}: " if kfold > 1 else ""
                raise configUtils.ConfigError(
                    f"{run.source}: {fold}the {name} split holds {len(part)} events, "
                    f"{'no seizure' if 1 not in labels else 'no non-seizure'} events among them; it needs both "
                    f"(fewer folds, more {'users' if dp.splitByUser else 'events'}, or other split settings)")
    return splits


def check_fold_count(run, events, kfold):
    """More folds than users with seizures (events, when not by user) leave a test fold without seizures."""
    if kfold <= 1:
        return
    seizures = [e for e in events if e.label == 1]
    by_user = run.data.splitByUser
    units = len({osdbData.norm_key(e.user_id) for e in seizures}) if by_user else len(seizures)
    if kfold > units:
        kind = "users with seizure events" if by_user else "seizure events"
        raise configUtils.ConfigError(f"{run.source}: {kfold} folds but only {units} {kind}: every test fold "
                                      f"needs one (at most {units} folds)")


def check_buffer_length(run, events):
    """A window (bufferSeconds) longer than every event gives no windows at all."""
    longest = max((e.mag.size for e in events), default=0) / osdbData.SAMPLE_RATE_HZ
    if run.model.bufferSeconds > longest:
        raise configUtils.ConfigError(f"{run.source}: modelConfig.bufferSeconds {run.model.bufferSeconds} is "
                                      f"longer than every event (the longest holds {longest:g} s)")


def split_record(split):
    """{"train"|"val"|"test": sorted event ids} of a split."""
    return {name: sorted(str(e.id) for e in part) for name, part in zip(("train", "val", "test"), split)}


def record_splits(folders_and_splits):
    """Each fold folder's split_events.json: written the first time; on a rerun a fold whose stored split
    differs is refused (its checkpoints were trained on other events), before any training."""
    def check_and_write():
        records = [(Path(folder) / SPLIT_RECORD, split_record(split)) for folder, split in folders_and_splits]
        for path, record in records:
            if path.exists() and json.loads(path.read_text()) != record:
                stored = json.loads(path.read_text())
                moved = sum(len(set(stored.get(k, [])) ^ set(v)) for k, v in record.items())
                raise ValueError(f"{path}: this fold was made with another split ({moved} event ids differ); "
                                 "a rerun must use the run's own config, database and fold counts")
        for path, record in records:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                fileUtils.write_json_atomic(path, record)
    distUtils.run_on_main(check_and_write)


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


def _summarize(data, events, folder, start):
    """Check that each split holds both classes; fill data.summary and write it to `folder`."""
    windows = {"train": data.train, "val": data.val, "test": data.test}
    for name, w in windows.items():
        n_seizure = int(w.labels.sum())
        if name == "val" and not events["val"]:
            continue  # a retrain on a whole training set (nested k-fold) has no validation split
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
