"""Replay the OSD app on a PC: its ML model(s), the OSD algorithm and the alarm escalation, datapoint by
datapoint over OSDB event files.

    python appReplay.py model.pte [more.pte or .pt ...] events.json [more.json ...] [--plots DIR]
    python appReplay.py model.pte [more ...] --response-map DIR   # what each model answers to, no events needed

Files ending in .pte (run with the ExecuTorch runtime, one window at a time as on the phone) or .pt
(checkpoints, run eager) are models; the others are OSDB event files. As the app does, per datapoint:
- SdAlgMl, per model: the 125 rawData samples / 1000 (g) go into a buffer of `input_size` samples;
  p = 0 until it is full and when 100*std/mean of the newest 125 samples is below
  accel_std_threshold_pct; else p = softmax(forward([1,1,input_size]))[1]; ALARM when p > threshold.
- SdAlgOsd on the raw samples with the OSD settings the event records, else the app's defaults.
- SeizureDetector: the results combined (ANY ALARM -> in alarm), then the escalation (ALARM on the 3rd
  in-alarm datapoint in a row; osdAlgorithm). Each algorithm is also escalated alone.
input_size is read from the .pte program (its input shape) or the checkpoint; thresholds come from the
flags, else the app entry `<model>.json` beside the model, else the app's defaults (50 %, 5 %).
A seizure event is detected by an algorithm when its state is ALARM on a datapoint holding part of the
seizure. Datapoints are those osdbData keeps (sorted by time, repeats dropped; the drops are reported
per reason). The replay runs on the main job's one timeline (appEvaluation.app_view), so it gives the
main job's figures for the same events and model: the buffer and the escalation start again after a
gap of more than 7.5 s between datapoints (the app itself keeps its buffer across such a gap, whose
window holds no signal the watch saw in one piece).
--response-map DIR writes each model's response map there (osdkit.reports.responseMap: 30 s bouts of
synthetic shaking, the model and the OSD algorithm each escalated alone), as the main job does for its own.
"""
from osdkit.cli import startup  # noqa: F401  isort: skip  (before the libraries: Ctrl-C while they load exits quietly)
import json
import math
import re
from pathlib import Path

import numpy as np

from osdkit.app import appEvaluation, appIndex, metrics
from osdkit.app.osdAlgorithm import ALARM
from osdkit.cli import cliUtils
from osdkit.data import osdbData, windowing
from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.model import checkpoints
from osdkit.reports import plots, responseMap
from osdkit.sim import osdbSim
from osdkit.training import nnTester

APP_DEFAULTS = {"accel_std_threshold_pct": appIndex.DEFAULT_GATE_PCT,
                "seizure_probability_threshold_pct": appIndex.DEFAULT_THRESHOLD_PCT}
MODEL_SUFFIXES = (".pte", ".pt")


def load_model(path, input_size=None, input_norm=None):
    """(predict, the model's own input_size) for a model the app can run: a .pte with one float32
    [1, 1, L] input and two finite logits out, or a checkpoint giving them; ExportError naming it else."""
    path = Path(path)
    if path.suffix == ".pte":
        _, own = exportCore.load_app_pte(path, osdbSim.reference_windows)
        return nnTester.pte_predict_fn(path), own
    model, shape, _ = checkpoints.model_from_checkpoint(path, (1, 1, input_size) if input_size else None,
                                                        input_norm=input_norm)
    windows = osdbSim.reference_windows((1, 1, shape[-1]), n=4)
    exportCore.check_logits(exportCore.eager_outputs(model, exportCore.as_inputs(windows, (1, 1, shape[-1]))),
                            path)
    return nnTester.eager_predict_fn(model), int(max(shape[1:]))


def model_entry(model_path, log=print):
    """The app entry beside the model (`<model>.json`, validated), or {} when there is none or it
    describes another file (its sha256 is not the .pte's: a warning, and the entry is ignored)."""
    entry_path = Path(model_path).with_suffix(".json")
    entry = appIndex.read_entry(entry_path) or {}
    if "sha256" in entry and Path(model_path).suffix == ".pte" and not appIndex.entry_matches(entry, model_path):
        log(f"warning: {entry_path}: its sha256 is not {model_path}'s (an entry for another file): ignored, "
            "using the flags and the app's defaults")
        return {}
    return entry


def app_settings(model_path, input_size=None, gate_pct=None, threshold_pct=None, own_size=None, log=print):
    """input_size (the model's own) and thresholds: flags first, then the entry beside the model, then the
    app's defaults. ValueError when the flag or the entry names an input_size the .pte does not take."""
    entry = model_entry(model_path, log)
    settings = {key: entry.get(key, default) for key, default in APP_DEFAULTS.items()}
    for key, value in (("accel_std_threshold_pct", gate_pct), ("seizure_probability_threshold_pct", threshold_pct)):
        if value is not None:
            settings[key] = value
    own = own_size if own_size is not None else load_model(model_path, input_size)[1]
    asked = input_size if input_size is not None else entry.get("input_size")
    if asked is not None and int(asked) != own and Path(model_path).suffix == ".pte":
        source = "--input-size" if input_size is not None else str(Path(model_path).with_suffix(".json"))
        raise ValueError(f"{model_path}: {source} says input_size {asked} but the program takes {own}")
    settings["input_size"] = int(asked) if asked is not None else own
    return settings


def model_p(events, predict, settings):
    """(windows, gated p(seizure)) of one model over the events: the app's buffer of input_size samples
    after each datapoint (windowing.make_windows, one window per datapoint), p = 0 where the movement
    gate holds."""
    windows = windowing.make_windows(events, settings["input_size"], osdbData.SAMPLES_PER_DP)
    gate = windowing.movement_gate(windows, settings["accel_std_threshold_pct"])
    return windows, nnTester.predict_windows(predict, windows) * gate


def read_event_files(paths):
    """Events of every file; one line per file with drops, by reason; ValueError for a file without
    a usable event (osdbData raises for an empty list or an object that is not an event)."""
    events = []
    for path in paths:
        file_events, stats = osdbData.read_osdb_file(exportCore.check_file(path))
        dropped = {**stats.skipped, **{f"repaired {k}": n for k, n in stats.repaired.items()}}
        if dropped:
            print(f"{path}: kept {stats.events_kept}/{stats.events_in} events, {stats.datapoints_kept}/"
                  f"{stats.datapoints_in} datapoints; " + ", ".join(f"{n} {reason}" for reason, n in dropped.items()))
        if not file_events:
            raise ValueError(f"{path}: none of its {stats.events_in} events is usable ("
                             + ", ".join(f"{n} {reason}" for reason, n in stats.skipped.items()) + ")")
        events += file_events
    return events


def replay(events, models, strategy="ANY"):
    """The app over all events on the main job's timeline (appEvaluation.app_view). models: {name:
    (predict, settings)}. Returns app_view's dict; its states have a column per model, "osd",
    "combined" (all combined, as the app alerts) and "osd_recorded" (the files' alarmState, when
    recorded)."""
    inputs = {}
    for name, (predict, s) in models.items():
        windows, p = model_p(events, predict, s)
        inputs[name] = (p, windows, s["seizure_probability_threshold_pct"] / 100)
    return appEvaluation.app_view(events, inputs, strategy)


def detections(state, timeline, events):
    """Per event of one column: first ALARM time, detection (ALARM inside the seizure) and latency;
    plus the column summary (appEvaluation.column_summary: event_tp, event_fp, ...)."""
    outcomes = appEvaluation.column_outcomes(state, timeline)
    summaries = [e.summary() for e in events]
    first_alarm = np.full(len(events), np.inf)
    alarm = state == ALARM
    np.minimum.at(first_alarm, timeline.event[alarm], timeline.time[alarm])
    latency = metrics.event_latency_s(outcomes["first_detection"], summaries)
    per_event = [{"first_alarm_s": float(f) if np.isfinite(f) else None,
                  "detected": bool(d) and e.label == 1,
                  "latency_s": float(lat) if np.isfinite(lat) and e.label == 1 else None}
                 for e, f, d, lat in zip(events, first_alarm, outcomes["detected"], latency)]
    return per_event, appEvaluation.column_summary(outcomes, summaries)


def _describe(d):
    if d["first_alarm_s"] is None:
        return "no ALARM"
    latency = f", latency {d['latency_s']:.0f} s" if d["latency_s"] is not None else ""
    return f"ALARM at {d['first_alarm_s']:+.0f} s{latency}"


def _fmt(value):
    return "n/a" if value is None else f"{value:.1f}"


def model_columns(paths):
    """A unique column name per model: its file name, or the path as given when two share a name;
    ValueError for one file given twice."""
    seen = {}
    for path in paths:
        key = Path(path).resolve()
        if key in seen:
            raise ValueError(f"{path}: model given twice (also as {seen[key]})")
        seen[key] = path
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


def plot_names(events):
    """A file name per event for its timeline: the event id with anything but letters, digits, '-', '_'
    and '.' replaced (no folder, never hidden), made unique with _2, _3 ... in event order."""
    names, used = [], set()
    for event in events:
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(event.id)).strip(".")[:100] or "event"
        name, n = f"event_{stem}.png", 1
        while name in used:
            n += 1
            name = f"event_{stem}_{n}.png"
        used.add(name)
        names.append(name)
    return names


def json_ready(value):
    """`value` with numpy arrays as lists and every NaN/inf as null: the report is strict JSON."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_ready(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(path, report):
    """The --json report, strict JSON (allow_nan=False), written atomically."""
    with fileUtils.atomic_output(path) as tmp:
        tmp.write_text(json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")


def write_response_maps(folder, models):
    """Each model's response map in `folder` (created), named after its column with anything but letters,
    digits, '-' and '_' replaced (model.pte -> model_pte_response_map.json), with its app settings."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (predict, settings) in models.items():
        stem = folder / (re.sub(r"[^A-Za-z0-9_-]", "_", name) + "_response_map")
        print(f"{name}: response map {stem}.json / .png")
        responseMap.write_response_map(stem, predict, settings["input_size"],
                                       settings["seizure_probability_threshold_pct"] / 100,
                                       settings["accel_std_threshold_pct"])


def get_args_parser():
    parser = cliUtils.CliParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="model(s) (.pte, .pt) and OSDB event JSON file(s)")
    parser.add_argument("--input-size", type=cliUtils.positive_int,
                        help="input_size of a .pt model (default: its checkpoint's)")
    parser.add_argument("--gate-pct", type=cliUtils.percent,
                        help="accel_std_threshold_pct, 0..100 (default: the entry beside the model, else 5)")
    parser.add_argument("--threshold-pct", type=cliUtils.percent,
                        help="seizure_probability_threshold_pct, 0..100 (default: the entry, else 50)")
    cliUtils.add_input_norm_arg(parser)
    parser.add_argument("--plots", help="folder for one timeline PNG per event (created)")
    parser.add_argument("--max-plots", type=cliUtils.positive_int, default=50,
                        help="at most this many plots (default: %(default)s)")
    parser.add_argument("--json", help="write every event's replay to this JSON file")
    parser.add_argument("--response-map", metavar="DIR",
                        help="write each model's response map (synthetic shaking) into this folder (created); "
                             "event files are then optional")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    model_paths = [Path(f) for f in args.files if Path(f).suffix in MODEL_SUFFIXES]
    event_paths = [f for f in args.files if Path(f).suffix not in MODEL_SUFFIXES]
    if not event_paths and not args.response_map:
        raise ValueError("no OSDB event file given (models end in .pte or .pt, event files do not)")
    if args.response_map and not model_paths:
        raise ValueError("--response-map needs a model (.pte or .pt)")
    cliUtils.check_output_path(args.json, "--json")
    cliUtils.check_output_folder(args.plots, "--plots")
    cliUtils.check_output_folder(args.response_map, "--response-map")
    models = {}
    for name, path in zip(model_columns(model_paths), model_paths):
        predict, own = load_model(path, args.input_size, args.input_norm)
        models[name] = (predict, app_settings(path, args.input_size, args.gate_pct, args.threshold_pct, own))
    if args.response_map:
        write_response_maps(Path(args.response_map), models)
    if not event_paths:
        return 0
    events = read_event_files(event_paths)
    run = replay(events, models)
    timeline = run["timeline"]
    shown = {**{m: m for m in models}, "osd": "OSD", "combined": "app", "osd_recorded": "recorded"}
    states = {shown[c]: s for c, s in run["states"].items() if c != "osd_recorded" or run["recorded_events"].all()}
    found = {c: detections(s, timeline, events) for c, s in states.items()}
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
    replays = []
    for i, (event, plot_name) in enumerate(zip(events, plot_names(events))):
        dps = slice(timeline.offsets[i], timeline.offsets[i + 1])
        p_text = "".join(f", max p {run['p'][m][dps].max():.3f} ({m})" for m in models)
        print(f"event {event.id} ({event.type}/{event.sub_type}): " +
              "; ".join(f"{c} {_describe(found[c][0][i])}" for c in states) + p_text)
        replays.append({"event_id": event.id, "type": event.type, "sub_type": event.sub_type,
                        "seizure_times": event.seizure_times, "times": timeline.time[dps],
                        "p": {m: run["p"][m][dps] for m in models},
                        "osd": {k: run["osd"][k][dps] for k in ("spec_power", "roi_power", "roi_ratio")},
                        "states": {c: s[dps] for c, s in states.items()},
                        "detections": {c: found[c][0][i] for c in states}})
        if args.plots and i < args.max_plots:
            plots.plot_app_timeline(
                Path(args.plots) / plot_name, f"event {event.id} {event.type}/{event.sub_type}",
                timeline.time[dps], event.seizure_times,
                {m: (run["p"][m][dps], s["seizure_probability_threshold_pct"] / 100) for m, (_, s) in models.items()},
                {k: v[dps] for k, v in run["osd"].items()}, {c: s[dps] for c, s in states.items()})
    n_seizures = sum(e.label == 1 for e in events)
    for column in [c for c in states if c != "app"] + ["app"]:
        summary = found[column][1]
        print(f"{column}: {summary['event_tp']} of {n_seizures} seizure events detected (ALARM inside the "
              f"seizure), {summary['event_fp']} of {len(events) - n_seizures} other events alarmed, "
              f"median latency {_fmt(summary['latency_median_s'])} s")
    if args.json:
        write_report(args.json, {
            "models": {m: s for m, (_, s) in models.items()}, "events": replays,
            "summary": {c: {k: v for k, v in found[c][1].items() if k != "latency_s"} for c in states}})
    return 0


if __name__ == "__main__":
    cliUtils.run_cli(main)
