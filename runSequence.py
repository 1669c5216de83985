"""The main job: OSDB events -> split -> augment -> 30 s windows -> train -> export -> test -> summary.

    python runSequence.py --config nnConfig.json              # a new run in output/<modelFname>/<N>/
    python runSequence.py --config nnConfig.json --rerun 3    # resume / re-test run 3
    python runSequence.py --config nnConfig.json --kfold 5

With `osdbConfig.simulate` true and no OSDB files in `cacheDir`, the simulated database (osdbSim.py)
is written there first; real OSDB files go through exactly the same reading code.
"""
import argparse
import json
import logging
import shutil
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

import appIndex
import configUtils
import evaluation
import exportUtils
import modelCard
import nnTester
import nnTrainer
import osdbData
import osdbSim
import osdbSplit
import windowing

LOG = logging.getLogger("runSequence")


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="nnConfig.json", help="nnConfig.json file")
    parser.add_argument("--kfold", type=int, default=1, help="number of folds (1: one split)")
    parser.add_argument("--rerun", type=int, default=0, help="continue or re-test run N (0: new run)")
    parser.add_argument("--outDir", default="output", help="root of the run folders")
    parser.add_argument("--train", action="store_true", help="train (default when neither flag is given)")
    parser.add_argument("--test", action="store_true", help="test (default when neither flag is given)")
    parser.add_argument("--evalReal", default=None,
                        help="folder of real data (osdb_example/, adl_wrist/) to report on, never train on "
                             "(default: the config's evaluation.realDataDir if it exists)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


# ---------------------------------------------------------------- run folder and log
def run_folder(out_dir, model_fname, rerun):
    """`<outDir>/<modelFname>/<N>/`: N = 1 + the highest existing number, or the rerun's N."""
    base = Path(out_dir) / model_fname
    if rerun:
        folder = base / str(rerun)
        if not folder.is_dir():
            raise configUtils.ConfigError(f"{folder}: no such run to rerun")
        return folder
    base.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    folder = base / str(max(numbers, default=0) + 1)
    folder.mkdir()
    return folder


class Tee:
    """Write to the console and the run's log file."""

    def __init__(self, stream, log_file):
        self.stream, self.log_file = stream, log_file

    def write(self, text):
        self.stream.write(text)
        self.log_file.write(text)
        return len(text)

    def flush(self):
        self.stream.flush()
        self.log_file.flush()

    def isatty(self):
        return self.stream.isatty()


def start_log(folder):
    log_file = open(folder / f"runSequence_{datetime.now():%Y%m%d_%H%M%S}.log", "a", buffering=1)
    sys.stdout, sys.stderr = Tee(sys.__stdout__, log_file), Tee(sys.__stderr__, log_file)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)


# ---------------------------------------------------------------- data
def osdb_paths(config):
    """The OSDB files of the config; writes the simulated database first when asked to."""
    cache = Path(configUtils.get(config, "osdbConfig.cacheDir"))
    paths = [cache / name for name in configUtils.get(config, "osdbConfig.osdbFiles")]
    missing = [p for p in paths if not p.exists()]
    if missing and configUtils.get(config, "osdbConfig.simulate"):
        cache.mkdir(parents=True, exist_ok=True)
        sim = configUtils.section(config, "osdbConfig.simulation")
        for path in missing:
            LOG.info(f"writing the simulated OSDB database {path}")
            summary = osdbSim.simulate_database(
                path, n_users=sim["users"], seizures_per_user=sim["seizuresPerUser"],
                nda_per_user=sim["ndaPerUser"], false_alarms_per_user=sim["falseAlarmsPerUser"],
                seed=sim["seed"], quirk_rate=sim["quirkRate"])
            LOG.info(f"  {json.dumps(summary)[:300]}")
    elif missing:
        raise osdbData.OsdbFileError(f"{missing[0]}: OSDB file not found (osdbConfig.cacheDir/osdbFiles)")
    return paths


def windows_for(config, events):
    dp, model = configUtils.section(config, "dataProcessing"), configUtils.section(config, "modelConfig")
    return windowing.make_windows(events, model["sampleFreq"] * model["bufferSeconds"], dp["step"],
                                  dp["labelMode"], dp["minOverlapS"])


def split_for_fold(config, events, kfold, fold):
    seed, dp = configUtils.get(config, "randomSeed"), configUtils.section(config, "dataProcessing")
    if kfold <= 1:
        return osdbSplit.split_events(events, dp["testProp"], dp["validationProp"], seed, dp["splitByUser"])
    return list(osdbSplit.kfold_splits(events, kfold, seed, dp["splitByUser"], dp["validationProp"]))[fold]


def prepare_data(config, run_dir, kfold=1, fold=0):
    """Read, filter, split (train / validation / test), augment and window; write a data summary."""
    start = time.perf_counter()
    paths = osdb_paths(config)
    events, stats = osdbData.read_osdb_files(paths)
    events, filter_stats = osdbData.filter_events(events, config.get("eventFilters", {}),
                                                  configUtils.get(config, "osdbConfig.invalidEvents"))
    train, val, test = split_for_fold(config, events, kfold, fold)
    rng = np.random.default_rng(configUtils.get(config, "randomSeed"))
    augmented = osdbSplit.augment_events(train, configUtils.section(config, "dataProcessing"), rng)
    data = {"train": windows_for(config, augmented), "val": windows_for(config, val),
            "test": windows_for(config, test), "test_events": test, "val_events": val}
    summary = {"provenance": "simulated" if configUtils.get(config, "osdbConfig.simulate") else "OSDB",
               "files": [str(p) for p in paths], "read": {
                   "events_kept": stats.events_kept, "events_in": stats.events_in,
                   "datapoints_kept": stats.datapoints_kept, "skipped": dict(stats.skipped),
                   "repaired": dict(stats.repaired)}, "filters": filter_stats,
               "events": {name: count_events(evs) for name, evs in
                          (("train", train), ("val", val), ("test", test))},
               "windows": {name: {"n": len(data[name]), "seizure": int(data[name].labels.sum())}
                           for name in ("train", "val", "test")},
               "users": {name: sorted({str(e.user_id) for e in evs}) for name, evs in
                         (("train", train), ("val", val), ("test", test))},
               "seconds": round(time.perf_counter() - start, 1)}
    if nnTrainer.is_main_process():
        exportUtils.write_json_atomic(Path(run_dir) / "data_summary.json", summary)
    LOG.info(f"data: {len(train)}/{len(val)}/{len(test)} train/val/test events, windows "
             + ", ".join(f"{k} {v['n']} ({v['seizure']} seizure)" for k, v in summary["windows"].items())
             + f" [{summary['seconds']} s]")
    data["summary"] = summary
    return data


def count_events(events):
    return dict(sorted(Counter(f"{e.type}/{e.sub_type}" for e in events).items()))


# ---------------------------------------------------------------- one fold
def run_fold(config, args, folder, kfold, fold):
    data = prepare_data(config, folder, kfold, fold)
    name = configUtils.get(config, "modelConfig.modelFname")
    best_path = folder / f"{name}.pt"
    if args.train:
        _, history, best_path = nnTrainer.train_model(config, data["train"], data["val"], folder)
        if not nnTrainer.is_main_process():
            return None
        exportUtils.write_json_atomic(folder / "training_history.json", history)
        evaluation.plot_training_history(history, folder / f"{name}_training.png")
        alarm = nnTester.select_alarm_settings(config, folder, best_path, data)
        LOG.info(f"app alarm settings: p > {alarm['threshold_pct'] / 100:.2f}, movement gate "
                 f"{alarm['gate_pct']} % ({alarm['chosen_on']})")
        calibration = nnTester.calibration_sample(data["train"], configUtils.get(config, "randomSeed"))
        exports = nnTrainer.export_formats(config, best_path, calibration)
        for kind, report in exports.items():
            LOG.info(f"{report['path']}: verified, {exportUtils.parity_text(report['parity'])}"
                     + (f", {report['mobile']}" if "mobile" in report else ""))
            if kind.startswith("pte"):
                entry = appIndex.app_entry(report["path"], report, threshold_pct=alarm["threshold_pct"],
                                           gate_pct=alarm["gate_pct"])
                LOG.info(f"app index entry {appIndex.write_entry_beside(report['path'], entry)}")
        exportUtils.write_json_atomic(folder / "export_report.json", exports)
    if not args.test:
        return None
    alarm = nnTester.select_alarm_settings(config, folder, best_path, data)
    return {"folder": folder, "best_path": best_path, "data_summary": data["summary"], "alarm": alarm,
            "results": nnTester.test_run(config, folder, best_path, data, alarm)}


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not (args.train or args.test):
        args.train = args.test = True
    if args.test and not args.train and not args.rerun:
        raise configUtils.ConfigError("--test alone needs --rerun N: the run whose models to test")
    config, warnings = configUtils.load_config(args.config)
    torch.manual_seed(configUtils.get(config, "randomSeed"))
    torch.set_flush_denormal(True)  # eager CPU work on accelerometer windows is ~4x faster without denormals
    np.random.seed(configUtils.get(config, "randomSeed"))
    nnTrainer.init_distributed()
    main_process = nnTrainer.is_main_process()
    folder = None
    if main_process:
        folder = run_folder(args.outDir, configUtils.get(config, "modelConfig.modelFname"), args.rerun)
        start_log(folder)
        if not args.rerun:
            shutil.copy(args.config, folder / Path(args.config).name)
        osdb_paths(config)  # simulate once, before other ranks read
    folder = nnTrainer.share_from_main(folder)
    for warning in warnings:
        LOG.info(f"note: {warning}")
    LOG.info(f"run folder {folder}")
    results = []
    for fold in range(max(args.kfold, 1)):
        fold_dir = folder if args.kfold <= 1 else folder / f"fold{fold}"
        if main_process:
            fold_dir.mkdir(exist_ok=True)
        results.append(run_fold(config, args, fold_dir, args.kfold, fold))
    if main_process and args.test:
        done = [r for r in results if r]
        summary = nnTester.write_summary(folder, [r["results"] for r in done], config, args.evalReal,
                                         done[0]["alarm"] if done else None)
        real_lines = [line for line in summary["text"] if line.startswith("real ")]
        for fold in filter(None, results):
            card = modelCard.write_model_card(config, fold, real_lines)
            LOG.info(f"model card {card}")
    return 0


def cli():
    debug = "--debug" in sys.argv
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("error: interrupted; rerun with --rerun N to resume", file=sys.__stderr__)
        sys.exit(130)
    except (ValueError, OSError) as err:
        if debug:
            raise
        print(f"error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.__stderr__)
        sys.exit(1)


if __name__ == "__main__":
    cli()
