"""Window- and event-level evaluation of seizure probabilities, written to JSON, CSV and PNG.

These are the model's single-window figures: any window with p > threshold counts as an alarm. What
the app would do (its escalation, the OSD algorithm, both combined) is appEvaluation, which builds on
alarm_outcomes and event_summary here.

Inputs are plain arrays, one entry per window (bufferSeconds long, one per step_s seconds):
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
from collections import Counter

import numpy as np

DEFAULT_SWEEP_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
SECONDS_PER_DAY = 86400.0
# false alarms per day here are counted over recorded events (3-minute clips, OSD-flagged false alarms),
# not over a day of life: every table and plot that prints them says so
FA_DAY_NOTE = "false alarms per day of recorded non-seizure events (clips, OSD-flagged false alarms), not of daily life"


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


def per_day(count, seconds):
    """A count per day of `seconds` of data (false alarms per day); None without data."""
    return _ratio(count * SECONDS_PER_DAY, seconds)


def event_latency_s(first_detection, events):
    """Per event: the time of its first detecting alarm minus its seizure onset (s), the latency every
    report prints; inf where nothing detected it, nan without seizure_times."""
    return np.asarray(first_detection, dtype=float) - event_table(events)["onset"]


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
    latency = event_latency_s(outcomes["first_detection"], events)
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
            "false_alarms_per_day": per_day(episodes, nonseizure_s),
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
