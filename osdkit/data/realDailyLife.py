"""Real daily life as OSDB non-seizure (NDA) events: the compact file the default run trains on.

`build_events` turns the real recordings of a data folder (wisdm_watch: 26 people, 20 Hz; adl_wrist: 16
volunteers, 32 Hz; read and resampled anti-aliased to 25 Hz by realData) into OSDB event dicts: one "NDA"
event per recording, its activity as subType (e.g. "Jogging", "Walk"), userId one real person
("wisdm-1600", "adl-f1"), dataSourceName the dataset ("wisdm_watch", "adl_wrist"), rawData the magnitude
in milli-g (rounded to 1 mg) per 5 s datapoint; the last partial datapoint is dropped and recordings
shorter than one datapoint give no event. No rawData3D (the model reads the magnitude), no alarmState
(no app ran). Event ids start at REAL_ID_BASE, far from the simulator's (10000 + n).

`write_events` writes them as a gzip'd OSDB JSON array (osdbData reads .json.gz), atomically and with
the same bytes for the same events. The repository ships data/real_daily_life.json.gz (CC BY 4.0, see
data/LICENCE_real_daily_life.txt), rebuilt by `python buildRealDailyLife.py ../shared/data`.
"""
import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np

from osdkit.data import realData
from osdkit.data.osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP
from osdkit.io.fileUtils import atomic_output

REAL_ID_BASE = 900000
SOURCES = ("wisdm_watch", "adl_wrist")
CITATIONS = {
    "wisdm_watch": "WISDM Smartphone and Smartwatch Activity and Biometrics Dataset (Weiss, Yoneda, Hayajneh, "
                   "IEEE Access 7:133190, 2019; UCI Machine Learning Repository; CC BY 4.0)",
    "adl_wrist": "Dataset for ADL Recognition with Wrist-worn Accelerometer (Bruno, Mastrogiovanni, Sgorbissa; "
                 "UCI Machine Learning Repository; CC BY 4.0)",
}
_START = dt.datetime(2019, 1, 1)


def recordings_of(data_dir):
    """[(source, activity, name, person, magnitude_g at 25 Hz)] of the real daily-life folders present in
    data_dir (wisdm_watch/, adl_wrist/); ValueError naming a recording without a person."""
    data_dir, out = Path(data_dir), []
    readers = {"wisdm_watch": (realData.load_wisdm_recordings, realData.wisdm_person),
               "adl_wrist": (realData.load_adl_recordings, realData.adl_person)}
    for source in SOURCES:
        load, person_of = readers[source]
        if (data_dir / source).is_dir():
            for activity, name, mag in load(data_dir / source):
                if person_of(name) is None:
                    raise ValueError(f"{data_dir / source}: {name} names no person")
                out.append((source, activity, name, person_of(name), mag))
    return out


def recording_event(source, activity, name, person, magnitude_g, event_id, start):
    """One OSDB NDA event dict of a real recording (None when shorter than one datapoint)."""
    n_dp = len(magnitude_g) // SAMPLES_PER_DP
    if n_dp == 0:
        return None
    raw = np.round(np.asarray(magnitude_g[:n_dp * SAMPLES_PER_DP], np.float64) * 1000).astype(int)
    raw = raw.reshape(n_dp, SAMPLES_PER_DP).tolist()
    datapoints = [{"id": event_id * 1000 + k, "eventId": event_id, "userId": person, "hr": -1, "rawData": raw[k],
                   "dataTime": _iso(start + dt.timedelta(seconds=5 * (k + 1)))} for k in range(n_dp)]
    return {"id": event_id, "userId": person, "type": "NDA", "subType": activity,
            "desc": f"Real daily life: {activity.lower()} ({source} {name}; {person}). {CITATIONS[source]}",
            "dataTime": _iso(start), "sampleFreq": int(SAMPLE_RATE_HZ), "dataSourceName": source,
            "has3dData": False, "hasHrData": False, "datapoints": datapoints}


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_events(data_dir):
    """The OSDB event dicts of every real daily-life recording in data_dir, 10 minutes apart in time."""
    events = []
    for source, activity, name, person, mag in recordings_of(data_dir):
        start = _START + dt.timedelta(minutes=10 * len(events))
        event = recording_event(source, activity, name, person, mag, REAL_ID_BASE + len(events), start)
        if event is not None:
            events.append(event)
    return events


def write_events(path, events):
    """Write events as a gzip'd OSDB JSON array (one event per line), atomically; deterministic bytes."""
    if not events:
        raise ValueError(f"{path}: no real daily-life events to write")
    with atomic_output(path) as tmp, open(tmp, "wb") as raw, \
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(("[\n" + ",\n".join(json.dumps(e, sort_keys=True, separators=(",", ":")) for e in events)
                 + "\n]\n").encode("utf-8"))
