"""The main job's export step for a trained model: `.ptl` / `.pte` (and an int8 `.pte` calibrated on
training windows) beside the checkpoint, each verified against the model. The `.pte` files follow the
converters' policy (osdkit.export.stagedPte): staged, run on the app's runtime on emulated phone CPUs when that
environment is built (phoneCheck; OSD_PHONE_CHECK=off skips it, a broken or hanging environment is
recorded "not checked" and the run goes on), then renamed into place with the app entry carrying the
run's alarm settings. ExecuTorch is optional: without it the `.pte` files are skipped with one warning.
An int8 `.pte` outside its tolerance is left out with a warning (refuse_int8). Any other failure is an
ExportError naming the file, and leaves earlier files of that name as they were.
"""
from pathlib import Path

import numpy as np

from osdkit.export import exportCore, ptlExport, stagedPte
from osdkit.io import fileUtils
from osdkit.phone import phoneCheck
from osdkit.sim import osdbSim

CALIBRATION_WINDOWS = 512
_WARNED = set()  # warnings already printed by this process (one per run, not one per fold)


def calibration_sample(windows, seed, n=CALIBRATION_WINDOWS):
    """Training windows for int8 calibration: all classes, fixed by the seed, (n, 1, L) float32."""
    idx = np.random.default_rng(seed).choice(len(windows), size=min(n, len(windows)), replace=False)
    return windows.batch(np.sort(idx))


def phone_windows(windows, n=osdbSim.REFERENCE_WINDOWS):
    """Evenly spread training windows (n, 1, L) for the phone check's comparison with x86."""
    return windows.batch(np.linspace(0, len(windows) - 1, min(n, len(windows))).astype(int))


def pte_targets(cfg, best_path):
    """{kind: .pte path} the config asks for."""
    if "pte" not in cfg.exportFormats:
        return {}
    targets = {"pte": best_path.with_suffix(".pte")}
    if cfg.quantize == "int8":
        targets["pte_int8"] = best_path.with_name(best_path.stem + "_int8.pte")
    return targets


def refuse_int8(dst, err):
    """An int8 `.pte` outside its tolerance is a property of the trained model, not a broken run: no int8
    file (an earlier one of this name, from another checkpoint, is removed with its entry), a warning,
    and the reason in the report; the float exports, tests and cards go on."""
    reason = str(err).strip().splitlines()[0]
    for stale in (dst, dst.with_suffix(".json")):
        stale.unlink(missing_ok=True)
    print(f"warning: {reason}; the run goes on without an int8 .pte")
    return {"path": str(dst), "refused": reason}


def export_ptes(run, trained, train_windows, alarm, targets):
    """Staged, verified .pte files -> phone check -> renamed into place with their entries; reports."""
    cfg, model, shape = run.model, trained.model, trained.input_shape
    reports = {}
    try:
        for kind, dst in targets.items():
            int8 = kind == "pte_int8"
            try:
                reports[kind] = stagedPte.export_staged_pte(
                    model, shape, dst, "xnnpack" if int8 else cfg.pteBackend,
                    "int8" if int8 else None, calibration_sample(train_windows, run.randomSeed) if int8 else None,
                    inputs=osdbSim.reference_windows(shape))
            except exportCore.VerificationError as err:
                if not int8:
                    raise
                reports[kind] = refuse_int8(dst, err)
                continue
            print(f"{dst}: verified, {exportCore.parity_text(reports[kind]['parity'])}")
        staged = {kind: dst for kind, dst in targets.items() if "refused" not in reports[kind]}
        wanted, reason = stagedPte.phone_check_wanted()
        phones = stagedPte.phone_check_staged(list(staged.values()), wanted, reason,
                                                 windows=phone_windows(train_windows))
        for (kind, dst), phone in zip(staged.items(), phones):
            reports[kind]["phone_check"] = phone
            stagedPte.finish_staged(reports[kind], dst, phone, alarm)
            if phone.get("available"):
                print(f"{dst}: phone check: {phoneCheck.summary(phone)}")
            print(f"app index entry {dst.with_suffix('.json')}")
    finally:
        stagedPte.discard_staged(targets.values())
    return reports


def export_trained(run, trained, train_windows, alarm):
    """Write the config's formats for `trained` (trainer.TrainedModel); return {kind: report}, also
    written to export_report.json beside the checkpoint."""
    cfg, best_path = run.model, Path(trained.best_path)
    reports = {}
    if "ptl" in cfg.exportFormats:
        reports["ptl"] = ptlExport.export_ptl(trained.model, trained.input_shape, best_path.with_suffix(".ptl"),
                                               inputs=osdbSim.reference_windows(trained.input_shape))
        print(f"{reports['ptl']['path']}: verified, {exportCore.parity_text(reports['ptl']['parity'])}, "
              f"{reports['ptl']['mobile']}")
    targets = pte_targets(cfg, best_path)
    missing = exportCore.executorch_missing() if targets else None
    if missing and missing not in _WARNED:
        _WARNED.add(missing)
        print(f"warning: {missing}; the run writes .pt" + (" and .ptl" if "ptl" in reports else "")
              + " and tests .pt")
    elif targets:
        reports.update(export_ptes(run, trained, train_windows, alarm, targets))
    fileUtils.write_json_atomic(best_path.parent / "export_report.json", reports)
    return reports
