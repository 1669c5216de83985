"""The main job's export step for a trained model: `.ptl` / `.pte` (and an int8 `.pte` calibrated on
training windows) beside the checkpoint, each verified against the model, each `.pte` run on the app's
runtime on emulated phone CPUs when that environment is built (phoneCheck; OSD_PHONE_CHECK=off skips
it), and the app entry beside each `.pte` carrying the run's alarm settings and the phone check. Any failure is an ExportError naming the file.
"""
from pathlib import Path

import numpy as np

from osdkit.app import appIndex
from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.phone import phoneCheck
from osdkit.sim import osdbSim

CALIBRATION_WINDOWS = 512


def calibration_sample(windows, seed, n=CALIBRATION_WINDOWS):
    """Training windows for int8 calibration: all classes, fixed by the seed, (n, 1, L) float32."""
    idx = np.random.default_rng(seed).choice(len(windows), size=min(n, len(windows)), replace=False)
    return windows.batch(np.sort(idx))


def phone_windows(windows, n=osdbSim.REFERENCE_WINDOWS):
    """Evenly spread training windows (n, 1, L) for the phone check's comparison with x86."""
    return windows.batch(np.linspace(0, len(windows) - 1, min(n, len(windows))).astype(int))


def export_trained(run, trained, train_windows, alarm):
    """Write the config's formats for `trained` (trainer.TrainedModel); return {kind: report}, also
    written to export_report.json beside the checkpoint."""
    cfg, best_path = run.model, Path(trained.best_path)
    model, shape = trained.model, trained.input_shape
    reports = {}
    if "ptl" in cfg.exportFormats:
        inputs = osdbSim.reference_windows(shape)
        reports["ptl"] = exportCore.export_ptl(model, shape, best_path.with_suffix(".ptl"), inputs=inputs)
    if "pte" in cfg.exportFormats:
        reports["pte"] = exportCore.export_pte(model, shape, best_path.with_suffix(".pte"), cfg.pteBackend,
                                               inputs=osdbSim.reference_windows(shape))
        if cfg.quantize == "int8":
            reports["pte_int8"] = exportCore.export_pte(
                model, shape, best_path.with_name(best_path.stem + "_int8.pte"), "xnnpack", "int8",
                calibration_sample(train_windows, run.randomSeed), inputs=osdbSim.reference_windows(shape))
    ptes = [report["path"] for kind, report in reports.items() if kind.startswith("pte")]
    phones = phoneCheck.check_ptes(ptes, windows=phone_windows(train_windows)) if ptes else {}
    for kind, report in reports.items():
        print(f"{report['path']}: verified, {exportCore.parity_text(report['parity'])}"
              + (f", {report['mobile']}" if "mobile" in report else ""))
        if kind.startswith("pte"):
            report["phone_check"] = phones[str(report["path"])]
            failure = phoneCheck.admitted_cpu_failure(report["phone_check"])
            if failure:
                Path(report["path"]).unlink()
                raise exportCore.ExportError(f"{report['path']}: {failure}; file removed")
            print(f"{report['path']}: phone check: {phoneCheck.summary(report['phone_check'])}")
            entry = appIndex.app_entry(report["path"], report, threshold_pct=alarm["threshold_pct"],
                                       gate_pct=alarm["gate_pct"], phone_check=report["phone_check"])
            print(f"app index entry {appIndex.write_entry_beside(report['path'], entry)}")
    fileUtils.write_json_atomic(best_path.parent / "export_report.json", reports)
    return reports
