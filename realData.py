"""Readers and the app-style report for the real-data folder (`evaluation.realDataDir`; its README.md
says what it holds). Nothing here trains or tunes: the folder is a held-out reality check.

- ADL wrist recordings (UCI "ADL Recognition with Wrist-worn Accelerometer"): 32 Hz `x y z` codes 0..63,
  g = -1.5 + 3*code/63. The magnitude is resampled to 25 Hz with scipy.signal.resample_poly (up 25,
  down 32, linear-trend padding): its anti-aliasing filter removes the 12.5-16 Hz content a 25 Hz watch
  cannot see, where linear interpolation would fold it into the 9-12.5 Hz band.
  Recordings shorter than 30 s give no window; nothing is padded. For the app's view each recording of
  at least 30 s is cut into 5 s datapoints (125 samples, x 1000 = milli-g) from its start: the OSD
  algorithm (app defaults) runs on every datapoint, the model on each window (ending on datapoint 6, 7,
  ...), and the app's escalation runs over each recording's consecutive datapoints.
- OSDB event JSON files, read by osdbData and windowed by windowing exactly as the test events, then
  appEvaluation: ML, the OSD algorithm recomputed with the event's recorded settings, the OSD state the
  file records, and both combined, each with the app's escalation.
"""
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

import appEvaluation
import osdAlgorithm
from evaluation import alarm_episode_starts, event_metrics
from osdAlgorithm import ALARM, DATAPOINT_S
from osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP, WINDOW_SAMPLES, read_osdb_file
from windowing import make_windows, movement_gate

log = logging.getLogger(__name__)

ADL_RATE_HZ = 32
MIN_SEIZURE_OVERLAP_S = 5.0  # a window is "seizure" when it holds >= 5 s of it, as windowing.py's default
APP_COLUMNS = ("ml", "osd", "combined")


def adl_codes_to_g(codes):
    """ADL accelerometer codes 0..63 to acceleration in g."""
    return -1.5 + 3.0 * np.asarray(codes, dtype=np.float64) / 63.0


def resample_32_to_25(signal):
    """Resample a 32 Hz signal to 25 Hz (polyphase, anti-aliased); length ceil(n*25/32)."""
    return resample_poly(np.asarray(signal, dtype=np.float64), int(SAMPLE_RATE_HZ), ADL_RATE_HZ, padtype="line")


def read_adl_file(path):
    """Acceleration magnitude in g at 25 Hz (float32) of one ADL file; ValueError if it is not valid."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            codes = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"not integer 'x y z' lines ({err})") from err
    if codes.size == 0:
        raise ValueError("empty file")
    if codes.shape[1] != 3:
        raise ValueError(f"{codes.shape[1]} columns, expected 3")
    if codes.min() < 0 or codes.max() > 63:
        raise ValueError(f"codes outside 0..63 ({codes.min()}..{codes.max()})")
    magnitude = np.linalg.norm(adl_codes_to_g(codes), axis=1)
    return resample_32_to_25(magnitude).astype(np.float32)


def load_adl_recordings(root, skipped=None):
    """[(activity, filename, magnitude_g float32 at 25 Hz)] for root/<activity>/*.txt, sorted.
    Unreadable files are skipped with a logged reason; pass a list as `skipped` to get (path, reason)."""
    recordings, skipped = [], [] if skipped is None else skipped
    for activity in sorted(os.listdir(root)):
        folder = os.path.join(root, activity)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".txt"):
                continue
            path = os.path.join(folder, name)
            try:
                recordings.append((activity, name, read_adl_file(path)))
            except (OSError, ValueError) as err:
                skipped.append((path, str(err)))
                log.warning("skipping %s: %s", path, err)
    if skipped:
        log.warning("%d ADL files skipped", len(skipped))
    return recordings


def adl_windows(recordings, window_samples=WINDOW_SAMPLES, step_samples=SAMPLES_PER_DP):
    """Windows ending every step once `window_samples` exist, as the app's full buffer.

    Returns a dict: windows float32 (N,1,window_samples), recording_index (N,), activity (N,),
    end_s (N,) end of each window in seconds from the recording start, n_too_short (recordings
    without a window)."""
    windows, rec_index, end_s, n_too_short = [], [], [], 0
    for i, (_, _, signal) in enumerate(recordings):
        if len(signal) < window_samples:
            n_too_short += 1
            continue
        view = np.lib.stride_tricks.sliding_window_view(signal, window_samples)[::step_samples]
        windows.append(view)
        rec_index.append(np.full(len(view), i))
        end_s.append((window_samples + step_samples * np.arange(len(view))) / SAMPLE_RATE_HZ)
    rec_index = np.concatenate(rec_index) if rec_index else np.zeros(0, dtype=int)
    return {"windows": (np.concatenate(windows) if windows else np.zeros((0, window_samples)))
            .astype(np.float32)[:, None, :],
            "recording_index": rec_index,
            "activity": np.array([recordings[i][0] for i in rec_index], dtype=object),
            "end_s": np.concatenate(end_s) if end_s else np.zeros(0),
            "n_too_short": n_too_short}


def gated_predictions(predict_fn, windows, gate_pct=5.0, batch_size=1024):
    """(p, moving): p(seizure) per window from predict_fn in batches, set to 0 where the app's movement
    gate (windowing.movement_gate: 100*std/mean of the newest 125 samples < gate_pct) fails."""
    p = np.zeros(len(windows), dtype=np.float64)
    for start in range(0, len(windows), batch_size):
        p[start:start + batch_size] = np.asarray(predict_fn(windows[start:start + batch_size])).reshape(-1)
    moving = movement_gate(windows, gate_pct).reshape(len(windows))
    p[~moving] = 0.0
    return p, moving


def adl_app_view(recordings, data, p, threshold):
    """The app's view of the ADL recordings with windows: per column (ml, osd, combined) the single
    datapoint results and the escalated states, over every datapoint of those recordings.

    Returns a dict: recording (per datapoint), time_s, window_dp (datapoint of each window), results
    and states {column: per datapoint}."""
    with_windows = sorted(set(data["recording_index"].tolist()))
    mags = [recordings[i][2][:len(recordings[i][2]) // SAMPLES_PER_DP * SAMPLES_PER_DP] for i in with_windows]
    counts = np.array([len(m) // SAMPLES_PER_DP for m in mags], dtype=int)
    recording = np.repeat(with_windows, counts).astype(int)
    dp_index = np.arange(len(recording)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
    time_s = (dp_index + 1) * DATAPOINT_S
    mag_mg = (np.concatenate(mags).astype(np.float64) * 1000.0).reshape(-1, SAMPLES_PER_DP) if mags \
        else np.zeros((0, SAMPLES_PER_DP))
    first_dp = dict(zip(with_windows, np.r_[0, np.cumsum(counts)[:-1]]))
    window_dp = np.array([first_dp[r] for r in data["recording_index"]], dtype=int) + \
        np.round(data["end_s"] / DATAPOINT_S).astype(int) - 1
    p_dp = np.zeros(len(recording))
    p_dp[window_dp] = p
    results = {"ml": osdAlgorithm.ml_result(p_dp, threshold), "osd": osdAlgorithm.osd_algorithm(mag_mg)["result"]}
    results["combined"] = osdAlgorithm.combine([results["ml"], results["osd"]])
    states = {c: osdAlgorithm.escalate(r == ALARM, recording, time_s) for c, r in results.items()}
    return {"recording": recording, "time_s": time_s, "window_dp": window_dp, "results": results, "states": states}


def evaluate_adl(predict_fn, root, threshold=0.5, gate_pct=5.0, batch_size=1024):
    """Alarm rates of a model, the OSD algorithm and both on the ADL recordings (all non-seizure).

    Single windows (the model, no escalation): n_recordings, n_skipped, skipped [(path, reason)],
    n_too_short, n_windows, n_gated, recording_hours (all loaded recordings), hours_covered
    (windows * 5 s), n_alarm_windows, window_alarm_rate, recordings_with_alarm, files_with_alarm,
    alarm_episodes, false_alarms_per_hour, false_alarms_per_day, by_activity {activity: n_recordings,
    n_windows, n_alarm_windows, window_alarm_rate, recordings_with_alarm, alarm_episodes}.
    The app's view: app {column: window_end_alarm_fraction (windows whose datapoint is in ALARM state),
    single_window_alarm_fraction (windows whose datapoint's own result is ALARM), alarm_episodes,
    alarm_episodes_per_day (over app_hours), recordings_with_alarm}, app_recordings and app_hours (the
    recordings with a window, all their datapoints), app_by_activity {activity: {column:
    window_end_alarm_fraction}};
    threshold, gate_pct."""
    skipped = []
    recordings = load_adl_recordings(root, skipped)
    data = adl_windows(recordings)
    p, moving = gated_predictions(predict_fn, data["windows"], gate_pct, batch_size)
    alarm = p > threshold
    rec = data["recording_index"]
    episodes = alarm_episode_starts(alarm, rec, data["end_s"], DATAPOINT_S)
    alarmed_recordings = sorted(set(rec[alarm].tolist()))
    hours = len(p) * DATAPOINT_S / 3600.0
    view = adl_app_view(recordings, data, p, threshold)
    app_hours = len(view["time_s"]) * DATAPOINT_S / 3600.0
    app, app_by_activity = {}, {}
    for column in APP_COLUMNS:
        in_alarm = view["states"][column] == ALARM
        ends_in_alarm = in_alarm[view["window_dp"]]
        n_episodes = int(alarm_episode_starts(in_alarm, view["recording"], view["time_s"], DATAPOINT_S).sum())
        app[column] = {"window_end_alarm_fraction": float(ends_in_alarm.mean()) if len(p) else None,
                       "single_window_alarm_fraction": float(np.mean(view["results"][column][view["window_dp"]]
                                                                     == ALARM)) if len(p) else None,
                       "alarm_episodes": n_episodes,
                       "alarm_episodes_per_day": 24 * n_episodes / app_hours if app_hours else None,
                       "recordings_with_alarm": len(set(view["recording"][in_alarm].tolist()))}
        for activity in sorted({r[0] for r in recordings}):
            in_activity = data["activity"] == activity
            app_by_activity.setdefault(activity, {})[column] = \
                float(ends_in_alarm[in_activity].mean()) if in_activity.any() else None
    by_activity = {}
    for activity in sorted({r[0] for r in recordings}):
        in_activity = data["activity"] == activity
        by_activity[activity] = {
            "n_recordings": sum(r[0] == activity for r in recordings),
            "n_windows": int(in_activity.sum()), "n_alarm_windows": int(alarm[in_activity].sum()),
            "window_alarm_rate": float(alarm[in_activity].mean()) if in_activity.any() else None,
            "recordings_with_alarm": sum(recordings[i][0] == activity for i in alarmed_recordings),
            "alarm_episodes": int(episodes[in_activity].sum())}
    return {"n_recordings": len(recordings), "n_skipped": len(skipped), "skipped": skipped,
            "n_too_short": data["n_too_short"], "n_windows": int(len(p)),
            "n_gated": int((~moving).sum()),
            "recording_hours": sum(len(r[2]) for r in recordings) / SAMPLE_RATE_HZ / 3600.0,
            "hours_covered": hours, "n_alarm_windows": int(alarm.sum()),
            "window_alarm_rate": float(alarm.mean()) if len(p) else None,
            "recordings_with_alarm": len(alarmed_recordings),
            "files_with_alarm": [f"{recordings[i][0]}/{recordings[i][1]}" for i in alarmed_recordings],
            "alarm_episodes": int(episodes.sum()),
            "false_alarms_per_hour": float(episodes.sum() / hours) if hours else None,
            "false_alarms_per_day": float(24 * episodes.sum() / hours) if hours else None,
            "by_activity": by_activity, "app": app, "app_hours": app_hours, "app_by_activity": app_by_activity,
            "app_recordings": len(set(view["recording"].tolist())),
            "threshold": float(threshold), "gate_pct": float(gate_pct)}


def read_event(path, event_id=None):
    """(Event, ReadStats) of one event from an OSDB file, read with osdbData like every OSDB file
    (give event_id when the file holds several events)."""
    events, stats = read_osdb_file(path)
    if event_id is not None:
        events = [e for e in events if e.id == event_id]
        if not events:
            raise ValueError(f"{path}: no usable event {event_id}")
    if len(events) != 1:
        raise ValueError(f"{path}: holds {len(events)} usable events: give event_id")
    return events[0], stats


def evaluate_real_event(predict_fn, path, threshold=0.5, gate_pct=5.0, plot_path=None, event_id=None):
    """One OSDB event as the app would run it: per-window p and single-window detection, and per column
    (ml, osd, combined, osd_recorded when the file records alarmState) the app's escalated outcome.

    Keys: event_id, type, sub_type, seizure_times, times (window end s from dataTime), p, labels (window
    holds >= 5 s of the seizure, or all of a shorter one; all 1 for a seizure event without seizureTimes,
    all 0 for other events), alarm, alarmed (any window), alarmed_during_seizure, latency_s (single
    windows; None if undetected or no seizureTimes), max_p, n_windows, n_gated, n_repeats_skipped,
    n_bad_datapoints_skipped, app {column: alarm_in_seizure, latency_s, first_alarm_s, n_alarm_datapoints},
    osd_recorded_dp_agreement and osd_recorded_n_datapoints (when recorded), threshold, gate_pct.
    Writes the app timeline PNG (appEvaluation.plot_app_timeline) to plot_path when given."""
    event, stats = read_event(path, event_id)
    windowset = make_windows([event], WINDOW_SAMPLES, SAMPLES_PER_DP, "seizureTimes", MIN_SEIZURE_OVERLAP_S)
    windows, times, labels = windowset.batch(np.arange(len(windowset))), windowset.end_time, windowset.labels
    p, moving = gated_predictions(predict_fn, windows, gate_pct)
    seizure_times = list(event.seizure_times) if event.seizure_times else None
    n_repeats = stats.skipped["dp_duplicate_raw"] + stats.skipped["dp_duplicate_time"]
    n_bad = sum(n for reason, n in stats.skipped.items() if reason.startswith("dp_")) - n_repeats
    metrics = event_metrics(p, labels, np.zeros(len(p), dtype=int), times, [event.summary()], threshold,
                            DATAPOINT_S)
    view = appEvaluation.app_states(p, windowset, [event], threshold, windowset.step_s)
    timeline, app = view["timeline"], {}
    for column, state in view["states"].items():
        out = appEvaluation.column_outcomes(state, timeline)
        alarm_times = timeline.time[state == ALARM]
        latency = out["first_detection"][0] - seizure_times[0] if seizure_times else np.inf
        app[column] = {"alarm_in_seizure": bool(out["detected"][0]) and event.label == 1,
                       "latency_s": float(latency) if np.isfinite(latency) else None,
                       "first_alarm_s": float(alarm_times[0]) if len(alarm_times) else None,
                       "n_alarm_datapoints": int(len(alarm_times))}
    result = {"event_id": event.id, "type": event.type, "sub_type": event.sub_type,
              "seizure_times": seizure_times, "times": times.tolist(), "p": p.tolist(),
              "labels": labels.tolist(), "alarm": (p > threshold).tolist(),
              "alarmed": bool(np.any(p > threshold)),
              "alarmed_during_seizure": bool(event.label == 1 and metrics["event_tp"] == 1),
              "latency_s": metrics["event_rows"][0]["LatencyS"], "max_p": float(p.max()) if len(p) else None,
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
        appEvaluation.plot_app_timeline(plot_path, title, timeline.time, seizure_times, {"ML": (view["p"], threshold)},
                                        view["osd"], {appEvaluation.COLUMNS[c]: s for c, s in view["states"].items()})
    return result


def evaluate_real(real_dir, predict_fn, threshold, gate_pct, plot_dir=None):
    """The real-data report: every OSDB event file in <real_dir>/osdb_example (one event each) and the
    ADL recordings in <real_dir>/adl_wrist, as the app would run them. Returns {file stem: event result
    (evaluate_real_event, without per-window lists except p), "adl_wrist": evaluate_adl's result
    (without the skipped list)}, {} without the folder; timeline PNGs real_<stem>_timeline.png in plot_dir
    when given."""
    if not real_dir or not Path(real_dir).is_dir():
        return {}
    real_dir, out = Path(real_dir), {}
    for event_file in sorted((real_dir / "osdb_example").glob("*.json")):
        plot = Path(plot_dir) / f"real_{event_file.stem}_timeline.png" if plot_dir else None
        res = evaluate_real_event(predict_fn, event_file, threshold, gate_pct, plot_path=plot)
        for key in ("times", "labels", "alarm"):
            res.pop(key)
        res["p"] = [round(float(v), 4) for v in res["p"]]
        out[event_file.stem] = res
    if (real_dir / "adl_wrist").is_dir():
        adl = evaluate_adl(predict_fn, real_dir / "adl_wrist", threshold, gate_pct)
        adl.pop("skipped", None)
        out["adl_wrist"] = adl
    return out


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_real(real):
    """Text lines of evaluate_real's result: ML / OSD / combined side by side with the app's escalation."""
    names = {**appEvaluation.COLUMNS, "ml": "ML"}
    lines = []
    for key, res in real.items():
        if key == "adl_wrist":
            app = res["app"]
            lines.append(f"real daily activities (ADL, {res['n_windows']} windows of the {res['app_recordings']} "
                         f"recordings of >= 30 s, {res['app_hours']:.2f} h), with the app's escalation:")
            for column in APP_COLUMNS:
                a = app[column]
                lines.append(f"  {names[column]:>13}: {_pct(a['window_end_alarm_fraction'])} of windows end in ALARM, "
                             f"{_pct(a['single_window_alarm_fraction'])} single-window alarms, "
                             f"{a['alarm_episodes']} ALARM episodes ({a['alarm_episodes_per_day'] or 0:.1f} per day)")
            continue
        seizure = res["seizure_times"]
        cells = []
        for column, a in res["app"].items():
            reached = "ALARM" if a["alarm_in_seizure"] else "no ALARM"
            latency = f" {a['latency_s']:.0f} s after onset" if a["latency_s"] is not None else ""
            cells.append(f"{names[column]} {reached}{latency}")
        span = f" (seizure {seizure[0]:g}..{seizure[1]:g} s)" if seizure else ""
        lines.append(f"real {res['sub_type']} event {res['event_id']}{span}, inside the seizure: " + "; ".join(cells))
        if "osd_recorded_dp_agreement" in res:
            lines.append(f"  recomputed OSD state = recorded on {_pct(res['osd_recorded_dp_agreement'])} of "
                         f"{res['osd_recorded_n_datapoints']} datapoints; ML max p(seizure) {res['max_p']:.3f}")
    return lines
