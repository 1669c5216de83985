"""The convulsion check: the run's models on simulated tonic-clonic seizures of people never trained on.

The test split of the default run holds only about ten tonic-clonic seizures with 15-30 s convulsions,
too few to tell 80 % from 95 %. With `evaluation.convulsionCheckUsers` > 0 the test step simulates that
many more users (other random people than any in the database: their own seed stream and user ids from
CHECK_FIRST_USER_ID), each with SEIZURES_PER_USER tonic-clonic seizures, and replays every model variant
on them as the app runs it (movement gate, threshold, the escalation: nnTester.evaluate_windows).
Reported as convulsionMetrics' summaries (ALARM before the convulsion ends, latency from its onset) for
ML alone, the OSD algorithm and both combined (printed by reports.plots.compare_convulsion_check). The
events live in a temporary file only: nothing is kept on disk, and nothing here can reach training,
validation or the alarm settings.

The same seizures as a slower watch gives them (`slower_watch_events`): sampled at SLOWER_WATCH_HZ behind
its chip's anti-aliasing, then filled to the app's 25 Hz by repeating the latest sample, by linear
interpolation or by polyphase interpolation (TO_25_HZ). The database's simulated watches all sample at
25 Hz, and a model may lean on what only 25 Hz holds (above 8 Hz, the shape between samples); the check
replayed this way shows what a user of such a watch would get.
"""
import dataclasses
import functools
import tempfile
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from osdkit.data import osdbData, windowing
from osdkit.data.osdbData import SAMPLE_RATE_HZ
from osdkit.sim import osdbSim

SEIZURES_PER_USER = 2
CHECK_FIRST_USER_ID = 900001
CHECK_FIRST_EVENT_ID = 900000
CHECK_STREAM = 1  # the users' seed is [simulation seed, CHECK_STREAM]: never the database's own people
SLOWER_WATCH_HZ = 16
TO_25_HZ = ("repeat", "linear", "polyphase")  # how a slower watch's samples are filled to 25 Hz


@functools.lru_cache(maxsize=1)
def check_events(n_users, seed):
    """The check's tonic-clonic events (a tuple of osdbData Events) of n_users simulated users drawn from
    `seed`, without the database's file quirks (quirk_rate 0); simulated once per run, however many
    folds test on them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "convulsion_check.json"
        osdbSim.simulate_database(path, n_users=n_users, seizures_per_user=SEIZURES_PER_USER, nda_per_user=0,
                                  false_alarms_per_user=0, seed=[seed, CHECK_STREAM], quirk_rate=0.0,
                                  seizure_sub_type="Tonic-Clonic", first_user_id=CHECK_FIRST_USER_ID,
                                  first_event_id=CHECK_FIRST_EVENT_ID)
        events, _ = osdbData.read_osdb_file(path)
    return tuple(events)


def check_windows(run):
    """(events, WindowSet) of the check with the run's window settings, or None when it is off."""
    n_users = run.evaluation.convulsionCheckUsers
    if not n_users:
        return None
    events = check_events(n_users, run.osdb.simulation.seed)
    windows = windowing.make_windows(events, run.model.sampleFreq * run.model.bufferSeconds, run.data.step,
                                     run.data.labelMode, run.data.minOverlapS)
    return events, windows


def check_summary(results, events):
    """{users, events, ml, osd, combined} from appEvaluation's results on the check's events: each column's
    convulsionMetrics summary of the 15-30 s convulsions."""
    return {"users": len({e.user_id for e in events}), "events": len(events), **results["convulsion_15_30s"]}


def to_25_hz(x, rate_hz, n, how):
    """n samples at 25 Hz from samples x at rate_hz: "repeat" the latest sample, "linear" interpolation,
    or "polyphase" (anti-imaged) interpolation, held at the last sample where it falls short."""
    x = np.asarray(x, dtype=np.float64)
    t = np.arange(n) / SAMPLE_RATE_HZ
    if how == "repeat":
        return x[np.minimum((t * rate_hz + 1e-9).astype(int), len(x) - 1)]
    if how == "linear":
        return np.interp(t, np.arange(len(x)) / rate_hz, x)
    if how == "polyphase":
        up = resample_poly(x, int(2 * SAMPLE_RATE_HZ), int(2 * rate_hz), padtype="line")[:n]
        return np.r_[up, np.full(n - len(up), up[-1])]
    raise ValueError(f"unknown way to 25 Hz {how!r}, expected one of {TO_25_HZ}")


def slower_watch_events(events, how, rate_hz=SLOWER_WATCH_HZ):
    """The events' magnitude as a watch sampling at rate_hz (anti-aliased) reports it, filled to 25 Hz
    `how` (TO_25_HZ); every other field the same."""
    out = []
    for event in events:
        mag = event.mag.astype(np.float64).ravel()
        slow = resample_poly(mag, int(2 * rate_hz), int(2 * SAMPLE_RATE_HZ), padtype="line")
        filled = np.abs(to_25_hz(slow, rate_hz, len(mag), how))
        out.append(dataclasses.replace(event, mag=filled.astype(np.float32).reshape(event.mag.shape)))
    return out


def slower_watch_windows(check):
    """{how: (events, WindowSet)} of the check (events, windows) as a SLOWER_WATCH_HZ watch gives it, filled
    to 25 Hz each way of TO_25_HZ: the same windows (labels, positions), the slower watch's signal."""
    events, windows = check
    out = {}
    for how in TO_25_HZ:
        slow = slower_watch_events(events, how)
        signal = windowing.make_windows(slow, windows.window_samples, windows.step_samples).signal
        out[how] = slow, dataclasses.replace(windows, signal=signal)
    return out
