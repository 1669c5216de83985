"""What every .pte converter does around its own loading step: export, phone check, app entry, index.

Workers (batchConvert) export and verify each model on x86 into a hidden staged file beside its target.
Then all staged files are phone-checked together (phoneCheck: one emulated process per CPU for the
whole batch), and each is renamed into place with its app entry `<name>.json` beside it. A file that
fails on the emulated ARMv8.2 core (what the default entry admits) is not written; one that fails only
on the ARMv8.0 core keeps "asimddp" in min_cpu_features. Without the phone environment the entry
records "not checked" and one line says so.
"""
import os
import sys
from pathlib import Path

from osdkit.app import appIndex
from osdkit.cli import batchConvert
from osdkit.export import exportCore
from osdkit.phone import phoneCheck, phoneEnv
from osdkit.sim import osdbSim


def staged_path(dst):
    """The hidden file a worker writes; renamed to `dst` once the phone check is done."""
    dst = Path(dst)
    return dst.with_name(f".{dst.name}.unchecked")


def export_staged(module, shape, dst, opts, kind=""):
    """A worker's job for one model: (int8 calibration), verified .pte at staged_path(dst)."""
    calibration = None
    if opts.quantize == "int8":
        calibration = exportCore.calibration_windows(opts.calibration, shape)
    report = exportCore.export_pte(module, shape, staged_path(dst), opts.backend, opts.quantize, calibration,
                                   inputs=osdbSim.reference_windows(shape))
    report["summary"] = (f"{kind}verified, {exportCore.parity_text(report['parity'])}, "
                         f"{report['size_bytes'] / 1024:.0f} KiB, {opts.backend}"
                         f"{', int8' if opts.quantize == 'int8' else ''}")
    return report


def phone_check_wanted(args):
    """(run it?, reason recorded when not)."""
    if args.no_phone_check:
        return False, "skipped (--no-phone-check)"
    skipped = phoneCheck.skip_reason()  # OSD_PHONE_CHECK=off
    return skipped is None, skipped


def _finish(report, dst, phone, args):
    """Rename one staged file into place and write its entry; (entry, None) or (None, error line)."""
    failure = phoneCheck.admitted_cpu_failure(phone)
    if failure:
        return None, f"error: {dst}: {failure}; no file written"
    try:
        appIndex.min_cpu_features(phone, args.allow_no_dotprod, dst)  # refuses before the rename
    except exportCore.ExportError as err:
        return None, f"error: {err}; no file written"
    os.replace(staged_path(dst), dst)
    entry = appIndex.app_entry(dst, report, phone_check=phone, allow_no_dotprod=args.allow_no_dotprod)
    appIndex.write_entry_beside(dst, entry)
    return entry, None


def convert_to_pte(convert_one, sources, args):
    """Run a .pte converter over `sources` with its parsed args; add the entries to --index; exit code."""
    if args.quantize == "int8" and not args.calibration:
        raise exportCore.UsageError("--quantize int8 needs --calibration OSDB.json (real windows, "
                                     "never random noise)")
    wanted, skipped = phone_check_wanted(args)
    missing = phoneEnv.missing_reason(args.phone_cache) if wanted else None
    if args.allow_no_dotprod and (not wanted or missing):
        raise exportCore.UsageError(f"--allow-no-dotprod needs the phone check ({skipped or missing})")
    outputs = batchConvert.output_paths(sources, args.output, ".pte")
    try:
        code, reports = batchConvert.convert_all(convert_one, sources, outputs, args, args.jobs, args.quiet)
        dsts = [Path(r["output"]) for r in reports]
        if wanted and not missing and reports:
            if not args.quiet:
                print(f"phone check: {len(reports)} file(s) on the app's runtime on emulated "
                      f"{', '.join(phoneCheck.CPUS)} (about a minute)", flush=True)
            try:
                checks = phoneCheck.check_ptes([staged_path(d) for d in dsts], cache_dir=args.phone_cache)
            except exportCore.ExportError as err:
                raise exportCore.ExportError(f"{err} (--no-phone-check skips the phone check)") from None
            phones = [checks[str(staged_path(d))] for d in dsts]
        else:
            if missing and not args.quiet:
                print(f"phone check: not run: {missing}")
            phones = [{"available": False, "reason": skipped or missing}] * len(dsts)
        entries = []
        for report, dst, phone in zip(reports, dsts, phones):
            entry, error = _finish(report, dst, phone, args)
            if error:
                print(error, file=sys.stderr)
                code = 1
                continue
            entries.append(entry)
            if phone.get("available") and not args.quiet:
                print(f"{dst}: phone check: {phoneCheck.summary(phone)}")
        if args.index and entries:
            appIndex.add_to_index(args.index, entries)
        return code
    finally:
        for dst in outputs:
            Path(staged_path(dst)).unlink(missing_ok=True)
