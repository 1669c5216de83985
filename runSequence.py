"""The main job: OSDB events -> split -> augment -> windows of bufferSeconds -> train -> export -> test -> summary.

    python runSequence.py --config nnConfig.json              # a new run in output/<modelFname>/<N>/
    python runSequence.py --config nnConfig.json --dbDir /data/osdb   # the OSDB files in /data/osdb
    python runSequence.py --rerun 3                           # resume / re-test run 3 on its own config
    python runSequence.py --config nnConfig.json --kfold 5
    python runSequence.py --config nnConfig.json --nestedKfold 5 [--kfold 3]

With `osdbConfig.simulate` true, each listed file whose name contains "simulated" is written first
when missing or stale (trainingData); real OSDB files go through exactly the same reading code. The run
folder keeps the config it was made with; a rerun uses that copy and the splits recorded per fold.

Per fold the steps run in order (foldSteps), each taking what the one before returned:
trainingData.prepare_split -> trainer.train (or load_trained with --test alone) ->
alarmSettings.choose_alarm_settings -> trainExport.export_trained (with --test alone: the app entries
rewritten) -> nnTester.evaluate_trained (test events) and nnTester.evaluate_real (real recordings); then
runSummary.write_summary over the folds and modelCard.write_model_card per fold. --nestedKfold: see
nestedKfold.
"""
from osdkit.training import cpuSettings  # noqa: F401  isort: skip  (first: sets OpenMP's waiting before torch loads)
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
import json
import logging
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from osdkit.cli import cliUtils
from osdkit.io import fileUtils
from osdkit.training import configUtils, distUtils, foldSteps, nestedKfold, trainer, trainingData

DEFAULT_CONFIG = "nnConfig.json"
RUN_ARGS = "run_args.json"  # which file in a run folder is the run's own config


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None,
                        help=f"nnConfig.json file (default {DEFAULT_CONFIG}); with --rerun it must equal the "
                             "run's own copy, which the rerun uses")
    parser.add_argument("--dbDir", default=None,
                        help="folder of the OSDB files (replaces osdbConfig.cacheDir; recorded in the run's config)")
    parser.add_argument("--kfold", type=int, default=1,
                        help="number of folds (1: one split); with --nestedKfold the inner folds")
    parser.add_argument("--nestedKfold", type=int, default=0,
                        help="outer folds of a nested k-fold (0: none): inner folds choose the alarm settings, "
                             "epochs and modelConfig.hyperParameterGrid, then one model is retrained on the "
                             "whole outer training set and tested on the outer fold")
    parser.add_argument("--rerun", type=int, default=0,
                        help="continue or re-test run N (0: new run) with the run's own config and splits")
    parser.add_argument("--outDir", default="output", help="root of the run folders")
    parser.add_argument("--train", action="store_true", help="train (default when neither flag is given)")
    parser.add_argument("--test", action="store_true", help="test (default when neither flag is given)")
    parser.add_argument("--evalReal", default=None,
                        help="folder of real data (osdb_example/, adl_wrist/) to report on, never train on "
                             "(default: the run config's evaluation.realDataDir; none when it names none)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


# ---------------------------------------------------------------- run folder, its config and log
def with_db_dir(config, db_dir):
    """The config with osdbConfig.cacheDir replaced by --dbDir (unchanged without it)."""
    if db_dir is None:
        return config
    if not Path(db_dir).is_dir():
        raise configUtils.ConfigError(f"{db_dir}: --dbDir is not a folder")
    return {**config, "osdbConfig": {**config.get("osdbConfig", {}), "cacheDir": str(db_dir)}}


def _without_db(config):
    return {**config, "osdbConfig": {k: v for k, v in config.get("osdbConfig", {}).items() if k != "cacheDir"}}


def fold_counts(args):
    return {"kfold": max(args.kfold, 1), "nestedKfold": args.nestedKfold}


def _flags(counts):
    return " ".join(f"--{key} {value}" for key, value in counts.items())


def own_config(folder, fallback_name):
    """The path of a run folder's own config copy (named in run_args.json; older runs: the --config name)."""
    args_path = folder / RUN_ARGS
    name = json.loads(args_path.read_text())["config"] if args_path.exists() else fallback_name
    path = folder / name
    if not path.is_file():
        raise configUtils.ConfigError(f"{path}: the run's own config copy is missing; a rerun uses it")
    return path


def prepare_run(args):
    """(config dict, its source, warnings, run folder): a new run folder with the config as read (merged,
    --dbDir applied) copied into it, or for --rerun N run N's own copy (refusing a --config that differs)."""
    name = Path(args.config or DEFAULT_CONFIG).name
    if args.rerun:
        return _rerun_config(args, name)
    given, warnings = configUtils.load_config(args.config or DEFAULT_CONFIG)
    config = {k: v for k, v in with_db_dir(given, args.dbDir).items() if k != "osdbCfg"}  # merged already
    folder = fileUtils.numbered_folder(Path(args.outDir) / configUtils.get(config, "modelConfig.modelFname"))
    fileUtils.write_json_atomic(folder / name, config)
    fileUtils.write_json_atomic(folder / RUN_ARGS, {"config": name, "source": str(args.config or DEFAULT_CONFIG),
                                                      "dbDir": args.dbDir, **fold_counts(args)})
    return config, str(folder / name), warnings, folder


def _rerun_config(args, name):
    """prepare_run for --rerun N: the run's own config (its modelFname from --config, else nnConfig.json
    when present, else the default)."""
    given = None
    if args.config or Path(DEFAULT_CONFIG).is_file():
        given = with_db_dir(configUtils.load_config(args.config or DEFAULT_CONFIG)[0], args.dbDir)
    folder = fileUtils.numbered_folder(Path(args.outDir) / configUtils.get(given or {}, "modelConfig.modelFname"), args.rerun)
    path = own_config(folder, name)
    made = json.loads((folder / RUN_ARGS).read_text()) if (folder / RUN_ARGS).exists() else {}
    made = {key: made[key] for key in fold_counts(args) if key in made}
    if made and made != fold_counts(args):
        raise configUtils.ConfigError(f"{folder}: run {args.rerun} was made with {_flags(made)}; a rerun needs the "
                                      f"same fold counts, not {_flags(fold_counts(args))}")
    config, warnings = configUtils.load_config(path)
    config = with_db_dir(config, args.dbDir)
    if args.config and _without_db(config) != _without_db(given):
        raise configUtils.ConfigError(f"{args.config}: differs from {path}, the config run {args.rerun} was made "
                                      "with; a rerun uses the run's own config (edit that copy to change alarm "
                                      "settings, or start a new run)")
    return config, str(path), warnings, folder


class LogLines:
    """The run log's side of the console: whole lines only; a line redrawn with carriage returns (a tqdm
    bar) is kept as its last frame, and a bar that clears itself leaves nothing."""

    def __init__(self, log_file):
        self.log_file, self.line = log_file, ""

    def write(self, text):
        *done, line = (self.line + text).split("\n")
        self.line = line.rsplit("\r", 1)[-1]  # a carriage return starts the line again
        for line in done:
            self.log_file.write(line.rsplit("\r", 1)[-1] + "\n")

    def flush(self):
        self.log_file.flush()


class Tee:
    """Write to the console and (whole lines, no progress frames) the run's log file."""

    def __init__(self, stream, log_lines):
        self.stream, self.log_lines = stream, log_lines

    def write(self, text):
        self.stream.write(text)
        self.log_lines.write(text)
        return len(text)

    def flush(self):
        self.stream.flush()
        self.log_lines.flush()

    def isatty(self):
        return self.stream.isatty()


def start_log(folder):
    """Console output (and the OSDB readers' warnings) also into the run's log file."""
    log_file = open(folder / f"runSequence_{datetime.now():%Y%m%d_%H%M%S}.log", "a", buffering=1)
    sys.stdout, sys.stderr = Tee(sys.stdout, LogLines(log_file)), Tee(sys.stderr, LogLines(log_file))
    logging.disable(logging.NOTSET)  # run_cli hides library logging; the readers' warnings are the user's
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout, force=True)


# ---------------------------------------------------------------- the run
def start_run(args):
    """On rank 0 the run folder, its config and log; every rank gets (RunConfig, folder)."""
    def on_main():
        config, source, warnings, folder = prepare_run(args)
        start_log(folder)
        run = configUtils.run_config(config, source)
        for warning in warnings + trainer.unused_key_notes(run):
            print(f"note: {warning}")
        print(f"run folder {folder} (an interrupted run goes on with --rerun {folder.name}, which uses {source})")
        return config, source, folder
    config, source, folder = distUtils.run_on_main(on_main)
    return configUtils.run_config(config, source), Path(folder)


@trainer.denormals_flushed()
def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if not (args.train or args.test):
        args.train = args.test = True
    if args.test and not args.train and not args.rerun:
        raise configUtils.ConfigError("--test alone needs --rerun N: the run whose models to test")
    if args.nestedKfold == 1 or args.nestedKfold < 0:
        raise configUtils.ConfigError(f"--nestedKfold {args.nestedKfold}: needs at least 2 outer folds")
    distUtils.init_distributed_mode()
    run, folder = start_run(args)
    torch.manual_seed(run.randomSeed)
    np.random.seed(run.randomSeed)
    events, source = trainingData.read_events(run)
    if args.nestedKfold:
        return nestedKfold.run_nested(run, args, folder, events, source)
    splits = trainingData.fold_splits(run, events, args.kfold)
    dirs = [folder if args.kfold <= 1 else folder / f"fold{k}" for k in range(len(splits))]
    trainingData.record_splits(list(zip(dirs, splits)))
    folds = []
    for split, fold_dir in zip(splits, dirs):
        data = trainingData.prepare_split(run, split, source, fold_dir)
        trained = foldSteps.train_or_load(run, args, fold_dir, data)
        name = "" if args.kfold <= 1 else fold_dir.name
        folds.append(trained and foldSteps.evaluate_fold(run, args, fold_dir, trained, data, name))
    if distUtils.is_main_process() and args.test:
        foldSteps.write_reports(run, folder, [f for f in folds if f])
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
