"""Tests for the simulated OSDB database: file format, reproducibility, quirks, example windows (the
sensor model, the motion and the activities and seizures: test_sim_motion.py)."""
import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from osdkit.app import osdAlgorithm
from osdkit.sim import osdbSim, simSensor

import osdbSim as osdbSimScript
from conftest import run_script

FIXTURE = Path(__file__).parent / "fixtures" / "event_45781_tonic_clonic.json"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FS = osdbSim.FS


def _time(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def real_event():
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "clean.json"
    summary = osdbSim.simulate_database(path, n_users=6, seizures_per_user=3, nda_per_user=4,
                                        false_alarms_per_user=3, seed=7, quirk_rate=0.0)
    return summary, json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def quirky_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("sim") / "quirky.json"
    osdbSim.simulate_database(path, n_users=6, seizures_per_user=3, nda_per_user=4,
                              false_alarms_per_user=3, seed=7, quirk_rate=0.5)
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- format
def test_every_field_of_the_real_example_with_its_json_type(clean_db, real_event):
    _, events = clean_db
    real_dp = real_event["datapoints"][0]
    for event in events:
        for key, value in real_event.items():
            if key == "seizureTimes" and event["type"] != "Seizure":
                assert key not in event
                continue
            assert type(event[key]) is type(value), key
        assert set(event) - set(real_event) <= {"convulsionTimes"}  # simulated convulsions only
        if "convulsionTimes" in event:
            assert event["type"] == "Seizure" and event["subType"] == "Tonic-Clonic"
        for dp in event["datapoints"]:
            assert set(dp) == set(real_dp)
            for key, value in real_dp.items():
                assert type(dp[key]) is type(value), key
            assert all(type(v) is float for v in dp["rawData"])
            assert all(type(v) is int for v in dp["rawData3D"] + dp["simpleSpec"])


def test_values_are_consistent(clean_db):
    _, events = clean_db
    event_ids = [e["id"] for e in events]
    dp_ids = [dp["id"] for e in events for dp in e["datapoints"]]
    assert len(set(event_ids)) == len(event_ids) and len(set(dp_ids)) == len(dp_ids)
    for event in events:
        assert event["subType"] in osdbSim.SUB_TYPES[event["type"]]
        assert event["sampleFreq"] == 25 and event["dataSourceName"] == "Garmin"
        assert event["desc"].startswith(f"Simulated {event['subType'].lower()}") and event["desc"].endswith("osdbSim")
        dps = event["datapoints"]
        assert 33 <= len(dps) <= 39
        raw = np.array([dp["rawData"] for dp in dps])
        xyz = np.array([dp["rawData3D"] for dp in dps]).reshape(len(dps), 125, 3)
        assert raw.shape == (len(dps), 125) and xyz.shape[1:] == (125, 3)
        assert np.abs(simSensor.magnitude_mg(xyz) - raw).max() <= 0.005
        assert np.abs(xyz).max() <= max(simSensor.RANGES_MG)
        assert all(dp["eventId"] == event["id"] and dp["userId"] == event["userId"] for dp in dps)
        assert all(40 <= dp["hr"] <= 200 for dp in dps)
        assert all(ISO.match(t) for t in [event["dataTime"]] + [dp["dataTime"] for dp in dps])
        times = [_time(dp["dataTime"]) for dp in dps]
        assert all((b - a).total_seconds() == 5 for a, b in zip(times, times[1:]))
        anchor = _time(event["dataTime"])
        assert times[0] <= anchor <= times[-1]
        if event["type"] == "Seizure":
            start, end = event["seizureTimes"]
            assert (times[0] - anchor).total_seconds() - 5 <= start < end <= (times[-1] - anchor).total_seconds()


def test_osd_fields_are_the_osd_algorithm_with_the_apps_escalation(clean_db):
    """specPower ... simpleSpec are osdAlgorithm's on the written rawData with the event's settings, and
    alarmState is the app's escalation of its results (ALARM on the 3rd in-alarm datapoint in a row)."""
    _, events = clean_db
    for event in events:
        dps = event["datapoints"]
        osd = osdAlgorithm.osd_algorithm(np.array([dp["rawData"] for dp in dps]), event["alarmThresh"],
                                         event["alarmRatioThresh"], event["alarmFreqMin"], event["alarmFreqMax"])
        for key, field in (("spec_power", "specPower"), ("roi_power", "roiPower"), ("roi_ratio", "roiRatio"),
                           ("simple_spec", "simpleSpec")):
            assert osd[key].tolist() == [dp[field] for dp in dps], field
        states = osdAlgorithm.escalate(osd["result"] == osdAlgorithm.ALARM)
        assert [dp["alarmState"] for dp in dps] == states.tolist()
        assert all(dp["alarmPhrase"] == osdbSim.PHRASES[dp["alarmState"]] for dp in dps)
        assert event["osdAlarmState"] == max(states)


def test_summary_counts(clean_db):
    summary, events = clean_db
    assert summary["users"] == 6 and summary["events"] == len(events) == 60
    assert summary["by_type"] == {"Seizure": 18, "NDA": 24, "False Alarm": 18}
    assert summary["datapoints"] == sum(len(e["datapoints"]) for e in events)
    assert sum(summary["by_subtype"].values()) == 60
    for key, n in summary["by_subtype"].items():
        assert n == sum(f"{e['type']}/{e['subType']}" == key for e in events)
    assert summary["osd_alarm_events"] == {
        t: n for t in ("Seizure", "NDA", "False Alarm")
        if (n := sum(e["type"] == t and e["osdAlarmState"] == 2 for e in events))}
    assert len({e["userId"] for e in events}) == 6


# ---------------------------------------------------------------- reproducibility, writing, CLI
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    paths = [tmp_path / f"{i}.json" for i in range(3)]
    for path, seed in zip(paths, (1, 1, 2)):
        osdbSim.simulate_database(path, n_users=2, seizures_per_user=1, nda_per_user=1,
                                  false_alarms_per_user=1, seed=seed)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "db.json"
    path.write_text("old")
    real = osdbSim.simulate_event
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(osdbSim, "simulate_event", failing)
    with pytest.raises(RuntimeError):
        osdbSim.simulate_database(path, n_users=1, seizures_per_user=1, nda_per_user=1, false_alarms_per_user=0)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["db.json"]


def test_command_line_writes_file_and_plot(tmp_path, capsys):
    out, png = tmp_path / "cli.json", tmp_path / "cli.png"
    assert osdbSimScript.main([str(out), "--users", "2", "--seizures", "1", "--nda", "1", "--false-alarms", "1",
                               "--seed", "3", "--plot", str(png)]) == 0
    assert len(json.loads(out.read_text())) == 6
    assert '"events": 6' in capsys.readouterr().out
    assert png.stat().st_size > 10000


def test_command_line_error_is_one_line_and_leaves_nothing(tmp_path):
    result = run_script("osdbSim.py", tmp_path / "no_such_folder" / "db.json", "--users", "1")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "db.json" in result.stderr
    assert os.listdir(tmp_path) == []
    assert run_script("osdbSim.py", tmp_path / "db.json", "--users", "0").returncode == 1
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- quirks
def _quirks(events):
    """Counts of each real-file quirk found in a list of events."""
    found = dict.fromkeys(["duplicate", "jitter", "gap", "no_o2", "no_hr", "no_3d", "no_seizure_times"], 0)
    for event in events:
        dps = event["datapoints"]
        steps = [(_time(b["dataTime"]) - _time(a["dataTime"])).total_seconds() for a, b in zip(dps, dps[1:])]
        found["duplicate"] += sum(a["rawData"] == b["rawData"] for a, b in zip(dps, dps[1:]))
        found["jitter"] += sum(s in (4, 6) for s in steps)
        found["gap"] += sum(s >= 9 for s in steps)
        found["no_o2"] += sum("o2Sat" not in dp for dp in dps)
        found["no_hr"] += sum(dp["hr"] == -1 for dp in dps)
        found["no_3d"] += not event["has3dData"] and all("rawData3D" not in dp for dp in dps)
        found["no_seizure_times"] += event["type"] == "Seizure" and "seizureTimes" not in event
    return found


def test_quirks_present_when_rate_positive(quirky_db):
    found = _quirks(quirky_db)
    assert all(n > 0 for n in found.values()), found


def test_no_quirks_when_rate_zero(clean_db):
    _, events = clean_db
    assert set(_quirks(events).values()) == {0}


def test_quirks_do_not_change_the_signals(clean_db, quirky_db):
    _, clean = clean_db
    for a, b in zip(clean, quirky_db):
        assert (a["id"], a["subType"], a["datapoints"][0]["rawData"]) == (b["id"], b["subType"], b["datapoints"][0]["rawData"])


# ---------------------------------------------------------------- example windows
def test_example_windows_deterministic_fast_and_plausible():
    osdbSim.example_windows(2)
    start = time.perf_counter()
    windows = osdbSim.example_windows(32)
    assert time.perf_counter() - start < 2
    assert windows.shape == (32, 1, 750) and windows.dtype == np.float32
    assert np.array_equal(windows, osdbSim.example_windows(32))
    assert not np.array_equal(windows, osdbSim.example_windows(32, seed=1))
    assert np.isfinite(windows).all() and 0.5 < windows.mean() < 2
    spread = (windows.std(axis=2) / windows.mean(axis=2)).ravel()
    assert spread.min() < 0.03 and spread.max() > 0.1  # still windows and vigorous ones
    assert osdbSim.example_windows(3, length=125).shape == (3, 1, 125)
