"""The main job's alarm step: the app entry's alarm settings {threshold_pct, gate_pct}, chosen on the
VALIDATION split (never the test split) when `thresholdFromValidation`, else the config's values.
Sensitivity and false alarms per day are the app's: ALARM after 3 in-alarm datapoints in a row
(appEvaluation.app_threshold_sweep), the ML model alone.

Chosen afresh from the trained model and the current config on every run, rerun and test;
`alarm_settings.json` records the choice and is never read back.
"""
from pathlib import Path

import numpy as np

from osdkit.app import appEvaluation
from osdkit.data import windowing
from osdkit.io import fileUtils
from osdkit.training import nnTester

GATE_CANDIDATES_PCT = (5, 4, 3, 2, 1, 0)
THRESHOLDS = np.round(np.arange(0.05, 0.995, 0.01), 2)


def choose_alarm_settings(run, model, data, folder):
    """The best validation event sensitivity with at most `targetFalseAlarmsPerDay`; among equals the
    larger movement gate (the app's default is 5 %, at most the config's), then the middle of the range
    of equal thresholds. Written to `folder`/alarm_settings.json."""
    fixed = {"threshold_pct": run.model.seizureProbabilityThresholdPct, "gate_pct": run.data.accelStdThresholdPct,
             "chosen_on": "config"}
    choice = fixed
    if run.model.thresholdFromValidation:
        choice = _from_validation(model, data, fixed, run.model.targetFalseAlarmsPerDay)
    fileUtils.write_json_atomic(Path(folder) / "alarm_settings.json", choice)
    print(f"app alarm settings: p > {choice['threshold_pct'] / 100:.2f}, movement gate {choice['gate_pct']} % "
          f"({choice['chosen_on']})")
    return choice


def _from_validation(model, data, fixed, target):
    val = data.val
    raw = nnTester.predict_windows(nnTester.eager_predict_fn(model), val)
    candidates = []
    for gate_pct in [g for g in GATE_CANDIDATES_PCT if g <= fixed["gate_pct"]]:
        sweep = appEvaluation.app_threshold_sweep(raw * windowing.movement_gate(val, gate_pct), val,
                                                  data.val_events, THRESHOLDS)
        ok = [i for i, fa in enumerate(sweep["false_alarms_per_day"]) if fa is not None and fa <= target]
        if ok:
            top = max(sweep["event_tpr"][i] or 0 for i in ok)
            ties = [i for i in ok if (sweep["event_tpr"][i] or 0) == top]
            candidates.append((top, gate_pct, ties[len(ties) // 2], sweep))
    if not candidates:
        return {**fixed, "chosen_on": f"config (no setting met {target} false alarms/day on validation)"}
    top, gate_pct, best, sweep = max(candidates, key=lambda c: (c[0], c[1]))
    return {"threshold_pct": float(round(THRESHOLDS[best] * 100)), "gate_pct": gate_pct,
            "chosen_on": "validation split", "target_false_alarms_per_day": target, "val_event_tpr": top,
            "val_false_alarms_per_day": sweep["false_alarms_per_day"][best], "sweep": sweep}
