"""Train DeepEpiCnn alone, then the verified exports and app entries (osdkit.training.trainer).

    python nnTrainer.py --config nnConfig.json [--outDir DIR]
    torchrun --nproc_per_node=N nnTrainer.py --config nnConfig.json
"""
from osdkit.training import cpuSettings  # noqa: F401  isort: skip  (first: OpenMP's waiting before torch loads)
from pathlib import Path

from osdkit.cli import cliUtils
from osdkit.training import alarmSettings, configUtils, distUtils, trainExport, trainingData
from osdkit.training.trainer import train


def get_args_parser():
    parser = cliUtils.CliParser(description="Train DeepEpiCnn alone: data as the main job prepares it, "
                                            "then the verified exports and app entries")
    parser.add_argument("--config", default="nnConfig.json")
    parser.add_argument("--outDir", default="output/trainer")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    """Prepare data as runSequence does, train (torchrun-able), then on rank 0 the alarm settings and exports."""
    args = get_args_parser().parse_args(argv)
    run, _ = configUtils.load_run_config(args.config)
    distUtils.init_distributed_mode()
    out_dir = Path(args.outDir)
    if distUtils.is_main_process():
        out_dir.mkdir(parents=True, exist_ok=True)
    events, source = trainingData.read_events(run)
    data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source, out_dir)
    trained = train(run, data.train, data.val, out_dir)
    if trained is not None:
        alarm = alarmSettings.choose_alarm_settings(run, trained.model, data, out_dir)
        trainExport.export_trained(run, trained, data.train, alarm)
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
