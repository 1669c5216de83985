"""The convulsion check (convulsionCheck): more simulated people, never the database's, replayed as the app
runs the model; its figures per variant, printed and in the model card."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from osdkit.app import appEvaluation
from osdkit.data import osdbData
from osdkit.reports import modelCard, plots
from osdkit.sim import osdbSim
from osdkit.training import configUtils, convulsionCheck, nnTester

ALARM_SETTINGS = {"threshold_pct": 50, "gate_pct": 0}


class ConstantModel(torch.nn.Module):
    """Logits giving p(seizure) = sigmoid(logit) on every window."""

    def __init__(self, logit):
        super().__init__()
        self.logit = logit

    def forward(self, x):
        return torch.stack([torch.zeros(len(x)), torch.full((len(x),), self.logit)], 1)


def _check(n_users=3, buffer_s=15):
    run = configUtils.run_config({"evaluation": {"convulsionCheckUsers": n_users},
                                  "modelConfig": {"bufferSeconds": buffer_s}})
    return convulsionCheck.check_windows(run)


def _check_results(tmp_path, check, logit, key="convulsion_check"):
    events, windows = check
    data = SimpleNamespace(test=windows, test_events=events)
    predictors = {"pt": nnTester.eager_predict_fn(ConstantModel(logit))}
    return nnTester.evaluate_models(tmp_path, "m", predictors, data, ALARM_SETTINGS, check)["pt"][key]


def test_the_check_people_are_never_the_databases(tmp_path):
    db = tmp_path / "db.json"
    osdbSim.simulate_database(db, n_users=3, seizures_per_user=2, nda_per_user=0, false_alarms_per_user=0, seed=42)
    database, _ = osdbData.read_osdb_file(db)
    check = convulsionCheck.check_events(3, 42)
    assert len(check) == 3 * convulsionCheck.SEIZURES_PER_USER
    assert {str(e.user_id) for e in check} == {str(convulsionCheck.CHECK_FIRST_USER_ID + i) for i in range(3)}
    assert {str(e.user_id) for e in check}.isdisjoint({str(e.user_id) for e in database})
    assert {e.id for e in check}.isdisjoint({e.id for e in database})
    assert all(e.type == "Seizure" and e.sub_type == "Tonic-Clonic" and e.convulsion_times is not None
               for e in check)
    # other people, not the database's people renumbered; the same seed gives the same check again
    assert not any(np.array_equal(a.mag, b.mag) for a in check for b in database)
    convulsionCheck.check_events.cache_clear()  # simulate again, not the cached copy
    again, other = convulsionCheck.check_events(3, 42), convulsionCheck.check_events(3, 43)
    assert all(np.array_equal(a.mag, b.mag) for a, b in zip(check, again))
    assert not any(np.array_equal(a.mag, b.mag) for a, b in zip(check, other))


def test_the_check_is_off_unless_asked_and_refuses_a_negative_count():
    assert configUtils.run_config({}).evaluation.convulsionCheckUsers == 0
    assert convulsionCheck.check_windows(configUtils.run_config({})) is None
    with pytest.raises(configUtils.ConfigError, match="convulsionCheckUsers"):
        configUtils.validate({"evaluation": {"convulsionCheckUsers": -1}})


def test_the_check_replays_the_model_as_the_app_does(tmp_path):
    """p = 1 everywhere: ML is in alarm from the first full window (window_samples / 125 datapoints in),
    ALARM two datapoints later; the first ALARM inside the labelled seizure must come by the convulsion's
    end. p = 0: no convulsion alarmed. The OSD column does not depend on the model."""
    check = _check(n_users=4, buffer_s=15)
    events, windows = check
    first_full = windows.window_samples // 125 - 1
    expected = []
    for event in events:
        start, end = event.convulsion_times
        if not 15 <= end - start <= 30:
            continue
        t = event.dp_times - event.data_time
        hits = np.flatnonzero(appEvaluation.seizure_datapoints(event, t) & (np.arange(len(t)) >= first_full + 2))
        expected.append(bool(len(hits)) and t[hits[0]] <= end + 1e-9)
    always, never = _check_results(tmp_path, check, 40.0), _check_results(tmp_path, check, -40.0)
    assert always["users"] == 4 and always["events"] == 4 * convulsionCheck.SEIZURES_PER_USER
    assert expected and always["ml"]["n"] == never["ml"]["n"] == len(expected)
    assert always["ml"]["n_before_end"] == sum(expected)
    assert never["ml"]["n_before_end"] == 0 and never["ml"]["n_no_alarm"] == len(expected)
    assert always["osd"] == never["osd"]
    assert never["combined"]["n_before_end"] == never["osd"]["n_before_end"]


def test_a_slower_watch_keeps_what_its_rate_holds_and_fills_25_hz():
    """A 16 Hz watch keeps a 3 Hz swing and loses a 10 Hz tone (above its 8 Hz Nyquist rate); "repeat"
    holds each sample until the next, "linear" lies on the lines between them; every other field of the
    event stays."""
    assert convulsionCheck.to_25_hz([0.0, 10, 20, 30], 12.5, 6, "repeat").tolist() == [0, 0, 10, 10, 20, 20]
    assert np.allclose(convulsionCheck.to_25_hz([0.0, 16, 32], 16.0, 4, "linear"), [0, 10.24, 20.48, 30.72])
    with pytest.raises(ValueError, match="unknown way to 25 Hz 'cubic'"):
        convulsionCheck.to_25_hz([0.0, 1], 16.0, 3, "cubic")
    t = np.arange(40 * 125) / 25
    for hz, kept in ((3.0, True), (10.0, False)):
        mag = (1000 + 300 * np.sin(2 * np.pi * hz * t)).astype(np.float32).reshape(40, 125)
        event = osdbData.Event(id=1, user_id=2, type="Seizure", sub_type="Tonic-Clonic", desc="", data_time=0.0,
                               seizure_times=(0, 100), label=1, dp_times=5.0 * np.arange(1, 41), mag=mag, acc3d=None,
                               alarm_state=np.zeros(40, np.int8), hr=np.full(40, np.nan, np.float32), source=None,
                               convulsion_times=(20, 40))
        for how in convulsionCheck.TO_25_HZ:
            slow = convulsionCheck.slower_watch_events([event], how)[0]
            assert slow.mag.shape == mag.shape and slow.mag.dtype == np.float32
            assert slow.convulsion_times == (20, 40) and np.array_equal(slow.dp_times, event.dp_times)
            sd = slow.mag[4:-4].std()
            assert (0.75 * 212 < sd < 1.1 * 212) if kept else sd < 0.2 * 212, (hz, how, sd)
            assert abs(slow.mag[4:-4].mean() - 1000) < 20  # the level kept (a held sample shifts it a little)


def test_the_check_as_a_slower_watch_gives_it(tmp_path):
    """The run's model on the check's seizures as a 16 Hz watch gives them, each way to 25 Hz: the same
    windows and convulsions (a model in alarm everywhere alarms the same ones), the OSD algorithm on the
    slower watch's signal."""
    check = _check(n_users=4, buffer_s=15)
    slower = convulsionCheck.slower_watch_windows(check)
    assert set(slower) == set(convulsionCheck.TO_25_HZ)
    for events, windows in slower.values():
        assert np.array_equal(windows.starts, check[1].starts) and np.array_equal(windows.labels, check[1].labels)
        assert not np.array_equal(windows.signal, check[1].signal)
    always = _check_results(tmp_path, check, 40.0)
    out = _check_results(tmp_path, check, 40.0, "convulsion_check_slower_watch")
    assert out["rate_hz"] == 16 and set(out) == {"rate_hz", *convulsionCheck.TO_25_HZ}
    for how in convulsionCheck.TO_25_HZ:
        assert out[how]["ml"]["n"] == always["ml"]["n"] and out[how]["ml"]["n_before_end"] == always["ml"]["n_before_end"]
        assert out[how]["users"] == 4


def test_the_check_is_printed_and_in_the_model_card():
    summary = {"n": 20, "n_before_end": 15, "before_end_share": 0.75, "latency_median_s": 6.0}
    osd = {"n": 20, "n_before_end": 4, "before_end_share": 0.2, "latency_median_s": 14.0}
    check = {"users": 10, "events": 20, "ml": summary, "osd": osd, "combined": summary}
    results = {"pt": {"ml_event_tpr": 1.0, "convulsion_check": check}, "parity": {}}
    printed = plots.compare_convulsion_check({"pt": results["pt"]})
    assert "10 simulated people never trained on, 20 tonic-clonic seizures, 20 with 15-30 s" in printed
    assert "pt (ML): 0.750 (15/20), median latency from onset 6.0 s" in printed
    assert "OSD algorithm: 0.200 (4/20)" in printed
    card = modelCard._check_lines(modelCard._app_rows(results))
    assert "| pt (ML alone) | 0.750 (15/20) | 6.0 |" in card and "| OSD algorithm | 0.200 (4/20) | 14.0 |" in card
    results["pt"]["convulsion_check_slower_watch"] = {"rate_hz": 16, "repeat": check, "linear": check,
                                                      "polyphase": {**check, "ml": osd}}
    printed = plots.compare_convulsion_check({"pt": results["pt"]})
    assert "the same seizures as a 16 Hz watch gives them (pt; ML / OSD algorithm / combined" in printed
    assert "filled to 25 Hz linear: 15 / 4 / 15 of 20" in printed and "filled to 25 Hz polyphase: 4 / 4 / 15 of 20" in printed
    card = "\n".join(modelCard._check_lines(modelCard._app_rows(results)))
    assert "as a 16 Hz watch gives them (its samples filled to 25 Hz: repeat / linear / polyphase)" in card
    assert "the model alone 15 / 15 / 4 of 20 in ALARM before the convulsion ends, the OSD algorithm 4 / 4 / 4" in card
    fold = SimpleNamespace(data_summary={}, results=results, real={}, response=None)
    assert any("15 of 20 convulsions of 15-30 s in the convulsion check" in line for line in modelCard._limits(fold))
