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


def _check_results(tmp_path, check, logit):
    events, windows = check
    data = SimpleNamespace(test=windows, test_events=events)
    predictors = {"pt": nnTester.eager_predict_fn(ConstantModel(logit))}
    return nnTester.evaluate_models(tmp_path, "m", predictors, data, ALARM_SETTINGS, check)["pt"]["convulsion_check"]


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
    fold = SimpleNamespace(data_summary={}, results=results, real={}, response=None)
    assert any("15 of 20 convulsions of 15-30 s in the convulsion check" in line for line in modelCard._limits(fold))
