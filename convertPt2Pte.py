"""Convert DeepEpiCnn checkpoints (.pt) to verified ExecuTorch programs (.pte) for the OSD app.

    python convertPt2Pte.py model.pt [-o out.pte]
    python convertPt2Pte.py runs/*.pt -o pte_folder/ [--backend portable] [--quantize int8 --calibration osdb.json]

Each .pte is run with the ExecuTorch runtime on realistic windows and compared with the eager model
before it is renamed into place; an app index entry `<name>.json` is written beside it.
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
from osdkit.cli import batchConvert, cliUtils, pteConverter
from osdkit.model import checkpoints


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help=".pt checkpoint(s) or folders of them")
    parser.add_argument("--num-classes", type=int,
                        help="the weights' number of classes when it is not 2 (the app's); checked")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow full unpickling (only for files you trust)")
    cliUtils.add_input_norm_arg(parser)
    cliUtils.add_pte_args(parser)
    return parser


def convert_one(src, dst, opts):
    """One checkpoint -> verified .pte + app entry; returns the export report."""
    model, shape, _ = checkpoints.model_from_checkpoint(
        src, opts.input_shape, opts.num_classes, opts.allow_pickle, opts.input_norm)
    return pteConverter.export_staged(model, shape, dst, opts)


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    sources = batchConvert.expand_sources(args.inputs, {".pt", ".pth"})
    return pteConverter.convert_to_pte(convert_one, sources, args)


if __name__ == "__main__":
    cliUtils.run_cli(main)
