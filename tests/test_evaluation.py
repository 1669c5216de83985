import csv
import json
import os

import numpy as np
import pytest

from evaluation import (alarm_episode_starts, compare_variants, evaluate_predictions, event_metrics,
                        format_summary, plot_training_history, roc_auc, threshold_sweep, window_metrics,
                        write_results)

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
    m = event_metrics(p, labels, ev, t, events, threshold=0.5)
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
    assert alarm_episode_starts(alarm, group, time).tolist() == [False, True, False, False, True, True]


def test_threshold_sweep_is_monotone():
    rng = np.random.default_rng(1)
    n_events, per_event = 40, 12
    ev = np.repeat(np.arange(n_events), per_event)
    t = np.tile(np.arange(per_event) * 5.0, n_events)
    events = [{"id": i, "label": int(i % 3 == 0), "seizure_times": (10, 40) if i % 6 == 0 else None}
              for i in range(n_events)]
    labels = np.array([events[e]["label"] for e in ev])
    p = np.clip(rng.normal(0.35 + 0.3 * labels, 0.25), 0, 1)
    sweep = threshold_sweep(p, labels, ev, t, events)
    assert len(sweep["thresholds"]) == 19
    assert sweep["thresholds"][0] == 0.05 and sweep["thresholds"][-1] == 0.95
    for key in ("event_tpr", "event_fpr", "window_tpr", "window_fpr"):
        assert np.all(np.diff(sweep[key]) <= 1e-12), key
    assert sweep["false_alarms_per_day"][0] > sweep["false_alarms_per_day"][-1]


def test_write_results_files(tmp_path):
    p, labels, ev, t, events = _hand_made_set()
    results, rows, sweep = evaluate_predictions(p, labels, ev, t, events)
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
    results, _, _ = evaluate_predictions(p, labels, ev, t, events)
    table = compare_variants({"pt": results, "int8": {**results, "latency_median_s": None}})
    lines = table.splitlines()
    assert len(lines) == 4 and lines[0].startswith("variant") and "n/a" in lines[3]
    summary = format_summary(results)
    assert "Event sensitivity 0.500" in summary and "7200.00" in summary


def test_summary_without_seizures(tmp_path):
    events = [{"id": 1, "label": 0, "type": "NDA"}]
    results, rows, sweep = evaluate_predictions([0.1, 0.7], [0, 0], [0, 0], [0.0, 5.0], events)
    assert results["event_tpr"] is None and results["latency_median_s"] is None
    assert "n/a" in format_summary(results)
    write_results(str(tmp_path), "", results, rows, sweep)
    plot_training_history({"loss": [1.0]}, str(tmp_path / "h.png"))
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG_MAGIC


def test_bad_event_index_rejected():
    with pytest.raises(ValueError):
        event_metrics([0.1, 0.2], [0, 0], [0, 1], [0.0, 5.0], [{"id": 1, "label": 0}])
