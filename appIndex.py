"""The OSD app's model index entry written beside every exported .pte, and merging into an index.

The app downloads a JSON array of such entries; it reads name, fname, framework, input_format(_val),
input_size, min_cpu_features and the two threshold percentages (see EXECUTORCH_EXPORT.md).
"""
import json
from pathlib import Path

import exportUtils
from exportUtils import ExportError, sha256_of

MIN_RUNTIME = "1.0.1"  # executorch-android version the app ships; .pte files are checked against it


def exporter_versions():
    import executorch.version
    import torch
    return {"torch": torch.__version__.split("+")[0], "executorch": executorch.version.__version__}


def app_entry(pte_path, report, name=None, description=None, version="1.0.0", gate_pct=5, threshold_pct=50):
    """The index entry for `pte_path` from an export report (input shape, backend, parity)."""
    pte_path = Path(pte_path)
    size = pte_path.stat().st_size
    kind = "int8" if report.get("quantize") == "int8" else "fp32"
    return {
        "name": name or pte_path.stem,
        "fname": pte_path.name,
        "framework": "executorch",
        "input_format": "1d_mag",
        "input_format_val": 1,
        "input_size": int(max(report["input_shape"][1:])),
        "alarm_threshold": threshold_pct / 100,
        "recommended": False,
        "min_cpu_features": ["asimd"],
        "accel_std_threshold_pct": gate_pct,
        "seizure_probability_threshold_pct": threshold_pct,
        "description": description or f"DeepEpiCnn {kind}, {report['backend']} backend, "
                                      f"verified max |d logit| {report['parity']['max_abs_diff']:.1e}",
        "version": version,
        "size": f"{size / 1e6:.2f} MB",
        "size_bytes": size,
        "sha256": sha256_of(pte_path),
        "backend": report["backend"],
        "quantize": report.get("quantize", "none"),
        "min_runtime": f"executorch-android {MIN_RUNTIME}",
        "exporter": exporter_versions(),
    }


def write_entry_beside(pte_path, entry):
    """Write `<stem>.json` beside the .pte; return its path."""
    path = Path(pte_path).with_suffix(".json")
    exportUtils.write_json_atomic(path, entry)
    return path


def add_to_index(index_path, new_entries):
    """Add or replace (by fname) `new_entries` in the JSON array at `index_path`, keeping the others."""
    index_path = Path(index_path)
    entries = []
    if index_path.exists():
        try:
            entries = json.loads(index_path.read_text())
        except (OSError, ValueError) as err:
            raise ExportError(f"{index_path}: not a readable JSON index ({err})") from None
        if not isinstance(entries, list):
            raise ExportError(f"{index_path}: index must be a JSON array of model entries")
    names = {e["fname"] for e in new_entries}
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("fname") in names)]
    exportUtils.write_json_atomic(index_path, kept + list(new_entries))


def export_with_entry(module, shape, dst, opts, kind=""):
    """A converter's whole job for one model: (int8 calibration), verified .pte, app entry beside it."""
    calibration = None
    if opts.quantize == "int8":
        calibration = exportUtils.calibration_windows(opts.calibration, shape)
    report = exportUtils.export_pte(module, shape, dst, opts.backend, opts.quantize, calibration)
    report["entry"] = app_entry(dst, report)
    write_entry_beside(dst, report["entry"])
    report["summary"] = (f"{kind}verified, {exportUtils.parity_text(report['parity'])}, "
                         f"{report['size_bytes'] / 1024:.0f} KiB, {opts.backend}"
                         f"{', int8' if opts.quantize == 'int8' else ''}")
    return report


def convert_to_pte(convert_one, sources, args):
    """Run a .pte converter over `sources` with its parsed args; add the entries to --index; exit code."""
    import batchConvert
    if args.quantize == "int8" and not args.calibration:
        raise exportUtils.UsageError("--quantize int8 needs --calibration OSDB.json (real windows, "
                                     "never random noise)")
    outputs = batchConvert.output_paths(sources, args.output, ".pte")
    code, reports = batchConvert.convert_all(convert_one, sources, outputs, args, args.jobs, args.quiet)
    if args.index:
        add_to_index(args.index, [r["entry"] for r in reports])
    return code
