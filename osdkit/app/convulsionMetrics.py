"""Latency from convulsion onset: does the app's ALARM come while a convulsion is still going on?

Simulated tonic-clonic events record `convulsionTimes` (the clonic shaking, seconds from dataTime) inside
their longer labelled seizure (`seizureTimes`). For one column of the app's escalated states (ALARM on
the 3rd in-alarm datapoint in a row, appEvaluation.app_states) the first ALARM is the first datapoint in
ALARM whose time t (its last sample) lies in the labelled seizure ((t - 5 s, t] overlaps it, the
timeline's in_seizure); latency = t - convulsion onset (negative: the app was already in ALARM before the
shaking began). The alarm completes inside the convulsion when t <= the convulsion's end.
"""
import numpy as np

from osdkit.app.osdAlgorithm import ALARM

CONVULSION_RANGE_S = (15.0, 30.0)  # the convulsions the target counts: 15-30 s of shaking


def convulsion_rows(state, timeline, events):
    """One dict per event with convulsion_times: event_id, convulsion_s, first_alarm_s (None when no
    ALARM in the labelled seizure), latency_s (from the convulsion onset, None when no ALARM) and
    before_end (ALARM at or before the convulsion's end)."""
    rows = []
    for i, event in enumerate(events):
        times = getattr(event, "convulsion_times", None)
        if event.label != 1 or times is None:
            continue
        lo, hi = timeline.offsets[i], timeline.offsets[i + 1]
        hits = np.flatnonzero((np.asarray(state[lo:hi]) == ALARM) & timeline.in_seizure[lo:hi])
        first = float(timeline.time[lo + hits[0]]) if len(hits) else None
        rows.append({"event_id": event.id, "convulsion_s": float(times[1] - times[0]), "first_alarm_s": first,
                     "latency_s": None if first is None else first - float(times[0]),
                     "before_end": first is not None and first <= float(times[1]) + 1e-9})
    return rows


def convulsion_summary(rows, duration_range=CONVULSION_RANGE_S):
    """n, n_before_end, before_end_share, latency_median_s (of the alarmed) and latency_max_s over the rows
    whose convulsion lasts duration_range (inclusive)."""
    lo, hi = duration_range
    chosen = [r for r in rows if lo - 1e-9 <= r["convulsion_s"] <= hi + 1e-9]
    latencies = [r["latency_s"] for r in chosen if r["latency_s"] is not None]
    n_before = sum(r["before_end"] for r in chosen)
    return {"n": len(chosen), "n_before_end": int(n_before),
            "before_end_share": n_before / len(chosen) if chosen else None,
            "latency_median_s": float(np.median(latencies)) if latencies else None,
            "latency_max_s": float(np.max(latencies)) if latencies else None,
            "n_no_alarm": sum(r["latency_s"] is None for r in chosen),
            "duration_range_s": [lo, hi]}


def convulsion_results(app, events, duration_range=CONVULSION_RANGE_S):
    """{column: convulsion_summary} for the ml, osd and combined states of appEvaluation.app_states."""
    return {column: convulsion_summary(convulsion_rows(app["states"][column], app["timeline"], events),
                                       duration_range)
            for column in ("ml", "osd", "combined") if column in app["states"]}
