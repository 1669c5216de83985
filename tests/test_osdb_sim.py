"""Tests for the simulated OSDB database: file format, reproducibility, quirks, the sensor model, the
physics of the motion and the range of activities and seizures."""
import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import find_peaks

from osdkit.app import osdAlgorithm
from osdkit.sim import osdbSim, simActivities, simSeizures, simSensor

import osdbSim as osdbSimScript
from conftest import run_script

FIXTURE = Path(__file__).parent / "fixtures" / "event_45781_tonic_clonic.json"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FS = osdbSim.FS


def _time(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def _dominant_hz(x, lo=0.7):
    """Frequency (Hz) of the largest spectral peak above lo of a magnitude trace."""
    power = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / FS)
    return freqs[freqs > lo][np.argmax(power[freqs > lo])]


def _segment(segments, label):
    return next((start, stop) for name, start, stop in segments if name == label)


def _ideal_sensor(**changes):
    """A perfect watch: gain 1, no offset, noise or jitter, 1 mg steps, 8 g range, mounted straight."""
    sensor = {"gain": 1.0, "axis_gain": np.ones(3), "offset_mg": np.zeros(3), "noise_mg": 0.0, "jitter_s": 0.0,
              "range_mg": 8000.0, "step_mg": 1.0, "bandwidth_hz": None, "mount_deg": np.zeros(3)}
    return {**sensor, **changes}


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


# ---------------------------------------------------------------- the sensor model
def test_gravity_turns_with_the_wrist():
    angles = np.array([[0, 0, 0], [0, 90, 0], [0, -90, 0], [0, 0, 90], [37, 20, -50]], float)
    force = simSensor.specific_force(angles, np.zeros((5, 3)), np.zeros((5, 3)))
    assert np.allclose(force[:4], [[0, 0, 1000], [1000, 0, 0], [-1000, 0, 0], [0, 1000, 0]], atol=1e-9)
    assert np.allclose(np.linalg.norm(force, axis=1), 1000)
    upward = simSensor.specific_force(angles, np.tile([0, 0, 500.0], (5, 1)), np.zeros((5, 3)))
    assert np.allclose(np.linalg.norm(upward, axis=1), 1500)  # accelerating upwards reads 1.5 g


def test_limb_turn_accelerations_follow_the_angles():
    t = np.arange(10 * FS) / FS
    hz, radius = 1.5, 0.3
    angle = 10 * np.sin(2 * np.pi * hz * t)
    angles, body = simSensor.limb_turn(angle, radius, "pitch")
    expected = radius * np.radians(10) * (2 * np.pi * hz) ** 2 / 9.81 * 1000  # peak tangential, mg
    assert abs(np.abs(body[FS:-FS, 2]).max() / expected - 1) < 0.05
    assert np.allclose(angles[:, 1], angle) and (body[:, 0] <= 0).all()  # centripetal: towards the elbow


def test_sensor_gain_offset_clipping_and_quantisation():
    rng = np.random.default_rng(0)
    still = np.tile([0, 0, 1000.0], (500, 1))
    assert np.allclose(simSensor.magnitude_mg(simSensor.read_sensor(rng, _ideal_sensor(gain=1.6), still)), 1600)
    offset = simSensor.read_sensor(rng, _ideal_sensor(offset_mg=np.array([30, -20, 10.0])), still)
    assert (offset == [30, -20, 1010]).all()
    assert (simSensor.read_sensor(rng, _ideal_sensor(axis_gain=np.array([1, 1, 1.02])), still)[:, 2] == 1020).all()
    strong = np.tile([0, 0, 5000.0], (10, 1))
    assert (simSensor.read_sensor(rng, _ideal_sensor(range_mg=2000.0), strong)[:, 2] == 2000).all()
    assert (simSensor.read_sensor(rng, _ideal_sensor(range_mg=2000.0, step_mg=48.0), strong)[:, 2] == 1968).all()
    assert (simSensor.read_sensor(rng, _ideal_sensor(range_mg=2000.0, gain=1.6), strong)[:, 2] == 3200).all()
    ramp = np.column_stack([np.linspace(-300, 300, 500), np.zeros(500), np.full(500, 1000.0)])
    for step in (4.0, 16.0, 48.0):
        x = simSensor.read_sensor(rng, _ideal_sensor(step_mg=step), ramp)[:, 0]
        codes = x / step
        assert np.allclose(codes, np.round(codes), atol=0.5 / step) and len(np.unique(x)) == len(np.unique(np.round(codes)))
        assert np.abs(x - ramp[:, 0]).max() <= step / 2 + 0.5
    noisy = simSensor.read_sensor(rng, _ideal_sensor(noise_mg=10.0), still)
    assert 8 < noisy[:, 0].std() < 12
    t = np.arange(500) / FS
    tones = np.column_stack([200 * np.sin(2 * np.pi * 2 * t), 200 * np.sin(2 * np.pi * 10 * t), np.full(500, 1000.0)])
    filtered = simSensor.read_sensor(rng, _ideal_sensor(bandwidth_hz=6.25), tones)[100:]
    assert filtered[:, 0].std() > 0.9 * tones[100:, 0].std() and filtered[:, 1].std() < 0.4 * tones[100:, 1].std()
    assert np.abs(filtered[:, 2] - 1000).max() <= 1


def test_sensor_draws_cover_the_ranges():
    rng = np.random.default_rng(1)
    sensors = [simSensor.draw_sensor(rng) for _ in range(400)]
    gains = np.array([s["gain"] for s in sensors])
    steps = np.array([s["step_mg"] for s in sensors])
    assert 0.6 <= gains.min() < 0.7 and 1.7 < gains.max() <= 1.8 and ((gains > 0.97) & (gains < 1.03)).mean() > 0.4
    assert 1 <= steps.min() and steps.max() <= 64 and (steps > 32).any()
    assert {s["range_mg"] for s in sensors} == {2000.0, 4000.0, 8000.0}
    assert {s["bandwidth_hz"] for s in sensors} == {None, 9.0, 6.25}
    assert all(np.abs(s["axis_gain"] - 1).max() <= 0.02 and np.abs(s["offset_mg"]).max() <= 40 for s in sensors)


def test_same_motion_other_gain_scales_everything_the_watch_reports():
    user = osdbSim.make_user(np.random.default_rng(3), 1)
    readings = {}
    for gain in (0.6, 1.0, 1.7):
        sensor = simSensor.with_gain(user["sensor"], gain)
        readings[gain], _ = osdbSim.simulate_signal(np.random.default_rng(9), user, "Walking", 60 * FS, sensor=sensor)
    for gain in (0.6, 1.7):
        assert np.abs(readings[gain] - gain * readings[1.0]).max() <= 0.5 + 0.5 * gain  # rounding to 1 mg


# ---------------------------------------------------------------- activities and seizures
@pytest.fixture(scope="module")
def users():
    rng = np.random.default_rng(11)
    return [(np.random.default_rng(i), osdbSim.make_user(rng, i)) for i in range(6)]


def _wrist(rng, user, kind, seconds):
    """(magnitude / the watch's gravity reading, segments) of one simulated event kind."""
    xyz, segments = osdbSim.simulate_signal(rng, user, kind, seconds * FS, sensor=_ideal_sensor())
    return simSensor.magnitude_mg(xyz) / 1000, segments


def test_every_family_of_the_issue_is_simulated(users):
    rng, user = users[0]
    wanted = {"Vehicle", "Brushing teeth", "Combing hair", "Eating", "Drinking", "Typing", "Phone use", "Walking",
              "Stairs", "Transitions", "Sleep", "Rest", "Hand washing", "Clapping", "Shaking",
              "Tonic-Clonic", "Focal", "Tonic", "Hypermotor"}
    assert wanted <= {k for kinds in osdbSim.SUB_TYPES.values() for k in kinds}
    for kind in wanted:
        mag, segments = _wrist(rng, user, kind, 120)
        main = {kind} if kind not in osdbSim.SEIZURE_TYPES else set(simSeizures.ICTAL)
        assert np.isfinite(mag).all() and any(label in main for label, _, _ in segments), kind
        assert segments[0][1] == 0 and segments[-1][2] == 120 * FS
        assert all(a[2] == b[1] for a, b in zip(segments, segments[1:]))


def test_forty_users_mixes_draw_every_subtype():
    """Drawing the default run's events per user (3 seizures, 24 daily life, 3 false alarms) from 40
    users' activity mixes gives every subtype."""
    rng = np.random.default_rng(42)
    drawn = set()
    for user_id in range(1, 41):
        user = osdbSim.make_user(rng, user_id)
        for event_type, n in (("Seizure", 3), ("NDA", 24), ("False Alarm", 3)):
            kinds = osdbSim.SUB_TYPES[event_type]
            drawn |= {kinds[i] for i in rng.choice(len(kinds), n, p=user["mix"][event_type])}
    assert drawn == {k for kinds in osdbSim.SUB_TYPES.values() for k in kinds}


def test_rest_is_one_g_and_still(users):
    for rng, user in users:
        mag, segments = _wrist(rng, user, "Typing", 60)
        start, stop = _segment(segments, "Typing")
        assert abs(np.median(mag[start:stop]) - 1) < 0.03 and mag[start:stop].std() < 0.05


def test_clonic_jerks_slow_down_and_seizure_amplitudes_span_the_range(users):
    for rng, user in users:
        pitch = np.abs(simSeizures.clonic(rng, user, 60 * FS, 1.0, *user["clonic_hz"]).angles[:, 1])
        quarter = len(pitch) // 4
        rates = [len(find_peaks(pitch[i * quarter:(i + 1) * quarter], height=0.03 * pitch.max())[0]) / (quarter / FS)
                 for i in range(4)]
        assert 2.5 <= rates[0] <= 8.5 and 0.8 <= rates[3] <= 3 and rates[0] > 1.5 * rates[3], rates
        mag, segments = _wrist(rng, user, "Tonic-Clonic", 180)
        post_start, post_stop = _segment(segments, "post-ictal")
        assert mag[post_start + 2 * FS:post_stop].std() < 0.02  # post-ictal stillness
    peaks, rng = [], np.random.default_rng(5)
    for i in range(40):
        user = osdbSim.make_user(rng, i)
        assert 0.2 <= user["seizure_g"] <= 5
        mag, segments = _wrist(rng, user, "Tonic-Clonic", 120)
        start, stop = _segment(segments, "clonic")
        peaks.append(np.percentile(np.abs(mag[start:stop] - 1), 99))
    assert min(peaks) < 0.6 and max(peaks) > 2 and max(peaks) < 7  # convulsions: SD mostly 0.2-0.8 g


def test_walking_near_the_step_rate_and_hard_negatives_rhythmic_2_to_7_hz(users):
    for rng, user in users:
        mag, segments = _wrist(rng, user, "Walking", 60)
        assert 0.8 * user["gait_hz"] / 2 <= _dominant_hz(mag, 0.5) <= 1.2 * user["gait_hz"] * 2
        for kind in ("Hand washing", "Shaking", "Clapping", "Whisking"):
            mag, segments = _wrist(rng, user, kind, 180)
            start, stop = _segment(segments, kind)
            assert 2 <= _dominant_hz(mag[start:stop], 1.5) <= 14, kind  # the rhythm, or its harmonic in |a|


def test_power_tool_is_a_steady_tone_in_bursts(users):
    """A motor's vibration reaches a 25 Hz watch as one steady aliased tone of 0.02-0.4 g, on and off in
    bursts: a hard negative, so that the model cannot take any steady tone for a tonic tremor."""
    assert "Power tool" in osdbSim.SUB_TYPES["False Alarm"]
    for i, (_, user) in enumerate(users):
        buzz = simActivities.power_tool(np.random.default_rng(i), user, 120 * FS).body  # the shared rngs untouched
        size = np.linalg.norm(buzz, axis=1).reshape(-1, FS).max(axis=1) / 1000  # g, per second
        assert 0.02 <= size.max() <= 0.45 and (size < 0.25 * size.max()).any()  # on and off
        power = (np.abs(np.fft.rfft(buzz, axis=0)) ** 2).sum(axis=1)
        freqs = np.fft.rfftfreq(len(buzz), 1 / FS)
        peak = freqs[np.argmax(power)]
        assert power[np.abs(freqs - peak) < 1].sum() > 0.8 * power.sum()  # one tone, not broadband


def test_vehicle_vibrates_in_the_seizure_band(users):
    shares = []
    for rng, user in users:
        mag, segments = _wrist(rng, user, "Vehicle", 120)
        start, stop = _segment(segments, "Vehicle")
        power = np.abs(np.fft.rfft(mag[start:stop] - mag[start:stop].mean())) ** 2
        freqs = np.fft.rfftfreq(stop - start, 1 / FS)
        shares.append(power[(freqs >= 3) & (freqs < 8)].sum() / power[freqs > 0.5].sum())
    assert min(shares) > 0.05 and np.median(shares) > 0.2, shares


def test_users_differ(users):
    traits = np.array([np.concatenate([[u["sensor"]["gain"]], u["sensor"]["offset_mg"], u["clonic_hz"],
                                       [u["seizure_g"], u["gait_hz"]]]) for _, u in users])
    assert (traits.std(axis=0) > 0).all()
    rest_means = [simSensor.magnitude_mg(osdbSim.simulate_signal(rng, u, "Typing", 30 * FS)[0]).mean()
                  for rng, u in users]
    assert np.ptp(rest_means) > 50


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


def test_heel_strikes_with_push_off_spike_twice_per_step():
    """The toe-off's push: a second, smaller spike push_off[0] s after each heel strike."""
    n, on = 20 * FS, np.ones(20 * FS)
    single = simActivities.heel_strikes(np.random.default_rng(0), n, 2.0, 1.0, on)
    double = simActivities.heel_strikes(np.random.default_rng(0), n, 2.0, 1.0, on, (0.2, 0.5))
    count = lambda x: len(find_peaks(x, height=200)[0])  # noqa: E731
    assert 35 <= count(single) <= 45 and count(double) == 2 * count(single)
    assert np.allclose(double.max(), single.max(), rtol=0.1)
