"""Readers and app-style evaluation for the real data in /work/shared/data (see its README.md).

- ADL wrist recordings (UCI "ADL Recognition with Wrist-worn Accelerometer"): 32 Hz `x y z` codes 0..63,
  g = -1.5 + 3*code/63. The magnitude is resampled to 25 Hz with scipy.signal.resample_poly (up 25,
  down 32, linear-trend padding): its anti-aliasing filter removes the 12.5-16 Hz content a 25 Hz watch
  cannot see, where linear interpolation would fold it into the 9-12.5 Hz band.
  Recordings shorter than 30 s give no window; nothing is padded.
- One OSDB event JSON file, read by osdbData and windowed by windowing exactly as the test events are
  (the app's buffer: 125 samples/1000 per datapoint, one window per datapoint once 750 are buffered;
  repeats dropped), then the app's movement gate and p > threshold. Detection and latency use
  evaluation.event_metrics, so they mean the same there.
"""
import logging
import os
import warnings

import numpy as np
from matplotlib.figure import Figure
from scipy.signal import resample_poly

from evaluation import alarm_episode_starts, event_metrics, save_figure_atomic
from osdbData import read_osdb_file
from windowing import make_windows, movement_gate

log = logging.getLogger(__name__)

ADL_RATE_HZ = 32
TARGET_RATE_HZ = 25
SAMPLES_PER_DATAPOINT = 125
WINDOW_SAMPLES = 750
DATAPOINT_S = SAMPLES_PER_DATAPOINT / TARGET_RATE_HZ
MIN_SEIZURE_OVERLAP_S = 5.0  # a window is "seizure" when it holds >= 5 s of it, as windowing.py's default


def adl_codes_to_g(codes):
    """ADL accelerometer codes 0..63 to acceleration in g."""
    return -1.5 + 3.0 * np.asarray(codes, dtype=np.float64) / 63.0


def resample_32_to_25(signal):
    """Resample a 32 Hz signal to 25 Hz (polyphase, anti-aliased); length ceil(n*25/32)."""
    return resample_poly(np.asarray(signal, dtype=np.float64), TARGET_RATE_HZ, ADL_RATE_HZ, padtype="line")


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


def adl_windows(recordings, window_samples=WINDOW_SAMPLES, step_samples=SAMPLES_PER_DATAPOINT):
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
        end_s.append((window_samples + step_samples * np.arange(len(view))) / TARGET_RATE_HZ)
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


def evaluate_adl(predict_fn, root, threshold=0.5, gate_pct=5.0, batch_size=1024):
    """Alarm rates of a model on the ADL recordings (all non-seizure).

    Keys: n_recordings, n_skipped, skipped [(path, reason)], n_too_short, n_windows, n_gated,
    recording_hours (all loaded recordings), hours_covered (windows * 5 s), n_alarm_windows,
    window_alarm_rate, recordings_with_alarm, files_with_alarm, alarm_episodes, false_alarms_per_hour,
    false_alarms_per_day, by_activity {activity: n_recordings, n_windows, n_alarm_windows,
    window_alarm_rate, recordings_with_alarm, alarm_episodes}, threshold, gate_pct."""
    skipped = []
    recordings = load_adl_recordings(root, skipped)
    data = adl_windows(recordings)
    p, moving = gated_predictions(predict_fn, data["windows"], gate_pct, batch_size)
    alarm = p > threshold
    rec = data["recording_index"]
    episodes = alarm_episode_starts(alarm, rec, data["end_s"], DATAPOINT_S)
    alarmed_recordings = sorted(set(rec[alarm].tolist()))
    hours = len(p) * DATAPOINT_S / 3600.0
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
            "recording_hours": sum(len(r[2]) for r in recordings) / TARGET_RATE_HZ / 3600.0,
            "hours_covered": hours, "n_alarm_windows": int(alarm.sum()),
            "window_alarm_rate": float(alarm.mean()) if len(p) else None,
            "recordings_with_alarm": len(alarmed_recordings),
            "files_with_alarm": [f"{recordings[i][0]}/{recordings[i][1]}" for i in alarmed_recordings],
            "alarm_episodes": int(episodes.sum()),
            "false_alarms_per_hour": float(episodes.sum() / hours) if hours else None,
            "false_alarms_per_day": float(24 * episodes.sum() / hours) if hours else None,
            "by_activity": by_activity, "threshold": float(threshold), "gate_pct": float(gate_pct)}


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
    """App-style replay of one OSDB event: per-window p, detection and latency (evaluation's definitions).

    Keys: event_id, type, sub_type, seizure_times, times (window end s from dataTime), p, labels (window
    holds >= 5 s of the seizure, or all of a shorter one; all 1 for a seizure event without seizureTimes,
    all 0 for other events), alarm, alarmed (any window), alarmed_during_seizure, latency_s (None if
    undetected or no seizureTimes), max_p, n_windows, n_gated, n_repeats_skipped, n_bad_datapoints_skipped, threshold, gate_pct.
    Writes the timeline PNG to plot_path when given."""
    event, stats = read_event(path, event_id)
    windowset = make_windows([event], WINDOW_SAMPLES, SAMPLES_PER_DATAPOINT, "seizureTimes", MIN_SEIZURE_OVERLAP_S)
    windows, times, labels = windowset.batch(np.arange(len(windowset))), windowset.end_time, windowset.labels
    p, moving = gated_predictions(predict_fn, windows, gate_pct)
    seizure_times = list(event.seizure_times) if event.seizure_times else None
    is_seizure = event.label == 1
    n_repeats = stats.skipped["dp_duplicate_raw"] + stats.skipped["dp_duplicate_time"]
    n_bad = sum(n for reason, n in stats.skipped.items() if reason.startswith("dp_")) - n_repeats
    metrics = event_metrics(p, labels, np.zeros(len(p), dtype=int), times, [event.summary()], threshold,
                            DATAPOINT_S)
    latency = metrics["event_rows"][0]["LatencyS"]
    if plot_path:
        title = f"Event {event.id} {event.type}/{event.sub_type}"
        plot_event_timeline(times, p, seizure_times, plot_path, title, threshold)
    return {"event_id": event.id, "type": event.type, "sub_type": event.sub_type,
            "seizure_times": seizure_times, "times": times.tolist(), "p": p.tolist(),
            "labels": labels.tolist(), "alarm": (p > threshold).tolist(),
            "alarmed": bool(np.any(p > threshold)),
            "alarmed_during_seizure": bool(is_seizure and metrics["event_tp"] == 1),
            "latency_s": latency, "max_p": float(p.max()) if len(p) else None, "n_windows": int(len(p)),
            "n_gated": int((~moving).sum()), "n_repeats_skipped": n_repeats,
            "n_bad_datapoints_skipped": n_bad, "threshold": float(threshold), "gate_pct": float(gate_pct)}


def plot_event_timeline(times, p, seizure_times, path, title, threshold=0.5):
    """p(seizure) against time (s from the event time) with the seizure period shaded and alarms marked."""
    times, p = np.asarray(times, dtype=float), np.asarray(p, dtype=float)
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    if seizure_times:
        ax.axvspan(seizure_times[0], seizure_times[1], color="tab:orange", alpha=0.25, label="seizure")
    ax.plot(times, p, ".-", color="tab:blue", label="p(seizure)")
    alarm = p > threshold
    ax.plot(times[alarm], p[alarm], "o", color="tab:red", label="alarm")
    ax.axhline(threshold, color="k", lw=0.8, ls="--", label=f"threshold {threshold:g}")
    ax.axvline(0.0, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="time from event (s)", ylabel="p(seizure)", ylim=(-0.02, 1.02), title=title)
    ax.legend(loc="upper left")
    save_figure_atomic(fig, path)
