"""Convert DeepEpiCnn checkpoints (.pt) to verified ExecuTorch programs (.pte) for the OSD app.

    python convertPt2Pte.py model.pt [-o out.pte]
    python convertPt2Pte.py runs/*.pt -o pte_folder/ [--backend portable] [--quantize int8 --calibration osdb.json]

Each .pte is run with the ExecuTorch runtime on realistic windows and compared with the eager model
before it is renamed into place; an app index entry `<name>.json` is written beside it.
"""
import appIndex
import batchConvert
import cliUtils
import exportUtils


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help=".pt checkpoint(s) or folders of them")
    parser.add_argument("-o", "--output", help="output .pte (one input) or existing folder")
    parser.add_argument("--num-classes", type=int, help="check the weights have this many classes")
    parser.add_argument("--backend", choices=["xnnpack", "portable"], default="xnnpack",
                        help="xnnpack (default, ~150x faster) or portable kernels")
    parser.add_argument("--quantize", choices=["none", "int8"], default="none",
                        help="int8: PT2E static quantisation for XNNPACK (needs --calibration)")
    parser.add_argument("--calibration", help="OSDB JSON file whose windows calibrate int8")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="allow full unpickling (only for files you trust)")
    parser.add_argument("--index", help="also add/replace the entry in this app index.json")
    parser.add_argument("--jobs", type=int, help="parallel conversions (default: number of cores)")
    cliUtils.add_common_args(parser)
    return parser


def convert_one(src, dst, opts):
    """One checkpoint -> verified .pte + app entry; returns the export report."""
    model, shape, _ = exportUtils.model_from_checkpoint(
        src, opts.input_shape, opts.num_classes, opts.allow_pickle)
    calibration = None
    if opts.quantize == "int8":
        calibration = exportUtils.calibration_windows(opts.calibration, shape)
    report = exportUtils.export_pte(model, shape, dst, opts.backend, opts.quantize, calibration)
    entry = appIndex.app_entry(dst, report)
    appIndex.write_entry_beside(dst, entry)
    report["entry"] = entry
    report["summary"] = (f"verified, {exportUtils.parity_text(report['parity'])}, "
                         f"{report['size_bytes'] / 1024:.0f} KiB, {opts.backend}"
                         f"{', int8' if opts.quantize == 'int8' else ''}")
    return report


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    if args.quantize == "int8" and not args.calibration:
        raise exportUtils.UsageError("--quantize int8 needs --calibration OSDB.json (real windows, "
                                     "never random noise)")
    sources = batchConvert.expand_sources(args.inputs, {".pt", ".pth"})
    outputs = batchConvert.output_paths(sources, args.output, ".pte")
    code, reports = batchConvert.convert_all(convert_one, sources, outputs, args, args.jobs, args.quiet)
    if args.index:
        appIndex.add_to_index(args.index, [r["entry"] for r in reports])
    return code


if __name__ == "__main__":
    cliUtils.run_cli(main)
