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
# The app's MlModelManager.isDeviceCompatible refuses a model on a 32-bit process only when framework is
# "pytorch", and its own index and model-format doc say "pytorch" for .pte files: we write the same.
APP_FRAMEWORK = "pytorch"
DEFAULT_THRESHOLD_PCT, DEFAULT_GATE_PCT = 50, 5  # the app's defaults, when no run chose its own
# Entry keys appReplay and the converters read back, with what a valid value is.
ENTRY_PERCENTS = ("seizure_probability_threshold_pct", "accel_std_threshold_pct")


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


def app_entry(pte_path, report, name=None, description=None, version="1.0.0", gate_pct=DEFAULT_GATE_PCT,
              threshold_pct=DEFAULT_THRESHOLD_PCT, phone_check=None, allow_no_dotprod=False, file_path=None):
    """The index entry for `pte_path` from an export report (input shape, backend, parity) and its
    phone check (a phoneCheck.check_pte result; None records "not checked"). `file_path`: where the
    bytes are now (a staged file renamed to `pte_path` once the entry is made), default `pte_path`."""
    pte_path = Path(pte_path)
    file_path = Path(file_path or pte_path)
    size = file_path.stat().st_size
    kind = "int8" if report.get("quantize") == "int8" else "fp32"
    return {
        "name": name or pte_path.stem,
        "fname": pte_path.name,
        "framework": APP_FRAMEWORK,
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
        "sha256": sha256_of(file_path),
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


def check_percent(value, what):
    """`value` as a float in 0..100; ValueError naming `what` (a flag, or file and key) otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError(f"{what}: must be a number in 0..100, got {value!r}")
    return float(value)


def read_entry(path):
    """The app entry at `path` as a dict with valid thresholds and input_size, or None when there is
    none; ExportError naming the file (and key) for anything else."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        entry = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ExportError(f"{path}: app entry is not readable JSON ({err})") from None
    if not isinstance(entry, dict):
        raise ExportError(f"{path}: app entry must be a JSON object, got a {type(entry).__name__}")
    try:
        for key in ENTRY_PERCENTS:
            if key in entry:
                check_percent(entry[key], f"{path}: {key}")
    except ValueError as err:
        raise ExportError(str(err)) from None
    size = entry.get("input_size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ExportError(f"{path}: input_size must be a positive integer, got {size!r}")
    return entry


def entry_matches(entry, model_path):
    """True when the entry's sha256 is the model file's."""
    return isinstance(entry.get("sha256"), str) and entry["sha256"] == sha256_of(model_path)


def read_index(index_path):
    """The entries of the JSON array at `index_path` ([] when it does not exist); ExportError else.
    Read before any model is converted, so a bad index stops the run before a file is replaced."""
    index_path = Path(index_path)
    if index_path.is_dir():
        raise ExportError(f"{index_path}: --index is a folder, expected a JSON file")
    if not index_path.exists():
        if not index_path.parent.is_dir():
            raise ExportError(f"{index_path}: --index folder {index_path.parent} does not exist")
        return []
    try:
        entries = json.loads(index_path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ExportError(f"{index_path}: not a readable JSON index ({err})") from None
    if not isinstance(entries, list):
        raise ExportError(f"{index_path}: index must be a JSON array of model entries")
    return entries


def add_to_index(index_path, new_entries, entries=None):
    """Add or replace (by fname) `new_entries` in the JSON array at `index_path`, keeping the others
    (`entries`: the index as read_index returned it before the run)."""
    entries = read_index(index_path) if entries is None else entries
    names = {e["fname"] for e in new_entries}
    kept = [e for e in entries if not (isinstance(e, dict) and e.get("fname") in names)]
    fileUtils.write_json_atomic(index_path, kept + list(new_entries))
