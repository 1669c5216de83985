"""Convert TorchScript .ptl files, including legacy mobile-optimised ones, to verified .pte files.

    python convertPtl2Pte.py model.ptl [-o out.pte] [--input-shape 1,1,750]
    python convertPtl2Pte.py old_model.ptl --inspect      # what a legacy file holds

Plain TorchScript (e.g. from convertPt2Ptl.py) goes through torch.export's TorchScript converter.
Files made by optimize_for_mobile on PyTorch <= 2.5 (prepacked XNNPACK ops, which today's PyTorch
cannot load) are read directly by legacyPtl.py and rebuilt as an ordinary PyTorch module first.
Either way the .pte is compared with that module on realistic windows before it is renamed into place.
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
from osdkit.cli import batchConvert, cliUtils, pteConverter
from osdkit.export import exportCore, legacyPtl, ptlExport
from osdkit.model import checkpoints


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help=".ptl file(s) or folders of them")
    parser.add_argument("--inspect", action="store_true", help="print what a legacy .ptl holds and stop")
    parser.add_argument("--num-classes", type=int,
                        help="the model's number of outputs when it is not 2 (the app's)")
    cliUtils.add_pte_args(parser)
    return parser


def _legacy_error(path, err):
    """ExportError naming `path` once (LegacyPtlError messages usually start with it already)."""
    text = exportCore.first_line(err)
    return exportCore.ExportError(text if str(path) in text else f"{path}: {text}")


def check_input_shape(module, shape, path, from_flag):
    """Run `module` once on zeros of `shape`; ExportError naming the file if it cannot take them."""
    import torch
    try:
        with torch.no_grad():
            module(torch.zeros(shape))
    except Exception as err:  # TorchScript errors end with the real cause
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [type(err).__name__]
        what = "--input-shape" if from_flag else "input shape"
        raise exportCore.ExportError(f"{path}: {what} {','.join(map(str, shape))}: the model cannot "
                                      f"take it ({lines[-1][:160]})") from None


def load_ptl(path, input_shape=None):
    """(module, input_shape, kind) for a plain or legacy .ptl; shape from the flag, the file, or 1,1,750."""
    path = exportCore.check_file(path)
    try:
        legacy = legacyPtl.is_legacy_ptl(path)
        module = legacyPtl.load_legacy_ptl(path) if legacy else None
    except legacyPtl.LegacyPtlError as err:
        raise _legacy_error(path, err) from None
    if legacy:
        stored, kind = module.input_shape, "legacy mobile-optimised"
    else:
        module, stored = ptlExport.load_torchscript(path)
        kind = "TorchScript"
    shape = tuple(input_shape or stored or (1, 1, checkpoints.DEFAULT_LENGTH))
    check_input_shape(module, shape, path, from_flag=bool(input_shape))
    return module, shape, kind


def convert_one(src, dst, opts):
    module, shape, kind = load_ptl(src, opts.input_shape)
    return pteConverter.export_staged(module, shape, dst, opts, kind=f"{kind}, ")


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    sources = batchConvert.expand_sources(args.inputs, {".ptl", ".pt"} if args.inspect else {".ptl"})
    if not args.inspect:
        return pteConverter.convert_to_pte(convert_one, sources, args)
    for src in sources:
        try:
            print(legacyPtl.describe_legacy_ptl(exportCore.check_file(src)))
        except legacyPtl.LegacyPtlError as err:
            raise _legacy_error(src, err) from None
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
