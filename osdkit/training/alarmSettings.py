"""The main job's alarm step: the app entry's alarm settings {threshold_pct, gate_pct}, chosen on the
VALIDATION split (never the test split) when `thresholdFromValidation`, else the config's values.
Sensitivity and false alarms per day are the app's: ALARM after 3 in-alarm datapoints in a row
(appEvaluation.app_threshold_sweep), the ML model alone.

The rule: the best validation event sensitivity with at most `targetFalseAlarmsPerDay`; when no setting
meets that (a few hours of validation data cannot resolve one false alarm a day: with H hours one
false alarm is 24/H per day), the setting with the fewest validation false alarms among those that keep
`minEventSensitivity` (none does: the best sensitivity). The validation hours are printed, and whether
they can resolve the target.

Chosen afresh from the trained model and the run's config on every run, rerun and test;
`alarm_settings.json` records the choice, and with `--test` alone the app entries beside the `.pte`
files are rewritten from it (`rewrite_app_entries`), so the model card and the entries agree.
"""
import json
from pathlib import Path

import numpy as np

from osdkit.app import appEvaluation, appIndex
from osdkit.data import windowing
from osdkit.io import fileUtils
from osdkit.training import nnTester

GATE_CANDIDATES_PCT = (5, 4, 3, 2, 1, 0)
THRESHOLDS = np.round(np.arange(0.05, 0.995, 0.01), 2)
HOURS_PER_DAY = 24.0


def choose_alarm_settings(run, model, data, folder):
    """The alarm settings from the validation split (or the config's); written to `folder`/alarm_settings.json."""
    raw = None
    if run.model.thresholdFromValidation:
        raw = nnTester.predict_windows(nnTester.eager_predict_fn(model), data.val)
    return choose_on_predictions(run, raw, data.val, data.val_events, folder, "validation split")


def choose_on_predictions(run, raw, windows, events, folder, where):
    """The alarm settings from ungated p(seizure) `raw` of `windows` (of `events`), held out from training
    (`where` says which data: "validation split", "inner held-out folds"); the config's values when
    `thresholdFromValidation` is false. Written to `folder`/alarm_settings.json and printed."""
    fixed = {"threshold_pct": run.model.seizureProbabilityThresholdPct, "gate_pct": run.data.accelStdThresholdPct,
             "chosen_on": "config"}
    choice = fixed
    if run.model.thresholdFromValidation:
        choice = _from_predictions(raw, windows, events, fixed, run.model, where)
    fileUtils.write_json_atomic(Path(folder) / "alarm_settings.json", choice)
    print(f"app alarm settings: p > {choice['threshold_pct'] / 100:.2f}, movement gate {choice['gate_pct']} % "
          f"({choice['chosen_on']})")
    return choice


def resolution_note(hours, target):
    """How finely `hours` of non-seizure data measure false alarms per day, and whether that resolves `target`."""
    if not hours:
        return "no non-seizure data: false alarms per day cannot be measured"
    one = HOURS_PER_DAY / hours
    verdict = "enough to resolve" if one <= target or target == 0 else "too few to resolve"
    return f"{hours:.1f} h of non-seizure data: one false alarm = {one:.2f}/day, {verdict} {target:g}/day"


def _sweeps(raw, windows, events, max_gate_pct):
    """{gate_pct: app_threshold_sweep} for each movement gate up to the config's."""
    return {gate: appEvaluation.app_threshold_sweep(raw * windowing.movement_gate(windows, gate), windows, events,
                                                    THRESHOLDS)
            for gate in GATE_CANDIDATES_PCT if gate <= max_gate_pct}


def _from_predictions(raw, windows, events, fixed, cfg, where):
    target, min_tpr = cfg.targetFalseAlarmsPerDay, cfg.minEventSensitivity
    sweeps = _sweeps(raw, windows, events, fixed["gate_pct"])
    hours = next(iter(sweeps.values()))["nonseizure_hours"]
    note = resolution_note(hours, target)
    print(f"alarm settings on the {where}: {note}")
    settings = [(gate, i, sweep["event_tpr"][i] or 0.0, sweep["false_alarms_per_day"][i])
                for gate, sweep in sweeps.items() for i in range(len(THRESHOLDS))
                if sweep["false_alarms_per_day"][i] is not None]
    met = [s for s in settings if s[3] <= target]
    if met:
        rule, best = "", _best(met, key=lambda s: (s[2], s[0]))
    else:
        keeping = [s for s in settings if s[2] >= min_tpr]
        pool = keeping or [s for s in settings if s[2] == max((t[2] for t in settings), default=0)]
        kept = f"event sensitivity >= {min_tpr:g}" if keeping else f"the best event sensitivity (none kept {min_tpr:g})"
        rule = f"; no setting met {target:g} false alarms/day: the fewest false alarms with {kept}"
        best = _best(pool, key=lambda s: (-s[3], s[2], s[0])) if pool else None
    if best is None:
        return {**fixed, "chosen_on": f"config (no {where} data to choose on)", "val_resolution": note}
    gate, i, tpr, fa = best
    return {"threshold_pct": float(round(THRESHOLDS[i] * 100)), "gate_pct": gate, "chosen_on": where + rule,
            "target_false_alarms_per_day": target, "min_event_sensitivity": min_tpr, "val_event_tpr": tpr,
            "val_false_alarms_per_day": fa, "val_nonseizure_hours": hours, "val_resolution": note,
            "sweep": sweeps[gate]}


def _best(settings, key):
    """The top setting by `key` (higher is better); among equals the middle threshold of the top gate."""
    top = max(key(s) for s in settings)
    ties = sorted((s for s in settings if key(s) == top), key=lambda s: s[1])
    return ties[len(ties) // 2]


def rewrite_app_entries(best_path, alarm):
    """Rewrite the app entry beside each `.pte` of the run's export_report.json with `alarm` (what
    `--test` alone re-chose), from the same report and phone check it was written with; the paths."""
    report_path = Path(best_path).parent / "export_report.json"
    if not report_path.exists():
        return []
    written = []
    for kind, report in json.loads(report_path.read_text()).items():
        pte = report_path.parent / Path(report["path"]).name
        if kind.startswith("pte") and pte.exists():
            entry = appIndex.app_entry(pte, report, threshold_pct=alarm["threshold_pct"], gate_pct=alarm["gate_pct"],
                                       phone_check=report.get("phone_check"))
            written.append(appIndex.write_entry_beside(pte, entry))
    return written
