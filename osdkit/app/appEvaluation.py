"""What the app would do on a test set: every datapoint of every event through the ML model, the OSD
algorithm and both combined as the app combines them, each with the app's alarm escalation.

Timeline: one entry per datapoint of each event (event order, then time). Detectors restart at each
event and after a gap of more than osdbData.MAX_DP_GAP_S, as the windows do.
- ml: each window's p(seizure) (movement gate applied) belongs to the datapoint holding its last
  sample, where the app scores its buffer. With a window step of k datapoints a window's result stands
  for the k datapoints up to the next window. Before a segment's first window p = 0 (buffer not full),
  and so on datapoints whose window was left out (windowing's seizure_event_negatives="drop").
- osd: osdAlgorithm on every datapoint with the settings the event records, else the app's defaults.
- combined: osdAlgorithm.combine of ML and OSD (default ANY: either ALARM -> in alarm).
- osd_recorded: the alarmState the file records, for the events where every datapoint has one.
Each column (except the recorded one) goes through osdAlgorithm.escalate: ALARM on the 3rd in-alarm
datapoint in a row. Per column, with those states:
- a seizure event is detected when the state is ALARM on a datapoint holding part of the seizure
  ((t - 5 s, t] overlaps seizure_times; without seizure_times anywhere in the event); latency = that
  datapoint's time t - onset, when the app raises the alarm. ALARM in a seizure event outside its
  seizure is neither a detection nor a false alarm;
- false alarms: ALARM episodes (maximal runs of ALARM datapoints) in non-seizure events, per day of
  their datapoints (5 s each); a non-seizure event with any ALARM is an event false positive.
Results: `<column>_<key>` for each key of metrics.event_summary (ml_event_tpr, osd_event_tpr,
combined_false_alarms_per_day, ...); window figures tpOsd/fpOsd/fnOsd/tnOsd/tprOsd/fprOsd/accuracyOsd
(and ...Combined), a window alarming when the state at its datapoint is ALARM; recorded-vs-recomputed
agreement; beside them the model's single-window figures of evaluation (unprefixed tpr, fpr, auc,
event_tpr, false_alarms_per_day, ...: any window with p > threshold counts, no escalation).
"""
from dataclasses import dataclass

import numpy as np

from osdkit.app import convulsionMetrics, metrics, osdAlgorithm
from osdkit.app.osdAlgorithm import ALARM, DATAPOINT_S
from osdkit.data import windowing

COLUMNS = {"ml": "ML model", "osd": "OSD algorithm", "combined": "combined", "osd_recorded": "OSD recorded"}
ROW_NAMES = {"ml": "AppModel", "osd": "OSD", "combined": "Combined", "osd_recorded": "RecordedOSD"}
WINDOW_SUFFIX = {"osd": "Osd", "combined": "Combined"}
STATE_NAMES = ("OK", "WARNING", "ALARM")


@dataclass(eq=False)
class Timeline:
    """Every datapoint of a list of events, in event order then time."""
    event: np.ndarray  # int (n,) position of the datapoint's event
    time: np.ndarray  # float (n,) seconds of the datapoint's last sample from the event's data_time
    new_segment: np.ndarray  # bool (n,) the detectors restart here
    in_seizure: np.ndarray  # bool (n,) ALARM here detects the event's seizure
    offsets: np.ndarray  # int (n_events + 1,) where each event's datapoints start


def seizure_datapoints(event, times):
    """True for datapoints (last-sample times, s from data_time) where ALARM detects the seizure: those
    holding any of it (windowing.seizure_overlap_s over the datapoint's 5 s)."""
    return windowing.seizure_overlap_s(event, times, DATAPOINT_S) > 0


def build_timeline(events, max_gap_s=osdAlgorithm.MAX_DP_GAP_S):
    """Timeline of osdbData Events; max_gap_s=numpy.inf never restarts inside an event (as the app)."""
    counts = [len(e.dp_times) for e in events]
    times = [e.dp_times - e.data_time for e in events]
    time = np.concatenate(times) if events else np.zeros(0)
    event = np.repeat(np.arange(len(events)), counts)
    in_seizure = np.concatenate([seizure_datapoints(e, t) for e, t in zip(events, times)] or [np.zeros(0, bool)])
    return Timeline(event, time, osdAlgorithm.segment_starts(len(time), event, time, max_gap_s), in_seizure,
                    np.r_[0, np.cumsum(counts)].astype(np.int64))


def window_datapoints(timeline, windows):
    """Timeline index of the datapoint holding each window's last sample."""
    ev = np.asarray(windows.event_index, dtype=np.int64)
    if len(ev) and not 0 <= ev.min() <= ev.max() < len(timeline.offsets) - 1:
        raise ValueError(f"window event_index must index the {len(timeline.offsets) - 1} events")
    idx = np.zeros(len(ev), dtype=np.int64)
    order = np.argsort(ev, kind="stable")
    bounds = np.searchsorted(ev[order], np.arange(len(timeline.offsets)))
    for i in np.flatnonzero(np.diff(bounds)):
        w = order[bounds[i]:bounds[i + 1]]
        first, stop = timeline.offsets[i], timeline.offsets[i + 1]
        idx[w] = first + np.searchsorted(timeline.time[first:stop], windows.end_time[w] - 1e-6)
    inside = idx < timeline.offsets[ev + 1]
    if not inside.all() or np.any(timeline.time[idx] - windows.end_time >= DATAPOINT_S):
        raise ValueError("window end times do not fall on these events' datapoints")
    return idx


def ml_on_timeline(timeline, windows, p, step_s):
    """p(seizure) per datapoint: its latest window's, held for ceil(step_s / 5 s) datapoints, else 0."""
    n = len(timeline.time)
    dp = window_datapoints(timeline, windows)
    order = np.lexsort((windows.end_time, dp))
    latest_of_dp = np.r_[dp[order][1:] != dp[order][:-1], True][:len(dp)]
    source = np.full(n, -1)
    source[dp[order][latest_of_dp]] = order[latest_of_dp]
    hold = max(1, int(np.ceil(step_s / DATAPOINT_S - 1e-9)))
    latest = osdAlgorithm.last_index(source >= 0)
    use = (latest >= osdAlgorithm.last_index(timeline.new_segment)) & (np.arange(n) - latest < hold)
    use &= latest >= 0
    p_dp = np.zeros(n)
    p_dp[use] = np.asarray(p, dtype=np.float64)[source[latest[use]]]
    return p_dp


def app_view(events, models, strategy="ANY", step_s=None):
    """The app over `events`, datapoint by datapoint: the one timeline every report uses (main job,
    real-data report, appReplay). models: {name: (p, windows, threshold)}, each model's gated
    p(seizure) on its windowing.WindowSet of these events (step_s: seconds between its windows, default
    the windows' own). Returns a dict: timeline, p {name: ML per datapoint}, osd
    (osdAlgorithm.osd_on_events), results {name..., "osd", "combined"} (ALARM/OK), states {column:
    escalated state} with "osd_recorded" (the file's alarmState) when some event records one on every
    datapoint, recorded_events (bool per event)."""
    timeline = build_timeline(events)
    p_dp = {name: ml_on_timeline(timeline, windows, p, _step_s(windows, step_s))
            for name, (p, windows, _) in models.items()}
    osd = osdAlgorithm.osd_on_events(events)
    results = {name: osdAlgorithm.ml_result(p_dp[name], threshold) for name, (_, _, threshold) in models.items()}
    results["osd"] = osd["result"]
    results["combined"] = osdAlgorithm.combine(list(results.values()), strategy)
    states = {c: osdAlgorithm.escalate(r == ALARM, timeline.event, timeline.time) for c, r in results.items()}
    recorded_events = np.array([len(e.alarm_state) > 0 and bool(np.all(e.alarm_state >= 0)) for e in events],
                               dtype=bool)
    if recorded_events.any():
        states["osd_recorded"] = np.concatenate([e.alarm_state for e in events]).astype(np.int8)
    return {"timeline": timeline, "p": p_dp, "osd": osd, "results": results, "states": states,
            "recorded_events": recorded_events}


def app_states(p, windows, events, threshold, step_s, strategy="ANY"):
    """app_view of one model named "ml", with its p per datapoint as "p"."""
    view = app_view(events, {"ml": (p, windows, threshold)}, strategy, step_s)
    return {**view, "p": view["p"]["ml"]}


def column_outcomes(state, timeline):
    """metrics.alarm_outcomes of one column's states: ALARM detects (in the seizure) and alarms."""
    return metrics.alarm_outcomes(state == ALARM, timeline.in_seizure, timeline.event, timeline.time,
                                  len(timeline.offsets) - 1, DATAPOINT_S)


def column_summary(outcomes, summaries, event_mask=None):
    """metrics.event_summary of a column's outcomes over the events (dicts) that event_mask keeps."""
    if event_mask is not None:
        outcomes = {k: v if np.ndim(v) == 0 else v[event_mask] for k, v in outcomes.items()}
        summaries = [s for s, keep in zip(summaries, event_mask) if keep]
    return metrics.event_summary(outcomes, summaries)[0]


def predicted(outcomes, labels):
    """Event prediction of a column: 1 for a detected seizure event or an alarmed non-seizure event."""
    return np.where(np.asarray(labels) == 1, outcomes["detected"], outcomes["any_alarm"]).astype(int)


def _step_s(windows, step_s):
    own = getattr(windows, "step_s", None)
    if step_s is None and own is None:
        raise ValueError("step_s is needed: the seconds between successive windows")
    if step_s is not None and own is not None and abs(step_s - own) > 1e-9:
        raise ValueError(f"step_s {step_s} differs from the windows' own step {own}")
    return float(own if step_s is None else step_s)


def evaluate_app(p, windows, events, threshold, step_s=None, strategy="ANY",
                 thresholds=metrics.DEFAULT_SWEEP_THRESHOLDS):
    """Evaluate gated p(seizure) of `windows` (a windowing.WindowSet of `events`, osdbData Events) as
    the app would; returns (results, event_rows, sweep), see the module doc. step_s (seconds between
    windows) defaults to windows.step_s; the sweep is app_threshold_sweep's."""
    step_s = _step_s(windows, step_s)
    summaries = [e.summary() for e in events]
    single = metrics.event_metrics(p, windows.labels, windows.event_index, windows.end_time, summaries,
                                   threshold, step_s)
    rows = single.pop("event_rows")
    results = {**metrics.window_metrics(p, windows.labels, threshold), **single}
    app = app_states(p, windows, events, threshold, step_s, strategy)
    timeline, states, recorded = app["timeline"], app["states"], app["recorded_events"]
    window_dp = window_datapoints(timeline, windows)
    outcomes = {column: column_outcomes(state, timeline) for column, state in states.items()}
    for column, out in outcomes.items():
        summary = column_summary(out, summaries, recorded if column == "osd_recorded" else None)
        results.update({f"{column}_{k}": v for k, v in summary.items()})
    for column, suffix in WINDOW_SUFFIX.items():
        m = metrics.window_metrics(states[column][window_dp] == ALARM, windows.labels, 0.5)
        results.update({key + suffix: m[key] for key in ("tp", "fp", "fn", "tn", "tpr", "fpr", "accuracy")})
    results["convulsion_15_30s"] = convulsionMetrics.convulsion_results(app, events)
    results.update({"n_datapoints": int(len(timeline.time)), "step_s": step_s, "combine_strategy": strategy,
                    "warn_time_s": osdAlgorithm.WARN_TIME_S, "alarm_time_s": osdAlgorithm.ALARM_TIME_S})
    labels = [e.label for e in events]
    if "osd_recorded" in states:
        comparable = recorded[timeline.event] & (states["osd_recorded"] >= 0) & (states["osd_recorded"] <= ALARM)
        same = states["osd"][comparable] == states["osd_recorded"][comparable]
        agree = (predicted(outcomes["osd"], labels) == predicted(outcomes["osd_recorded"], labels))[recorded]
        results.update({"osd_recorded_n_events": int(recorded.sum()),
                        "osd_recorded_n_datapoints": int(comparable.sum()),
                        "osd_recorded_dp_agreement": float(same.mean()) if len(same) else None,
                        "osd_recorded_event_agreement": float(agree.mean())})
    latencies = {column: metrics.event_latency_s(out["first_detection"], summaries) for column, out in outcomes.items()}
    for i, row in enumerate(rows):
        dp_columns = {k: row.pop(k) for k in [k for k in row if k.startswith("dp")]}
        for column, out in outcomes.items():
            known = column != "osd_recorded" or recorded[i]
            latency = latencies[column][i]
            row[f"{ROW_NAMES[column]}Prediction"] = int(predicted(out, labels)[i]) if known else None
            row[f"{ROW_NAMES[column]}LatencyS"] = round(float(latency), 3) \
                if known and labels[i] == 1 and np.isfinite(latency) else None
        row.update(dp_columns)
    return results, rows, app_threshold_sweep(p, windows, events, thresholds, step_s)


def app_threshold_sweep(p, windows, events, thresholds=metrics.DEFAULT_SWEEP_THRESHOLDS, step_s=None,
                        daily_life=None):
    """metrics.threshold_sweep's keys for the ML model alone with the app's escalation: event_tpr,
    event_fpr, false_alarms_per_day and latency_median_s per threshold (ALARM after 3 in-alarm
    datapoints), window_tpr and window_fpr (single windows, p > threshold), convulsions_before_end (how
    many recorded convulsions the ALARM reaches before they end, of n_convulsions). daily_life (bool per
    event) adds daily_life_false_alarms_per_day per threshold over those events. For choosing the alarm
    threshold on validation: pass the gated p of each movement gate."""
    step_s = _step_s(windows, step_s)
    timeline = build_timeline(events)
    p_dp = ml_on_timeline(timeline, windows, p, step_s)
    summaries = [e.summary() for e in events]
    keys = ("event_tpr", "event_fpr", "false_alarms_per_day", "latency_median_s", "window_tpr", "window_fpr")
    sweep = {"thresholds": [float(t) for t in thresholds], "alarm_rule": "app escalation",
             **{k: [] for k in keys}, "convulsions_before_end": []}
    if daily_life is not None:
        daily_life = np.asarray(daily_life, bool)
        sweep["daily_life_false_alarms_per_day"] = []
    for threshold in thresholds:
        state = osdAlgorithm.escalate(osdAlgorithm.ml_result(p_dp, threshold) == ALARM, timeline.event, timeline.time)
        outcomes = column_outcomes(state, timeline)
        summary = column_summary(outcomes, summaries)
        summary.update(zip(("window_tpr", "window_fpr"), metrics.window_rates(p, windows.labels, threshold)))
        for key in keys:
            sweep[key].append(summary[key])
        rows = convulsionMetrics.convulsion_rows(state, timeline, events)
        sweep["convulsions_before_end"].append(sum(r["before_end"] for r in rows))
        sweep["n_convulsions"] = len(rows)
        if daily_life is not None:
            sweep["daily_life_false_alarms_per_day"].append(
                column_summary(outcomes, summaries, daily_life)["false_alarms_per_day"])
        sweep["nonseizure_hours"] = summary["nonseizure_hours"]  # what false alarms per day are counted over
    return sweep


def osd_false_alarms(events, daily_life=None):
    """The OSD algorithm's false alarms per day on `events` with the app's escalation
    (osd_false_alarms_per_day), and on the daily_life ones (bool per event) when given
    (osd_daily_life_false_alarms_per_day, over daily_life_hours)."""
    view = app_view(events, {})
    outcomes, summaries = column_outcomes(view["states"]["osd"], view["timeline"]), [e.summary() for e in events]
    result = {"osd_false_alarms_per_day": column_summary(outcomes, summaries)["false_alarms_per_day"]}
    if daily_life is not None:
        daily = column_summary(outcomes, summaries, np.asarray(daily_life, bool))
        result.update(osd_daily_life_false_alarms_per_day=daily["false_alarms_per_day"],
                      daily_life_hours=daily["nonseizure_hours"])
    return result
