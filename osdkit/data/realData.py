"""Readers of real recordings (the real-data folder, `evaluation.realDataDir`; its README.md says what
it holds). Nothing here trains or tunes; osdkit.reports.realDataReport runs the app over them.

- ADL wrist recordings (UCI "ADL Recognition with Wrist-worn Accelerometer"): 32 Hz `x y z` codes 0..63,
  g = -1.5 + 3*code/63. The magnitude is resampled to 25 Hz with scipy.signal.resample_poly (up 25,
  down 32, linear-trend padding): its anti-aliasing filter removes the 12.5-16 Hz content a 25 Hz watch
  cannot see, where linear interpolation would fold it into the 9-12.5 Hz band. `adl_events` cuts each
  recording into 5 s datapoints (125 samples, x 1000 = milli-g) from its start, as osdbData Events
  (non-seizure, no seizure times), so every report runs them through the same windows and timeline.
- WISDM watch recordings (WISDM 2019, `subject,activity,x,y,z;` lines, 20 Hz, m/s^2 including
  gravity): the magnitude in g (/ 9.80665) resampled to 25 Hz the same way (up 5, down 4); one
  recording per subject and activity. `wisdm_events` cuts them as `adl_events` does.
- Real people: "adl-<volunteer>" (the file name's -f1, -m2, ... suffix) and "wisdm-<subject>", the user
  ids the real daily-life events carry, so reports can leave out whoever the model trained on.
- OSDB event JSON files, read by osdbData like every OSDB file (`read_event`).
"""
import logging
import os
import re
import warnings

import numpy as np
from scipy.signal import resample_poly

from osdkit.data.osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP, Event, read_osdb_file

log = logging.getLogger(__name__)

ADL_RATE_HZ = 32
WISDM_RATE_HZ = 20
STANDARD_GRAVITY = 9.80665  # m/s^2 per g
WISDM_ACTIVITIES = {"A": "Walking", "B": "Jogging", "C": "Stairs", "D": "Sitting", "E": "Standing",
                    "M": "Kicking a ball"}
_ADL_PERSON = re.compile(r"-([fm][0-9]+)(?:_[A-Za-z]+)?\.txt$")
_WISDM_FILE = re.compile(r"data_([0-9]+)_accel_watch\.txt")


def adl_codes_to_g(codes):
    """ADL accelerometer codes 0..63 to acceleration in g."""
    return -1.5 + 3.0 * np.asarray(codes, dtype=np.float64) / 63.0


def resample_32_to_25(signal):
    """Resample a 32 Hz signal to 25 Hz (polyphase, anti-aliased); length ceil(n*25/32)."""
    return resample_poly(np.asarray(signal, dtype=np.float64), int(SAMPLE_RATE_HZ), ADL_RATE_HZ, padtype="line")


def resample_20_to_25(signal):
    """Resample a 20 Hz signal to 25 Hz (polyphase, anti-aliased as resample_32_to_25); length ceil(n*5/4)."""
    return resample_poly(np.asarray(signal, dtype=np.float64), 5, 4, padtype="line")


def adl_person(name):
    """The real person of an ADL file name ("...-walk-f1.txt" -> "adl-f1"), None when it names none."""
    match = _ADL_PERSON.search(name)
    return f"adl-{match.group(1)}" if match else None


def read_wisdm_file(path):
    """{activity name: acceleration magnitude in g at 25 Hz (float32)} of one WISDM watch file, in the
    order the file holds them; ValueError naming the line when it is not valid."""
    rows = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            line = line.strip().rstrip(";")
            if not line:
                continue
            parts = line.split(",")
            if len(parts) != 5 or parts[1] not in WISDM_ACTIVITIES:
                raise ValueError(f"line {number}: expected 'subject,activity,x,y,z;' with activity in "
                                 f"{''.join(WISDM_ACTIVITIES)}, got {line[:60]!r}")
            try:
                xyz = [float(v) for v in parts[2:]]
            except ValueError:
                raise ValueError(f"line {number}: x, y, z are not numbers: {line[:60]!r}") from None
            if not np.all(np.isfinite(xyz)):
                raise ValueError(f"line {number}: non-finite acceleration")
            rows.setdefault(parts[1], []).append(xyz)
    if not rows:
        raise ValueError("empty file")
    return {WISDM_ACTIVITIES[code]: resample_20_to_25(np.linalg.norm(np.array(xyz), axis=1) / STANDARD_GRAVITY)
            .astype(np.float32) for code, xyz in rows.items()}


def load_wisdm_recordings(root, skipped=None):
    """[(activity, "<file>:<activity>", magnitude_g float32 at 25 Hz)] of root/data_<subject>_accel_watch.txt,
    sorted by file, then in the file's order. Unreadable files are skipped with a logged reason; pass a
    list as `skipped` to get (path, reason)."""
    recordings, skipped = [], [] if skipped is None else skipped
    for name in sorted(os.listdir(root)):
        if not _WISDM_FILE.fullmatch(name):
            continue
        path = os.path.join(root, name)
        try:
            per_activity = read_wisdm_file(path)
        except (OSError, ValueError) as err:
            skipped.append((path, str(err)))
            log.warning("skipping %s: %s", path, err)
            continue
        recordings += [(activity, f"{name}:{activity}", mag) for activity, mag in per_activity.items()]
    return recordings


def wisdm_person(name):
    """The real person of a WISDM recording name ("data_1600_accel_watch.txt:Walking" -> "wisdm-1600")."""
    match = _WISDM_FILE.match(name)
    return f"wisdm-{match.group(1)}" if match else None


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
    """recording_events of ADL recordings, user ids "adl-<volunteer>" (adl_person)."""
    return recording_events(recordings, "adl_wrist", adl_person)


def wisdm_events(recordings):
    """recording_events of WISDM recordings, user ids "wisdm-<subject>" (wisdm_person)."""
    return recording_events(recordings, "wisdm_watch", wisdm_person)


def recording_events(recordings, source, person_of):
    """osdbData Events of non-seizure recordings [(activity, name, magnitude_g)]: id "activity/name",
    user_id person_of(name), type "NDA", sub_type the activity, desc the source, one 5 s datapoint per
    whole 125 samples from the start (the tail is dropped), times 5, 10, ... s after data_time 0."""
    events = []
    for activity, name, magnitude in recordings:
        n = len(magnitude) // SAMPLES_PER_DP
        mag = (np.asarray(magnitude[:n * SAMPLES_PER_DP], dtype=np.float64) * 1000.0).reshape(n, SAMPLES_PER_DP)
        events.append(Event(id=f"{activity}/{name}", user_id=person_of(name), type="NDA", sub_type=activity,
                            desc=source,
                            data_time=0.0, seizure_times=None, label=0,
                            dp_times=SAMPLES_PER_DP / SAMPLE_RATE_HZ * np.arange(1, n + 1),
                            mag=mag.astype(np.float32), acc3d=None, alarm_state=np.full(n, -1, np.int8),
                            hr=np.full(n, np.nan, np.float32), source=source))
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
