"""The main job's test step: a run's models side by side on the test events, and on the real recordings.

p(seizure) is computed as the app computes it: softmax(logits)[1] (`p_seizure`) on each window,
set to 0 where the app's movement gate fails. The .pte is run with the ExecuTorch runtime one window at
a time, as on the phone. Writes per variant `<modelFname>_<variant>_testResults.json`, the events CSV
and plots, plus `testResults.json` (the .pt figures, the earlier file name); with a convulsion check
(convulsionCheck) each variant's results hold its figures too. Every call into
appEvaluation is in `evaluate_windows`; the real recordings go through realDataReport.evaluate_real.
"""
from pathlib import Path

import numpy as np
import torch

from osdkit.app import appEvaluation
from osdkit.data import windowing
from osdkit.export import exportCore, ptlExport
from osdkit.io import fileUtils
from osdkit.reports import plots, realDataReport
from osdkit.training import convulsionCheck

PARITY_SAMPLE = 256


# ---------------------------------------------------------------- p(seizure)
def p_seizure(logits):
    """p(seizure) = softmax(logits)[:, 1] as numpy, what the app takes from the model's output."""
    return exportCore.softmax(np.asarray(logits))[:, 1]


def pte_input_size(path):
    """The input length L of a .pte program taking [1, 1, L] (what the app's input_size must be)."""
    sizes = tuple(exportCore.load_pte_method(str(path)).metadata.input_tensor_meta(0).sizes())
    if len(sizes) != 3 or sizes[:2] != (1, 1):
        raise exportCore.ExportError(f"{path}: input shape {list(sizes)}, the app passes [1, 1, input_size]")
    return int(sizes[2])


def pte_predict_fn(path):
    """batch (N,1,L) float32 -> p(seizure) (N,) through the ExecuTorch runtime, one window at a time."""
    method = exportCore.load_pte_method(str(path))

    def predict(batch):
        batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        return p_seizure(exportCore.execute_method(method, batch, 1))
    return predict


def eager_predict_fn(model, device="cpu"):
    """batch (N,1,L) float32 -> p(seizure) (N,) from an eager model (eval mode, no grad)."""
    def predict(batch):
        model.eval()
        with torch.no_grad():
            return p_seizure(model(torch.from_numpy(np.ascontiguousarray(batch)).to(device)).cpu().numpy())
    return predict


def predict_windows(predict, windows, batch_size=1024):
    """p(seizure) of every window of a WindowSet, in batches."""
    out = [predict(windows.batch(np.arange(s, min(s + batch_size, len(windows)))))
           for s in range(0, len(windows), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


# ---------------------------------------------------------------- simulated / OSDB test events
def model_predictors(trained):
    """{variant: predict} for the eager model and each .pte exported beside its checkpoint."""
    predictors = {"pt": eager_predict_fn(trained.model)}
    for variant, suffix in (("pte", ".pte"), ("pte_int8", "_int8.pte")):
        path = trained.best_path.with_name(trained.best_path.stem + suffix)
        if path.exists():
            predictors[variant] = pte_predict_fn(path)
    return predictors


def evaluate_windows(p, windows, events, threshold):
    """(results, event rows, sweep) of gated p(seizure) on a WindowSet as the app would run the model:
    ML, OSD algorithm and combined with the escalation, plus single-window figures (appEvaluation);
    rates use the windows' step."""
    return appEvaluation.evaluate_app(p, windows, events, threshold)


def evaluate_models(folder, name, predictors, data, alarm, check=None):
    """Evaluate every predictor on the test windows with the app's alarm settings, and on the convulsion
    check's (events, windows) when given (convulsionCheck; results[variant]["convulsion_check"]), and the
    .pte (else the eager model) on the check as a slower watch gives it
    (results[variant]["convulsion_check_slower_watch"]: {"rate_hz", way to 25 Hz: check summary}); write
    the results."""
    threshold = alarm["threshold_pct"] / 100
    test = data.test
    gate = windowing.movement_gate(test, alarm["gate_pct"])
    results, probabilities = {}, {}
    for variant, predict in predictors.items():
        p = predict_windows(predict, test) * gate
        probabilities[variant] = p
        res, rows, sweep = evaluate_windows(p, test, data.test_events, threshold)
        plots.write_app_results(folder, f"{name}_{variant}_", res, rows, sweep)
        if check is not None:
            res["convulsion_check"] = check_result(predict, check, alarm)
        results[variant] = res
    if check is not None:
        app_variant = "pte" if "pte" in predictors else "pt"
        results[app_variant]["convulsion_check_slower_watch"] = check_slower_watch(predictors[app_variant], check,
                                                                                   alarm)
    for variant in probabilities:
        if variant != "pt":
            results[variant]["max_prob_diff_vs_pt"] = float(np.abs(probabilities[variant] - probabilities["pt"]).max())
            results[variant]["class_agreement_vs_pt"] = float(np.mean(
                (probabilities[variant] > threshold) == (probabilities["pt"] > threshold)))
    fileUtils.write_json_atomic(Path(folder) / "testResults.json", results["pt"])
    return results


def check_result(predict, check, alarm):
    """convulsionCheck.check_summary of a model on a check's (events, windows), run as the app runs it
    with the alarm settings (movement gate, threshold, escalation)."""
    events, windows = check
    p = predict_windows(predict, windows) * windowing.movement_gate(windows, alarm["gate_pct"])
    return convulsionCheck.check_summary(evaluate_windows(p, windows, events, alarm["threshold_pct"] / 100)[0], events)


def check_slower_watch(predict, check, alarm):
    """{"rate_hz", way to 25 Hz: check summary} of a model on the check's seizures as a slower watch gives
    them (convulsionCheck.slower_watch_windows), with the app's alarm settings."""
    return {"rate_hz": convulsionCheck.SLOWER_WATCH_HZ,
            **{how: check_result(predict, slow, alarm) for how, slow in convulsionCheck.slower_watch_windows(check).items()}}


def evaluate_trained(folder, trained, data, alarm, check=None):
    """`evaluate_models` on the trained model and its exports (and the convulsion check when given), plus
    the .ptl/.pte parity; results by variant."""
    name = trained.best_path.stem
    results = evaluate_models(folder, name, model_predictors(trained), data, alarm, check)
    results["parity"] = ptl_pte_parity(trained, data.test)
    fileUtils.write_json_atomic(Path(folder) / f"{name}_results_by_variant.json", results)
    variants = {k: v for k, v in results.items() if k != "parity"}
    print(plots.compare_variants(variants))
    print(plots.compare_variants_app(variants))
    if check is not None:
        print(plots.compare_convulsion_check(variants))
    return results


def ptl_pte_parity(trained, windows):
    """Max |logit difference| between the run's .ptl and .pte (and .pte vs eager) on test windows."""
    ptl, pte = trained.best_path.with_suffix(".ptl"), trained.best_path.with_suffix(".pte")
    idx = np.linspace(0, len(windows) - 1, min(PARITY_SAMPLE, len(windows))).astype(int)
    x = torch.from_numpy(windows.batch(idx))
    out = {"n_windows": len(idx)}
    if pte.exists():
        pte_out = exportCore.run_pte(str(pte), x)
        out["pte_vs_pt_max_abs_logit_diff"] = float(np.abs(pte_out - exportCore.eager_outputs(trained.model, x)).max())
        if ptl.exists():
            out["ptl_vs_pte_max_abs_logit_diff"] = float(np.abs(ptlExport.run_ptl(ptl, x) - pte_out).max())
    return out


# ---------------------------------------------------------------- real recordings
def evaluate_real(real_dir, pte_path, alarm, folder, exclude_people=()):
    """The real-data step of one fold: the fold's .pte on the real recordings as the app would run it
    (realDataReport.evaluate_real: ML, OSD and combined with the escalation), windows of the .pte's own
    input size, the real people in exclude_people (trained or tuned on) left out; {} when the folder or
    the .pte is missing."""
    if not real_dir or not Path(real_dir).is_dir() or not Path(pte_path).exists():
        return {}
    return realDataReport.evaluate_real(real_dir, pte_predict_fn(pte_path), alarm["threshold_pct"] / 100,
                                        alarm["gate_pct"], plot_dir=folder, window_samples=pte_input_size(pte_path),
                                        exclude_people=exclude_people)
