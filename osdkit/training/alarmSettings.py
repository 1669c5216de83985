"""The main job's alarm step: the app entry's alarm settings {threshold_pct, gate_pct}, chosen on the
VALIDATION split (never the test split) when `thresholdFromValidation`, else the config's values.
Sensitivity, convulsions alarmed in time and false alarms per day are the app's: ALARM after 3
in-alarm datapoints in a row (appEvaluation.app_threshold_sweep), the ML model alone.

The rule: the most convulsions alarmed before they end (events that record convulsionTimes), then the
best validation event sensitivity, with at most `targetFalseAlarmsPerDay`. When no setting meets that,
or the validation data cannot tell (with H hours one false alarm is 24/H per day: a few hours cannot
resolve one a day, and seeing none there is no evidence of meeting it), the yardstick is the OSD
algorithm the app runs beside the model, on the same validation events: among the settings that keep
`minEventSensitivity` (none does: the best sensitivity) and raise at most `falseAlarmsVsOsd` times the
algorithm's false alarms per day, overall and on the real daily-life recordings
(realDailyLife.SOURCES) when there are any, the most convulsions alarmed before they end, then the
fewest false alarms among the settings within one seizure of the best event sensitivity (one validation
seizure more, which a lower threshold often buys, is not worth several times the false alarms); when
none stays within that, the fewest false alarms. Among equals the middle threshold, away from the edges
where a few validation events decide. The validation hours are
printed, and whether they can resolve the target.

Chosen afresh from the trained model and the run's config on every run, rerun and test;
`alarm_settings.json` records the choice, and with `--test` alone the app entries beside the `.pte`
files are rewritten from it (`rewrite_app_entries`), so the model card and the entries agree.
"""
import json
from pathlib import Path

import numpy as np

from osdkit.app import appEvaluation, appIndex
from osdkit.data import realDailyLife, windowing
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


def resolves(hours, target):
    """Whether `hours` of non-seizure data can tell `target` false alarms per day: one false alarm in them
    (24/hours per day) is at most the target (0 is always told: any false alarm exceeds it)."""
    return bool(hours) and (target == 0 or HOURS_PER_DAY / hours <= target)


def resolution_note(hours, target):
    """How finely `hours` of non-seizure data measure false alarms per day, and whether that resolves `target`."""
    if not hours:
        return "no non-seizure data: false alarms per day cannot be measured"
    one = HOURS_PER_DAY / hours
    verdict = "enough to resolve" if resolves(hours, target) else "too few to resolve"
    return f"{hours:.1f} h of non-seizure data: one false alarm = {one:.2f}/day, {verdict} {target:g}/day"


def _daily_life(events):
    """Which events are real daily-life recordings (realDailyLife.SOURCES); None when none is."""
    daily = [e.source in realDailyLife.SOURCES for e in events]
    return daily if any(daily) else None


def _sweeps(raw, windows, events, max_gate_pct, daily_life):
    """{gate_pct: app_threshold_sweep} for each movement gate up to the config's."""
    return {gate: appEvaluation.app_threshold_sweep(raw * windowing.movement_gate(windows, gate), windows, events,
                                                    THRESHOLDS, daily_life=daily_life)
            for gate in GATE_CANDIDATES_PCT if gate <= max_gate_pct}


def _settings(sweeps):
    """One dict per (gate, threshold) with a measured false-alarm rate."""
    settings = []
    for gate, sweep in sweeps.items():
        daily = sweep.get("daily_life_false_alarms_per_day")
        settings += [{"gate": gate, "i": i, "tpr": sweep["event_tpr"][i] or 0.0, "fa": fa,
                      "in_time": sweep["convulsions_before_end"][i], "daily_fa": daily[i] if daily else None}
                     for i, fa in enumerate(sweep["false_alarms_per_day"]) if fa is not None]
    return settings


def _beside_osd(settings, osd, cfg, n_seizures):
    """The fallback when no setting meets the target: (rule text, setting or None), see the module doc."""
    min_tpr, factor = cfg.minEventSensitivity, cfg.falseAlarmsVsOsd
    keeping = [s for s in settings if s["tpr"] >= min_tpr]
    pool = keeping or [s for s in settings if s["tpr"] == max((t["tpr"] for t in settings), default=0)]
    kept = f"event sensitivity >= {min_tpr:g}" if keeping else f"the best event sensitivity (none kept {min_tpr:g})"
    osd_fa, osd_daily = osd["osd_false_alarms_per_day"], osd.get("osd_daily_life_false_alarms_per_day")
    within = [s for s in pool if osd_fa is not None and s["fa"] <= factor * osd_fa
              and (osd_daily is None or s["daily_fa"] is None or s["daily_fa"] <= factor * osd_daily)]
    if within:
        daily = "" if osd_daily is None else f", {osd_daily:.1f}/day on real daily life"
        most = max(s["in_time"] for s in within)
        in_time = [s for s in within if s["in_time"] == most]
        near = max(s["tpr"] for s in in_time) - 1 / max(n_seizures, 1) - 1e-9
        return (f"the most convulsions alarmed before they end, then the fewest false alarms within one seizure "
                f"of the best event sensitivity, with {kept} and <= {factor:g}x the OSD algorithm's false alarms "
                f"({osd_fa:.1f}/day{daily})", _best([s for s in in_time if s["tpr"] >= near], key=lambda s: -s["fa"]))
    return f"the fewest false alarms with {kept}", _best(pool, key=lambda s: (-s["fa"], s["tpr"])) if pool else None


def _from_predictions(raw, windows, events, fixed, cfg, where):
    target = cfg.targetFalseAlarmsPerDay
    daily_life = _daily_life(events)
    sweeps = _sweeps(raw, windows, events, fixed["gate_pct"], daily_life)
    hours = next(iter(sweeps.values()))["nonseizure_hours"]
    note = resolution_note(hours, target)
    print(f"alarm settings on the {where}: {note}")
    settings = _settings(sweeps)
    resolved = resolves(hours, target)
    met = [s for s in settings if s["fa"] <= target] if resolved else []
    osd = {}
    if met:
        rule, best = "", _best(met, key=lambda s: (s["in_time"], s["tpr"], s["gate"]))
    else:
        osd = appEvaluation.osd_false_alarms(events, daily_life)
        fallback, best = _beside_osd(settings, osd, cfg, sum(e.label == 1 for e in events))
        why = "no setting met" if resolved else "too few hours to resolve"
        rule = f"; {why} {target:g} false alarms/day: {fallback}"
    if best is None:
        return {**fixed, "chosen_on": f"config (no {where} data to choose on)", "val_resolution": note}
    sweep = sweeps[best["gate"]]
    return {"threshold_pct": float(round(THRESHOLDS[best["i"]] * 100)), "gate_pct": best["gate"],
            "chosen_on": where + rule, "target_false_alarms_per_day": target,
            "min_event_sensitivity": cfg.minEventSensitivity, "false_alarms_vs_osd": cfg.falseAlarmsVsOsd,
            "val_event_tpr": best["tpr"], "val_false_alarms_per_day": best["fa"],
            "val_convulsions_before_end": best["in_time"], "val_n_convulsions": sweep["n_convulsions"],
            "val_daily_life_false_alarms_per_day": best["daily_fa"],
            **{f"val_{key}": value for key, value in osd.items()},
            "val_nonseizure_hours": hours, "val_resolution": note, "sweep": sweep}


def _best(settings, key):
    """The top setting by `key` (higher is better); among equals the middle threshold."""
    top = max(key(s) for s in settings)
    ties = sorted((s for s in settings if key(s) == top), key=lambda s: (s["i"], -s["gate"]))
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
