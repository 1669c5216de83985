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
Results: `<column>_<key>` for each key of evaluation.event_summary (ml_event_tpr, osd_event_tpr,
combined_false_alarms_per_day, ...); window figures tpOsd/fpOsd/fnOsd/tnOsd/tprOsd/fprOsd/accuracyOsd
(and ...Combined), a window alarming when the state at its datapoint is ALARM; recorded-vs-recomputed
agreement; beside them the model's single-window figures of evaluation (unprefixed tpr, fpr, auc,
event_tpr, false_alarms_per_day, ...: any window with p > threshold counts, no escalation).
"""
import os
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

import evaluation
import osdAlgorithm
from osdAlgorithm import ALARM, DATAPOINT_S

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
    """True for datapoints (last-sample times, s from data_time) where ALARM detects the seizure."""
    if event.label != 1:
        return np.zeros(len(times), dtype=bool)
    if event.seizure_times is None:
        return np.ones(len(times), dtype=bool)
    start, end = event.seizure_times
    return (times > start) & (times - DATAPOINT_S < end)


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


def app_states(p, windows, events, threshold, step_s, strategy="ANY"):
    """Per-datapoint view of the app: dict timeline, p (ML per datapoint), osd (osdAlgorithm.osd_on_events),
    results {ml, osd, combined} (ALARM/OK), states {column: escalated state} with "osd_recorded" (the
    file's alarmState) when some event records one on every datapoint, recorded_events (bool per event)."""
    timeline = build_timeline(events)
    p_dp = ml_on_timeline(timeline, windows, p, step_s)
    osd = osdAlgorithm.osd_on_events(events)
    results = {"ml": osdAlgorithm.ml_result(p_dp, threshold), "osd": osd["result"]}
    results["combined"] = osdAlgorithm.combine([results["ml"], results["osd"]], strategy)
    states = {c: osdAlgorithm.escalate(r == ALARM, timeline.event, timeline.time) for c, r in results.items()}
    recorded_events = np.array([len(e.alarm_state) > 0 and bool(np.all(e.alarm_state >= 0)) for e in events],
                               dtype=bool)
    if recorded_events.any():
        states["osd_recorded"] = np.concatenate([e.alarm_state for e in events]).astype(np.int8)
    return {"timeline": timeline, "p": p_dp, "osd": osd, "results": results, "states": states,
            "recorded_events": recorded_events}


def column_outcomes(state, timeline):
    """evaluation.alarm_outcomes of one column's states: ALARM detects (in the seizure) and alarms."""
    return evaluation.alarm_outcomes(state == ALARM, timeline.in_seizure, timeline.event, timeline.time,
                                     len(timeline.offsets) - 1, DATAPOINT_S)


def column_summary(outcomes, summaries, event_mask=None):
    """evaluation.event_summary of a column's outcomes over the events (dicts) that event_mask keeps."""
    if event_mask is not None:
        outcomes = {k: v if np.ndim(v) == 0 else v[event_mask] for k, v in outcomes.items()}
        summaries = [s for s, keep in zip(summaries, event_mask) if keep]
    return evaluation.event_summary(outcomes, summaries)[0]


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
                 thresholds=evaluation.DEFAULT_SWEEP_THRESHOLDS):
    """Evaluate gated p(seizure) of `windows` (a windowing.WindowSet of `events`, osdbData Events) as
    the app would; returns (results, event_rows, sweep), see the module doc. step_s (seconds between
    windows) defaults to windows.step_s; the sweep is app_threshold_sweep's."""
    step_s = _step_s(windows, step_s)
    summaries = [e.summary() for e in events]
    single = evaluation.event_metrics(p, windows.labels, windows.event_index, windows.end_time, summaries,
                                      threshold, step_s)
    rows = single.pop("event_rows")
    results = {**evaluation.window_metrics(p, windows.labels, threshold), **single}
    app = app_states(p, windows, events, threshold, step_s, strategy)
    timeline, states, recorded = app["timeline"], app["states"], app["recorded_events"]
    window_dp = window_datapoints(timeline, windows)
    outcomes = {column: column_outcomes(state, timeline) for column, state in states.items()}
    for column, out in outcomes.items():
        summary = column_summary(out, summaries, recorded if column == "osd_recorded" else None)
        results.update({f"{column}_{k}": v for k, v in summary.items()})
    for column, suffix in WINDOW_SUFFIX.items():
        m = evaluation.window_metrics(states[column][window_dp] == ALARM, windows.labels, 0.5)
        results.update({key + suffix: m[key] for key in ("tp", "fp", "fn", "tn", "tpr", "fpr", "accuracy")})
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
    onset = evaluation.event_table(summaries)["onset"]
    for i, row in enumerate(rows):
        dp_columns = {k: row.pop(k) for k in [k for k in row if k.startswith("dp")]}
        for column, out in outcomes.items():
            known = column != "osd_recorded" or recorded[i]
            latency = out["first_detection"][i] - onset[i]
            row[f"{ROW_NAMES[column]}Prediction"] = int(predicted(out, labels)[i]) if known else None
            row[f"{ROW_NAMES[column]}LatencyS"] = round(float(latency), 3) \
                if known and labels[i] == 1 and np.isfinite(latency) else None
        row.update(dp_columns)
    return results, rows, app_threshold_sweep(p, windows, events, thresholds, step_s)


def app_threshold_sweep(p, windows, events, thresholds=evaluation.DEFAULT_SWEEP_THRESHOLDS, step_s=None):
    """evaluation.threshold_sweep's keys for the ML model alone with the app's escalation: event_tpr,
    event_fpr, false_alarms_per_day and latency_median_s per threshold (ALARM after 3 in-alarm
    datapoints), window_tpr and window_fpr (single windows, p > threshold). For choosing the alarm
    threshold on validation: pass the gated p of each movement gate."""
    step_s = _step_s(windows, step_s)
    timeline = build_timeline(events)
    p_dp = ml_on_timeline(timeline, windows, p, step_s)
    summaries = [e.summary() for e in events]
    keys = ("event_tpr", "event_fpr", "false_alarms_per_day", "latency_median_s", "window_tpr", "window_fpr")
    sweep = {"thresholds": [float(t) for t in thresholds], "alarm_rule": "app escalation",
             **{k: [] for k in keys}}
    for threshold in thresholds:
        state = osdAlgorithm.escalate(osdAlgorithm.ml_result(p_dp, threshold) == ALARM, timeline.event, timeline.time)
        summary = column_summary(column_outcomes(state, timeline), summaries)
        summary.update(zip(("window_tpr", "window_fpr"), evaluation.window_rates(p, windows.labels, threshold)))
        for key in keys:
            sweep[key].append(summary[key])
    return sweep


def _fmt(value, spec=".3f"):
    return "n/a" if value is None else format(value, spec)


def format_app_table(results):
    """ML / OSD / combined (/ OSD recorded) side by side, with the app's escalation, as text lines."""
    columns = [c for c in COLUMNS if f"{c}_event_tpr" in results]
    subtypes = sorted({s for c in columns for s in results[f"{c}_sensitivity_by_subtype"]})

    table = [["", *[COLUMNS[c] for c in columns]],
             ["event sensitivity", *[f"{_fmt(results[f'{c}_event_tpr'])} ({results[f'{c}_event_tp']}/"
                                     f"{results[f'{c}_event_tp'] + results[f'{c}_event_fn']})" for c in columns]],
             ["  tonic-clonic", *[_fmt(results[f"{c}_tonic_clonic_tpr"]) for c in columns]]]
    for s in subtypes:
        cells = [results[f"{c}_sensitivity_by_subtype"].get(s) for c in columns]
        table.append([f"  {s}", *[f"{e['detected']}/{e['n']}" if e else "-" for e in cells]])
    table += [["event FPR", *[_fmt(results[f"{c}_event_fpr"]) for c in columns]],
              ["false alarms/day", *[f"{_fmt(results[f'{c}_false_alarms_per_day'], '.2f')} "
                                     f"({results[f'{c}_false_alarm_episodes']})" for c in columns]],
              ["median latency s", *[_fmt(results[f"{c}_latency_median_s"], ".1f") for c in columns]],
              ["window TPR", *[_fmt(results.get("tpr" + WINDOW_SUFFIX.get(c, ""))) if c != "osd_recorded"
                               else "-" for c in columns]],
              ["window FPR", *[_fmt(results.get("fpr" + WINDOW_SUFFIX.get(c, "")), ".4f") if c != "osd_recorded"
                               else "-" for c in columns]]]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    in_a_row = int(results["alarm_time_s"] // DATAPOINT_S) + 1
    lines = [f"App view (ALARM after {in_a_row} in-alarm datapoints in a row; "
             f"ML p > {results['threshold']:g}; combined = {results['combine_strategy']}; window TPR/FPR of "
             "the ML model are single windows):"]
    lines += ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
              for row in table]
    if "osd_recorded_dp_agreement" in results:
        lines.append(f"recomputed OSD state = recorded on {_fmt(results['osd_recorded_dp_agreement'])} of "
                     f"{results['osd_recorded_n_datapoints']} datapoints; same event outcome on "
                     f"{_fmt(results['osd_recorded_event_agreement'])} of {results['osd_recorded_n_events']} events")
    return "\n".join(lines)



def compare_variants_app(results_by_variant):
    """Text table of several model variants (e.g. pt, pte) as the app would run them: each model alone,
    the OSD algorithm (the same for all), each model combined with it, and the recorded OSD state."""
    variants = {k: v for k, v in results_by_variant.items() if isinstance(v, dict) and "ml_event_tpr" in v}
    if not variants:
        return ""
    first = next(iter(variants.values()))
    rows = [(f"{name} (ML)", res, "ml") for name, res in variants.items()]
    rows += [("OSD algorithm", first, "osd")]
    rows += [(f"{name} + OSD", res, "combined") for name, res in variants.items()]
    rows += [("OSD recorded", first, "osd_recorded")] if "osd_recorded_event_tpr" in first else []
    header = ["app view", "event_tpr", "tonic_clonic", "FA/day", "latency_med_s"]
    keys = [("event_tpr", ".3f"), ("tonic_clonic_tpr", ".3f"), ("false_alarms_per_day", ".2f"),
            ("latency_median_s", ".1f")]
    table = [header] + [[name] + [_fmt(res.get(f"{c}_{k}"), spec) for k, spec in keys] for name, res, c in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths)))
                     for r in table[:1] + [["-" * w for w in widths]] + table[1:])

def plot_app_columns(results, path):
    """Bars per column: event sensitivity (all, tonic-clonic), false alarms per day, median latency."""
    columns = [c for c in COLUMNS if f"{c}_event_tpr" in results]
    x = np.arange(len(columns))
    fig = Figure(figsize=(12, 4), layout="tight")
    panels = [("event sensitivity", [("event_tpr", "all"), ("tonic_clonic_tpr", "tonic-clonic")]),
              ("false alarms per day", [("false_alarms_per_day", None)]),
              ("median latency from onset (s)", [("latency_median_s", None)])]
    for i, (title, keys) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, 3, i)
        width = 0.8 / len(keys)
        for j, (key, label) in enumerate(keys):
            values = [results.get(f"{c}_{key}") for c in columns]
            ax.bar(x + (j - (len(keys) - 1) / 2) * width, [np.nan if v is None else v for v in values], width,
                   label=label)
        ax.set(xticks=x, xticklabels=[COLUMNS[c] for c in columns], title=title)
        if label:
            ax.legend()
    fig.suptitle(f"With the app's escalation (ML p > {results['threshold']:g})")
    evaluation.save_figure_atomic(fig, path)


def plot_app_timeline(path, title, times, seizure_times, models, osd, states):
    """One event through the app: p(seizure) per model {name: (p, threshold)} (top); OSD roiPower and
    roiRatio against their thresholds (osd: dict of per-datapoint arrays roi_power, roi_ratio,
    alarm_thresh, alarm_ratio_thresh; middle); app states {name: OK/WARNING/ALARM per datapoint} (bottom)."""
    times = np.asarray(times, dtype=float)
    fig = Figure(figsize=(10, 8), layout="tight")
    axes = [fig.add_subplot(3, 1, i) for i in (1, 2, 3)]
    for ax in axes:
        if seizure_times:
            ax.axvspan(seizure_times[0], seizure_times[1], color="tab:orange", alpha=0.2)
        ax.axvline(0.0, color="gray", lw=0.8, ls=":")
    for name, (p, threshold) in models.items():
        line, = axes[0].plot(times, p, ".-", label=f"{name} (threshold {threshold:g})")
        axes[0].axhline(threshold, color=line.get_color(), lw=0.8, ls="--")
    axes[0].set(ylabel="p(seizure)", ylim=(-0.02, 1.02), title=title)
    if models:
        axes[0].legend(loc="upper left", fontsize=8)
    axes[1].plot(times, osd["roi_power"], ".-", color="tab:purple", label="roiPower")
    axes[1].step(times, osd["alarm_thresh"], where="mid", color="tab:purple", ls="--", lw=0.8, label="alarmThresh")
    axes[1].set(ylabel="roiPower", yscale="symlog")
    ratio_ax = axes[1].twinx()
    ratio_ax.plot(times, osd["roi_ratio"], ".-", color="tab:green", label="roiRatio")
    ratio_ax.step(times, osd["alarm_ratio_thresh"], where="mid", color="tab:green", ls="--", lw=0.8,
                  label="alarmRatioThresh")
    ratio_ax.set_ylabel("roiRatio (10 x roi / spec)")
    axes[1].legend(handles=axes[1].get_legend_handles_labels()[0] + ratio_ax.get_legend_handles_labels()[0],
                   loc="upper left", fontsize=8)
    for k, (name, state) in enumerate(states.items()):
        state = np.asarray(state, dtype=float)
        state[(state < 0) | (state > ALARM)] = np.nan  # not recorded, or a manual alarm (5)
        axes[2].step(times, state + 0.06 * k, where="mid", label=name)
    axes[2].set(yticks=[0, 1, 2], yticklabels=STATE_NAMES, ylim=(-0.3, 2.6), xlabel="time from event (s)",
                ylabel="app state")
    axes[2].legend(loc="upper left", fontsize=8)
    evaluation.save_figure_atomic(fig, path)


def write_app_results(out_dir, prefix, results, event_rows, sweep, history=None):
    """evaluation.write_results plus <prefix>app_columns.png; returns the paths written."""
    paths = evaluation.write_results(out_dir, prefix, results, event_rows, sweep, history)
    paths.append(os.path.join(out_dir, prefix + "app_columns.png"))
    plot_app_columns(results, paths[-1])
    return paths
