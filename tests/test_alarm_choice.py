"""Issue 17 item 4: alarm settings that are chosen, not shipped by default, when validation cannot resolve
the false-alarm target (alarmSettings on hand-made p of synthetic events; each failed before the fix)."""
import numpy as np
import pytest

from osdkit.data import windowing
from osdkit.data.osdbData import Event
from osdkit.training import alarmSettings, configUtils

T0 = 1683268127.0


def synthetic_event(event_id, label, levels, seizure_times=None):
    """An event of 5 s datapoints at 1 g with {(first, stop) datapoint: level in mg}."""
    n = 720 if label == 0 else 60
    mag = np.full((n, 125), 1000.0, dtype=np.float32)
    for (first, stop), level in levels.items():
        mag[first:stop] = level
    return Event(id=event_id, user_id=event_id, type="Seizure" if label else "NDA", sub_type="Tonic-Clonic",
                 desc="", data_time=T0, seizure_times=seizure_times, label=label, dp_times=T0 + 5.0 * np.arange(n),
                 mag=mag, acc3d=None, alarm_state=np.zeros(n, dtype=np.int8), hr=np.full(n, np.nan, np.float32),
                 source=None)


def choose_on_bouts(events, folder, **model_config):
    """alarmSettings on p = sigmoid(40 (g - 1.5)) of each window's newest 5 s mean (g), gate 0, a target
    of 1 false alarm per day and the other modelConfig values given."""
    windows = windowing.make_windows(events)
    level = np.array([windows.batch([i])[0, 0, -125:].mean() for i in range(len(windows))])
    raw = 1 / (1 + np.exp(-40 * (level - 1.5)))
    run = configUtils.run_config({"modelConfig": {"targetFalseAlarmsPerDay": 1} | model_config,
                                  "dataProcessing": {"accelStdThresholdPct": 0}})
    return alarmSettings.choose_on_predictions(run, raw, windows, events, folder, "validation split")


def test_no_setting_meets_the_target_so_the_fewest_false_alarms_keeping_sensitivity_is_chosen(tmp_path, capsys):
    """An hour of validation data cannot resolve 1 false alarm/day: the sweep was thrown away and the
    config's 0.5 shipped. Here p is ~1 in a 2 g bout and 0.88 in a 1.55 g bout (p = sigmoid(40 (g - 1.5))
    of the newest 5 s): above 0.88 one false alarm remains, 24 per day, and the seizure is still caught."""
    events = [synthetic_event(1, 0, {(300, 312): 2000.0, (500, 512): 1550.0}),
              synthetic_event(2, 1, {(20, 32): 2000.0}, seizure_times=(95.0, 160.0))]
    alarm = choose_on_bouts(events, tmp_path, minEventSensitivity=1.0)
    assert alarm["chosen_on"] == ("validation split; too few hours to resolve 1 false alarms/day: the fewest false alarms "
                                  "with event sensitivity >= 1")
    assert 88 < alarm["threshold_pct"] <= 99 and alarm["val_event_tpr"] == 1.0
    assert alarm["val_false_alarms_per_day"] == pytest.approx(24.0)
    assert alarm["val_nonseizure_hours"] == pytest.approx(1.0)
    assert "1.0 h of non-seizure data: one false alarm = 24.00/day, too few to resolve 1/day" in capsys.readouterr().out


def test_no_false_alarm_in_an_hour_is_not_taken_as_meeting_one_per_day(tmp_path):
    """A run whose validation showed 0 false alarms above p 0.98 in 11 h shipped that as "<= 1 per day"
    met, though 11 h resolve only 2.1 per day (and its test convulsions were alarmed late)."""
    events = [synthetic_event(1, 0, {(500, 512): 1550.0}),
              synthetic_event(2, 1, {(20, 32): 2000.0}, seizure_times=(95.0, 160.0))]
    alarm = choose_on_bouts(events, tmp_path)
    assert alarm["chosen_on"].startswith("validation split; too few hours to resolve 1 false alarms/day: ")
    resolvable = choose_on_bouts(events, tmp_path, targetFalseAlarmsPerDay=24)
    assert resolvable["chosen_on"] == "validation split"


def test_unresolvable_target_chooses_convulsions_in_time_within_half_the_osd_false_alarms(tmp_path, capsys):
    """The fallback shipped p > 0.99 on the default run: the fewest validation false alarms drove the
    threshold to where convulsions were alarmed after they ended. Here a 1.55 g bout gives p = 0.88 on a
    non-seizure event and at a convulsion's start (2 g, p ~ 1, only after it ends), a 2 g bout p ~ 1; the
    OSD algorithm raises 4 false alarms on 4 Hz shaking. Below 0.88: the convulsion in time, 2 false
    alarms (48/day, half the algorithm's 96/day); above: 1 false alarm, the convulsion alarmed late."""
    t = np.arange(125) / 25.0
    shaking = 1000.0 + 600.0 * np.sin(2 * np.pi * 4 * t)
    daily = synthetic_event(1, 0, {(300, 312): 1550.0, (600, 612): 2000.0})
    for first in (100, 200, 400, 500):
        daily.mag[first:first + 12] = shaking
    seizure = synthetic_event(2, 1, {(19, 25): 1550.0, (25, 32): 2000.0}, seizure_times=(95.0, 160.0))
    seizure.convulsion_times = (95.0, 125.0)
    events = [daily, seizure]
    alarm = choose_on_bouts(events, tmp_path, falseAlarmsVsOsd=0.5)
    assert alarm["val_osd_false_alarms_per_day"] == pytest.approx(96.0)
    assert alarm["chosen_on"] == ("validation split; too few hours to resolve 1 false alarms/day: the most convulsions alarmed "
                                  "before they end, then the fewest false alarms within one seizure of the best event "
                                  "sensitivity, with event sensitivity >= 0.75 and <= 0.5x the OSD algorithm's false "
                                  "alarms (96.0/day)")
    assert 20 <= alarm["threshold_pct"] < 88 and alarm["val_convulsions_before_end"] == 1
    assert alarm["val_false_alarms_per_day"] == pytest.approx(48.0) and alarm["val_event_tpr"] == 1.0
    late = choose_on_bouts(events, tmp_path, falseAlarmsVsOsd=0.2)
    assert late["threshold_pct"] >= 88 and late["val_convulsions_before_end"] == 0
    assert late["chosen_on"].endswith("the fewest false alarms with event sensitivity >= 0.75")


def test_one_more_validation_seizure_does_not_buy_three_times_the_false_alarms(tmp_path):
    """Seed 1 of the default run shipped p > 0.12 with 21 validation false alarms/day where p > 0.77 gave
    4.2 with every convulsion still in time: one validation seizure more (0.923 vs 0.897) chose the low
    threshold, and held-out walkers got 10 ALARM episodes per hour. Here three seizures have a 2 g bout
    (p ~ 1) and one a 1.55 g bout (p = 0.88), the hour of daily life one 2 g bout and two 1.55 g bouts:
    below 0.88 all four seizures and 3 false alarms (72/day); above, three seizures and 1 (24/day)."""
    t = np.arange(125) / 25.0
    daily = synthetic_event(1, 0, {(300, 312): 1550.0, (450, 462): 1550.0, (600, 612): 2000.0})
    for first in (100, 200, 400, 500):  # 4 Hz shaking: the OSD algorithm's false alarms (96/day)
        daily.mag[first:first + 12] = 1000.0 + 600.0 * np.sin(2 * np.pi * 4 * t)
    seizures = [synthetic_event(i, 1, {(20, 32): 2000.0 if i < 5 else 1550.0}, seizure_times=(95.0, 160.0))
                for i in (2, 3, 4, 5)]
    alarm = choose_on_bouts([daily] + seizures, tmp_path, falseAlarmsVsOsd=1.0)
    assert alarm["val_osd_false_alarms_per_day"] == pytest.approx(96.0)
    assert alarm["threshold_pct"] >= 88 and alarm["val_event_tpr"] == 0.75
    assert alarm["val_false_alarms_per_day"] == pytest.approx(24.0)
    greedy = choose_on_bouts([daily] + seizures, tmp_path, falseAlarmsVsOsd=1.0, minEventSensitivity=0.8)
    assert greedy["threshold_pct"] < 88 and greedy["val_event_tpr"] == 1.0  # when 3 of 4 is too few
