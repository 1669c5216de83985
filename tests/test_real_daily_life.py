"""Real daily life: the WISDM reader, the OSDB events built from real recordings, the shipped file, the
split by person (held-out people never in training) and the report on held-out people only."""
import functools
import gzip
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from osdkit.data import osdbData, realDailyLife, realData
from osdkit.data.osdbSplit import split_events
from osdkit.reports import realDataReport, runSummary
from osdkit.training import configUtils, trainingData

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "data" / "real_daily_life.json.gz"


def _write_wisdm(path, subject, activities, n=400, rng=None):
    rng = rng or np.random.default_rng(0)
    lines = []
    for code in activities:
        xyz = rng.normal(0, 2, (n, 3)) + [0, 0, 9.80665]
        lines += [f"{subject},{code},{x:.5f},{y:.5f},{z:.5f};" for x, y, z in xyz]
    path.write_text("\n".join(lines) + "\n")


def test_read_wisdm_file_resamples_to_25_hz_in_g(tmp_path):
    path = tmp_path / "data_1600_accel_watch.txt"
    path.write_text("1600,A,0,0,9.80665;\n" * 200 + "1600,D,0,9.80665,0;\n" * 80)
    rec = realData.read_wisdm_file(path)
    assert list(rec) == ["Walking", "Sitting"]
    assert len(rec["Walking"]) == 250 and len(rec["Sitting"]) == 100  # 20 Hz -> 25 Hz
    assert np.allclose(rec["Walking"][5:-5], 1.0, atol=2e-3) and rec["Walking"].dtype == np.float32


@pytest.mark.parametrize("line, problem", [("1600,Q,0,0,9.8;", "activity"), ("1600,A,0,x,9.8;", "not numbers"),
                                           ("1600,A,0,9.8;", "expected")])
def test_read_wisdm_file_names_the_bad_line(tmp_path, line, problem):
    path = tmp_path / "data_1601_accel_watch.txt"
    path.write_text("1601,A,0,0,9.8;\n" + line + "\n")
    with pytest.raises(ValueError, match=f"line 2: .*{problem}"):
        realData.read_wisdm_file(path)


def test_real_recordings_become_osdb_nda_events(tmp_path):
    (tmp_path / "wisdm_watch").mkdir()
    _write_wisdm(tmp_path / "wisdm_watch" / "data_1600_accel_watch.txt", 1600, "AB")
    events = realDailyLife.build_events(tmp_path)
    out = tmp_path / "real.json.gz"
    realDailyLife.write_events(out, events)
    read, stats = osdbData.read_osdb_file(out)
    assert [e.sub_type for e in read] == ["Walking", "Jogging"] and stats.events_kept == 2
    e = read[0]
    assert e.user_id == "wisdm-1600" and e.source == "wisdm_watch" and e.type == "NDA" and e.label == 0
    assert e.mag.shape == (4, 125) and abs(float(np.median(e.mag)) - 1000) < 300  # 400 samples at 20 Hz = 20 s
    assert "WISDM" in e.desc and "walking" in e.desc
    assert gzip.open(out).read() == gzip.open(out).read()  # readable twice; deterministic bytes below
    realDailyLife.write_events(tmp_path / "again.json.gz", events)
    assert (tmp_path / "again.json.gz").read_bytes() == out.read_bytes()


def test_the_shipped_file_holds_every_real_person_with_its_licence():
    assert SHIPPED.stat().st_size < 5e6
    licence = (ROOT / "data" / "LICENCE_real_daily_life.txt").read_text()
    assert "CC BY 4.0" in licence and "Weiss" in licence and "Bruno" in licence
    events, stats = _shipped_events()
    people = {s: {e.user_id for e in events if e.source == s} for s in realDailyLife.SOURCES}
    assert len(people["wisdm_watch"]) == 26 and len(people["adl_wrist"]) == 16
    assert all(e.label == 0 for e in events) and not stats.skipped


@functools.lru_cache(maxsize=1)
def _shipped_events():
    return osdbData.read_osdb_file(SHIPPED)


def _default_split_events():
    """The shipped real people plus 20 simulated-like users with one seizure event each."""
    events, _ = _shipped_events()
    seizure = osdbData.Event(id=0, user_id=0, type="Seizure", sub_type="Tonic-Clonic", desc="", data_time=0.0,
                             seizure_times=None, label=1, dp_times=np.arange(1, 7) * 5.0,
                             mag=np.ones((6, 125), np.float32), acc3d=None, alarm_state=np.zeros(6, np.int8),
                             hr=np.zeros(6, np.float32), source="Garmin")
    return events + [replace(seizure, id=i, user_id=i) for i in range(1, 21)]


def test_default_split_holds_out_whole_real_people():
    run, _ = configUtils.load_run_config(ROOT / "nnConfig.json")
    assert run.osdb.dailyLifeFiles == ["data/real_daily_life.json.gz"]
    events = _default_split_events()
    train, val, test = trainingData.fold_splits(run, events)[0]
    people = [{str(e.user_id) for e in part} for part in (train, val, test)]
    assert not people[0] & people[1] and not people[0] & people[2] and not people[1] & people[2]
    wisdm_test = {p for p in people[2] if p.startswith("wisdm-")}
    assert len(wisdm_test) >= 8
    assert {p for p in people[2] if p.startswith("adl-")} and {p for p in people[0] if p.startswith("wisdm-")}
    assert {str(e.user_id) for e in test if e.label == 1}  # the simulated users are split too


def test_kfold_holds_out_every_real_person_exactly_once():
    """What the pooled real-data summary rests on: over --kfold 3 each real person is in one test fold,
    and never in the training or validation split of that fold."""
    run, _ = configUtils.load_run_config(ROOT / "nnConfig.json")
    folds = trainingData.fold_splits(run, _default_split_events(), kfold=3)
    tested = [{str(e.user_id) for e in test} for _, _, test in folds]
    real = {str(e.user_id) for e in _shipped_events()[0]}
    assert sorted(p for fold in tested for p in fold if p in real) == sorted(real)
    for (train, val, _), people in zip(folds, tested):
        assert not people & {str(e.user_id) for e in train + val}


def test_split_stratifies_by_data_source():
    events = _default_split_events()
    _, _, test = split_events(events, 0.2, 0.2, seed=1, by_user=True, test_prop_by_source={"wisdm_watch": 0.5})
    wisdm = {e.user_id for e in test if e.source == "wisdm_watch"}
    adl = {e.user_id for e in test if e.source == "adl_wrist"}
    assert len(wisdm) == 13 and adl  # half of the 26 WISDM people; ADL people by testProp
    with pytest.raises(ValueError, match="wisdm"):
        split_events(events, 0.2, 0.2, seed=1, by_user=True, test_prop_by_source={"wisdm_watch": 1.5})


def test_wisdm_report_leaves_out_the_people_trained_on(tmp_path):
    rng = np.random.default_rng(1)
    for subject in (1600, 1601, 1602):
        _write_wisdm(tmp_path / f"data_{subject}_accel_watch.txt", subject, "ABD", n=800, rng=rng)
    seen = []

    def predict(windows):
        seen.append(windows.shape)
        return np.ones(len(windows))
    res = realDataReport.evaluate_wisdm(predict, tmp_path, 0.5, 0.0, window_samples=375,
                                  exclude_people={"wisdm-1600", "wisdm-1602"})
    assert res["people"] == ["wisdm-1601"] and res["n_recordings"] == 3
    assert all(shape[1:] == (1, 375) for shape in seen)
    by_activity = res["app_episodes_by_activity"]
    assert set(by_activity) == {"Walking", "Jogging", "Sitting"}
    # p = 1 on every window: each 40 s recording is one ALARM episode for the model
    assert by_activity["Walking"]["ml"]["alarm_episodes"] == 1
    assert by_activity["Walking"]["ml"]["alarm_episodes_per_hour"] == pytest.approx(1 / by_activity["Walking"]["hours"])
    assert res["app"]["ml"]["alarm_episodes"] == 3
    lines = realDataReport.format_recordings("wisdm_watch", res)
    assert lines[0].startswith("real wisdm_watch (1 held-out people") and any("Jogging" in line for line in lines)
    json.dumps({k: v for k, v in res.items() if k != "skipped"})


def test_wisdm_report_names_the_people_the_alarms_come_from(tmp_path):
    """The model's ALARM episodes per held-out person: a few people's recordings, or everyone's?"""
    _write_wisdm(tmp_path / "data_1601_accel_watch.txt", 1601, "ABD", n=800)
    (tmp_path / "data_1602_accel_watch.txt").write_text("1602,A,0,0,9.80665;\n" * 2400)  # a still watch

    def moving(windows):  # p = 1 where the magnitude varies: 1601's three recordings, none of 1602's
        return (np.asarray(windows).reshape(len(windows), -1).std(axis=1) > 0.05).astype(float)
    res = realDataReport.evaluate_wisdm(moving, tmp_path, 0.5, 0.0, window_samples=375)
    assert {person: row["ml"] for person, row in res["app_episodes_by_person"].items()} == {
        "wisdm-1601": 3, "wisdm-1602": 0}
    lines = realDataReport.format_recordings("wisdm_watch", res)
    assert lines[-1].startswith("  the model's ALARM episodes come from 1 of 2 people (ML / OSD / combined): "
                                "wisdm-1601 3 / ")
    assert not any("wisdm-1602" in line for line in lines)


def test_kfold_summary_pools_every_folds_held_out_people(tmp_path):
    """Over k folds each real person is held out once: the summary adds up their windows, hours and ALARM
    episodes (every fold with its own model and alarm settings), so the figure covers everyone."""
    root = tmp_path / "wisdm"
    root.mkdir()
    _write_wisdm(root / "data_1601_accel_watch.txt", 1601, "ABD", n=800)
    (root / "data_1602_accel_watch.txt").write_text("1602,A,0,0,9.80665;\n" * 2400)  # a still watch
    _write_wisdm(root / "data_1603_accel_watch.txt", 1603, "A", n=1600, rng=np.random.default_rng(3))

    def moving(windows):
        return (np.asarray(windows).reshape(len(windows), -1).std(axis=1) > 0.05).astype(float)
    first = realDataReport.evaluate_wisdm(moving, root, 0.5, 0.0, window_samples=375, exclude_people={"wisdm-1603"})
    second = realDataReport.evaluate_wisdm(moving, root, 0.4, 0.0, window_samples=375,
                                           exclude_people={"wisdm-1601", "wisdm-1602"})
    pooled = realDataReport.pool_recordings([first, second])
    assert pooled["people"] == ["wisdm-1601", "wisdm-1602", "wisdm-1603"] and pooled["thresholds"] == [0.5, 0.4]
    assert pooled["app_hours"] == pytest.approx(first["app_hours"] + second["app_hours"])
    assert pooled["app"]["ml"]["alarm_episodes"] == 3 + 1
    assert pooled["app"]["ml"]["alarm_episodes_per_hour"] == pytest.approx(4 / pooled["app_hours"])
    walking = pooled["app_episodes_by_activity"]["Walking"]
    assert walking["hours"] == pytest.approx(first["app_episodes_by_activity"]["Walking"]["hours"]
                                             + second["app_episodes_by_activity"]["Walking"]["hours"])
    assert walking["ml"]["alarm_episodes"] == 2 and walking["ml"]["alarm_episodes_per_hour"] == pytest.approx(
        2 / walking["hours"])
    fraction = (first["n_windows"] * first["app"]["osd"]["window_end_alarm_fraction"]
                + second["n_windows"] * second["app"]["osd"]["window_end_alarm_fraction"]) / pooled["n_windows"]
    assert pooled["app"]["osd"]["window_end_alarm_fraction"] == pytest.approx(fraction)
    assert {p: row["ml"] for p, row in pooled["app_episodes_by_person"].items()} == {
        "wisdm-1601": 3, "wisdm-1602": 0, "wisdm-1603": 1}
    assert realDataReport.pool_recordings([first, {**second, "window_samples": 750}]) is None

    event = {"sub_type": "Tonic-Clonic", "event_id": 7, "app": {"ml": {"latency_s": 60.0}, "osd": {"latency_s": None}}}
    folds = [runSummary.FoldResult(f"fold{i}", tmp_path, None, {}, {}, {}, {"e": event, "wisdm_watch": res}, [])
             for i, res in enumerate((first, second))]
    summary = runSummary.write_summary(tmp_path, folds)
    assert json.loads((tmp_path / "kfold_summary.json").read_text())["real_data_pooled"]["wisdm_watch"]["n_people"] == 3
    text = (tmp_path / "kfold_summary.txt").read_text()
    assert "real Tonic-Clonic event 7, ALARM s after onset by each of the 2 folds' models: ML 60 / 60; " \
           "OSD algorithm none / none" in text
    assert "real wisdm_watch over the 2 folds (each person held out once" in text and "p > 0.5 / 0.4)" in text
    assert "(3 held-out people" in text
    assert summary["real_data_pooled"]["wisdm_watch"]["app"]["ml"]["alarm_episodes"] == 4
    assert "real_data_pooled" not in runSummary.write_summary(tmp_path, folds[:1])
