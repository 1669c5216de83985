"""Train DeepEpiCnn alone, then the verified exports and app entries (osdkit.training.trainer).

    python nnTrainer.py --config nnConfig.json [--outDir DIR] [--rerun N]
    torchrun --nproc_per_node=N nnTrainer.py --config nnConfig.json

Each call trains in a new run folder `<outDir>/<N>/` (default outDir output/trainer), as runSequence.py
does; `--rerun N` continues run N (an interrupted training resumes from its `_resume.pt`).
"""
from osdkit.training import cpuSettings  # noqa: F401  isort: skip  (first: OpenMP's waiting before torch loads)
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)

from osdkit.cli import cliUtils
from osdkit.io import fileUtils
from osdkit.training import alarmSettings, configUtils, distUtils, trainExport, trainingData
from osdkit.training.trainer import train


def get_args_parser():
    parser = cliUtils.CliParser(description="Train DeepEpiCnn alone: data as the main job prepares it, "
                                            "then the verified exports and app entries")
    parser.add_argument("--config", default="nnConfig.json", help="nnConfig.json file")
    parser.add_argument("--outDir", default="output/trainer",
                        help="root of the run folders: each call trains in a new <outDir>/<N>/")
    parser.add_argument("--rerun", type=int, default=0,
                        help="continue run N in <outDir>/<N>/ (resume an interrupted training; 0: new run)")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    """Prepare data as runSequence does, train (torchrun-able), then on rank 0 the alarm settings and exports."""
    args = get_args_parser().parse_args(argv)
    if args.rerun < 0:
        raise configUtils.ConfigError(f"--rerun {args.rerun}: expected a run number >= 1 (0: a new run)")
    run, _ = configUtils.load_run_config(args.config)
    distUtils.init_distributed_mode()
    out_dir = None
    if distUtils.is_main_process():
        out_dir = fileUtils.numbered_folder(args.outDir, args.rerun)
        print(f"run folder {out_dir} (an interrupted run goes on with --rerun {out_dir.name})")
    out_dir = distUtils.broadcast_from_main(out_dir)
    events, source = trainingData.read_events(run)
    data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source, out_dir)
    trained = train(run, data.train, data.val, out_dir)
    if trained is not None:
        alarm = alarmSettings.choose_alarm_settings(run, trained.model, data, out_dir)
        trainExport.export_trained(run, trained, data.train, alarm)
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
