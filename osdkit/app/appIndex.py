"""The OSD app's model index entry written beside every exported .pte, and merging into an index.

The app downloads a JSON array of such entries; it reads name, fname, framework, input_format(_val),
input_size, min_cpu_features and the two threshold percentages (see EXECUTORCH_EXPORT.md). The entry
also records where the file was checked: the app's runtime on emulated phone CPUs (phoneCheck.py).
"""
import json
from pathlib import Path

from osdkit.export.exportCore import ExportError
from osdkit.io import fileUtils
from osdkit.io.fileUtils import sha256_of

MIN_RUNTIME = "1.0.1"  # executorch-android version the app ships; .pte files are checked against it
# The app skips a model whose min_cpu_features the phone lacks (Linux /proc/cpuinfo names). Since app
# issue #213 (an ARMv8.0 phone killed by an illegal instruction) its maintainer requires dotprod.
# Never list "fp16": Linux calls it fphp/asimdhp, so the app would reject the model on every phone.
SAFE_CPU_FEATURES = ["asimd", "asimddp"]
ARMV80_CPU = "cortex-a53"  # the emulated ARMv8.0 core that must pass before asimddp may be dropped


def exporter_versions():
    import executorch.version
    import torch
    return {"torch": torch.__version__.split("+")[0], "executorch": executorch.version.__version__}


def phone_check_record(result):
    """What the entry says about the phone check (a phoneCheck.check_pte result, or None)."""
    if not result or not result.get("available"):
        reason = (result or {}).get("reason", "not run")
        return {"status": "not checked", "reason": reason}
    return {"status": "checked", "runtime": result["runtime"], "emulator": result["emulator"],
            "cpus": {cpu: r["outcome"] for cpu, r in result["cpus"].items()},
            "max_abs_diff": result["max_abs_diff"], "n_windows": result["n_windows"],
            "reference": result["reference"]}


def min_cpu_features(phone_check=None, allow_no_dotprod=False, path=""):
    """["asimd", "asimddp"]; ["asimd"] only when asked and the emulated ARMv8.0 core ran the file."""
    if not allow_no_dotprod:
        return list(SAFE_CPU_FEATURES)
    outcome = ((phone_check or {}).get("cpus") or {}).get(ARMV80_CPU, {}).get("outcome")
    if outcome != "ok":
        why = (phone_check or {}).get("reason") or f"the emulated {ARMV80_CPU} check gave {outcome!r}"
        raise ExportError(f"{path}: --allow-no-dotprod refused: it needs the file to pass on an emulated "
                          f"ARMv8.0 {ARMV80_CPU} first ({why})")
    return [f for f in SAFE_CPU_FEATURES if f != "asimddp"]


def app_entry(pte_path, report, name=None, description=None, version="1.0.0", gate_pct=5, threshold_pct=50,
              phone_check=None, allow_no_dotprod=False):
    """The index entry for `pte_path` from an export report (input shape, backend, parity) and its
    phone check (a phoneCheck.check_pte result; None records "not checked")."""
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
        "min_cpu_features": min_cpu_features(phone_check, allow_no_dotprod, pte_path),
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
        "phone_check": phone_check_record(phone_check),
    }


def write_entry_beside(pte_path, entry):
    """Write `<stem>.json` beside the .pte; return its path."""
    path = Path(pte_path).with_suffix(".json")
    fileUtils.write_json_atomic(path, entry)
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
    fileUtils.write_json_atomic(index_path, kept + list(new_entries))
