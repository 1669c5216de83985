"""Tests for windowing: window contents and times, labels, segments, the movement gate, and robustness."""
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from osdkit.data.osdbData import Event, OsdbFileError, read_osdb_file
from osdkit.data.windowing import make_windows, movement_gate, segment_bounds, window_labels

T0 = 1683268127.0  # 2023-05-05T06:28:47Z


def make_event(n=8, label=1, seizure_times=None, dp_times=None, mag=None):
    """An Event whose datapoint k is constant 1000*(k+1) milli-g (k+1 g), 5 s apart, data_time = dp 0."""
    if mag is None:
        mag = np.repeat(1000.0 * np.arange(1, n + 1), 125).reshape(n, 125)
    dp_times = T0 + 5.0 * np.arange(n) if dp_times is None else T0 + np.asarray(dp_times, dtype=float)
    return Event(id=1, user_id=1, type="Seizure" if label else "NDA", sub_type=None, desc="", data_time=T0,
                 seizure_times=seizure_times, label=label, dp_times=dp_times, mag=np.asarray(mag, np.float32),
                 acc3d=None, alarm_state=np.zeros(n, np.int8), hr=np.full(n, np.nan, np.float32), source=None)


def test_eight_datapoints_give_three_windows_with_known_contents_and_times():
    ws = make_windows([make_event(8)], label_mode="event")
    assert len(ws) == 3 and ws.window_samples == 750
    assert ws.signal.dtype == np.float32 and ws.signal.shape == (1000,)
    batch = ws.batch(np.arange(3))
    assert batch.shape == (3, 1, 750) and batch.dtype == np.float32 and batch.flags["C_CONTIGUOUS"]
    for w in range(3):
        assert np.array_equal(batch[w, 0], np.repeat(np.arange(w + 1, w + 7, dtype=np.float32), 125))
    assert ws.end_time.tolist() == [25.0, 30.0, 35.0]
    assert ws.labels.tolist() == [1, 1, 1] and ws.labels.dtype == np.int64
    assert ws.event_index.tolist() == [0, 0, 0] and ws.event_index.dtype == np.int32
    batch[0, 0, 0] = -1.0
    assert ws.signal[0] == 1.0  # batch is a copy


def test_window_size_step_and_sample_times_follow_the_buffer():
    ws = make_windows([make_event(8)], step_samples=250, label_mode="event")
    assert ws.end_time.tolist() == [25.0, 35.0]
    ws = make_windows([make_event(8)], window_samples=200, step_samples=100, label_mode="event")
    # windows end at samples 200, 300, ..., 1000: sample s (0-based) is at (s - 124) / 25 s
    assert np.allclose(ws.end_time, [(end - 1 - 124) / 25 for end in range(200, 1001, 100)])
    assert ws.end_time[0] == 3.0  # the 200th sample is the 75th of datapoint 1, which ends at 5 s
    assert np.array_equal(ws.batch([0])[0, 0], np.repeat([1.0, 2.0], [125, 75]))
    assert len(make_windows([make_event(5)])) == 0


def test_several_events_share_one_signal():
    events = [make_event(6), make_event(3), make_event(7, label=0)]
    ws = make_windows(events, label_mode="event")
    assert ws.event_index.tolist() == [0, 2, 2]
    assert ws.labels.tolist() == [1, 0, 0]
    assert ws.signal.shape == ((6 + 7) * 125,)  # the short event gives no window and no signal
    assert ws.starts.tolist() == [0, 750, 875]
    assert ws.select(ws.labels == 0).end_time.tolist() == [25.0, 30.0]


def test_segments_split_at_gaps_and_windows_never_span_them():
    times = [0, 5, 10, 15, 20, 25, 32.5, 37.5, 60, 65, 70, 75, 80, 85]  # 7.5 s joins, 22.5 s splits
    assert segment_bounds(np.array(times)) == [(0, 8), (8, 14)]
    assert segment_bounds(np.array([])) == []
    ws = make_windows([make_event(14, dp_times=times)], label_mode="event")
    assert ws.end_time.tolist() == [25.0, 32.5, 37.5, 85.0]
    assert np.array_equal(ws.batch([3])[0, 0], np.repeat(np.arange(9, 15, dtype=np.float32), 125))


def test_seizure_time_labels_at_the_overlap_edges():
    ends = np.arange(25.0, 60.0, 5.0)  # windows cover (end - 30, end]
    assert window_labels(make_event(12, seizure_times=(40, 60)), ends, 30.0).tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert window_labels(make_event(12, seizure_times=(40, 60)), ends, 30.0,
                         min_overlap_s=6.0).tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert window_labels(make_event(12, seizure_times=(0, 10)), ends, 30.0).tolist() == [1, 1, 1, 0, 0, 0, 0]
    # a 2 s seizure counts in every window that holds all of it
    assert window_labels(make_event(12, seizure_times=(20, 22)), ends, 30.0).tolist() == [1, 1, 1, 1, 1, 1, 0]
    assert window_labels(make_event(12, seizure_times=(40, 60)), ends, 30.0, "event").tolist() == [1] * 7
    assert window_labels(make_event(12), ends, 30.0).tolist() == [1] * 7
    assert window_labels(make_event(12, label=0, seizure_times=(0, 60)), ends, 30.0).tolist() == [0] * 7
    with pytest.raises(ValueError):
        window_labels(make_event(12), ends, 30.0, "datapoint")


def test_make_windows_labels_and_can_drop_the_non_ictal_windows_of_seizure_events():
    events = [make_event(12, seizure_times=(40, 60)), make_event(7, label=0), make_event(7)]
    ws = make_windows(events)
    assert ws.labels.tolist() == [0, 0, 0, 0, 1, 1, 1] + [0, 0] + [1, 1]
    dropped = make_windows(events, seizure_event_negatives="drop")
    assert dropped.labels.tolist() == [1, 1, 1, 0, 0, 1, 1]
    assert dropped.end_time.tolist() == [45.0, 50.0, 55.0, 25.0, 30.0, 25.0, 30.0]
    assert np.array_equal(dropped.batch([0]), ws.batch([4]))


def test_movement_gate_on_known_arrays():
    assert movement_gate(np.full(125, 1000.0), 5.0) == np.False_
    alternating = np.tile([900.0, 1100.0], 63)[:125]  # mean 1000-ish, population std about 100
    ratio = 100 * np.std(alternating) / np.mean(alternating)
    assert movement_gate(alternating, ratio) and not movement_gate(alternating, ratio + 1e-9)
    assert movement_gate(np.tile([0.9, 1.1], 63)[:125], 5.0)  # scale does not matter
    assert movement_gate(np.zeros(125), 5.0)  # 0/0 is NaN and NaN < threshold is false, as in the app
    assert movement_gate(np.full(125, 1000.0), 0.0)
    windows = np.stack([np.r_[alternating[:50], np.full(700, 1.0)], np.r_[np.full(625, 1.0), alternating]])
    assert movement_gate(windows[:, None, :], 5.0).tolist() == [[False], [True]]
    with pytest.raises(ValueError):
        movement_gate(np.ones(100), 5.0)


def test_movement_gate_on_a_window_set_looks_at_the_newest_datapoint_only():
    mag = np.full((8, 125), 1000.0)
    mag[6] = np.tile([900.0, 1100.0], 63)[:125]
    ws = make_windows([make_event(8, mag=mag)])
    assert movement_gate(ws, 5.0).tolist() == [False, True, False]
    assert movement_gate(ws, 5.0).tolist() == movement_gate(ws.batch(np.arange(3)), 5.0)[:, 0].tolist()


def iso(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


ODD_VALUES = st.one_of(st.none(), st.booleans(), st.text(max_size=2), st.floats(), st.integers(-10**20, 10**20),
                       st.sampled_from([10**400, -10**400]),
                       st.lists(st.integers(), max_size=2))


@st.composite
def mutated_datapoint(draw, t):
    seed = draw(st.integers(0, 2**16))
    raw = (1000.0 + 300.0 * np.random.default_rng(seed).standard_normal(125)).round(3).tolist()
    kind = "ok" if draw(st.integers(0, 7)) else draw(st.sampled_from(
        ["missing", "short", "long", "element", "whole", "same_raw"]))
    if kind == "short":
        raw = raw[:draw(st.integers(0, 124))]
    elif kind == "long":
        raw = raw + [1.0]
    elif kind == "element":
        raw[draw(st.integers(0, 124))] = draw(ODD_VALUES)
    elif kind == "whole":
        raw = draw(ODD_VALUES)
    elif kind == "same_raw":
        raw = [1000.0] * 125
    time = iso(t) if draw(st.integers(0, 7)) else draw(st.sampled_from(
        [t, t * 1000, iso(t + 1), None, "bad", "05-05-2023 06:28:47"]))
    dp = {"dataTime": time, "rawData": raw, "alarmState": draw(ODD_VALUES), "hr": draw(ODD_VALUES),
          "rawData3D": draw(st.sampled_from([None, [0, 0, 1000] * 125, [1, 2]]))}
    if kind == "missing":
        del dp["rawData"]
    return dp if draw(st.integers(0, 20)) else draw(ODD_VALUES)


@st.composite
def mutated_event(draw):
    n = draw(st.integers(0, 16))
    gaps = [5.0 if draw(st.integers(0, 5)) else draw(st.sampled_from([4.0, 6.0, 1.0, 0.0, 20.0, -5.0]))
            for _ in range(n)]
    times = T0 + np.cumsum([0.0] + gaps)[:n]
    dps = [draw(mutated_datapoint(float(t))) for t in times]
    if draw(st.booleans()):
        dps = draw(st.permutations(dps))
    if dps and draw(st.booleans()):
        dps.append(dps[draw(st.integers(0, len(dps) - 1))])
    event = {"id": draw(ODD_VALUES), "userId": draw(ODD_VALUES), "datapoints": dps,
             "type": draw(st.sampled_from(["Seizure", "seizure", "False Alarm", "NDA"] * 2 + ["Other", None, 3])),
             "dataTime": draw(st.sampled_from([iso(T0)] * 4 + [T0, None, "bad", 10**400])),
             "seizureTimes": draw(st.sampled_from([None, [-10, 20], [20, -10], ["a", 1], [0], "x", [np.nan, 3],
                                                   [0, 10**400]]))}
    if not draw(st.integers(0, 4)):
        del event[draw(st.sampled_from(sorted(event)))]
    return event if draw(st.integers(0, 20)) else draw(ODD_VALUES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(mutated_event(), max_size=4), st.sampled_from(["event", "seizureTimes"]))
def test_mutated_files_never_crash_the_reader_or_windowing(events, label_mode):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "osdb.json"
        path.write_text(json.dumps(events))
        if not events:
            with pytest.raises(OsdbFileError, match="empty JSON array"):
                read_osdb_file(path)
            return
        got, stats = read_osdb_file(path)
    assert stats.events_kept == len(got) <= len(events)
    for e in got:
        n = len(e.dp_times)
        assert n > 0 and np.all(np.diff(e.dp_times) > 0) and e.label in (0, 1)
        assert e.mag.shape == (n, 125) and e.mag.dtype == np.float32 and np.isfinite(e.mag).all()
        assert e.alarm_state.shape == e.hr.shape == (n,)
        assert e.acc3d is None or e.acc3d.shape == (n, 125, 3)
    ws = make_windows(got, label_mode=label_mode)
    batch = ws.batch(np.arange(len(ws)))
    assert batch.shape == (len(ws), 1, 750) and batch.dtype == np.float32 and np.isfinite(batch).all()
    assert set(ws.labels.tolist()) <= {0, 1} and movement_gate(ws, 5.0).shape == (len(ws),)
    for w in range(len(ws)):
        e = got[ws.event_index[w]]
        last = int(np.flatnonzero(e.dp_times - e.data_time == ws.end_time[w])[0])
        assert last >= 5 and np.all(np.diff(e.dp_times[last - 5:last + 1]) <= 7.5)
        assert np.array_equal(batch[w, 0], (e.mag[last - 5:last + 1].ravel() / 1000.0).astype(np.float32))
