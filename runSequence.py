"""The main job: OSDB events -> split -> augment -> 30 s windows -> train -> export -> test -> summary.

    python runSequence.py --config nnConfig.json              # a new run in output/<modelFname>/<N>/
    python runSequence.py --config nnConfig.json --rerun 3    # resume / re-test run 3
    python runSequence.py --config nnConfig.json --kfold 5
    python runSequence.py --config nnConfig.json --nestedKfold 5 [--kfold 3]

With `osdbConfig.simulate` true and no OSDB files in `cacheDir`, the simulated database (osdbSim.py)
is written there first; real OSDB files go through exactly the same reading code.

Per fold the steps run in order, each taking what the one before returned: trainingData.prepare_split
-> trainer.train (or load_trained with --test alone) -> alarmSettings.choose_alarm_settings ->
trainExport.export_trained -> nnTester.evaluate_trained (test events) and nnTester.evaluate_real (real
recordings); then runSummary.write_summary over the folds and modelCard.write_model_card per fold.
"""
from osdkit.training import cpuSettings  # noqa: F401  isort: skip  (first: sets OpenMP's waiting before torch loads)
import logging
import shutil
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from osdkit.cli import cliUtils
from osdkit.data import osdbSplit
from osdkit.io import fileUtils
from osdkit.reports import modelCard, runSummary
from osdkit.training import alarmSettings, configUtils, distUtils, nnTester, trainer, trainExport, trainingData


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="nnConfig.json", help="nnConfig.json file")
    parser.add_argument("--kfold", type=int, default=1,
                        help="number of folds (1: one split); with --nestedKfold the inner folds")
    parser.add_argument("--nestedKfold", type=int, default=0,
                        help="outer folds of a nested k-fold (0: none): the best inner model of each "
                             "outer training set, chosen by inner validation, is tested on the outer fold")
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
    """Console output (and the OSDB readers' warnings) also into the run's log file."""
    log_file = open(folder / f"runSequence_{datetime.now():%Y%m%d_%H%M%S}.log", "a", buffering=1)
    sys.stdout, sys.stderr = Tee(sys.stdout, log_file), Tee(sys.stderr, log_file)
    logging.disable(logging.NOTSET)  # run_cli hides library logging; the readers' warnings are the user's
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout, force=True)


# ---------------------------------------------------------------- one fold
def train_or_load(run, args, folder, data):
    """trainer.train on every rank, or with --test alone the fold's checkpoint; the TrainedModel on
    rank 0, None on the others."""
    trained = trainer.train(run, data.train, data.val, folder) if args.train else None
    if not distUtils.is_main_process():
        return None
    return trained or trainer.load_trained(run, folder)


def evaluate_fold(run, args, folder, trained, data, name):
    """The steps after training, on rank 0: alarm settings -> exports (when training) -> tests and real
    data; the fold's runSummary.FoldResult when testing, else None."""
    alarm = alarmSettings.choose_alarm_settings(run, trained.model, data, folder)
    if args.train:
        trainExport.export_trained(run, trained, data.train, alarm)
    if not args.test:
        return None
    results = nnTester.evaluate_trained(folder, trained, data, alarm)
    seen = {str(e.user_id) for e in data.train_events + data.val_events}  # trained or tuned on
    real = nnTester.evaluate_real(args.evalReal or run.evaluation.realDataDir,
                                  trained.best_path.with_suffix(".pte"), alarm, folder, seen)
    return runSummary.fold_result(name, folder, trained, data, alarm, results, real)


def write_reports(run, folder, folds, stem="kfold_summary", extra=None):
    """The summary over the folds and a model card per fold."""
    runSummary.write_summary(folder, folds, stem, extra)
    for fold in folds:
        print(f"model card {modelCard.write_model_card(run, fold)}")


# ---------------------------------------------------------------- nested k-fold
def inner_score(run, trained, data):
    """The inner model's `modelSelectionMetric` score on its inner held-out fold (None: breaks the limits)."""
    return trainer.selection_score(trainer.evaluate(trained.model, data.test, "cpu"), run.model)


def run_nested(run, args, folder, events, source):
    """--nestedKfold N: outer folds by user (or event, per splitByUser); on each outer training set an
    inner k-fold (--kfold K, default N) in outerfold<o>/fold<k>/, each inner model scored on its inner
    held-out fold; the best one is tested on the outer fold (results in outerfold<o>/), never chosen by it."""
    inner_k = args.kfold if args.kfold > 1 else args.nestedKfold
    outer_splits = osdbSplit.kfold_splits(events, args.nestedKfold, run.randomSeed, run.data.splitByUser)
    outer_folds, choices = [], []
    for o, (outer_train, _, outer_test) in enumerate(outer_splits):
        outer_dir = folder / f"outerfold{o}"
        inner = []
        for k, split in enumerate(trainingData.fold_splits(run, outer_train, inner_k)):
            inner_dir = outer_dir / f"fold{k}"
            inner_dir.mkdir(parents=True, exist_ok=True)
            data = trainingData.prepare_split(run, split, source, inner_dir)
            trained = train_or_load(run, args, inner_dir, data)
            if trained:
                inner.append((inner_score(run, trained, data), k, trained, data))
        if not distUtils.is_main_process():
            continue
        scores = [score for score, *_ in inner]
        _, best_k, trained, data = max(inner, key=lambda c: (c[0] is not None, c[0] or 0, -c[1]))
        print(f"outer fold {o}: inner scores {scores}, testing inner fold {best_k}")
        choices.append({"outer_fold": o, "chosen_inner_fold": best_k, "inner_scores": scores})
        fileUtils.write_json_atomic(outer_dir / "inner_selection.json", choices[-1])
        data = trainingData.with_test_events(run, data, outer_test, outer_dir)
        outer_folds.append(evaluate_fold(run, args, outer_dir, trained, data, f"outerfold{o}"))
    if distUtils.is_main_process() and args.test:
        write_reports(run, folder, outer_folds, "nested_kfold_outer_summary",
                      {"inner_folds": inner_k, "selection": choices})
    return 0


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not (args.train or args.test):
        args.train = args.test = True
    if args.test and not args.train and not args.rerun:
        raise configUtils.ConfigError("--test alone needs --rerun N: the run whose models to test")
    if args.nestedKfold == 1 or args.nestedKfold < 0:
        raise configUtils.ConfigError(f"--nestedKfold {args.nestedKfold}: needs at least 2 outer folds")
    run, warnings = configUtils.load_run_config(args.config)
    torch.manual_seed(run.randomSeed)
    torch.set_flush_denormal(True)  # eager CPU work on accelerometer windows is ~4x faster without denormals
    np.random.seed(run.randomSeed)
    distUtils.init_distributed_mode()
    folder = None
    if distUtils.is_main_process():
        folder = run_folder(args.outDir, run.model.modelFname, args.rerun)
        start_log(folder)
        if not args.rerun:
            shutil.copy(args.config, folder / Path(args.config).name)
        for warning in warnings:
            print(f"note: {warning}")
        print(f"run folder {folder} (an interrupted run goes on with --rerun {folder.name})")
    folder = distUtils.broadcast_from_main(folder)
    events, source = trainingData.read_events(run)
    if args.nestedKfold:
        return run_nested(run, args, folder, events, source)
    folds = []
    for k, split in enumerate(trainingData.fold_splits(run, events, args.kfold)):
        fold_dir, name = (folder, "") if args.kfold <= 1 else (folder / f"fold{k}", f"fold{k}")
        fold_dir.mkdir(exist_ok=True)
        data = trainingData.prepare_split(run, split, source, fold_dir)
        trained = train_or_load(run, args, fold_dir, data)
        folds.append(trained and evaluate_fold(run, args, fold_dir, trained, data, name))
    if distUtils.is_main_process() and args.test:
        write_reports(run, folder, [f for f in folds if f])
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
