import csv
import json
import os

import numpy as np
import pytest

from osdkit.app.appEvaluation import app_states, build_timeline, evaluate_app, ml_on_timeline
from osdkit.app.metrics import alarm_episode_starts, event_metrics, roc_auc, window_metrics
from osdkit.app.osdAlgorithm import ALARM
from osdkit.data.osdbData import Event
from osdkit.data.windowing import make_windows
from osdkit.reports.plots import (compare_variants, compare_variants_app, format_app_table, plot_app_timeline,
                                  plot_training_history, write_app_results, write_results)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_window_metrics_hand_computed():
    p = np.array([0.9, 0.6, 0.4, 0.2, 0.7, 0.5])
    labels = np.array([1, 1, 1, 0, 0, 0])
    m = window_metrics(p, labels, threshold=0.5)
    # p == threshold does not alarm (the app alarms on p > threshold)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 2, 1)
    assert m["tpr"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # pairs (pos, neg) ranked correctly: 3 + 2 + 1 of 9
    assert m["auc"] == pytest.approx(6 / 9)
    assert m["num_positive_epoch"] == 3 and m["n_windows"] == 6


def test_auc_perfect_reversed_ties_and_single_class():
    labels = np.array([0, 0, 1, 1, 0, 1])
    score = labels + 0.1 * np.arange(6)
    assert roc_auc(score, labels) == pytest.approx(1.0)
    assert roc_auc(-score, labels) == pytest.approx(0.0)
    assert roc_auc(np.full(6, 0.3), labels) == pytest.approx(0.5)
    assert roc_auc([0.1, 0.9], [1, 1]) is None
    m = window_metrics([0.1, 0.2], [0, 0])
    assert m["tpr"] is None and m["fpr"] == 0.0 and m["auc"] is None


def _hand_made_set():
    """Six events; windows given in shuffled order to check that nothing depends on it."""
    events = [
        {"id": 100, "user_id": 1, "type": "Seizure", "sub_type": "Tonic-Clonic", "label": 1, "seizure_times": (0, 60)},
        {"id": 101, "user_id": 2, "type": "Seizure", "sub_type": "Atonic", "label": 1, "seizure_times": None},
        {"id": 102, "user_id": 2, "type": "Seizure", "sub_type": "tonic clonic", "label": 1, "seizure_times": [0, 30]},
        {"id": 103, "user_id": 3, "type": "False Alarm", "sub_type": "Brushing", "label": 0, "seizure_times": None},
        {"id": 104, "user_id": 3, "type": "NDA", "sub_type": "", "label": 0, "seizure_times": None},
        {"id": 105, "user_id": 4, "type": "Seizure", "sub_type": "Other", "label": 1, "seizure_times": (0, 10)},
    ]
    windows = []  # (event, end_time, label, p)
    # 100: alarm at -5 s is outside the seizure (label 0) and does not count; detection at 10 s
    for t, p in zip([-10, -5, 0, 5, 10, 15, 20], [0.1, 0.9, 0.2, 0.3, 0.8, 0.9, 0.1]):
        windows.append((0, t, int(0 < t < 90), p))
    windows.append((1, 0, 1, 0.6))                      # 101: no seizure times, any window counts
    for t in [0, 5, 10, 15]:
        windows.append((2, t, int(t > 0), 0.2))         # 102: never alarms
    # 103: episodes {0,5}, {15}, {25,30}, {100}, {110} (10 s gap > 7.5 s)
    for t, p in zip([0, 5, 10, 15, 20, 25, 30, 100, 110], [0.9, 0.7, 0.1, 0.6, 0.4, 0.8, 0.9, 0.7, 0.7]):
        windows.append((3, t, 0, p))
    for t in [0, 5, 10]:
        windows.append((4, t, 0, 0.3))                  # 104: quiet; 105 has no windows
    ev, t, labels, p = (np.array(c) for c in zip(*windows))
    order = np.random.default_rng(0).permutation(len(p))
    return p[order], labels[order], ev[order], t[order].astype(float), events


def test_event_metrics_hand_made():
    p, labels, ev, t, events = _hand_made_set()
    m = event_metrics(p, labels, ev, t, events, 0.5, 5.0)
    assert (m["event_tp"], m["event_fn"], m["event_fp"], m["event_tn"]) == (2, 2, 1, 1)
    assert m["event_tpr"] == 0.5 and m["event_fpr"] == 0.5
    assert m["latency_s"] == [10.0]
    assert (m["latency_median_s"], m["latency_mean_s"], m["latency_max_s"]) == (10.0, 10.0, 10.0)
    assert m["latency_n_detected"] == 1 and m["latency_n_undetected"] == 2  # events 102 and 105
    assert m["false_alarm_episodes"] == 5
    assert m["nonseizure_hours"] == pytest.approx(12 * 5 / 3600)
    assert m["false_alarms_per_day"] == pytest.approx(5 / (12 * 5 / 86400))  # 7200
    assert m["tonic_clonic_tpr"] == 0.5
    assert m["sensitivity_by_user"]["2"] == {"n": 2, "detected": 1, "tpr": 0.5}
    assert m["sensitivity_by_subtype"]["Atonic"]["tpr"] == 1.0
    assert m["false_alarm_rate_by_subtype"]["Brushing"] == {"n": 1, "alarmed": 1, "fpr": 1.0}
    assert m["n_events_by_type"] == {"Seizure": 4, "False Alarm": 1, "NDA": 1}
    assert m["num_positive_event"] == 4 and m["n_events_without_windows"] == 1
    rows = {r["EventID"]: r for r in m["event_rows"]}
    assert rows[100]["ModelPrediction"] == 1 and rows[100]["LatencyS"] == 10.0
    assert rows[100]["NumAlarmEpisodes"] == 2
    assert [rows[100][f"dp{i}"] for i in range(7)] == [0.1, 0.9, 0.2, 0.3, 0.8, 0.9, 0.1]
    assert rows[101]["ModelPrediction"] == 1 and rows[101]["LatencyS"] is None
    assert rows[102]["ModelPrediction"] == 0 and rows[102]["MaxSeizureProbability"] == 0.2
    assert rows[103]["NumAlarmEpisodes"] == 5 and rows[103]["ModelPrediction"] == 1
    assert rows[105]["MaxSeizureProbability"] is None and "dp0" not in rows[105]


def test_alarm_episode_starts_keeps_input_order():
    alarm = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
    group = np.array([0, 0, 0, 0, 1, 1])
    time = np.array([10, 5, 0, 15, 5, 20.0])
    # group 0 by time: 0 (no), 5, 10 (one episode), 15 (joins it); group 1: 5 and 20 (gap 15 s)
    assert alarm_episode_starts(alarm, group, time, 5.0).tolist() == [False, True, False, False, True, True]


def _evaluate(p, labels, ev, t, events, threshold, step_s):
    """Window and event metrics of single windows, and a two-threshold sweep, as write_results takes them."""
    single = event_metrics(p, labels, ev, t, events, threshold, step_s)
    rows = single.pop("event_rows")
    keys = ("event_tpr", "event_fpr", "false_alarms_per_day", "latency_median_s", "window_tpr", "window_fpr")
    sweep = {"thresholds": [0.05, 0.5], **{k: [None, single.get(k)] for k in keys}}
    return {**window_metrics(p, labels, threshold), **single}, rows, sweep


def test_write_results_files(tmp_path):
    p, labels, ev, t, events = _hand_made_set()
    results, rows, sweep = _evaluate(p, labels, ev, t, events, 0.5, 5.0)
    history = {"loss": [1.0, 0.6], "val_loss": [1.1, 0.8], "accuracy": [0.6, 0.7], "lr": [1e-3, 5e-4],
               "val_sensitivity": [0.5, None], "val_fpr": [0.2, 0.1]}
    paths = write_results(str(tmp_path / "out"), "m1_", results, rows, sweep, history)
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == sorted(os.path.basename(x) for x in paths)
    assert "m1_testResults.json" in names and "m1_training_history.png" in names
    with open(tmp_path / "out" / "m1_testResults.json") as f:
        saved = json.load(f)
    for key in ("tpr", "fpr", "tp", "fp", "tn", "fn", "accuracy", "auc", "event_tpr", "event_fpr", "event_tp",
                "event_fn", "false_alarms_per_day", "latency_median_s", "n_events_by_type", "threshold",
                "num_positive_epoch", "num_positive_event"):
        assert key in saved, key
    assert saved["event_tpr"] == 0.5
    with open(tmp_path / "out" / "m1_event_results.csv") as f:
        table = list(csv.reader(f))
    assert table[0][:9] == ["EventID", "UserID", "Type", "SubType", "ActualLabel", "ModelPrediction",
                            "MaxSeizureProbability", "LatencyS", "NumAlarmEpisodes"]
    assert table[0][9:] == [f"dp{i}" for i in range(9)]
    assert len(table) == 7
    assert table[1][:9] == ["100", "1", "Seizure", "Tonic-Clonic", "1", "1", "0.9", "10.0", "2"]
    with open(tmp_path / "out" / "m1_event_threshold_data.json") as f:
        assert json.load(f)["thresholds"][0] == 0.05
    for name in names:
        if name.endswith(".png"):
            assert (tmp_path / "out" / name).read_bytes()[:8] == PNG_MAGIC


def test_text_summaries():
    p, labels, ev, t, events = _hand_made_set()
    results, _, _ = _evaluate(p, labels, ev, t, events, 0.5, 5.0)
    table = compare_variants({"pt": results, "int8": {**results, "latency_median_s": None}})
    lines = table.splitlines()
    assert len(lines) == 5 and lines[0].startswith("variant") and "n/a" in lines[3]
    assert lines[4].endswith("not of daily life")  # issue 17: FA/day of recorded events
    assert results["event_tpr"] == 0.5 and results["false_alarms_per_day"] == pytest.approx(7200.0)


def test_summary_without_seizures(tmp_path):
    events = [{"id": 1, "label": 0, "type": "NDA"}]
    results, rows, sweep = _evaluate([0.1, 0.7], [0, 0], [0, 0], [0.0, 5.0], events, 0.5, 5.0)
    assert results["event_tpr"] is None and results["latency_median_s"] is None
    write_results(str(tmp_path), "", results, rows, sweep)
    plot_training_history({"loss": [1.0]}, str(tmp_path / "h.png"))
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC


def test_bad_event_index_rejected():
    with pytest.raises(ValueError):
        event_metrics([0.1, 0.2], [0, 0], [0, 1], [0.0, 5.0], [{"id": 1, "label": 0}], 0.5, 5.0)


def test_window_step_is_a_required_input():
    """Issue 13 bug 1: with step_s defaulting to 5 s, callers that forgot it got false alarms per day
    wrong whenever the windows were not 5 s apart. A 60 s bout of 10 s windows in 1 h is one episode."""
    p, labels, ev, t, events = _hand_made_set()
    with pytest.raises(TypeError):
        event_metrics(p, labels, ev, t, events, 0.5)
    t10 = np.arange(360) * 10.0
    p10 = np.where((t10 >= 600) & (t10 < 660), 0.9, 0.1)
    m = event_metrics(p10, np.zeros(360), np.zeros(360, int), t10, [{"id": 1, "label": 0}], 0.5, 10.0)
    assert m["false_alarm_episodes"] == 1 and m["false_alarms_per_day"] == pytest.approx(24.0)


# ---------------------------------------------------------------- the app's view (appEvaluation)
QUIET = np.full(125, 1000.0)
OSD_ALARM = 1000 + 600 * np.sin(2 * np.pi * 5 * np.arange(125) / 25)  # roi far above 100, ratio 100 > 57


def _event(event_id, label, n, osd_alarm_dps=(), seizure_times=None, sub_type="Tonic-Clonic", recorded=True):
    """An Event of n datapoints at t = 5, 10, ... s after data_time 0; OSD in alarm on osd_alarm_dps."""
    mag = np.stack([OSD_ALARM if k in osd_alarm_dps else QUIET for k in range(n)]).astype(np.float32)
    alarm_state = np.zeros(n, np.int8) if recorded else np.full(n, -1, np.int8)
    return Event(id=event_id, user_id=1, type="Seizure" if label else "NDA", sub_type=sub_type, desc="",
                 data_time=0.0, seizure_times=seizure_times, label=label, dp_times=5.0 * np.arange(1, n + 1),
                 mag=mag, acc3d=None, alarm_state=alarm_state, hr=np.full(n, np.nan, np.float32), source=None)


def _app_set():
    """A: seizure (40, 80) s, OSD in alarm on datapoints 8-11 (t 45-60), ML p 0.9 on 12-16 (t 65-85);
    B: NDA, OSD in alarm on 0-2 (before any window), ML on 6-7 (2 in a row) and 9-11;
    C: seizure without times, nothing alarms, no recorded states. One window per datapoint from the 6th."""
    events = [_event(1, 1, 20, range(8, 12), (40.0, 80.0)), _event(2, 0, 12, range(0, 3), sub_type="Walking"),
              _event(3, 1, 8, sub_type="Focal", recorded=False)]
    events[0].alarm_state[[10, 11]] = ALARM  # what the watch recorded: its OSD state ...
    events[0].alarm_state[[9, 12]] = 1
    events[1].alarm_state[[1, 3]] = 1
    events[1].alarm_state[2] = ALARM
    events[1].alarm_state[4] = 1  # ... except here (recomputed: OK)
    windows = make_windows(events)
    dp = np.round(windows.end_time / 5).astype(int) - 1
    ev = windows.event_index
    p = np.where(((ev == 0) & (dp >= 12) & (dp <= 16)) | ((ev == 1) & np.isin(dp, [6, 7, 9, 10, 11])), 0.9, 0.1)
    return events, windows, p


def test_app_columns_hand_made():
    events, windows, p = _app_set()
    results, rows, sweep = evaluate_app(p, windows, events, threshold=0.5)
    assert windows.step_s == 5.0 and results["step_s"] == 5.0 and results["n_datapoints"] == 40
    # ML: A ALARM at t 75 (3rd of 65, 70, 75) inside the seizure; B ALARM once (dp 11); C nothing
    assert [results[f"ml_event_{k}"] for k in ("tp", "fn", "fp", "tn")] == [1, 1, 1, 0]
    assert results["ml_latency_s"] == [35.0] and results["ml_false_alarm_episodes"] == 1
    # OSD: A ALARM at t 55; B ALARM at dp 2 (t 15), where the model has no window yet
    assert results["osd_event_tp"] == 1 and results["osd_event_fp"] == 1 and results["osd_latency_s"] == [15.0]
    # combined: A in alarm on dp 8-16, ALARM from dp 10; B: dp 0-2 ALARM, 3 WARNING, ..., 9-11 ALARM again
    assert results["combined_latency_s"] == [15.0] and results["combined_false_alarm_episodes"] == 2
    assert results["ml_false_alarms_per_day"] == pytest.approx(86400 / 60)  # 1 episode in B's 12 x 5 s
    assert results["combined_false_alarms_per_day"] == pytest.approx(2 * 86400 / 60)
    assert results["ml_tonic_clonic_tpr"] == 1.0 and results["ml_sensitivity_by_subtype"]["Focal"]["tpr"] == 0.0
    # the model's single windows, no escalation: A detected at t 65 (latency 25), B's 2-in-a-row counts
    assert results["event_tp"] == 1 and results["latency_s"] == [25.0] and results["false_alarm_episodes"] == 2
    # windows (dp >= 5): OSD ALARM at A's dp 10, 11 (positives); none at B's windows
    assert (results["tpOsd"], results["fpOsd"], results["fnOsd"], results["tnOsd"]) == (2, 0, 13, 10)
    assert results["tprOsd"] == pytest.approx(2 / 15) and results["accuracyOsd"] == pytest.approx(12 / 25)
    # recorded: events A and B; B's dp 4 differs from the recomputed OSD state
    assert results["osd_recorded_n_events"] == 2 and results["osd_recorded_n_datapoints"] == 32
    assert results["osd_recorded_dp_agreement"] == pytest.approx(31 / 32)
    assert results["osd_recorded_event_agreement"] == 1.0
    assert results["osd_recorded_event_tp"] == 1 and results["osd_recorded_event_fn"] == 0
    row = {r["EventID"]: r for r in rows}
    assert (row[1]["AppModelLatencyS"], row[1]["OSDLatencyS"], row[1]["CombinedLatencyS"]) == (35.0, 15.0, 15.0)
    assert row[2]["OSDPrediction"] == 1 and row[3]["RecordedOSDPrediction"] is None
    assert list(row[1])[-1] == "dp14" and list(row[1]).index("RecordedOSDLatencyS") < list(row[1]).index("dp0")
    at = sweep["thresholds"].index(0.5)
    assert sweep["alarm_rule"] == "app escalation" and sweep["event_tpr"][at] == results["ml_event_tpr"]
    assert sweep["false_alarms_per_day"][at] == results["ml_false_alarms_per_day"]
    assert sweep["event_tpr"][-1] == 0.0  # p never above 0.95
    json.dumps(results)


def test_app_view_with_two_datapoint_steps_counts_one_bout_once():
    """A 60 s alarm bout in 1 h of non-seizure data, windows every 10 s: one ALARM episode (24 per day),
    one alarm per 10 s window standing for two datapoints."""
    event = _event(1, 0, 720, sub_type="Walking")
    windows = make_windows([event], step_samples=250)
    assert windows.step_s == 10.0
    p = np.where((windows.end_time > 600) & (windows.end_time <= 660), 0.9, 0.1)
    results, _, sweep = evaluate_app(p, windows, [event], 0.5)
    assert results["ml_false_alarm_episodes"] == 1 and results["ml_false_alarms_per_day"] == pytest.approx(24.0)
    # single windows: time = 358 windows x 10 s (the first window ends after 30 s)
    assert results["false_alarm_episodes"] == 1 and results["false_alarms_per_day"] == pytest.approx(86400 / 3580)
    timeline = build_timeline([event])
    p_dp = ml_on_timeline(timeline, windows, p, 10.0)
    assert p_dp[:5].tolist() == [0.0] * 5 and p_dp[120:134].tolist() == [0.1] + [0.9] * 12 + [0.1]
    with pytest.raises(ValueError, match="differs"):
        evaluate_app(p, windows, [event], 0.5, step_s=5.0)


def test_app_report_files_and_table(tmp_path):
    events, windows, p = _app_set()
    results, rows, sweep = evaluate_app(p, windows, events, threshold=0.5)
    paths = write_app_results(str(tmp_path), "m_", results, rows, sweep)
    assert os.path.basename(paths[-1]) == "m_app_columns.png"
    for path in paths:
        if path.endswith(".png"):
            assert open(path, "rb").read(8) == PNG_MAGIC
    with open(tmp_path / "m_event_results.csv") as f:
        header = next(csv.reader(f))
    assert header[9:13] == ["AppModelPrediction", "AppModelLatencyS", "OSDPrediction", "OSDLatencyS"]
    lines = format_app_table(results).splitlines()
    assert lines[1].split() == ["ML", "model", "OSD", "algorithm", "combined", "OSD", "recorded"]
    assert lines[2].split()[2:] == ["0.500", "(1/2)", "0.500", "(1/2)", "0.500", "(1/2)", "1.000", "(1/1)"]
    assert "false alarms/day" in lines[-5] and "recomputed OSD state = recorded on 0.969 of 32" in lines[-1]
    timeline_png = tmp_path / "timeline.png"
    app = app_states(p, windows, events, 0.5, 5.0)
    state = app["states"]["osd_recorded"].copy()
    state[3] = 5  # a manual alarm is left out of the plot
    plot_app_timeline(str(timeline_png), "event", app["timeline"].time, (40, 80), {"m": (app["p"], 0.5)},
                      app["osd"], {"recorded": state})
    assert timeline_png.read_bytes()[:8] == PNG_MAGIC


def test_windows_must_belong_to_the_events():
    events, windows, p = _app_set()
    with pytest.raises(ValueError, match="do not fall on"):
        evaluate_app(p, windows, [events[1], events[0], events[2]], 0.5)


def test_variants_side_by_side_with_the_osd():
    events, windows, p = _app_set()
    pt = evaluate_app(p, windows, events, 0.5)[0]
    pte = evaluate_app(np.where(p > 0.5, 0.4, p), windows, events, 0.5)[0]  # never alarms
    lines = compare_variants_app({"pt": pt, "pte": pte, "parity": {"n": 1}}).splitlines()
    assert [line.split("  ")[0] for line in lines[2:-1]] == ["pt (ML)", "pte (ML)", "OSD algorithm", "pt + OSD",
                                                           "pte + OSD", "OSD recorded"]
    assert lines[-1].startswith("FA/day: false alarms per day of recorded")  # issue 17
    assert lines[3].split()[-6:] == ["0.000", "0.000", "0.00", "n/a", "-", "-"]  # no convulsionTimes here
    assert lines[6].split()[-6:-2] == ["0.500", "1.000", "1440.00", "15.0"]  # pte + OSD = the OSD alone here
    assert compare_variants_app({"pt": {"event_tpr": 1.0}}) == ""
