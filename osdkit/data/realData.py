"""Readers of real recordings (the real-data folder, `evaluation.realDataDir`; its README.md says what
it holds). Nothing here trains or tunes; osdkit.reports.realDataReport runs the app over them.

- ADL wrist recordings (UCI "ADL Recognition with Wrist-worn Accelerometer"): 32 Hz `x y z` codes 0..63,
  g = -1.5 + 3*code/63. The magnitude is resampled to 25 Hz with scipy.signal.resample_poly (up 25,
  down 32, linear-trend padding): its anti-aliasing filter removes the 12.5-16 Hz content a 25 Hz watch
  cannot see, where linear interpolation would fold it into the 9-12.5 Hz band. `adl_events` cuts each
  recording into 5 s datapoints (125 samples, x 1000 = milli-g) from its start, as osdbData Events
  (non-seizure, no seizure times), so every report runs them through the same windows and timeline.
- OSDB event JSON files, read by osdbData like every OSDB file (`read_event`).
"""
import logging
import os
import warnings

import numpy as np
from scipy.signal import resample_poly

from osdkit.data.osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP, Event, read_osdb_file

log = logging.getLogger(__name__)

ADL_RATE_HZ = 32


def adl_codes_to_g(codes):
    """ADL accelerometer codes 0..63 to acceleration in g."""
    return -1.5 + 3.0 * np.asarray(codes, dtype=np.float64) / 63.0


def resample_32_to_25(signal):
    """Resample a 32 Hz signal to 25 Hz (polyphase, anti-aliased); length ceil(n*25/32)."""
    return resample_poly(np.asarray(signal, dtype=np.float64), int(SAMPLE_RATE_HZ), ADL_RATE_HZ, padtype="line")


def read_adl_file(path):
    """Acceleration magnitude in g at 25 Hz (float32) of one ADL file; ValueError if it is not valid."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": checked below
            codes = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"not integer 'x y z' lines ({err})") from err
    if codes.size == 0:
        raise ValueError("empty file")
    if codes.shape[1] != 3:
        raise ValueError(f"{codes.shape[1]} columns, expected 3")
    if codes.min() < 0 or codes.max() > 63:
        raise ValueError(f"codes outside 0..63 ({codes.min()}..{codes.max()})")
    magnitude = np.linalg.norm(adl_codes_to_g(codes), axis=1)
    return resample_32_to_25(magnitude).astype(np.float32)


def load_adl_recordings(root, skipped=None):
    """[(activity, filename, magnitude_g float32 at 25 Hz)] for root/<activity>/*.txt, sorted.
    Unreadable files are skipped with a logged reason; pass a list as `skipped` to get (path, reason)."""
    recordings, skipped = [], [] if skipped is None else skipped
    for activity in sorted(os.listdir(root)):
        folder = os.path.join(root, activity)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith(".txt"):
                continue
            path = os.path.join(folder, name)
            try:
                recordings.append((activity, name, read_adl_file(path)))
            except (OSError, ValueError) as err:
                skipped.append((path, str(err)))
                log.warning("skipping %s: %s", path, err)
    if skipped:
        log.warning("%d ADL files skipped", len(skipped))
    return recordings


def adl_events(recordings):
    """osdbData Events of ADL recordings [(activity, filename, magnitude_g)]: id "activity/filename",
    type "NDA", sub_type the activity, one 5 s datapoint per whole 125 samples from the start (the tail
    is dropped), times 5, 10, ... s after data_time 0."""
    events = []
    for activity, name, magnitude in recordings:
        n = len(magnitude) // SAMPLES_PER_DP
        mag = (np.asarray(magnitude[:n * SAMPLES_PER_DP], dtype=np.float64) * 1000.0).reshape(n, SAMPLES_PER_DP)
        events.append(Event(id=f"{activity}/{name}", user_id=None, type="NDA", sub_type=activity, desc="adl_wrist",
                            data_time=0.0, seizure_times=None, label=0,
                            dp_times=SAMPLES_PER_DP / SAMPLE_RATE_HZ * np.arange(1, n + 1),
                            mag=mag.astype(np.float32), acc3d=None, alarm_state=np.full(n, -1, np.int8),
                            hr=np.full(n, np.nan, np.float32), source=None))
    return events


def read_event(path, event_id=None):
    """(Event, ReadStats) of one event from an OSDB file, read with osdbData like every OSDB file
    (give event_id when the file holds several events)."""
    events, stats = read_osdb_file(path)
    if event_id is not None:
        events = [e for e in events if e.id == event_id]
        if not events:
            raise ValueError(f"{path}: no usable event {event_id}")
    if len(events) != 1:
        raise ValueError(f"{path}: holds {len(events)} usable events: give event_id")
    return events[0], stats
