"""The OSD algorithm, SdAlgMl's result, voting and the escalation against the app's Java source."""
import json

import numpy as np
import pytest

from osdkit.app.osdAlgorithm import (ALARM, OK, WARNING, combine, escalate, freq_to_bin, ml_result, osd_algorithm,
                                     osd_on_events, osd_settings, osd_spectrum, segment_starts)
from osdkit.data import osdbData

from conftest import FIXTURES

REAL_EVENT = FIXTURES / "event_45781_tonic_clonic.json"


def java_escalation(in_alarm, new_segment=None, warn=5, alarm=10, period=5):
    """SeizureDetector.processData's state machine, line by line; restarts where new_segment."""
    timer, previous, states = 0, OK, []
    for i, x in enumerate(in_alarm):
        if new_segment is not None and new_segment[i]:
            timer, previous = 0, OK
        if x:
            timer += period
            state = ALARM if timer > alarm else WARNING if timer > warn else OK
        elif previous == ALARM:
            state, timer = WARNING, warn + 1
        else:
            state, timer = OK, 0
        states.append(state)
        previous = state
    return states


@pytest.fixture(scope="module")
def raw_datapoints():
    with open(REAL_EVENT) as f:
        return json.load(f)["datapoints"]


def test_port_reproduces_every_recorded_datapoint(raw_datapoints):
    """All 30 datapoints of the real event (the repeat included): specPower, roiPower, roiRatio and
    simpleSpec as the watch recorded them, from the raw samples."""
    spec, roi, ratio, simple = osd_spectrum(np.array([dp["rawData"] for dp in raw_datapoints]))
    assert len(spec) == 30
    assert spec.tolist() == [dp["specPower"] for dp in raw_datapoints]
    assert roi.tolist() == [dp["roiPower"] for dp in raw_datapoints]
    assert ratio.tolist() == [dp["roiRatio"] for dp in raw_datapoints]
    assert simple.tolist() == [dp["simpleSpec"] for dp in raw_datapoints]
    one = osd_spectrum(np.array(raw_datapoints[20]["rawData"]))  # one datapoint, shape (125,)
    assert (int(one[0]), int(one[1])) == (raw_datapoints[20]["specPower"], raw_datapoints[20]["roiPower"])


def test_port_on_the_read_event_matches_too(raw_datapoints):
    """Through osdbData (float32 samples, repeat dropped), with the settings the file records."""
    events, _ = osdbData.read_osdb_file(REAL_EVENT)
    event = events[0]
    assert event.osd_settings == {"alarmThresh": 900, "alarmRatioThresh": 57, "alarmFreqMin": 3, "alarmFreqMax": 8}
    assert osd_settings(event.osd_settings) == {"alarm_thresh": 900, "alarm_ratio_thresh": 57,
                                                "alarm_freq_min": 3, "alarm_freq_max": 8}
    recorded = {osdbData.parse_time(dp["dataTime"]): dp for dp in raw_datapoints}
    osd = osd_on_events([event])
    assert len(osd["spec_power"]) == 29
    assert osd["spec_power"].tolist() == [recorded[t]["specPower"] for t in event.dp_times]
    assert osd["roi_power"].tolist() == [recorded[t]["roiPower"] for t in event.dp_times]
    assert set(osd["alarm_thresh"].tolist()) == {900}


def test_recomputed_escalation_agrees_with_the_recorded_alarm_state():
    """The watch app's recorded alarmState is the escalated OSD result on every datapoint except the
    repeat that carried a manual alarm (5), which osdbData merged into the kept one."""
    event = osdbData.read_osdb_file(REAL_EVENT)[0][0]
    state = escalate(osd_on_events([event])["result"] == ALARM, time=event.dp_times)
    comparable = event.alarm_state <= ALARM
    assert comparable.sum() == 28 and (event.alarm_state == 5).sum() == 1
    assert (state[comparable] == event.alarm_state[comparable]).all()
    assert state.tolist().count(ALARM) == 7


def test_bins_and_a_hand_computed_sine():
    assert [int(freq_to_bin(f, 125)) for f in (3, 8, 12)] == [15, 40, 60]
    t = np.arange(125) / 25.0
    # 150 mg at 5 Hz (bin 25): |X|^2 = (125 * 75)^2; spec = that / 125 / 2, roi = that / 25 bins
    osd = osd_algorithm(1000 + 150 * np.sin(2 * np.pi * 5 * t))
    assert (int(osd["spec_power"]), int(osd["roi_power"]), int(osd["roi_ratio"])) == (351, 3515, 100)
    assert osd["result"] == ALARM
    # simpleSpec band j averages bins 1+5j .. 5+5j (the +1 skips DC): bin 25 is in band 4
    assert osd["simple_spec"].tolist() == [0, 0, 0, 0, 87890625 // 5 // 1000, 0, 0, 0, 0, 0]
    above = osd_algorithm(1000 + 500 * np.sin(2 * np.pi * 12.4 * t))  # bin 62 > bin(12 Hz) = 60: ignored
    assert (int(above["spec_power"]), int(above["roi_power"]), int(above["result"])) == (1, 0, OK)
    low = osd_algorithm(1000 + 150 * np.sin(2 * np.pi * 2 * t))  # outside 3-8 Hz: power without ratio
    assert (int(low["spec_power"]), int(low["roi_power"]), int(low["result"])) == (351, 0, OK)
    assert osd_algorithm(1000 + 150 * np.sin(2 * np.pi * 5 * t), alarm_thresh=3515)["result"] == OK
    assert osd_algorithm(1000 + 150 * np.sin(2 * np.pi * 5 * t), alarm_ratio_thresh=100)["result"] == OK


def test_settings_per_row_equal_separate_calls():
    rng = np.random.default_rng(0)
    mag = 1000 + rng.normal(0, 300, (6, 125))
    thresh, fmin, fmax = np.array([100, 900] * 3), np.array([3, 2, 3, 4, 3, 1]), np.array([8, 8, 10, 6, 8, 12])
    together = osd_algorithm(mag, thresh, 57, fmin, fmax)
    for i in range(6):
        alone = osd_algorithm(mag[i:i + 1], thresh[i], 57, fmin[i], fmax[i])
        for key in ("spec_power", "roi_power", "roi_ratio", "result"):
            assert together[key][i] == alone[key][0], key
    with pytest.raises(ValueError, match="freq_min < freq_max"):
        osd_algorithm(mag, alarm_freq_min=8, alarm_freq_max=8)


@pytest.mark.parametrize("in_alarm, expected", [
    ([1, 1, 1, 1], [OK, WARNING, ALARM, ALARM]),  # ALARM on the 3rd in-alarm datapoint
    ([1, 1, 1, 0, 1], [OK, WARNING, ALARM, WARNING, ALARM]),  # dropped to WARNING, timer 6: ALARM at once
    ([1, 1, 1, 0, 1, 0, 1, 1], [OK, WARNING, ALARM, WARNING, ALARM, WARNING, ALARM, ALARM]),
    ([1, 1, 1, 0, 0, 1, 1], [OK, WARNING, ALARM, WARNING, OK, OK, WARNING]),  # WARNING, then OK resets
    ([1, 1, 0, 1, 1], [OK, WARNING, OK, OK, WARNING]),  # a WARNING that never reached ALARM drops to OK
    ([0, 1, 0, 1, 1, 1, 0, 0], [OK, OK, OK, OK, WARNING, ALARM, WARNING, OK]),
    ([], []),
])
def test_escalation_hand_made(in_alarm, expected):
    assert escalate(in_alarm).tolist() == expected
    assert java_escalation(in_alarm) == expected


def test_escalation_restarts_per_group_and_after_gaps():
    ones = np.ones(6, dtype=bool)
    assert escalate(ones, group=[0, 0, 0, 1, 1, 1]).tolist() == [OK, WARNING, ALARM, OK, WARNING, ALARM]
    times = [0, 5, 10, 25, 30, 35]  # 15 s gap > MAX_DP_GAP_S
    assert escalate(ones, time=times).tolist() == [OK, WARNING, ALARM, OK, WARNING, ALARM]
    assert escalate(ones, time=times, max_gap_s=np.inf).tolist() == [OK, WARNING, ALARM, ALARM, ALARM, ALARM]
    # 6 s apart (real watches jitter) is no gap
    assert escalate(ones[:3], time=[0, 6, 11]).tolist() == [OK, WARNING, ALARM]
    with pytest.raises(ValueError, match="time order"):
        escalate(ones[:3], time=[0, 10, 5])
    assert segment_starts(4, [0, 0, 1, 1], [0, 5, 0, 5]).tolist() == [True, False, True, False]


def test_escalation_equals_the_java_loop_on_random_sequences():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        n = int(rng.integers(0, 40))
        in_alarm = rng.random(n) < rng.random()
        group = np.sort(rng.integers(0, 3, n))
        warn, alarm, period = (int(v) for v in rng.integers(0, 25, 3))
        period = max(period, 1)
        got = escalate(in_alarm, group, warn_time_s=warn, alarm_time_s=alarm, sample_period_s=period)
        assert got.tolist() == java_escalation(in_alarm, segment_starts(n, group), warn, alarm, period)


def test_ml_result_is_a_java_float_comparison():
    p = np.array([0.0, 0.5, 0.5000001, 0.83, 0.9])
    assert ml_result(p, 0.5).tolist() == [OK, OK, ALARM, ALARM, ALARM]
    assert ml_result(p, 0.83).tolist() == [OK, OK, OK, OK, ALARM]  # float32(0.83) is not above itself
    assert ml_result([0.0], 0.0).tolist() == [OK]  # the gated / not-yet-full p = 0 never alarms


def test_voting_strategies():
    results = np.array([[ALARM, ALARM, OK, OK], [ALARM, OK, OK, WARNING], [ALARM, OK, OK, OK]])
    assert combine(results).tolist() == [ALARM, ALARM, OK, WARNING]
    assert combine(results, "MAJORITY").tolist() == [ALARM, WARNING, OK, WARNING]
    assert combine(results, "UNANIMOUS").tolist() == [ALARM, OK, OK, WARNING]
    assert combine(results[1:2], "UNANIMOUS").tolist() == [ALARM, OK, OK, OK]  # one result: the OR path
    with pytest.raises(ValueError, match="strategy"):
        combine(results, "WEIGHTED")
