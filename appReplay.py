"""Replay the OSD app's ML algorithm on a PC: run a .pte over OSDB event files datapoint by datapoint.

    python appReplay.py model.pte events.json [more.json ...] [--plots DIR] [--threshold-pct 50]

As SdAlgMl does on the phone: each 5 s datapoint appends its 125 rawData samples / 1000 (g) to a
circular buffer of `input_size` samples; p = 0 until the buffer is full; p = 0 when 100*std/mean of the
newest 125 samples is below accel_std_threshold_pct; otherwise p = softmax(forward([1,1,input_size]))[1]
from the ExecuTorch runtime; ALARM when p > seizure_probability_threshold_pct / 100.
Settings come from the flags, else from the app entry `<model>.json` beside the .pte, else the app's
defaults. Datapoints are those osdbData keeps (sorted by time, repeats dropped). Unlike the training
windows, the app's buffer is not reset at a gap between datapoints, and neither is the replay's.
"""
import argparse
import json
from pathlib import Path

import numpy as np

import cliUtils
import exportUtils
import nnTester
import osdbData
import realData
import windowing

APP_DEFAULTS = {"input_size": 125, "accel_std_threshold_pct": 5, "seizure_probability_threshold_pct": 50}


def app_settings(pte_path, input_size=None, gate_pct=None, threshold_pct=None):
    """input_size and thresholds: flags first, then the entry beside the .pte, then the app's defaults."""
    entry_path = Path(pte_path).with_suffix(".json")
    entry = json.loads(entry_path.read_text()) if entry_path.exists() else {}
    settings = {key: entry.get(key, default) for key, default in APP_DEFAULTS.items()}
    for key, value in (("input_size", input_size), ("accel_std_threshold_pct", gate_pct),
                       ("seizure_probability_threshold_pct", threshold_pct)):
        if value is not None:
            settings[key] = value
    return settings


def app_buffer_windows(event, input_size):
    """The app's buffer after each datapoint: (windows (n,1,L) for full buffers, their datapoint indices)."""
    signal = (event.mag.reshape(-1) / 1000.0).astype(np.float32)
    per_dp = osdbData.SAMPLES_PER_DP
    ends = np.arange(1, len(event.dp_times) + 1) * per_dp
    full = np.flatnonzero(ends >= input_size)
    starts = ends[full] - input_size
    windows = signal[starts[:, None] + np.arange(input_size)][:, None, :]
    return np.ascontiguousarray(windows), full


def replay_event(event, predict, settings):
    """p(seizure) after every datapoint of one event, as the app computes it, plus alarm facts."""
    windows, full = app_buffer_windows(event, settings["input_size"])
    p = np.zeros(len(event.dp_times))
    if len(full):
        moving = windowing.movement_gate(windows, settings["accel_std_threshold_pct"])[:, 0]
        p[full[moving]] = predict(windows[moving]) if moving.any() else []
    times = event.dp_times - event.data_time
    alarm = p > settings["seizure_probability_threshold_pct"] / 100
    first = times[alarm][0] if alarm.any() else None
    latency = None
    if event.seizure_times is not None and first is not None:
        in_seizure = alarm & (times >= event.seizure_times[0])
        latency = float(times[in_seizure][0] - event.seizure_times[0]) if in_seizure.any() else None
    detected = latency is not None if event.seizure_times is not None else first is not None
    return {"event_id": event.id, "detected": detected, "type": event.type, "sub_type": event.sub_type, "times": times, "p": p,
            "alarm": alarm, "first_alarm_s": first, "latency_s": latency,
            "n_alarm_datapoints": int(alarm.sum()), "max_p": float(p.max()) if len(p) else 0.0}


def get_args_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pte", help="the .pte model the app would run")
    parser.add_argument("events", nargs="+", help="OSDB event JSON file(s)")
    parser.add_argument("--input-size", type=int, help="the entry's input_size (default: from <model>.json)")
    parser.add_argument("--gate-pct", type=float, help="accel_std_threshold_pct (default 5)")
    parser.add_argument("--threshold-pct", type=float, help="seizure_probability_threshold_pct (default 50)")
    parser.add_argument("--plots", help="folder for one p(seizure) timeline PNG per event")
    parser.add_argument("--max-plots", type=int, default=50, help="at most this many plots")
    parser.add_argument("--json", help="write every event's replay to this JSON file")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    pte = exportUtils.check_file(args.pte)
    settings = app_settings(pte, args.input_size, args.gate_pct, args.threshold_pct)
    predict = nnTester.pte_predict_fn(pte)  # one forward call per window, as on the phone
    events = []
    for path in args.events:
        events += osdbData.read_osdb_file(exportUtils.check_file(path))[0]
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
    replays = []
    for i, event in enumerate(events):
        res = replay_event(event, predict, settings)
        replays.append(res)
        latency = "" if res["latency_s"] is None else f", latency {res['latency_s']:.0f} s"
        state = f"ALARM at {res['first_alarm_s']:+.0f} s" if res["first_alarm_s"] is not None else "no alarm"
        print(f"event {res['event_id']} ({res['type']}/{res['sub_type']}): {state}{latency}, "
              f"max p {res['max_p']:.3f}")
        if args.plots and i < args.max_plots:
            realData.plot_event_timeline(res["times"], res["p"], event.seizure_times,
                                         Path(args.plots) / f"event_{event.id}.png",
                                         f"event {event.id} {event.type}/{event.sub_type}",
                                         settings["seizure_probability_threshold_pct"] / 100)
    seizures = [r for r in replays if r["type"].lower() == "seizure"]
    others = [r for r in replays if r["type"].lower() != "seizure"]
    print(f"{sum(r['detected'] for r in seizures)} of "
          f"{len(seizures)} seizure events detected; {sum(r['first_alarm_s'] is not None for r in others)} of "
          f"{len(others)} other events alarmed")
    if args.json:
        exportUtils.write_json_atomic(args.json, {"settings": settings, "events": replays})
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
