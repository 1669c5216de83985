"""Test a run's models side by side on the test events: eager .pt, ExecuTorch .pte (and int8 .pte).

p(seizure) is computed as the app computes it: softmax(logits)[1] on each 30 s window, set to 0 where
the app's movement gate fails. The .pte is run with the ExecuTorch runtime one window at a time, as on
the phone. Writes per variant `<modelFname>_<variant>_testResults.json`, the events CSV and plots,
plus `testResults.json` (the .pt figures, the earlier file name) and a summary over folds.
"""
import json
from pathlib import Path

import numpy as np
import torch

import configUtils
import evaluation
import exportUtils
import realData
import windowing

PARITY_SAMPLE = 256


def calibration_sample(windows, seed, n=512):
    """Training windows for int8 calibration: all classes, fixed by the seed, (n, 1, L) float32."""
    idx = np.random.default_rng(seed).choice(len(windows), size=min(n, len(windows)), replace=False)
    return windows.batch(np.sort(idx))


def pte_predict_fn(path):
    """batch (N,1,L) float32 -> p(seizure) (N,) through the ExecuTorch runtime, one window at a time."""
    method = exportUtils.load_pte_method(str(path))

    def predict(batch):
        batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        logits = np.concatenate([method.execute([batch[i:i + 1]])[0].numpy() for i in range(len(batch))])
        return exportUtils.softmax(logits)[:, 1]
    return predict


def eager_predict_fn(model):
    def predict(batch):
        with torch.no_grad():
            return torch.softmax(model(torch.from_numpy(np.ascontiguousarray(batch))), 1)[:, 1].numpy()
    return predict


def predict_windows(predict, windows, batch_size=1024):
    out = [predict(windows.batch(np.arange(s, min(s + batch_size, len(windows)))))
           for s in range(0, len(windows), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


GATE_CANDIDATES_PCT = (5, 4, 3, 2, 1, 0)


def select_alarm_settings(config, folder, best_path, data):
    """The app entry's alarm settings {threshold_pct, gate_pct}, chosen on the VALIDATION split when
    `thresholdFromValidation`: the best validation event sensitivity with at most
    `targetFalseAlarmsPerDay`; among equals the larger movement gate (the app's default is 5 %, at most
    the config's), then the middle of the range of equal thresholds. Saved to alarm_settings.json, which
    later tests of the run reuse."""
    path = Path(folder) / "alarm_settings.json"
    if path.exists():
        return json.loads(path.read_text())
    fixed = {"threshold_pct": configUtils.get(config, "modelConfig.seizureProbabilityThresholdPct"),
             "gate_pct": configUtils.get(config, "dataProcessing.accelStdThresholdPct"), "chosen_on": "config"}
    if not configUtils.get(config, "modelConfig.thresholdFromValidation"):
        return fixed
    val, events = data["val"], [e.summary() for e in data["val_events"]]
    raw = predict_windows(eager_predict_fn(exportUtils.model_from_checkpoint(best_path)[0]), val)
    thresholds = np.round(np.arange(0.05, 0.995, 0.01), 2)
    target = configUtils.get(config, "modelConfig.targetFalseAlarmsPerDay")
    candidates = []
    for gate_pct in [g for g in GATE_CANDIDATES_PCT if g <= fixed["gate_pct"]]:
        sweep = evaluation.threshold_sweep(raw * windowing.movement_gate(val, gate_pct), val.labels,
                                           val.event_index, val.end_time, events, thresholds)
        ok = [i for i, fa in enumerate(sweep["false_alarms_per_day"]) if fa is not None and fa <= target]
        if ok:
            top = max(sweep["event_tpr"][i] or 0 for i in ok)
            ties = [i for i in ok if (sweep["event_tpr"][i] or 0) == top]
            candidates.append((top, gate_pct, ties[len(ties) // 2], sweep))
    if not candidates:
        return {**fixed, "chosen_on": f"config (no setting met {target} false alarms/day on validation)"}
    top, gate_pct, best, sweep = max(candidates, key=lambda c: (c[0], c[1]))
    choice = {"threshold_pct": float(round(thresholds[best] * 100)), "gate_pct": gate_pct,
              "chosen_on": "validation split", "target_false_alarms_per_day": target, "val_event_tpr": top,
              "val_false_alarms_per_day": sweep["false_alarms_per_day"][best], "sweep": sweep}
    exportUtils.write_json_atomic(path, choice)
    return choice


def test_run(config, folder, best_path, data, alarm):
    """Evaluate every model file of the run on the test windows with the app's alarm settings."""
    name = configUtils.get(config, "modelConfig.modelFname")
    threshold = alarm["threshold_pct"] / 100
    test = data["test"]
    gate = windowing.movement_gate(test, alarm["gate_pct"])
    events = [e.summary() for e in data["test_events"]]
    model = exportUtils.model_from_checkpoint(best_path)[0]
    predictors = {"pt": eager_predict_fn(model)}
    for variant, suffix in (("pte", ".pte"), ("pte_int8", "_int8.pte")):
        path = best_path.with_name(best_path.stem + suffix)
        if path.exists():
            predictors[variant] = pte_predict_fn(path)
    results, probabilities = {}, {}
    for variant, predict in predictors.items():
        p = predict_windows(predict, test) * gate
        probabilities[variant] = p
        res, rows, sweep = evaluation.evaluate_predictions(p, test.labels, test.event_index, test.end_time,
                                                           events, threshold)
        evaluation.write_results(folder, f"{name}_{variant}_", res, rows, sweep)
        results[variant] = res
    for variant in probabilities:
        if variant != "pt":
            results[variant]["max_prob_diff_vs_pt"] = float(np.abs(probabilities[variant] - probabilities["pt"]).max())
            results[variant]["class_agreement_vs_pt"] = float(np.mean(
                (probabilities[variant] > threshold) == (probabilities["pt"] > threshold)))
    results["parity"] = ptl_pte_parity(best_path, test)
    exportUtils.write_json_atomic(folder / "testResults.json", results["pt"])
    exportUtils.write_json_atomic(folder / f"{name}_results_by_variant.json", results)
    print(evaluation.compare_variants({k: v for k, v in results.items() if k != "parity"}))
    return results


def ptl_pte_parity(best_path, windows):
    """Max |logit difference| between the run's .ptl and .pte (and .pte vs eager) on test windows."""
    ptl, pte = best_path.with_suffix(".ptl"), best_path.with_suffix(".pte")
    idx = np.linspace(0, len(windows) - 1, min(PARITY_SAMPLE, len(windows))).astype(int)
    x = torch.from_numpy(windows.batch(idx))
    out = {"n_windows": len(idx)}
    eager = exportUtils.eager_outputs(exportUtils.model_from_checkpoint(best_path)[0], x)
    if pte.exists():
        pte_out = exportUtils.run_pte(str(pte), x)
        out["pte_vs_pt_max_abs_logit_diff"] = float(np.abs(pte_out - eager).max())
        if ptl.exists():
            out["ptl_vs_pte_max_abs_logit_diff"] = float(np.abs(exportUtils.run_ptl(ptl, x) - pte_out).max())
    return out


def evaluate_real(real_dir, pte_path, threshold, gate_pct, folder):
    """p(seizure) over the real tonic-clonic event and the alarm rate on real daily activities."""
    real_dir = Path(real_dir)
    predict = pte_predict_fn(pte_path)
    out = {}
    for event_file in sorted((real_dir / "osdb_example").glob("*.json")):
        res = realData.evaluate_real_event(predict, event_file, threshold, gate_pct,
                                           plot_path=folder / f"real_{event_file.stem}_timeline.png")
        out[event_file.stem] = {k: res[k] for k in ("event_id", "sub_type", "seizure_times", "max_p",
                                                    "alarmed_during_seizure", "latency_s", "n_windows")}
        out[event_file.stem]["p"] = [round(float(v), 4) for v in res["p"]]
    if (real_dir / "adl_wrist").is_dir():
        adl = realData.evaluate_adl(predict, real_dir / "adl_wrist", threshold, gate_pct)
        adl.pop("skipped", None)
        out["adl_wrist"] = adl
    return out


def format_real(real):
    lines = []
    for key, res in real.items():
        if key == "adl_wrist":
            lines.append(f"real daily activities (ADL, {res['n_windows']} windows, {res['hours_covered']:.2f} h): "
                         f"{res['n_alarm_windows']} alarming windows, {res['alarm_episodes']} alarm episodes "
                         f"({res['false_alarms_per_day'] or 0:.1f} per day)")
        else:
            lines.append(f"real {res['sub_type']} event {res['event_id']}: max p(seizure) {res['max_p']:.3f}, "
                         f"alarm during seizure: {res['alarmed_during_seizure']}, latency {res['latency_s']} s")
    return lines


def write_summary(folder, fold_results, config, real_dir=None, alarm=None):
    """kfold_summary.json/.txt over folds; real-data figures; printed for the user."""
    folds = [r for r in fold_results if r]
    keys = ("event_tpr", "false_alarms_per_day", "latency_median_s", "tpr", "fpr", "auc", "event_fpr")
    summary = {"folds": folds, "mean": {}}
    for variant in folds[0] if folds else []:
        if variant == "parity":
            continue
        summary["mean"][variant] = {k: _mean([f[variant].get(k) for f in folds]) for k in keys}
    real_dir = real_dir or configUtils.get(config, "evaluation.realDataDir")
    name = configUtils.get(config, "modelConfig.modelFname")
    pte = folder / f"{name}.pte"
    if real_dir and Path(real_dir).is_dir() and pte.exists():
        summary["real_data"] = evaluate_real(
            real_dir, pte, alarm["threshold_pct"] / 100, alarm["gate_pct"], folder)
    lines = ["", f"== summary ({len(folds)} fold{'s' if len(folds) != 1 else ''}) =="]
    for variant, means in summary["mean"].items():
        lines.append(f"{variant:>8}: event sensitivity {_fmt(means['event_tpr'])}, "
                     f"false alarms/day {_fmt(means['false_alarms_per_day'], '.2f')}, "
                     f"median latency {_fmt(means['latency_median_s'], '.1f')} s, window TPR {_fmt(means['tpr'])}, "
                     f"FPR {_fmt(means['fpr'], '.4f')}, AUC {_fmt(means['auc'])}")
    for fold in folds:
        if fold.get("parity"):
            lines.append("parity: " + ", ".join(f"{k} {v:.2e}" if isinstance(v, float) else f"{k} {v}"
                                                for k, v in fold["parity"].items()))
    lines += format_real(summary.get("real_data", {}))
    summary["text"] = lines
    exportUtils.write_json_atomic(folder / "kfold_summary.json", summary)
    with exportUtils.atomic_output(folder / "kfold_summary.txt") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return summary


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _fmt(value, spec=".3f"):
    return "n/a" if value is None else format(value, spec)
