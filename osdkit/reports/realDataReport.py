"""The real-data report: the run's model on real recordings as the app would run it (the real-data
folder, `evaluation.realDataDir`). Nothing here trains or tunes: the folder is a held-out reality check.

Every recording goes through the same windows (windowing.make_windows), movement gate and app timeline
(appEvaluation.app_view: ML, the OSD algorithm, both combined, each with the app's escalation) as the
test events of the main job and appReplay:
- ADL wrist and WISDM watch recordings (realData.adl_events / wisdm_events) of the people the model was
  neither trained nor tuned on (exclude_people: "adl-f1", "wisdm-1600", ...): each recording at least
  as long as the model's window (window_samples, the model's own input size), cut into 5 s datapoints
  from its start; the OSD algorithm (app defaults) on every datapoint, the model on each window (the
  first ending when the buffer is full), the escalation over each recording's datapoints; ALARM episodes
  per hour per activity for ML, OSD and combined. Shorter recordings give no window; nothing is padded.
- OSDB event JSON files: the OSD algorithm recomputed with the event's recorded settings, the OSD state
  the file records, ML, and combined.
"""
from pathlib import Path

import numpy as np

from osdkit.app import appEvaluation, metrics
from osdkit.app.osdAlgorithm import ALARM, DATAPOINT_S
from osdkit.data import realData
from osdkit.data.osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP, WINDOW_SAMPLES
from osdkit.data.windowing import make_windows, movement_gate
from osdkit.reports.plots import plot_app_timeline

MIN_SEIZURE_OVERLAP_S = 5.0  # a window is "seizure" when it holds >= 5 s of it, as windowing.py's default
APP_COLUMNS = ("ml", "osd", "combined")
RECORDING_SOURCES = ("adl_wrist", "wisdm_watch")
COLUMN_NAMES = {**appEvaluation.COLUMNS, "ml": "ML"}  # how the report lines name the app's columns


def gated_predictions(predict_fn, windows, gate_pct=5.0, batch_size=1024):
    """(p, moving): p(seizure) per window from predict_fn in batches, set to 0 where the app's movement
    gate (windowing.movement_gate: 100*std/mean of the newest 125 samples < gate_pct) fails."""
    p = np.zeros(len(windows), dtype=np.float64)
    for start in range(0, len(windows), batch_size):
        p[start:start + batch_size] = np.asarray(predict_fn(windows[start:start + batch_size])).reshape(-1)
    moving = movement_gate(windows, gate_pct).reshape(len(windows))
    p[~moving] = 0.0
    return p, moving


def evaluate_adl(predict_fn, root, threshold=0.5, gate_pct=5.0, batch_size=1024, window_samples=WINDOW_SAMPLES,
                 exclude_people=()):
    """evaluate_recordings on the ADL recordings in root (all non-seizure) of the volunteers not in
    exclude_people, plus n_skipped, skipped [(path, reason)], people (the "adl-<volunteer>" reported on)
    and n_people."""
    skipped = []
    recordings = [r for r in realData.load_adl_recordings(root, skipped)
                  if realData.adl_person(r[1]) not in set(exclude_people)]
    out = evaluate_recordings(predict_fn, realData.adl_events, recordings, threshold, gate_pct, batch_size,
                              window_samples)
    people = sorted({realData.adl_person(r[1]) for r in recordings}, key=str)
    return {**out, "n_skipped": len(skipped), "skipped": skipped, "people": people, "n_people": len(people)}


def evaluate_wisdm(predict_fn, root, threshold=0.5, gate_pct=5.0, batch_size=1024, window_samples=WINDOW_SAMPLES,
                   exclude_people=()):
    """evaluate_recordings on the WISDM watch recordings in root of the people not in exclude_people, plus
    n_skipped, skipped, people (the "wisdm-<subject>" reported on) and n_people."""
    skipped = []
    recordings = [r for r in realData.load_wisdm_recordings(root, skipped)
                  if realData.wisdm_person(r[1]) not in set(exclude_people)]
    out = evaluate_recordings(predict_fn, realData.wisdm_events, recordings, threshold, gate_pct, batch_size,
                              window_samples)
    people = sorted({realData.wisdm_person(r[1]) for r in recordings})
    return {**out, "n_skipped": len(skipped), "skipped": skipped, "people": people, "n_people": len(people)}


def evaluate_recordings(predict_fn, to_events, recordings, threshold=0.5, gate_pct=5.0, batch_size=1024,
                        window_samples=WINDOW_SAMPLES):
    """Alarm rates of a model, the OSD algorithm and both on non-seizure recordings [(activity, name,
    magnitude_g at 25 Hz)] (to_events: realData.adl_events or wisdm_events), windows of window_samples.

    Single windows (the model, no escalation): n_recordings, n_too_short, n_windows, n_gated,
    recording_hours (all recordings), hours_covered (windows * 5 s), n_alarm_windows, window_alarm_rate,
    recordings_with_alarm, files_with_alarm, alarm_episodes, false_alarms_per_hour, false_alarms_per_day,
    by_activity {activity: n_recordings, n_windows, n_alarm_windows, window_alarm_rate,
    recordings_with_alarm, alarm_episodes}.
    The app's view: app {column: window_end_alarm_fraction (windows whose datapoint is in ALARM state),
    single_window_alarm_fraction (windows whose datapoint's own result is ALARM), alarm_episodes,
    alarm_episodes_per_hour and alarm_episodes_per_day (over app_hours), recordings_with_alarm},
    app_recordings and app_hours (the recordings with a window, all their datapoints), app_by_activity
    {activity: {column: window_end_alarm_fraction}}, app_episodes_by_activity {activity: {hours, column:
    {alarm_episodes, alarm_episodes_per_hour}}}, app_episodes_by_person {person (the events' user_id):
    {column: alarm_episodes}}; threshold, gate_pct, window_samples."""
    events = to_events([r for r in recordings if len(r[2]) >= window_samples])
    windowset = make_windows(events, window_samples, SAMPLES_PER_DP)
    p, moving = gated_predictions(predict_fn, windowset.batch(np.arange(len(windowset))), gate_pct, batch_size)
    alarm = p > threshold
    rec = windowset.event_index
    activity = np.array([events[i].sub_type for i in rec], dtype=object)
    activities = sorted({r[0] for r in recordings})
    episodes = metrics.alarm_episode_starts(alarm, rec, windowset.end_time, DATAPOINT_S)
    alarmed = sorted(set(rec[alarm].tolist()))
    seconds = len(p) * DATAPOINT_S
    view = appEvaluation.app_states(p, windowset, events, threshold, DATAPOINT_S)
    timeline = view["timeline"]
    app_seconds = len(timeline.time) * DATAPOINT_S
    window_dp = appEvaluation.window_datapoints(timeline, windowset)
    dp_activity = np.array([events[i].sub_type for i in timeline.event], dtype=object)
    dp_person = np.array([str(events[i].user_id) for i in timeline.event], dtype=object)
    by_person = {person: {} for person in sorted(set(dp_person.tolist()))}
    app, app_by_activity = {}, {}
    app_episodes = {name: {"hours": float(np.sum(dp_activity == name)) * DATAPOINT_S / 3600.0} for name in activities}
    for column in APP_COLUMNS:
        in_alarm = view["states"][column] == ALARM
        ends_in_alarm = in_alarm[window_dp]
        starts = metrics.alarm_episode_starts(in_alarm, timeline.event, timeline.time, DATAPOINT_S)
        n_episodes = int(starts.sum())
        per_day = metrics.per_day(n_episodes, app_seconds)
        app[column] = {"window_end_alarm_fraction": float(ends_in_alarm.mean()) if len(p) else None,
                       "single_window_alarm_fraction": float(np.mean(view["results"][column][window_dp]
                                                                     == ALARM)) if len(p) else None,
                       "alarm_episodes": n_episodes, "alarm_episodes_per_day": per_day,
                       "alarm_episodes_per_hour": per_day / 24 if per_day is not None else None,
                       "recordings_with_alarm": len(set(timeline.event[in_alarm].tolist()))}
        for person, row in by_person.items():
            row[column] = int(starts[dp_person == person].sum())
        for name in activities:
            in_activity = activity == name
            app_by_activity.setdefault(name, {})[column] = \
                float(ends_in_alarm[in_activity].mean()) if in_activity.any() else None
            n_activity, hours = int(starts[dp_activity == name].sum()), app_episodes[name]["hours"]
            app_episodes[name][column] = {"alarm_episodes": n_activity,
                                          "alarm_episodes_per_hour": n_activity / hours if hours else None}
    by_activity = {}
    for name in activities:
        in_activity = activity == name
        by_activity[name] = {
            "n_recordings": sum(r[0] == name for r in recordings),
            "n_windows": int(in_activity.sum()), "n_alarm_windows": int(alarm[in_activity].sum()),
            "window_alarm_rate": float(alarm[in_activity].mean()) if in_activity.any() else None,
            "recordings_with_alarm": sum(events[i].sub_type == name for i in alarmed),
            "alarm_episodes": int(episodes[in_activity].sum())}
    per_day = metrics.per_day(int(episodes.sum()), seconds)
    return {"n_recordings": len(recordings),
            "n_too_short": len(recordings) - len(events), "n_windows": int(len(p)),
            "n_gated": int((~moving).sum()),
            "recording_hours": sum(len(r[2]) for r in recordings) / SAMPLE_RATE_HZ / 3600.0,
            "hours_covered": seconds / 3600.0, "n_alarm_windows": int(alarm.sum()),
            "window_alarm_rate": float(alarm.mean()) if len(p) else None,
            "recordings_with_alarm": len(alarmed),
            "files_with_alarm": [events[i].id for i in alarmed],
            "alarm_episodes": int(episodes.sum()),
            "false_alarms_per_hour": per_day / 24 if per_day is not None else None,
            "false_alarms_per_day": per_day,
            "by_activity": by_activity, "app": app, "app_hours": app_seconds / 3600.0,
            "app_by_activity": app_by_activity, "app_episodes_by_activity": app_episodes,
            "app_episodes_by_person": by_person,
            "app_recordings": len(events),
            "threshold": float(threshold), "gate_pct": float(gate_pct), "window_samples": int(window_samples)}


def evaluate_real_event(predict_fn, path, threshold=0.5, gate_pct=5.0, plot_path=None, event_id=None,
                        window_samples=WINDOW_SAMPLES):
    """One OSDB event as the app would run it: per-window p and single-window detection, and per column
    (ml, osd, combined, osd_recorded when the file records alarmState) the app's escalated outcome.

    Keys: event_id, type, sub_type, seizure_times, times (window end s from dataTime), p, labels (window
    holds >= 5 s of the seizure, or all of a shorter one; all 1 for a seizure event without seizureTimes,
    all 0 for other events), alarm, alarmed (any window), alarmed_during_seizure, latency_s (single
    windows; None if undetected or no seizureTimes), max_p, n_windows, n_gated, n_repeats_skipped,
    n_bad_datapoints_skipped, app {column: alarm_in_seizure, latency_s, first_alarm_s, n_alarm_datapoints},
    osd_recorded_dp_agreement and osd_recorded_n_datapoints (when recorded), threshold, gate_pct.
    Writes the app timeline PNG (plots.plot_app_timeline) to plot_path when given."""
    event, stats = realData.read_event(path, event_id)
    windowset = make_windows([event], window_samples, SAMPLES_PER_DP, "seizureTimes", MIN_SEIZURE_OVERLAP_S)
    windows, times, labels = windowset.batch(np.arange(len(windowset))), windowset.end_time, windowset.labels
    p, moving = gated_predictions(predict_fn, windows, gate_pct)
    seizure_times = list(event.seizure_times) if event.seizure_times else None
    n_repeats = stats.skipped["dp_duplicate_raw"] + stats.skipped["dp_duplicate_time"]
    n_bad = sum(n for reason, n in stats.skipped.items() if reason.startswith("dp_")) - n_repeats
    single = metrics.event_metrics(p, labels, np.zeros(len(p), dtype=int), times, [event.summary()], threshold,
                            DATAPOINT_S)
    view = appEvaluation.app_states(p, windowset, [event], threshold, windowset.step_s)
    timeline, app = view["timeline"], {}
    for column, state in view["states"].items():
        out = appEvaluation.column_outcomes(state, timeline)
        alarm_times = timeline.time[state == ALARM]
        latency = metrics.event_latency_s(out["first_detection"], [event.summary()])[0]
        app[column] = {"alarm_in_seizure": bool(out["detected"][0]) and event.label == 1,
                       "latency_s": float(latency) if np.isfinite(latency) else None,
                       "first_alarm_s": float(alarm_times[0]) if len(alarm_times) else None,
                       "n_alarm_datapoints": int(len(alarm_times))}
    result = {"event_id": event.id, "type": event.type, "sub_type": event.sub_type,
              "seizure_times": seizure_times, "times": times.tolist(), "p": p.tolist(),
              "labels": labels.tolist(), "alarm": (p > threshold).tolist(),
              "alarmed": bool(np.any(p > threshold)),
              "alarmed_during_seizure": bool(event.label == 1 and single["event_tp"] == 1),
              "latency_s": single["event_rows"][0]["LatencyS"], "max_p": float(p.max()) if len(p) else None,
              "n_windows": int(len(p)), "n_gated": int((~moving).sum()), "n_repeats_skipped": n_repeats,
              "n_bad_datapoints_skipped": n_bad, "app": app, "threshold": float(threshold),
              "gate_pct": float(gate_pct)}
    if "osd_recorded" in view["states"]:
        recorded = view["states"]["osd_recorded"]
        comparable = (recorded >= 0) & (recorded <= ALARM)
        result["osd_recorded_n_datapoints"] = int(comparable.sum())
        result["osd_recorded_dp_agreement"] = float(np.mean(view["states"]["osd"][comparable] ==
                                                            recorded[comparable])) if comparable.any() else None
    if plot_path:
        title = f"Event {event.id} {event.type}/{event.sub_type}"
        plot_app_timeline(plot_path, title, timeline.time, seizure_times, {"ML": (view["p"], threshold)},
                                        view["osd"], {appEvaluation.COLUMNS[c]: s for c, s in view["states"].items()})
    return result


def evaluate_real(real_dir, predict_fn, threshold, gate_pct, plot_dir=None, window_samples=WINDOW_SAMPLES,
                  exclude_people=()):
    """The real-data report, windows of window_samples (the model's own input size): every OSDB event
    file in <real_dir>/osdb_example (one event each), the ADL recordings in <real_dir>/adl_wrist and the
    WISDM watch recordings in <real_dir>/wisdm_watch of the people not in exclude_people (those the model
    was trained or tuned on), as the app would run them. Returns {file stem: event result
    (evaluate_real_event, without per-window lists except p), "adl_wrist": evaluate_adl's result,
    "wisdm_watch": evaluate_wisdm's (without the skipped lists)}, {} without the folder; timeline PNGs
    real_<stem>_timeline.png in plot_dir when given."""
    if not real_dir or not Path(real_dir).is_dir():
        return {}
    real_dir, out = Path(real_dir), {}
    for event_file in sorted((real_dir / "osdb_example").glob("*.json")):
        plot = Path(plot_dir) / f"real_{event_file.stem}_timeline.png" if plot_dir else None
        res = evaluate_real_event(predict_fn, event_file, threshold, gate_pct, plot_path=plot,
                                  window_samples=window_samples)
        for key in ("times", "labels", "alarm"):
            res.pop(key)
        res["p"] = [round(float(v), 4) for v in res["p"]]
        out[event_file.stem] = res
    for name, evaluate in (("adl_wrist", evaluate_adl), ("wisdm_watch", evaluate_wisdm)):
        if (real_dir / name).is_dir():
            res = evaluate(predict_fn, real_dir / name, threshold, gate_pct, window_samples=window_samples,
                           exclude_people=exclude_people)
            res.pop("skipped", None)
            out[name] = res
    return out


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _per_hour(value):
    return "n/a" if value is None else f"{value:.2f}"


def format_recordings(name, res):
    """Text lines of one evaluate_recordings result: per column the app's ALARM figures, ALARM episodes
    per hour per activity (ML / OSD / combined), and the people the model's episodes come from (a few
    people's recordings, or everyone's?)."""
    lines = [f"real {name} ({res.get('n_people', '?')} held-out people, {res['n_windows']} windows of the "
             f"{res['app_recordings']} recordings of >= {res['window_samples'] / SAMPLE_RATE_HZ:g} s, "
             f"{res['app_hours']:.2f} h), with the app's escalation:"]
    for column in APP_COLUMNS:
        a = res["app"][column]
        lines.append(f"  {COLUMN_NAMES[column]:>13}: {_pct(a['window_end_alarm_fraction'])} of windows end in ALARM, "
                     f"{_pct(a['single_window_alarm_fraction'])} single-window alarms, "
                     f"{a['alarm_episodes']} ALARM episodes ({_per_hour(a['alarm_episodes_per_hour'])} per hour)")
    lines.append("  ALARM episodes per hour by activity (ML / OSD / combined):")
    for activity, row in res["app_episodes_by_activity"].items():
        cells = " / ".join(_per_hour(row[c]["alarm_episodes_per_hour"]) for c in APP_COLUMNS)
        lines.append(f"    {activity:<16} {row['hours']:5.2f} h: {cells}")
    alarmed = people_the_model_alarms_on(res)
    if alarmed:
        cells = ", ".join(f"{person} {' / '.join(str(row[c]) for c in APP_COLUMNS)}" for person, row in alarmed.items())
        lines.append(f"  the model's ALARM episodes come from {len(alarmed)} of "
                     f"{len(res['app_episodes_by_person'])} people (ML / OSD / combined): {cells}")
    return lines


def people_the_model_alarms_on(res):
    """{person: ALARM episodes (ml / osd / combined)} of a recordings report, for the people on whose
    recordings the model alone raises at least one ALARM episode."""
    return {person: row for person, row in res["app_episodes_by_person"].items() if row["ml"]}


def format_real(real):
    """Text lines of evaluate_real's result: ML / OSD / combined side by side with the app's escalation."""
    lines = []
    for key, res in real.items():
        if key in RECORDING_SOURCES:
            lines += format_recordings(key, res)
            continue
        seizure = res["seizure_times"]
        cells = []
        for column, a in res["app"].items():
            reached = "ALARM" if a["alarm_in_seizure"] else "no ALARM"
            latency = f" {a['latency_s']:.0f} s after onset" if a["latency_s"] is not None else ""
            cells.append(f"{COLUMN_NAMES[column]} {reached}{latency}")
        span = f" (seizure {seizure[0]:g}..{seizure[1]:g} s)" if seizure else ""
        lines.append(f"real {res['sub_type']} event {res['event_id']}{span}, inside the seizure: " + "; ".join(cells))
        if "osd_recorded_dp_agreement" in res:
            lines.append(f"  recomputed OSD state = recorded on {_pct(res['osd_recorded_dp_agreement'])} of "
                         f"{res['osd_recorded_n_datapoints']} datapoints; ML max p(seizure) {res['max_p']:.3f}")
    return lines


def pool_recordings(results):
    """The folds' evaluate_recordings results as one (the fields format_recordings prints), each fold's
    on the people its own model never saw: windows, hours and ALARM episodes added up, window fractions
    weighted by windows, per-hour figures over the pooled hours; every fold keeps its model and alarm
    settings (thresholds, gate_pcts). None when the folds cut windows of different lengths."""
    if len({r["window_samples"] for r in results}) != 1:
        return None
    hours = sum(r["app_hours"] for r in results)

    def weighted(column, key):
        parts = [(r["n_windows"], r["app"][column][key]) for r in results if r["app"][column][key] is not None]
        n = sum(w for w, _ in parts)
        return sum(w * v for w, v in parts) / n if n else None
    app, by_activity, by_person = {}, {}, {}
    for column in APP_COLUMNS:
        episodes = sum(r["app"][column]["alarm_episodes"] for r in results)
        app[column] = {"window_end_alarm_fraction": weighted(column, "window_end_alarm_fraction"),
                       "single_window_alarm_fraction": weighted(column, "single_window_alarm_fraction"),
                       "alarm_episodes": episodes, "alarm_episodes_per_hour": episodes / hours if hours else None,
                       "recordings_with_alarm": sum(r["app"][column]["recordings_with_alarm"] for r in results)}
    for r in results:
        for activity, row in r["app_episodes_by_activity"].items():
            total = by_activity.setdefault(activity, {"hours": 0.0, **{c: {"alarm_episodes": 0} for c in APP_COLUMNS}})
            total["hours"] += row["hours"]
            for column in APP_COLUMNS:
                total[column]["alarm_episodes"] += row[column]["alarm_episodes"]
        for person, row in r["app_episodes_by_person"].items():
            total = by_person.setdefault(person, dict.fromkeys(APP_COLUMNS, 0))
            for column in APP_COLUMNS:
                total[column] += row[column]
    for row in by_activity.values():
        for column in APP_COLUMNS:
            n = row[column]["alarm_episodes"]
            row[column]["alarm_episodes_per_hour"] = n / row["hours"] if row["hours"] else None
    people = sorted({person for r in results for person in r.get("people", r["app_episodes_by_person"])}, key=str)
    return {"n_people": len(people), "people": people, "n_windows": sum(r["n_windows"] for r in results),
            "app_recordings": sum(r["app_recordings"] for r in results), "app_hours": hours,
            "window_samples": results[0]["window_samples"], "app": app,
            "app_episodes_by_activity": dict(sorted(by_activity.items())),
            "app_episodes_by_person": dict(sorted(by_person.items())),
            "thresholds": [r["threshold"] for r in results], "gate_pcts": [r["gate_pct"] for r in results]}


def format_pooled(reals):
    """(lines, pooled) over the folds' evaluate_real results, when there are several (k-fold: each real
    person held out by exactly one fold): each real event's ALARM latency per fold's model, and each
    recordings source pooled (pool_recordings). ([], {}) for fewer than two folds."""
    if len(reals) < 2:
        return [], {}
    lines, pooled = [], {}
    for key in [k for k in reals[0] if k not in RECORDING_SOURCES and all(k in r for r in reals)]:
        first = reals[0][key]
        cells = [f"{COLUMN_NAMES[column]} " + " / ".join("none" if r[key]["app"][column]["latency_s"] is None
                                                   else f"{r[key]['app'][column]['latency_s']:.0f}" for r in reals)
                 for column in first["app"]]
        lines.append(f"real {first['sub_type']} event {first['event_id']}, ALARM s after onset by each of the "
                     f"{len(reals)} folds' models: " + "; ".join(cells))
    for source in RECORDING_SOURCES:
        if all(source in r for r in reals):
            result = pool_recordings([r[source] for r in reals])
            if result is not None:
                pooled[source] = result
                lines += format_recordings(f"{source} over the {len(reals)} folds (each person held out once, "
                                           f"by the fold's model that never saw them, with its alarm settings:"
                                           f" p > {' / '.join(f'{t:g}' for t in result['thresholds'])})", result)
    return lines, pooled
