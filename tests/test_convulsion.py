"""Latency from convulsion onset on hand-made p(seizure) sequences, and the model's own input size in
every real-data evaluation."""
import json
from pathlib import Path

import numpy as np
import pytest

from osdkit.app import appEvaluation, convulsionMetrics
from osdkit.data import windowing
from osdkit.data.osdbData import Event
from osdkit.reports import realDataReport
from osdkit.sim import osdbSim, simSeizures

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "event_45781_tonic_clonic.json"


def _event(convulsion, seizure=(-20.0, 40.0), n_dp=24):
    """A seizure event of n_dp datapoints, times 5..120 s from dataTime 60 s before the first sample."""
    return Event(id=1, user_id=1, type="Seizure", sub_type="Tonic-Clonic", desc="", data_time=60.0,
                 seizure_times=seizure, label=1, dp_times=60.0 - 60 + np.arange(1, n_dp + 1) * 5.0,
                 mag=np.ones((n_dp, 125), np.float32), acc3d=None, alarm_state=np.zeros(n_dp, np.int8),
                 hr=np.zeros(n_dp, np.float32), source="Garmin", convulsion_times=convulsion)


def _rows(p_dp, event):
    """convulsion_rows of the ML column for p per datapoint (one 5 s window per datapoint)."""
    windows = windowing.make_windows([event], 125, 125)
    app = appEvaluation.app_states(np.asarray(p_dp, float), windows, [event], 0.5, 5.0)
    return convulsionMetrics.convulsion_rows(app["states"]["ml"], app["timeline"], [event])


def test_latency_from_convulsion_onset_on_hand_made_p():
    # datapoint times (s from dataTime): -55, -50, ..., 60; convulsion 0..20 s inside the seizure -20..40 s
    event = _event((0.0, 20.0))
    times = event.dp_times - event.data_time
    p = ((times > 0) & (times <= 20)).astype(float)  # in alarm from the datapoint ending at 5 s
    row, = _rows(p, event)
    assert row["first_alarm_s"] == 15.0 and row["latency_s"] == 15.0 and row["before_end"]
    late = ((times > 5) & (times <= 30)).astype(float)  # 3rd in a row at 20 s: still the convulsion's end
    assert _rows(late, event)[0]["before_end"] and _rows(late, event)[0]["latency_s"] == 20.0
    later = ((times > 10) & (times <= 30)).astype(float)  # 3rd in a row at 25 s: after the end
    row, = _rows(later, event)
    assert row["latency_s"] == 25.0 and not row["before_end"]
    early = ((times > -20) & (times <= 10)).astype(float)  # ALARM at -5 s, in the seizure before the shaking
    assert _rows(early, event)[0]["latency_s"] == -5.0 and _rows(early, event)[0]["before_end"]
    never = np.r_[np.ones(3), np.zeros(len(times) - 3)]  # ALARM before the labelled seizure does not count
    assert _rows(never, event)[0] == {"event_id": 1, "convulsion_s": 20.0, "first_alarm_s": None,
                                      "latency_s": None, "before_end": False}


def test_convulsion_summary_counts_only_15_to_30_s():
    rows = [{"convulsion_s": 20.0, "latency_s": 10.0, "before_end": True},
            {"convulsion_s": 15.0, "latency_s": 18.0, "before_end": False},
            {"convulsion_s": 30.0, "latency_s": None, "before_end": False},
            {"convulsion_s": 60.0, "latency_s": 5.0, "before_end": True}]
    s = convulsionMetrics.convulsion_summary(rows)
    assert (s["n"], s["n_before_end"], s["n_no_alarm"]) == (3, 1, 1)
    assert s["before_end_share"] == pytest.approx(1 / 3) and s["latency_median_s"] == 14.0
    assert convulsionMetrics.convulsion_summary([])["before_end_share"] is None


def test_simulated_tonic_clonic_records_its_convulsion_inside_the_seizure():
    rng = np.random.default_rng(3)
    user = osdbSim.make_user(rng, 1)
    found = 0
    for k in range(6):
        event = osdbSim.simulate_event(rng, user, "Seizure", 10000 + k, osdbSim.dt.datetime(2023, 1, 1),
                                       sub_type="Tonic-Clonic")
        if "convulsionTimes" in event:
            start, end = event["convulsionTimes"]
            assert event["seizureTimes"][0] < start < end <= event["seizureTimes"][1] + 0.05
            found += 1
    assert found == 6
    lengths = [simSeizures.phases(rng, user, "Tonic-Clonic")[1][1] for _ in range(400)]
    assert 0.4 < np.mean((np.array(lengths) >= 15) & (np.array(lengths) <= 30)) < 0.6


def test_every_real_evaluation_uses_the_models_input_size(tmp_path):
    """The bug: with bufferSeconds 15 the real-data step fed 750-sample windows to a 375-input model."""
    seen = []

    def predict(windows):
        seen.append(windows.shape[1:])
        return np.zeros(len(windows))
    (tmp_path / "osdb_example").mkdir()
    (tmp_path / "osdb_example" / "event.json").write_bytes(FIXTURE.read_bytes())
    adl = tmp_path / "adl_wrist" / "Walk"
    adl.mkdir(parents=True)
    np.savetxt(adl / "Accelerometer-2011-03-24-09-51-07-walk-f1.txt",
               np.random.default_rng(0).integers(10, 54, (1000, 3)), fmt="%d")
    (tmp_path / "wisdm_watch").mkdir()
    (tmp_path / "wisdm_watch" / "data_1600_accel_watch.txt").write_text("".join(
        f"1600,A,0,{np.sin(i):.3f},9.8;\n" for i in range(600)))
    real = realDataReport.evaluate_real(tmp_path, predict, 0.5, 5.0, window_samples=375)
    assert set(real) == {"event", "adl_wrist", "wisdm_watch"} and seen
    assert set(seen) == {(1, 375)}
    assert real["adl_wrist"]["window_samples"] == 375 and real["wisdm_watch"]["n_windows"] > 0
    json.dumps(real)


def test_a_15_s_model_end_to_end_entry_and_real_step(tmp_path):
    """bufferSeconds 15: the exported program takes [1, 1, 375], its app entry says input_size 375, and the
    main job's real-data step (nnTester.evaluate_real) runs it on 375-sample windows without failing."""
    import torch

    from osdkit.app import appIndex
    from osdkit.export import exportCore
    from osdkit.model import deepEpiCnn
    from osdkit.training import nnTester
    torch.manual_seed(0)
    model = deepEpiCnn.DeepEpiCnn(375, input_norm="meanMagnitude").eval()
    shape = (1, 1, 375)
    pte = tmp_path / "model.pte"
    report = exportCore.export_pte(model, shape, pte, inputs=osdbSim.reference_windows(shape, n=8))
    entry = appIndex.app_entry(pte, report)
    assert entry["input_size"] == 375 == nnTester.pte_input_size(pte)
    real_dir = tmp_path / "real"
    (real_dir / "osdb_example").mkdir(parents=True)
    (real_dir / "osdb_example" / "event.json").write_bytes(FIXTURE.read_bytes())
    real = nnTester.evaluate_real(real_dir, pte, {"threshold_pct": 50, "gate_pct": 5}, tmp_path)
    assert real["event"]["n_windows"] == 29 - 2  # 3 datapoints fill the 15 s buffer (the 30 s one needed 6)
