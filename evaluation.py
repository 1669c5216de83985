"""Window- and event-level evaluation of seizure probabilities, written to JSON, CSV and PNG.

These are the model's single-window figures: any window with p > threshold counts as an alarm. What
the app would do (its escalation, the OSD algorithm, both combined) is appEvaluation, which builds on
alarm_outcomes and event_summary here.

Inputs are plain arrays, one entry per 30 s window (one window per step_s seconds):
- `p`: p(seizure) = softmax(logits)[1], with the app's movement gate already applied (p=0 when it fails);
- `labels`: 1 if the window overlaps a seizure, else 0;
- `event_index`: the window's event as a POSITION in `events` (not the event id);
- `end_time`: seconds of the window's last sample relative to the event's anchor time (`dataTime`).

`events` is a list of dicts: `id`, `label` (1 seizure event, anything else non-seizure) and optional
`user_id`, `type`, `sub_type`, `seizure_times` ((start, end) seconds relative to the anchor, or None).

Choices:
- A window alarms when p > threshold, as the app does (`seizure_probability_threshold_pct`/100).
- A seizure event is detected when a window labelled 1 alarms; without `seizure_times` any window counts.
- Latency = end_time of the first alarming window labelled 1 minus seizure_times[0]: the delay from the
  annotated onset to the datapoint at which the app would alarm. Only events with seizure_times and a
  detection enter the latency statistics; the others are counted.
- False alarms are counted on non-seizure events only: alarms in a seizure event outside the annotated
  seizure (pre-/post-ictal movement, imprecise annotations) are neither false alarms nor detections.
  An alarm episode is a maximal run of alarming windows of one event whose successive end times differ by
  at most 1.5*step_s. FA/day = episodes / (non-seizure windows * step_s / 86400).
- Undefined rates (no positives, no negatives, no time) are None, so every result is valid JSON.
"""
import csv
import os
from collections import Counter

import numpy as np
from matplotlib.figure import Figure

from exportUtils import atomic_output, write_json_atomic

DEFAULT_SWEEP_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
SECONDS_PER_DAY = 86400.0


def _ratio(num, den):
    return float(num) / float(den) if den else None


def roc_auc(p, labels):
    """Area under the ROC curve (trapezoid over distinct scores); None if only one class is present."""
    p, pos = np.asarray(p, dtype=float), np.asarray(labels) == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(-p, kind="mergesort")
    p_sorted, pos_sorted = p[order], pos[order]
    group_ends = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]
    tps = np.cumsum(pos_sorted)[group_ends]
    fps = group_ends + 1 - tps
    return float(np.trapezoid(np.r_[0.0, tps / n_pos], np.r_[0.0, fps / n_neg]))


def window_metrics(p, labels, threshold=0.5):
    """Window confusion counts, tpr (sensitivity), fpr, accuracy and ROC AUC; alarm = p > threshold."""
    p, labels = np.asarray(p, dtype=float), np.asarray(labels)
    alarm, pos = p > threshold, labels == 1
    tp, fp = int(np.sum(alarm & pos)), int(np.sum(alarm & ~pos))
    fn, tn = int(np.sum(~alarm & pos)), int(np.sum(~alarm & ~pos))
    return {"tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "tpr": _ratio(tp, tp + fn), "fpr": _ratio(fp, fp + tn),
            "accuracy": _ratio(tp + tn, len(p)), "auc": roc_auc(p, labels),
            "n_windows": int(len(p)), "num_positive_epoch": int(pos.sum()), "threshold": float(threshold)}


def window_rates(p, labels, threshold):
    """(tpr, fpr) of single windows alarming when p > threshold (window_metrics without the AUC)."""
    alarm, pos = np.asarray(p, dtype=float) > threshold, np.asarray(labels) == 1
    return _ratio(np.sum(alarm & pos), pos.sum()), _ratio(np.sum(alarm & ~pos), (~pos).sum())


def alarm_episode_starts(alarm, group, time, step_s):
    """True where an alarm episode starts: an alarming window whose predecessor in its group (by time)
    does not alarm or ends more than 1.5*step_s earlier. Returned in the input order."""
    alarm, group, time = np.asarray(alarm, dtype=bool), np.asarray(group), np.asarray(time, dtype=float)
    order = np.lexsort((time, group))
    a, g, t = alarm[order], group[order], time[order]
    continues = np.zeros(len(a), dtype=bool)
    continues[1:] = a[:-1] & (g[1:] == g[:-1]) & (np.diff(t) <= 1.5 * step_s)
    starts = np.empty(len(a), dtype=bool)
    starts[order] = a & ~continues
    return starts


def event_table(events):
    """Per-event arrays from the list of event dicts: label, onset (nan without times), has_times."""
    times = [e.get("seizure_times") for e in events]
    return {"label": np.array([int(e["label"]) for e in events], dtype=int),
            "onset": np.array([np.nan if t is None else float(t[0]) for t in times]),
            "has_times": np.array([t is not None for t in times], dtype=bool)}


def _event_outcomes(p, labels, event_index, end_time, table, threshold, step_s):
    """Per-event arrays: windows, any alarm, detected, first detecting end time, episodes, max p."""
    n = len(table["label"])
    if not len(p) == len(labels) == len(event_index) == len(end_time):
        raise ValueError("p, labels, event_index and end_time must have one entry per window")
    if len(event_index) and not 0 <= np.min(event_index) <= np.max(event_index) < n:
        raise ValueError(f"event_index must index the {n} events")
    alarm = np.asarray(p, dtype=float) > threshold
    ev = np.asarray(event_index, dtype=int)
    end_time = np.asarray(end_time, dtype=float)
    counts_for_detection = (np.asarray(labels) == 1) | ~table["has_times"][ev]
    outcomes = alarm_outcomes(alarm, counts_for_detection, ev, end_time, n, step_s)
    max_p = np.full(n, np.nan)
    np.fmax.at(max_p, ev, np.asarray(p, dtype=float))
    return {**outcomes, "max_p": max_p}


def alarm_outcomes(alarm, counts_for_detection, event_index, time, n_events, step_s):
    """Per-event arrays from per-step alarms (windows or datapoints, each standing for step_s seconds):
    n_steps, any_alarm, detected (an alarm where counts_for_detection), first_detection (its time,
    inf if none) and episodes (alarm_episode_starts)."""
    detecting = alarm & counts_for_detection
    first_detection = np.full(n_events, np.inf)
    np.minimum.at(first_detection, event_index[detecting], time[detecting])
    return {"n_steps": np.bincount(event_index, minlength=n_events),
            "any_alarm": np.bincount(event_index, weights=alarm, minlength=n_events) > 0,
            "detected": np.isfinite(first_detection),
            "first_detection": first_detection,
            "episodes": np.bincount(event_index, weights=alarm_episode_starts(alarm, event_index, time, step_s),
                                    minlength=n_events).astype(int),
            "step_s": float(step_s)}


def _rate_by(keys, hits, hit_name, rate_name):
    """{str(key): {"n", hit_name, rate_name}} counting hits per key."""
    out = {}
    for key, hit in zip(keys, hits):
        entry = out.setdefault(str(key), {"n": 0, hit_name: 0})
        entry["n"] += 1
        entry[hit_name] += int(hit)
    for entry in out.values():
        entry[rate_name] = _ratio(entry[hit_name], entry["n"])
    return out


def is_tonic_clonic(sub_type):
    return "".join(ch for ch in str(sub_type).lower() if ch.isalpha()) == "tonicclonic"


def event_summary(outcomes, events):
    """Event TPR/FPR, false alarms per day, latency statistics and the breakdowns by subtype and user,
    from per-event outcomes (alarm_outcomes); returns (summary, latency per event)."""
    table = event_table(events)
    seizure = table["label"] == 1
    detected, alarmed = outcomes["detected"] & seizure, outcomes["any_alarm"] & ~seizure
    latency = outcomes["first_detection"] - table["onset"]
    timed = seizure & table["has_times"]
    latencies = latency[timed & detected]
    episodes = int(outcomes["episodes"][~seizure].sum())
    nonseizure_s = float(outcomes["n_steps"][~seizure].sum()) * outcomes["step_s"]
    tp, fn = int(detected.sum()), int((seizure & ~detected).sum())
    fp, tn = int(alarmed.sum()), int((~seizure & ~alarmed).sum())
    seizure_events = [e for e, is_seizure in zip(events, seizure) if is_seizure]
    nonseizure_subtypes = [e.get("sub_type") for e, is_seizure in zip(events, seizure) if not is_seizure]
    tc_detected = outcomes["detected"][seizure][[is_tonic_clonic(e.get("sub_type")) for e in seizure_events]]
    return {"event_tp": tp, "event_fn": fn, "event_fp": fp, "event_tn": tn,
            "event_tpr": _ratio(tp, tp + fn), "event_fpr": _ratio(fp, fp + tn),
            "false_alarm_episodes": episodes, "nonseizure_hours": nonseizure_s / 3600.0,
            "false_alarms_per_day": _ratio(episodes * SECONDS_PER_DAY, nonseizure_s),
            "latency_s": [float(x) for x in latencies],
            "latency_median_s": float(np.median(latencies)) if len(latencies) else None,
            "latency_mean_s": float(np.mean(latencies)) if len(latencies) else None,
            "latency_max_s": float(np.max(latencies)) if len(latencies) else None,
            "latency_n_detected": int(len(latencies)),
            "latency_n_undetected": int((timed & ~detected).sum()),
            "tonic_clonic_tpr": _ratio(tc_detected.sum(), len(tc_detected)),
            "sensitivity_by_subtype": _rate_by([e.get("sub_type") for e in seizure_events],
                                               outcomes["detected"][seizure], "detected", "tpr"),
            "sensitivity_by_user": _rate_by([e.get("user_id") for e in seizure_events],
                                            outcomes["detected"][seizure], "detected", "tpr"),
            "false_alarm_rate_by_subtype": _rate_by(nonseizure_subtypes, outcomes["any_alarm"][~seizure],
                                                    "alarmed", "fpr")}, latency


def event_metrics(p, labels, event_index, end_time, events, threshold, step_s):
    """Event sensitivity (overall, by subtype, by user), latency, false alarms and per-event CSV rows,
    a window alarming when p > threshold (no escalation).

    Returns event_summary's figures plus num_positive_event, n_events, n_events_without_windows,
    n_events_by_type and `event_rows` (one dict per event, columns EventID, UserID, Type, SubType,
    ActualLabel, ModelPrediction, MaxSeizureProbability, LatencyS, NumAlarmEpisodes, dp0..).
    ModelPrediction is 1 for a detected seizure event or a non-seizure event with any alarm.
    """
    table = event_table(events)
    outcomes = _event_outcomes(p, labels, event_index, end_time, table, threshold, step_s)
    summary, latency = event_summary(outcomes, events)
    seizure = table["label"] == 1
    predicted = np.where(seizure, outcomes["detected"], outcomes["any_alarm"])
    summary.update({
        "num_positive_event": int(seizure.sum()), "n_events": len(events),
        "n_events_without_windows": int((outcomes["n_steps"] == 0).sum()),
        "n_events_by_type": dict(Counter(str(e.get("type")) for e in events)),
        "threshold": float(threshold)})
    ev = np.asarray(event_index, dtype=int)
    order = np.lexsort((np.asarray(end_time, dtype=float), ev))
    p_by_event = np.split(np.asarray(p, dtype=float)[order], np.cumsum(outcomes["n_steps"])[:-1])
    rows = []
    for i, event in enumerate(events):
        max_p = outcomes["max_p"][i]
        row = {"EventID": event["id"], "UserID": event.get("user_id"), "Type": event.get("type"),
               "SubType": event.get("sub_type"), "ActualLabel": int(table["label"][i]),
               "ModelPrediction": int(predicted[i]),
               "MaxSeizureProbability": None if np.isnan(max_p) else round(float(max_p), 4),
               "LatencyS": round(float(latency[i]), 3) if np.isfinite(latency[i]) and seizure[i] else None,
               "NumAlarmEpisodes": int(outcomes["episodes"][i])}
        row.update({f"dp{j}": round(float(v), 4) for j, v in enumerate(p_by_event[i])})
        rows.append(row)
    summary["event_rows"] = rows
    return summary


def threshold_sweep(p, labels, event_index, end_time, events, thresholds, step_s):
    """Event sensitivity/FPR, FA/day, median latency and window tpr/fpr at each threshold (lists)."""
    table = event_table(events)
    keys = ("event_tpr", "event_fpr", "false_alarms_per_day", "latency_median_s", "window_tpr", "window_fpr")
    sweep = {"thresholds": [float(t) for t in thresholds], **{k: [] for k in keys}}
    for threshold in thresholds:
        outcomes = _event_outcomes(p, labels, event_index, end_time, table, threshold, step_s)
        summary, _ = event_summary(outcomes, events)
        summary.update(zip(("window_tpr", "window_fpr"), window_rates(p, labels, threshold)))
        for key in keys:
            sweep[key].append(summary[key])
    return sweep


def evaluate_predictions(p, labels, event_index, end_time, events, threshold, step_s):
    """Window metrics, event metrics and the sweep in one call: returns (results, event_rows, sweep)."""
    events_result = event_metrics(p, labels, event_index, end_time, events, threshold, step_s)
    event_rows = events_result.pop("event_rows")
    results = {**window_metrics(p, labels, threshold), **events_result}
    return results, event_rows, threshold_sweep(p, labels, event_index, end_time, events,
                                                DEFAULT_SWEEP_THRESHOLDS, step_s)


def _atomic_write(path, write):
    """Call write(tmp_path) on a temporary file next to `path` (folder made if needed), then move it
    into place; exportUtils.atomic_output removes the temp file on any failure."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        write(str(tmp))


def save_figure_atomic(fig, path):
    _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))


def write_event_csv(path, event_rows):
    """Event rows to CSV; the dp columns run to the longest event, shorter events leave them empty."""
    fields = list(event_rows[0].keys()) if event_rows else []
    for row in event_rows:
        fields += [k for k in row if k not in fields]

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(event_rows)
    _atomic_write(path, write)


def _none_to_nan(values):
    return [np.nan if v is None else v for v in values]


def plot_threshold_sweep(sweep, path, threshold=None):
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    x = sweep["thresholds"]
    ax.plot(x, _none_to_nan(sweep["event_tpr"]), "o-", color="tab:green", label="event sensitivity")
    ax.plot(x, _none_to_nan(sweep["window_tpr"]), ".--", color="tab:olive", label="window TPR")
    ax.plot(x, _none_to_nan(sweep["window_fpr"]), ".--", color="tab:gray", label="window FPR")
    ax.set(xlabel="probability threshold", ylabel="rate", ylim=(-0.02, 1.02))
    ax2 = ax.twinx()
    ax2.plot(x, _none_to_nan(sweep["false_alarms_per_day"]), "s-", color="tab:red", label="false alarms / day")
    ax2.set_ylabel("false alarms per day", color="tab:red")
    if threshold is not None:
        ax.axvline(threshold, color="k", lw=0.8, ls=":")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="center left")
    ax.set_title("Threshold sweep")
    save_figure_atomic(fig, path)


def plot_confusion_matrix(results, path):
    counts = np.array([[results["tn"], results["fp"]], [results["fn"], results["tp"]]])
    fig = Figure(figsize=(4.5, 4))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        ax.text(j, i, str(value), ha="center", va="center",
                color="white" if value > counts.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["no alarm", "alarm"],
           yticklabels=["non-seizure", "seizure"], xlabel="model", ylabel="label",
           title=f"Windows, threshold {results['threshold']:g}")
    save_figure_atomic(fig, path)


def plot_latency_histogram(results, path):
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    latencies = results["latency_s"]
    if latencies:
        ax.hist(latencies, bins=max(5, min(30, len(latencies))), color="tab:blue")
    ax.set(xlabel="latency from seizure onset (s)", ylabel="seizure events",
           title=f"Detection latency: {len(latencies)} detected, "
                 f"{results['latency_n_undetected']} undetected (of events with seizure times)")
    save_figure_atomic(fig, path)


def plot_training_history(history, path):
    """Per-epoch curves in panels: losses, accuracies, learning rate, other metrics (e.g. val sensitivity)."""
    def panel(key):
        k = key.lower()
        if "loss" in k:
            return "loss"
        if "acc" in k:
            return "accuracy"
        if k in ("lr", "learning_rate"):
            return "learning rate"
        return "validation metrics"
    groups = {}
    for key, values in history.items():
        if isinstance(values, (list, tuple, np.ndarray)) and len(values):
            groups.setdefault(panel(key), []).append(key)
    n_cols = min(2, max(1, len(groups)))
    n_rows = max(1, -(-len(groups) // n_cols))
    fig = Figure(figsize=(6 * n_cols, 4 * n_rows), layout="tight")
    for i, (name, keys) in enumerate(groups.items(), start=1):
        ax = fig.add_subplot(n_rows, n_cols, i)
        for key in keys:
            values = _none_to_nan(history[key])
            ax.plot(range(1, len(values) + 1), values, ".-", label=key)
        if name == "learning rate" and all(v is not None and v > 0 for v in history[keys[0]]):
            ax.set_yscale("log")
        ax.set(xlabel="epoch", title=name)
        ax.legend()
    save_figure_atomic(fig, path)


def write_results(out_dir, prefix, results, event_rows, sweep, history=None):
    """Write <prefix>testResults.json, event_results.csv, event_threshold_data.json and the PNG plots.
    Returns the list of paths written."""
    names = ["testResults.json", "event_results.csv", "event_threshold_data.json",
             "threshold_sweep.png", "confusion_matrix.png", "latency_histogram.png"]
    paths = [os.path.join(out_dir, prefix + name) for name in names]
    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(paths[0], results)
    write_event_csv(paths[1], event_rows)
    write_json_atomic(paths[2], sweep)
    plot_threshold_sweep(sweep, paths[3], results.get("threshold"))
    plot_confusion_matrix(results, paths[4])
    plot_latency_histogram(results, paths[5])
    if history:
        paths.append(os.path.join(out_dir, prefix + "training_history.png"))
        plot_training_history(history, paths[-1])
    return paths


def _fmt(value, spec=".3f"):
    return "n/a" if value is None else format(value, spec)


def compare_variants(results_by_variant):
    """Text table of the headline metrics of several model variants (e.g. pt, pte, int8)."""
    columns = [("event_tpr", ".3f"), ("false_alarms_per_day", ".2f"), ("latency_median_s", ".1f"),
               ("tpr", ".3f"), ("fpr", ".3f"), ("auc", ".3f")]
    header = ["variant", "event_tpr", "FA/day", "latency_med_s", "window_tpr", "window_fpr", "auc"]
    lines = [[str(name)] + [_fmt(res.get(key), spec) for key, spec in columns]
             for name, res in results_by_variant.items()]
    widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]
    table = [header, ["-" * w for w in widths]] + lines
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths))) for row in table)


def format_summary(results):
    """A few lines for a human at the end of a run."""
    return "\n".join([
        f"Threshold {results['threshold']:g}: {results['n_windows']} windows, "
        f"{results['n_events']} events ({results['num_positive_event']} seizure)",
        f"Event sensitivity {_fmt(results['event_tpr'])} ({results['event_tp']}/"
        f"{results['event_tp'] + results['event_fn']}), tonic-clonic {_fmt(results['tonic_clonic_tpr'])}, "
        f"event FPR {_fmt(results['event_fpr'])}",
        f"False alarms/day {_fmt(results['false_alarms_per_day'], '.2f')} "
        f"({results['false_alarm_episodes']} episodes in {results['nonseizure_hours']:.1f} h non-seizure data)",
        f"Latency median {_fmt(results['latency_median_s'], '.1f')} s, max {_fmt(results['latency_max_s'], '.1f')} s "
        f"({results['latency_n_detected']} detected, {results['latency_n_undetected']} undetected with seizure times)",
        f"Windows: TPR {_fmt(results['tpr'])}, FPR {_fmt(results['fpr'])}, "
        f"accuracy {_fmt(results['accuracy'])}, AUC {_fmt(results['auc'])}"])
