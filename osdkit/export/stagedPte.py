"""One policy for every .pte writer (the converters and the main job's trainExport): staged, checked,
then published.

Each model is exported and verified on x86 into a hidden staged file beside its target
(staged_path); all staged files of a call are phone-checked together (phoneCheck: one emulated process
per CPU); then each is renamed into place with its app entry `<name>.json` (finish_staged). A file that
fails on the emulated ARMv8.2 core (what the default entry admits) is not written and an earlier file of
that name stays; one that fails only on the ARMv8.0 core keeps "asimddp" in min_cpu_features. Without
the phone environment, or when it is broken or past its time limit, the entry records "not checked" and
one line says why (and how to rebuild it).
"""
from pathlib import Path

from osdkit.app import appIndex
from osdkit.export import exportCore
from osdkit.export.exportCore import ExportError
from osdkit.phone import phoneCheck, phoneEnv


def staged_path(dst):
    """The hidden file a worker writes; renamed to `dst` once the phone check is done."""
    dst = Path(dst)
    return dst.with_name(f".{dst.name}.unchecked")


def export_staged_pte(module, input_shape, dst, *args, **kwargs):
    """exportCore.export_pte into staged_path(dst); errors and the report name `dst`, the file the user
    asked for, not the hidden staged file."""
    return exportCore.export_pte(module, input_shape, staged_path(dst), *args, name=dst, **kwargs)


def phone_check_wanted(no_phone_check=False, cache=None):
    """(run it?, reason recorded when not): --no-phone-check, OSD_PHONE_CHECK=off, or no environment."""
    if no_phone_check:
        return False, "skipped (--no-phone-check)"
    skipped = phoneCheck.skip_reason() or phoneEnv.missing_reason(cache)
    return skipped is None, skipped


def phone_check_staged(dsts, wanted, reason, cache=None, timeout=None, windows=None, log=print):
    """The phone check of the staged files of `dsts`, one result per file: run when `wanted`, else (or
    when the environment turns out broken or too slow) {"available": False, "reason": ...}."""
    if not dsts:
        return []
    if wanted:
        log(f"phone check: {len(dsts)} file(s) on the app's runtime on emulated {', '.join(phoneCheck.CPUS)} "
            "(about a minute)")
        results = phoneCheck.check_ptes_or_not_checked([staged_path(d) for d in dsts], windows, cache,
                                                       timeout, log)
        return [results[str(staged_path(d))] for d in dsts]
    log(f"phone check: not run: {reason}")
    return [{"available": False, "reason": reason}] * len(dsts)


def run_alarm_settings(src):
    """The alarm settings of the run's app entry beside checkpoint `src` (`<name>.json`), or the
    app's defaults (50 %, 5 %) when there is none; ExportError for an unreadable entry."""
    entry_path = Path(src).with_suffix(".json")
    entry = appIndex.read_entry(entry_path) if Path(src).exists() else None
    if not entry:
        return {"threshold_pct": appIndex.DEFAULT_THRESHOLD_PCT, "gate_pct": appIndex.DEFAULT_GATE_PCT,
                "source": "app defaults"}
    return {"threshold_pct": entry.get("seizure_probability_threshold_pct", appIndex.DEFAULT_THRESHOLD_PCT),
            "gate_pct": entry.get("accel_std_threshold_pct", appIndex.DEFAULT_GATE_PCT), "source": str(entry_path)}


def finish_staged(report, dst, phone, alarm, allow_no_dotprod=False):
    """Rename one staged, checked file into place and write its entry beside it; return the entry.
    ExportError (the staged file stays for the caller to remove, `dst` is untouched) when the file fails
    on the admitted CPU or its entry cannot be made."""
    dst = Path(dst)
    failure = phoneCheck.admitted_cpu_failure(phone)
    if failure:
        raise ExportError(f"{dst}: {failure}; no file written")
    try:
        entry = appIndex.app_entry(dst, report, threshold_pct=alarm["threshold_pct"], gate_pct=alarm["gate_pct"],
                                   phone_check=phone, allow_no_dotprod=allow_no_dotprod,
                                   file_path=staged_path(dst))
    except ExportError as err:
        raise ExportError(f"{err}; no file written") from None
    staged_path(dst).replace(dst)
    appIndex.write_entry_beside(dst, entry)
    return entry


def discard_staged(dsts):
    for dst in dsts:
        staged_path(dst).unlink(missing_ok=True)
