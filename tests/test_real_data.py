import json
import os

import numpy as np
import pytest

from osdkit.data.realData import (adl_codes_to_g, adl_events, load_adl_recordings, read_adl_file, read_event,
                                  resample_32_to_25)
from osdkit.data.windowing import make_windows
from osdkit.reports.realDataReport import (evaluate_adl, evaluate_real, evaluate_real_event, format_real,
                                           gated_predictions)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "event_45781_tonic_clonic.json")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_adl(path, codes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(f"{x} {y} {z}\n" for x, y, z in codes))


def _std_score(windows):
    """Stub model: a score that grows with the window's movement."""
    return np.clip(windows.reshape(len(windows), -1).std(axis=1) / 0.3, 0, 1)


def test_adl_code_decoding_exact():
    assert adl_codes_to_g([0, 21, 42, 63]).tolist() == [-1.5, -0.5, 0.5, 1.5]


def test_read_adl_file_magnitude_and_length(tmp_path):
    path = str(tmp_path / "Walk" / "a.txt")
    _write_adl(path, [(21, 42, 63)] * 64)
    mag = read_adl_file(path)
    assert mag.dtype == np.float32 and len(mag) == 50  # 2 s at 25 Hz
    # the polyphase filter's branches differ slightly in DC gain: ripple ~1e-4, far below one code (0.048 g)
    np.testing.assert_allclose(mag, np.sqrt(0.25 + 0.25 + 2.25), rtol=3e-4)


@pytest.mark.parametrize("n_in, n_out", [(960, 750), (100, 79), (32, 25), (1, 1)])
def test_resample_length(n_in, n_out):
    assert len(resample_32_to_25(np.ones(n_in))) == n_out


def test_resample_keeps_slow_signal():
    t = np.arange(320) / 32
    out = resample_32_to_25(1 + 0.2 * np.sin(2 * np.pi * t))
    expected = 1 + 0.2 * np.sin(2 * np.pi * np.arange(len(out)) / 25)
    np.testing.assert_allclose(out[10:-10], expected[10:-10], atol=2e-3)


def test_load_adl_skips_bad_files(tmp_path):
    _write_adl(str(tmp_path / "Walk" / "good.txt"), [(21, 42, 63)] * 32)
    (tmp_path / "Walk" / "two_columns.txt").write_text("1 2\n3 4\n")
    (tmp_path / "Walk" / "text.txt").write_text("a b c\n")
    (tmp_path / "Walk" / "empty.txt").write_text("")
    _write_adl(str(tmp_path / "Eat" / "out_of_range.txt"), [(70, 1, 1)])
    (tmp_path / "Eat" / "notes.md").write_text("not data")
    skipped = []
    recordings = load_adl_recordings(str(tmp_path), skipped)
    assert [(a, f) for a, f, _ in recordings] == [("Walk", "good.txt")]
    reasons = {os.path.basename(p): r for p, r in skipped}
    assert set(reasons) == {"two_columns.txt", "text.txt", "empty.txt", "out_of_range.txt"}
    assert "columns" in reasons["two_columns.txt"] and "0..63" in reasons["out_of_range.txt"]


def test_adl_windows_counts():
    """ADL recordings become events of whole 5 s datapoints, windowed like every OSDB event."""
    recordings = [("A", "short", np.ones(749, np.float32)), ("A", "one", np.ones(750, np.float32)),
                  ("B", "three", np.arange(1000, dtype=np.float32)), ("B", "three_b", np.ones(1124, np.float32))]
    events = adl_events(recordings)
    assert [len(e.dp_times) for e in events] == [5, 6, 8, 8] and events[2].id == "B/three"
    assert events[2].sub_type == "B" and events[2].label == 0 and events[2].seizure_times is None
    data = make_windows(events)
    windows = data.batch(np.arange(len(data)))
    assert windows.shape == (7, 1, 750) and windows.dtype == np.float32
    assert data.event_index.tolist() == [1, 2, 2, 2, 3, 3, 3]
    assert data.end_time.tolist() == [30.0, 30.0, 35.0, 40.0, 30.0, 35.0, 40.0]
    assert windows[3, 0, -1] == np.float32(999 * 1000) / 1000 and windows[2, 0, 0] == 125
    assert len(make_windows(adl_events([("A", "short", np.ones(10, np.float32))]))) == 0


def test_gated_predictions_zero_still_windows():
    rng = np.random.default_rng(0)
    windows = np.ones((3, 1, 750), dtype=np.float32)
    windows[1] += 0.2 * rng.standard_normal(750).astype(np.float32)
    windows[2, 0, :600] = windows[1, 0, :600]  # movement only outside the newest 125 samples
    p, moving = gated_predictions(lambda w: np.full(len(w), 0.9), windows, batch_size=2)
    assert moving.tolist() == [False, True, False] and p.tolist() == [0.0, 0.9, 0.0]


def test_evaluate_adl(tmp_path):
    rng = np.random.default_rng(0)
    _write_adl(str(tmp_path / "Walk" / "moving.txt"), rng.integers(10, 54, size=(1280, 3)))  # 40 s -> 3 windows
    _write_adl(str(tmp_path / "Walk" / "short.txt"), rng.integers(10, 54, size=(320, 3)))
    _write_adl(str(tmp_path / "Sit" / "still.txt"), [(21, 42, 63)] * 960)  # 1 window, gated
    (tmp_path / "Sit" / "broken.txt").write_text("x\n")
    r = evaluate_adl(lambda w: np.ones(len(w)), str(tmp_path))
    assert (r["n_recordings"], r["n_skipped"], r["n_too_short"]) == (3, 1, 1)
    assert r["people"] == [None] and r["n_people"] == 1  # file names without a volunteer
    assert (r["n_windows"], r["n_gated"], r["n_alarm_windows"]) == (4, 1, 3)
    assert r["window_alarm_rate"] == 0.75
    assert r["recordings_with_alarm"] == 1 and r["files_with_alarm"] == ["Walk/moving.txt"]
    assert r["alarm_episodes"] == 1
    assert r["hours_covered"] == pytest.approx(20 / 3600)
    assert r["false_alarms_per_hour"] == pytest.approx(180.0)
    assert r["false_alarms_per_day"] == pytest.approx(24 * 180.0)
    assert r["recording_hours"] == pytest.approx((1000 + 250 + 750) / 25 / 3600)
    assert r["by_activity"]["Sit"] == {"n_recordings": 1, "n_windows": 1, "n_alarm_windows": 0,
                                       "window_alarm_rate": 0.0, "recordings_with_alarm": 0, "alarm_episodes": 0}
    assert r["by_activity"]["Walk"]["window_alarm_rate"] == 1.0
    # the app's view: moving.txt's 8 datapoints and still.txt's 6 (short.txt has no window)
    assert r["app_hours"] == pytest.approx(14 * 5 / 3600) and r["app_recordings"] == 2
    ml = r["app"]["ml"]  # moving.txt in alarm on datapoints 6-8: OK, WARNING, ALARM; still.txt gated
    assert ml["window_end_alarm_fraction"] == 0.25 and ml["single_window_alarm_fraction"] == 0.75
    assert ml["alarm_episodes"] == 1 and ml["recordings_with_alarm"] == 1
    assert ml["alarm_episodes_per_day"] == pytest.approx(24 * 3600 / 70)
    assert r["app_by_activity"]["Sit"]["ml"] == 0.0 and r["app_by_activity"]["Walk"]["ml"] == pytest.approx(1 / 3)
    assert set(r["app"]) == {"ml", "osd", "combined"}
    assert r["app"]["osd"]["window_end_alarm_fraction"] <= r["app"]["combined"]["window_end_alarm_fraction"]
    json.dumps(r)


def test_fixture_windows_follow_the_app_buffer():
    event, stats = read_event(FIXTURE)
    windows = make_windows([event])
    # 30 datapoints, one exact repeat -> 29; the buffer is full from the 6th
    assert stats.skipped["dp_duplicate_raw"] + stats.skipped["dp_duplicate_time"] == 1
    assert len(windows) == 24
    assert windows.end_time[0] == -47.0 and windows.end_time[-1] == 70.0
    with open(FIXTURE) as f:
        raw = sorted(json.load(f)["datapoints"], key=lambda dp: dp["dataTime"])
    batch = windows.batch(np.arange(len(windows)))
    np.testing.assert_allclose(batch[0, 0, :125], np.array(raw[0]["rawData"]) / 1000, rtol=1e-6)
    np.testing.assert_allclose(batch[-1, 0, -125:], np.array(raw[-1]["rawData"]) / 1000, rtol=1e-6)


def test_evaluate_real_event_with_stub(tmp_path):
    png = tmp_path / "timeline.png"
    r = evaluate_real_event(_std_score, FIXTURE, plot_path=str(png))
    assert r["event_id"] == 45781 and r["seizure_times"] == [-50.0, 70.0]
    assert r["n_windows"] == 24 and r["n_repeats_skipped"] == 1
    # the window ending at -47 s holds only 3 s of the seizure [-50, 70]; all later ones hold >= 5 s
    assert r["labels"] == [0] + [1] * 23
    assert r["alarmed_during_seizure"]
    first_alarm = next(t for t, a, lab in zip(r["times"], r["alarm"], r["labels"]) if a and lab)
    assert r["latency_s"] == pytest.approx(first_alarm + 50.0)
    assert png.read_bytes()[:8] == PNG_MAGIC
    always = evaluate_real_event(lambda w: np.ones(len(w)), FIXTURE, threshold=0.5)
    # the first window (-47 s) alarms but holds < 5 s of seizure; -42..-27 s are still (gated to p=0)
    assert always["alarm"][:6] == [True, False, False, False, False, True] and always["n_gated"] == 4
    assert always["latency_s"] == 29.0  # window ending at -21 s
    never = evaluate_real_event(lambda w: np.zeros(len(w)), FIXTURE)
    assert not never["alarmed_during_seizure"] and never["latency_s"] is None
    json.dumps(r)


def test_real_event_with_the_apps_escalation():
    """p = 1 on every moving window: in alarm at -47 s, then (after the 4 gated windows) from -21 s;
    ALARM on the 3rd in a row at -11 s. The OSD (recomputed with the recorded alarmThresh 900) and the
    recorded state reach ALARM at 0 s, on the same datapoints."""
    always = evaluate_real_event(lambda w: np.ones(len(w)), FIXTURE, threshold=0.5)
    assert always["app"]["ml"] == {"alarm_in_seizure": True, "latency_s": 39.0, "first_alarm_s": -11.0,
                                   "n_alarm_datapoints": 17}
    for column in ("osd", "osd_recorded"):
        assert always["app"][column] == {"alarm_in_seizure": True, "latency_s": 50.0, "first_alarm_s": 0.0,
                                         "n_alarm_datapoints": 7}
    assert always["app"]["combined"]["latency_s"] == 39.0
    assert always["osd_recorded_dp_agreement"] == 1.0 and always["osd_recorded_n_datapoints"] == 28
    never = evaluate_real_event(lambda w: np.zeros(len(w)), FIXTURE)
    assert not never["app"]["ml"]["alarm_in_seizure"] and never["app"]["ml"]["first_alarm_s"] is None
    assert never["app"]["combined"] == never["app"]["osd"]


def test_evaluate_real_and_its_lines(tmp_path):
    (tmp_path / "osdb_example").mkdir()
    (tmp_path / "osdb_example" / "event_45781.json").write_bytes(open(FIXTURE, "rb").read())
    rng = np.random.default_rng(0)
    _write_adl(str(tmp_path / "adl_wrist" / "Walk" / "moving.txt"), rng.integers(10, 54, size=(1280, 3)))
    real = evaluate_real(tmp_path, lambda w: np.ones(len(w)), 0.5, 5.0, plot_dir=tmp_path)
    assert set(real) == {"event_45781", "adl_wrist"} and "times" not in real["event_45781"]
    assert (tmp_path / "real_event_45781_timeline.png").read_bytes()[:8] == PNG_MAGIC
    lines = format_real(real)
    assert lines[0].startswith("real Tonic-Clonic event 45781 (seizure -50..70 s), inside the seizure: "
                               "ML ALARM 39 s after onset; OSD algorithm ALARM 50 s after onset")
    assert "recomputed OSD state = recorded on 100.0% of 28 datapoints" in lines[1]
    assert lines[3].split(":")[1].startswith(" 33.3% of windows end in ALARM, 100.0% single-window alarms")
    json.dumps(real)


def test_read_event_picks_by_id(tmp_path):
    with open(FIXTURE) as f:
        event = json.load(f)
    path = tmp_path / "two.json"
    path.write_text(json.dumps([event, {**event, "id": 7}]))
    with pytest.raises(ValueError, match="give event_id"):
        read_event(str(path))
    assert read_event(str(path), event_id=7)[0].id == 7


