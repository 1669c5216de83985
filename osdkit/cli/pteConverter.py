"""What every .pte converter does around its own loading step: export, phone check, app entry, index.

Every output name is decided and checked first (collisions, existing files, the --index). Workers
(batchConvert) then export and verify each model on x86 into a hidden staged file beside its target;
the staged files are phone-checked together and published with their entries by osdkit.export.stagedPte,
the policy the main job's trainExport follows too.
"""
import sys
from pathlib import Path

from osdkit.app import appIndex
from osdkit.cli import batchConvert
from osdkit.export import exportCore
from osdkit.export.stagedPte import (discard_staged, export_staged_pte, finish_staged, phone_check_staged,
                                     phone_check_wanted, run_alarm_settings)
from osdkit.phone import phoneCheck
from osdkit.sim import osdbSim


def export_staged(module, shape, dst, opts, kind=""):
    """A worker's job for one model: (int8 calibration), verified .pte at staged_path(dst)."""
    calibration = None
    if opts.quantize == "int8":
        calibration = exportCore.calibration_windows(opts.calibration, shape)
    report = export_staged_pte(module, shape, dst, opts.backend, opts.quantize, calibration,
                               inputs=osdbSim.reference_windows(shape), num_classes=getattr(opts, "num_classes", None))
    report["summary"] = (f"{kind}verified, {exportCore.parity_text(report['parity'])}, "
                         f"{report['size_bytes'] / 1024:.0f} KiB, {opts.backend}"
                         f"{', int8' if opts.quantize == 'int8' else ''}")
    return report


def convert_to_pte(convert_one, sources, args):
    """Run a .pte converter over `sources` with its parsed args; add the entries to --index; exit code."""
    if args.quantize == "int8" and not args.calibration:
        raise exportCore.UsageError("--quantize int8 needs --calibration OSDB.json (real windows, "
                                    "never random noise)")
    wanted, skipped = phone_check_wanted(args.no_phone_check, args.phone_cache)
    if args.allow_no_dotprod and not wanted:
        raise exportCore.UsageError(f"--allow-no-dotprod needs the phone check ({skipped})")
    exportCore.require_executorch()
    outputs = batchConvert.output_paths(sources, args.output, ".pte", args.force, sidecar=".json")
    index = appIndex.read_index(args.index) if args.index else None
    alarms = {dst: run_alarm_settings(src) for src, dst in zip(sources, outputs)}
    log = (lambda *a, **k: None) if args.quiet else print
    try:
        code, reports = batchConvert.convert_all(convert_one, sources, outputs, args, args.jobs, args.quiet)
        dsts = [Path(r["output"]) for r in reports]
        phones = phone_check_staged(dsts, wanted, skipped, args.phone_cache, args.phone_timeout, log=log)
        entries = []
        for report, dst, phone in zip(reports, dsts, phones):
            try:
                entries.append(finish_staged(report, dst, phone, alarms[dst], args.allow_no_dotprod))
            except exportCore.ExportError as err:
                print(f"error: {err}", file=sys.stderr)
                code = 1
                continue
            if phone.get("available"):
                log(f"{dst}: phone check: {phoneCheck.summary(phone)}")
            if alarms[dst]["source"] != "app defaults":
                log(f"{dst}: alarm settings from {alarms[dst]['source']}")
        if args.index and entries:
            appIndex.add_to_index(args.index, entries, index)
        return code
    finally:
        discard_staged(outputs)
