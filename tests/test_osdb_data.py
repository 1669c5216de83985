"""Tests for osdbData, osdbFilters and osdbSplit: reading and cleaning OSDB files, event filters, splits and
augmentation."""
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from osdkit.data import osdbJson
from osdkit.data.osdbData import Event, OsdbFileError, parse_time, read_osdb_file, read_osdb_files
from osdkit.data.osdbFilters import filter_events
from osdkit.data.osdbSplit import augment_events, kfold_splits, noisy_copy, phase_shifted_copies, split_events
from osdkit.training import configUtils

FIXTURE = Path(__file__).parent / "fixtures" / "event_45781_tonic_clonic.json"
T0 = 1683268127.0  # 2023-05-05T06:28:47Z


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dp_dict(t, value=1000.0, **fields):
    """A valid datapoint dict: constant rawData `value`, 3-D data (0, 0, value)."""
    return {"dataTime": iso(t), "rawData": [value] * 125, "rawData3D": [0, 0, value] * 125,
            "alarmState": 0, "hr": 70, **fields}


def event_dict(event_id=1, n=8, event_type="Seizure", **fields):
    """A valid event dict with n datapoints 5 s apart of values 1000, 1001, ..."""
    return {"id": event_id, "userId": 7, "type": event_type, "subType": "Tonic-Clonic", "desc": "A big one",
            "dataTime": iso(T0), "seizureTimes": [0, 20], "dataSourceName": "Garmin",
            "datapoints": [dp_dict(T0 + 5 * k, 1000.0 + k) for k in range(n)], **fields}


def data_config(**values):
    """configUtils.DataConfig: the schema's defaults, with `values` set."""
    return configUtils.build_section(configUtils.DataConfig, {"dataProcessing": values}, "dataProcessing")


def write_json(tmp_path, obj, name="osdb.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def make_event(event_id=1, label=1, n=8, user_id=1, sub_type="Tonic-Clonic", desc="", source="Garmin",
               with_3d=False, with_hr=True):
    """An Event built in memory: datapoint k holds 1000 + k milli-g."""
    mag = np.repeat(1000.0 + np.arange(n, dtype=np.float32), 125).reshape(n, 125).astype(np.float32)
    acc = np.stack([np.zeros_like(mag), np.zeros_like(mag), mag], axis=-1) if with_3d else None
    return Event(id=event_id, user_id=user_id, type="Seizure" if label else "False Alarm", sub_type=sub_type,
                 desc=desc, data_time=T0, seizure_times=None, label=label, dp_times=T0 + 5.0 * np.arange(n),
                 mag=mag, acc3d=acc, alarm_state=np.zeros(n, dtype=np.int8),
                 hr=np.full(n, 70.0 if with_hr else np.nan, dtype=np.float32), source=source)


def test_fixture_event_is_read_with_its_repeated_datapoint_removed():
    events, stats = read_osdb_file(FIXTURE)
    (e,) = events
    assert (e.id, e.user_id, e.type, e.sub_type, e.label, e.source) == (45781, 39, "Seizure", "Tonic-Clonic", 1,
                                                                         "Garmin")
    assert e.data_time == datetime(2023, 5, 5, 6, 28, 47, tzinfo=timezone.utc).timestamp()
    assert e.seizure_times == (-50.0, 70.0)
    assert stats.datapoints_in == 30 and stats.datapoints_kept == 29
    assert stats.skipped == Counter({"dp_duplicate_raw": 1})
    assert e.mag.shape == (29, 125) and e.mag.dtype == np.float32
    assert e.acc3d.shape == (29, 125, 3) and e.acc3d.dtype == np.float32
    assert e.dp_times.dtype == np.float64 and np.all(np.diff(e.dp_times) > 0)
    assert e.dp_times[0] - e.data_time == -72.0
    repeated = int(np.flatnonzero(e.dp_times - e.data_time == -6.0)[0])  # 06:28:41, repeated at 06:28:42
    assert e.dp_times[repeated + 1] - e.data_time == 0.0
    assert e.alarm_state[repeated] == 5  # the repeat's manual alarm is kept
    assert np.isnan(e.hr[0]) and e.hr[5] == 117.0
    assert e.mag[0, 0] == np.float32(1018.178772)
    assert np.allclose(np.linalg.norm(e.acc3d[0, 0]), e.mag[0, 0], rtol=1e-3)


def test_single_event_object_and_array_read_the_same(tmp_path):
    (a,), _ = read_osdb_file(write_json(tmp_path, event_dict(), "one.json"))
    (b,), _ = read_osdb_file(write_json(tmp_path, [event_dict()], "array.json"))
    assert np.array_equal(a.mag, b.mag) and np.array_equal(a.dp_times, b.dp_times)
    assert a.mag[:, 0].tolist() == [1000.0 + k for k in range(8)]


def test_reading_with_tiny_chunks_matches_one_big_read(tmp_path, monkeypatch):
    events = [event_dict(i, n=3 + i, desc="x" * 40 + 'é "quoted" \\ end') for i in range(5)]
    path = tmp_path / "osdb.json"
    path.write_text(" [\n" + ",\n ".join(json.dumps(e, indent=1) for e in events) + " ]\n")
    expected, _ = read_osdb_file(path)
    monkeypatch.setattr(osdbJson, "_CHUNK_CHARS", 7)
    got, stats = read_osdb_file(path)
    assert [e.id for e in got] == list(range(5)) and stats.events_kept == 5
    for a, b in zip(expected, got):
        assert a.desc == b.desc and np.array_equal(a.mag, b.mag) and np.array_equal(a.dp_times, b.dp_times)


def test_each_kind_of_bad_record_is_skipped_and_counted(tmp_path):
    dps = [dp_dict(T0 + 5 * k, 1000.0 + k) for k in range(6)]
    dps[1] = dp_dict(T0 + 5, 1001.0, rawData=None)
    del dps[2]["rawData"]
    dps += [dp_dict(T0 + 30, rawData=[1.0] * 124), dp_dict(T0 + 35, rawData=[None] * 125),
            dp_dict(T0 + 40, rawData=["1"] * 125), dp_dict(T0 + 45, rawData=[float("nan")] + [1.0] * 124),
            dp_dict(T0 + 50, rawData="1,2,3"), dp_dict(T0 + 55, dataTime="yesterday"), "not a datapoint",
            dp_dict(T0 + 25, 7.0), dp_dict(T0 + 60, 1005.0),  # same time as datapoint 5 / same data as it
            dp_dict(T0 - 5, 999.0)]  # out of order
    events = [event_dict(1, datapoints=dps), 42, event_dict(2, datapoints=[]), event_dict(3, datapoints=None),
              event_dict(4, event_type="Other"), event_dict(5, dataTime="soon"),
              event_dict(6, datapoints=[dp_dict(T0, rawData=None)]), event_dict(7, event_type="false alarm"),
              event_dict(8, event_type="NDA")]
    got, stats = read_osdb_file(write_json(tmp_path, events))
    assert [e.id for e in got] == [1, 7, 8] and [e.label for e in got] == [1, 0, 0]
    assert stats.skipped == Counter({
        "event_not_object": 1, "event_no_datapoints": 2, "event_unknown_type": 1, "event_bad_time": 1,
        "event_no_usable_datapoints": 1, "dp_raw_missing": 3, "dp_raw_wrong_length": 1,
        "dp_raw_not_numeric": 3, "dp_raw_non_finite": 1, "dp_bad_time": 1, "dp_not_object": 1,
        "dp_duplicate_time": 1, "dp_duplicate_raw": 1})
    assert stats.repaired == Counter({"event_datapoints_sorted": 1})
    assert (stats.events_in, stats.events_kept) == (9, 3)
    e = got[0]
    assert (e.dp_times - T0).tolist() == [-5.0, 0.0, 15.0, 20.0, 25.0]
    assert e.mag[:, 0].tolist() == [999.0, 1000.0, 1003.0, 1004.0, 1005.0]


def test_seizure_times_and_3d_data_problems_become_none(tmp_path):
    no_3d = event_dict(6)
    for dp in no_3d["datapoints"]:
        del dp["rawData3D"]
    bad_3d = event_dict(7)
    bad_3d["datapoints"][3]["rawData3D"] = [1, 2, 3]
    events = [event_dict(1, seizureTimes=[5, 1]), event_dict(2, seizureTimes=["a", 3]),
              event_dict(3, seizureTimes=[0, 10**400]), event_dict(4, seizureTimes=[]),
              event_dict(5, seizureTimes=None), no_3d, bad_3d]
    del events[4]["seizureTimes"]
    got, stats = read_osdb_file(write_json(tmp_path, events))
    assert [e.seizure_times for e in got] == [None] * 5 + [(0.0, 20.0)] * 2
    assert [e.acc3d is None for e in got] == [False] * 5 + [True, True]
    assert stats.repaired == Counter({"seizure_times_malformed": 3, "acc3d_invalid": 1})


def test_parse_time_accepts_the_documented_formats():
    assert parse_time("2023-05-05T06:28:47Z") == T0
    assert parse_time("2023-05-05T06:28:47") == T0
    assert parse_time("2023-05-05T07:28:47+01:00") == T0
    assert parse_time("05-05-2023 06:28:47") == T0
    assert parse_time(T0) == T0 and parse_time(int(T0) * 1000) == T0
    for bad in ("garbage", "", None, True, float("nan"), float("inf"), -1, 10**20, 10**400, "0001-01-01",
                [T0]):
        assert parse_time(bad) is None


@pytest.mark.parametrize("text, problem", [
    (None, "cannot open"), ("", "empty file"), ("  \n", "empty file"), ("[{\"id\": 1}", "invalid JSON"),
    ("[{\"id\": 1}] x", "extra data"), ("42", "not a JSON array or object"), ("[{} {}]", "expected ','"),
    ("[{\"a\": tru}]", "invalid JSON"), ("{\"a\": \"unterminated", "Unterminated string"),
    # bug 11 (issue 13): no longer read as zero events
    ("[]", "an empty JSON array: no events"), (" [ \n ] ", "an empty JSON array: no events"),
    ("{\"events\": [{\"id\": 1, \"datapoints\": []}, {\"id\": 2}]}",
     "a JSON object holding 2 records under 'events', not an OSDB event list"),
    ("{\"id\": 1, \"type\": \"Seizure\"}", "a JSON object without datapoints")])
def test_unusable_files_raise_one_line_osdb_file_error(tmp_path, text, problem):
    path = tmp_path / "bad.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(OsdbFileError, match=problem) as info:
        read_osdb_file(path)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_read_osdb_files_concatenates_and_sums_stats(tmp_path):
    a = write_json(tmp_path, [event_dict(1), 5], "a.json")
    b = write_json(tmp_path, event_dict(2, event_type="NDA"), "b.json")
    events, stats = read_osdb_files([a, b])
    assert [e.id for e in events] == [1, 2]
    assert (stats.files, stats.events_in, stats.events_kept, stats.datapoints_kept) == (2, 3, 2, 16)
    assert stats.skipped == Counter({"event_not_object": 1})


def test_filters_follow_the_event_filter_keys():
    events = [make_event(1, user_id=39), make_event(2, user_id="40", sub_type="Aura"),
              make_event(3, label=0, sub_type=None, desc="Brushing TEETH"), make_event(4, source="Phone"),
              make_event(5, with_3d=True, with_hr=False)]

    def ids(filters, **kw):
        return [e.id for e in filter_events(events, filters, **kw)[0]]

    assert ids({}) == ids(None, invalid_events=None) == [1, 2, 3, 4, 5]
    assert ids({"includeUserIds": ["39", 40]}) == [1, 2]
    assert ids({"excludeUserIds": [39]}) == [2, 3, 4, 5]
    assert ids({"includeTypes": ["seizure"]}) == [1, 2, 4, 5]
    assert ids({"excludeTypes": ["False Alarm"]}) == [1, 2, 4, 5]
    assert ids({"excludeSubTypes": ["aura", "Null"]}) == [1, 4, 5]
    assert ids({"includeSubTypes": ["Tonic-Clonic"]}) == [1, 4, 5]
    assert ids({"excludeDataSources": ["Phone", "AndroidWear"]}) == [1, 2, 3, 5]
    assert ids({"includeDataSources": ["phone"]}) == [4]
    assert ids({"includeText": ["teeth"]}) == [3]
    assert ids({"excludeText": ["teeth"]}) == [1, 2, 4, 5]
    assert ids({"require3dData": True}) == [5]
    assert ids({"requireHrData": True, "require3dData": False}) == [1, 2, 3, 4]
    assert ids({"excludeUserIds": [], "requireO2SatData": False, "_comment": 1, "x_desc": ""}) == [1, 2, 3, 4, 5]
    assert ids({}, invalid_events=["2", 4]) == [1, 3, 5]
    kept, stats = filter_events(events, {"excludeUserIds": [39], "require3dData": True}, invalid_events=[2])
    assert stats == {"invalid_event": 1, "excludeUserIds": 1, "require3dData": 2, "kept": 1}


def test_unknown_or_unsupported_filters_raise():
    with pytest.raises(ValueError, match="includeUserId"):
        filter_events([], {"includeUserId": [1]})
    with pytest.raises(ValueError, match="requireO2SatData"):
        filter_events([], {"requireO2SatData": True})


def split_population():
    """60 events of 12 users: users 0-3 have 3 seizure events each; 48 events are non-seizure."""
    return [make_event(i, label=int(i % 12 < 4 and i < 36), user_id=i % 12, n=1) for i in range(60)]


def test_split_is_stratified_deterministic_and_without_leakage():
    events = split_population()
    train, val, test = split_events(events, 0.25, 0.2, seed=3)
    assert sum(e.label for e in test) == 3 and len(test) == 15
    assert sum(e.label for e in val) == 2 and len(val) == 9
    assert sorted(e.id for e in train + val + test) == list(range(60))
    assert [e.id for e in split_events(events, 0.25, 0.2, seed=3)[2]] == [e.id for e in test]
    assert [e.id for e in split_events(events, 0.25, 0.2, seed=4)[2]] != [e.id for e in test]
    with pytest.raises(ValueError):
        split_events(events, 0.2, 1.0, seed=0)


def test_split_by_user_keeps_each_user_in_one_split():
    events = split_population()
    splits = split_events(events, 0.25, 0.3, seed=1, by_user=True)
    users = [{e.user_id for e in s} for s in splits]
    assert not (users[0] & users[1] or users[0] & users[2] or users[1] & users[2])
    assert sorted(e.id for s in splits for e in s) == list(range(60))
    assert all(any(e.label for e in s) for s in splits)  # 4 seizure users: best-effort stratification


@pytest.mark.parametrize("by_user", [False, True])
def test_kfold_puts_each_event_in_exactly_one_test_fold(by_user):
    events = split_population()
    folds = list(kfold_splits(events, 4, seed=0, by_user=by_user, validation_prop=0.25))
    assert len(folds) == 4
    test_ids = sorted(e.id for _, _, test in folds for e in test)
    assert test_ids == list(range(60))
    for train, val, test in folds:
        assert sorted(e.id for e in train + val + test) == list(range(60))
        assert sum(e.label for e in test) == 3
        if by_user:
            assert not {e.user_id for e in test} & {e.user_id for e in train + val}
    assert [e.id for e in folds[1][2]] == [e.id for e in list(kfold_splits(events, 4, 0, by_user))[1][2]]


def test_noise_augmentation_adds_copies_of_seizure_events_only():
    events = [make_event(1, n=40, with_3d=True), make_event(2, n=40), make_event(3, label=0)]
    before = events[0].mag.copy()
    cfg = data_config(noiseAugmentation=True, noiseAugmentationFactor=3, noiseAugmentationValue=30.0,
                      noiseAugmentationNegatives=False)
    out = augment_events(events, cfg, np.random.default_rng(0))
    assert out[:3] == events and len(out) == 3 + 2 * 3
    assert np.array_equal(events[0].mag, before)
    for copy, source in zip(out[3:], [events[0]] * 3 + [events[1]] * 3):
        assert copy.id == source.id and copy.mag.dtype == np.float32
        assert copy.mag.shape == source.mag.shape
        assert np.std(copy.mag - source.mag) == pytest.approx(30.0, rel=0.05)
    assert out[3].acc3d is not None and not np.array_equal(out[3].acc3d, events[0].acc3d)
    assert np.allclose(np.linalg.norm(out[3].acc3d, axis=-1), out[3].mag, rtol=1e-5)
    no_3d = noisy_copy(events[1], 10.0, np.random.default_rng(1))
    assert no_3d.acc3d is None and np.std(no_3d.mag - events[1].mag) == pytest.approx(10.0, rel=0.05)


def test_phase_shift_reslices_the_signal_and_times_exactly():
    event = make_event(1, n=4, with_3d=True)
    event.mag[:] = np.arange(500, dtype=np.float32).reshape(4, 125)
    event.acc3d[..., 2] = event.mag
    copies = phase_shifted_copies(event, 50)
    assert len(copies) == 2  # offsets 50 and 100
    for off, copy in zip((50, 100), copies):
        assert np.array_equal(copy.mag.ravel(), np.arange(off, off + 375))
        assert np.array_equal(copy.acc3d[..., 2], copy.mag)
        assert np.allclose(copy.dp_times, event.dp_times[1:] - (125 - off) / 25.0)
    event.dp_times[2:] += 20.0  # a gap between datapoints 1 and 2: the copy's datapoint 1 would span it
    (copy,) = phase_shifted_copies(event, 100)
    assert copy.mag[:, 0].tolist() == [100.0, 350.0]
    cfg = data_config(phaseAugmentation=True, phaseAugmentationStep=50, noiseAugmentation=True,
                      noiseAugmentationFactor=2, noiseAugmentationNegatives=False)
    assert len(augment_events([event, make_event(2, label=0)], cfg, np.random.default_rng(0))) == 2 + 2 + 3 * 2
