"""Convert DeepEpiCnn checkpoints (.pt) to TorchScript lite-interpreter files (.ptl).

    python convertPt2Ptl.py model.pt [-o model.ptl] [--input-shape 1,1,750]

The model is traced, mobile-optimised where this PyTorch has XNNPACK (the pinned 2.13 CPU build has
not: the script says so and saves the plain traced model), saved for the lite interpreter, then run
with the lite interpreter and compared with the eager model before it is renamed into place.
The input shape is stored in the file, so convertPtl2Pte.py needs no --input-shape for it.
The OSD app itself now runs only .pte files; .ptl is kept for older tools.
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
from osdkit.cli import batchConvert, cliUtils
from osdkit.export import exportCore, ptlExport
from osdkit.model import checkpoints
from osdkit.sim import osdbSim


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help=".pt checkpoint(s) or folders of them")
    parser.add_argument("-o", "--output", help="output .ptl (one input) or existing folder")
    parser.add_argument("--num-classes", type=int,
                        help="the weights' number of classes when it is not 2 (the app's); checked")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow full unpickling (only for files you trust)")
    cliUtils.add_input_norm_arg(parser)
    cliUtils.add_batch_args(parser)
    return parser


def convert_one(src, dst, opts):
    model, shape, _ = checkpoints.model_from_checkpoint(
        src, opts.input_shape, opts.num_classes, opts.allow_pickle, opts.input_norm)
    report = ptlExport.export_ptl(model, shape, dst, inputs=osdbSim.reference_windows(shape),
                                   num_classes=opts.num_classes)
    report["summary"] = f"verified, {exportCore.parity_text(report['parity'])}, {report['mobile']}"
    return report


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    sources = batchConvert.expand_sources(args.inputs, {".pt", ".pth"})
    outputs = batchConvert.output_paths(sources, args.output, ".ptl", args.force)
    return batchConvert.convert_all(convert_one, sources, outputs, args, args.jobs, args.quiet)[0]


if __name__ == "__main__":
    cliUtils.run_cli(main)
