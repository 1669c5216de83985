"""Read and clean OpenSeizureDatabase (OSDB) events (JSON stream: osdbJson.py, filters: osdbFilters.py, splits:
osdbSplit.py).

Reading (`read_osdb_file`): a file (gzip'd when its name ends in .gz) is a JSON array of events (or one
event object, which has
`datapoints`); an empty array, or an object that is no event (e.g. one holding the events under a key),
is an OsdbFileError naming the file. It is parsed one
event at a time from a buffered read, and each event's rawData/rawData3D become numpy arrays at once,
so peak memory stays near one event's Python objects plus the arrays kept.
Cleaning, with a count per reason in `ReadStats.skipped` (records dropped) or `ReadStats.repaired`:
- skipped events: not an object, unknown type (only seizure / false alarm / nda are kept), dataTime
  unparsable, no datapoints, no usable datapoints;
- skipped datapoints: not an object, dataTime unparsable, rawData missing/empty, not a flat list of
  numbers (nulls, strings, bools, nested lists), wrong length (not 125), non-finite values;
- duplicates, after a stable sort by time: a datapoint with the same dataTime as the previous one or
  with identical rawData is dropped; the kept one takes the highest alarmState of the group, so a manual
  alarm (5) sent as a repeat is not lost. Out-of-order datapoints are sorted (counted as repaired);
- events with OSD settings the app cannot have run (negative, beyond a Java int, a frequency above
  12.5 Hz, alarmFreqMin >= alarmFreqMax) are skipped, with a warning naming the file and event;
- seizureTimes missing, null or [] -> None; not two finite numbers with start < end -> None, counted;
- rawData3D: absent on every datapoint (or all zeros) -> acc3d None; present but invalid on some -> None,
  counted.
Times: ISO 8601 strings ("2023-05-05T06:28:47Z"; without a zone means UTC), "dd-mm-YYYY HH:MM:SS" (UTC),
or numbers (epoch seconds, or milliseconds when > 1e11). hr <= 0 (the files use -1) is missing (nan);
alarmState missing or not a small integer is -1.
"""
import gzip
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from osdkit.data.osdbJson import EventStream, OsdbFileError

SAMPLES_PER_DP = 125
SAMPLE_RATE_HZ = 25.0
WINDOW_SAMPLES = 750  # the app's 30 s buffer: 6 datapoints
MAX_DP_GAP_S = 7.5  # datapoints further apart than this are not contiguous (nominal spacing 5 s)
TYPE_LABELS = {"seizure": 1, "false alarm": 0, "nda": 0}

_LOG = logging.getLogger(__name__)


@dataclass(eq=False)
class Event:
    """One OSDB event; per-datapoint arrays are sorted by time, n datapoints of 125 samples."""
    id: object
    user_id: object
    type: str
    sub_type: object
    desc: str
    data_time: float  # epoch seconds
    seizure_times: object  # (start, end) seconds relative to data_time, or None
    label: int  # 1 seizure, 0 false alarm / nda
    dp_times: np.ndarray  # float64 (n,) epoch seconds of the LAST sample of each datapoint
    mag: np.ndarray  # float32 (n, 125) milli-g
    acc3d: object  # float32 (n, 125, 3) milli-g, or None
    alarm_state: np.ndarray  # int8 (n,), -1 when missing
    hr: np.ndarray  # float32 (n,), nan when missing
    source: object  # dataSourceName or None
    osd_settings: dict = field(default_factory=dict)  # OSD settings the file records (alarmThresh, ...)
    convulsion_times: object = None  # (start, end) s of the convulsion (convulsionTimes, simulated events)

    def summary(self):
        """The scalar fields as a dict (what osdkit.app.metrics expects)."""
        return {"id": self.id, "user_id": self.user_id, "type": self.type, "sub_type": self.sub_type,
                "label": self.label, "seizure_times": self.seizure_times, "desc": self.desc}


@dataclass
class ReadStats:
    """What reading kept, and what it dropped (`skipped`) or fixed (`repaired`), by reason."""
    files: int = 0
    events_in: int = 0
    events_kept: int = 0
    datapoints_in: int = 0
    datapoints_kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)

    def merge(self, other):
        """Add another file's counts to these."""
        for name in ("files", "events_in", "events_kept", "datapoints_in", "datapoints_kept"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.skipped.update(other.skipped)
        self.repaired.update(other.repaired)


def _real(value):
    """A JSON number as a float (inf for an int too big for float), or None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def parse_time(value):
    """Epoch seconds from an ISO string, a "dd-mm-YYYY HH:MM:SS" string or an epoch s/ms number.

    None when unparsable or outside 1970..2286 (so absurd numbers cannot ruin float64 time precision)."""
    t = _real(value)
    if t is not None:
        t = t / 1000.0 if t > 1e11 else t
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            try:
                dt = datetime.strptime(value.strip(), "%d-%m-%Y %H:%M:%S")
            except ValueError:
                return None
        t = (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()
    else:
        return None
    return t if 0 < t < 1e10 else None


def _numeric_row(value, length):
    """A float32 array of `length` finite numbers, or the reason the value is not one."""
    if value is None or (isinstance(value, list) and not value):
        return "missing"
    if not isinstance(value, list):
        return "not_numeric"
    if len(value) != length:
        return "wrong_length"
    try:
        arr = np.array(value)
    except (ValueError, TypeError):
        return "not_numeric"
    if arr.ndim != 1 or arr.dtype.kind not in "iuf":
        return "not_numeric"
    with np.errstate(over="ignore"):  # beyond float32 becomes inf, rejected below
        arr = arr.astype(np.float32)
    return arr if np.isfinite(arr).all() else "non_finite"


def _small_int(value, missing=-1):
    v = _real(value)
    return int(v) if v is not None and -128 <= v <= 127 and v == int(v) else missing


def _heart_rate(value):
    v = _real(value)
    return v if v is not None and 0 < v < 1000 else np.nan


def _seizure_times(value, stats):
    if value is None or value == []:
        return None
    times = [_real(v) for v in value] if isinstance(value, list) and len(value) == 2 else [None]
    if all(t is not None and np.isfinite(t) for t in times) and times[0] < times[1]:
        return times[0], times[1]
    stats.repaired["seizure_times_malformed"] += 1
    return None


def _acc3d(values, stats):
    """(n, 125, 3) float32 from the kept datapoints' rawData3D, or None (absent, all zeros or invalid)."""
    rows = [_numeric_row(v, 3 * SAMPLES_PER_DP) for v in values]
    if all(isinstance(r, str) and r == "missing" for r in rows):
        return None
    if any(isinstance(r, str) for r in rows):
        stats.repaired["acc3d_invalid"] += 1
        return None
    acc = np.stack(rows).reshape(len(rows), SAMPLES_PER_DP, 3)
    return acc if acc.any() else None


def _datapoints(dps, stats):
    """Clean one event's datapoints: times, magnitudes, alarm states, hr and raw 3-D values, or None."""
    times, mags, alarms, hrs, raw3d = [], [], [], [], []
    for dp in dps:
        if not isinstance(dp, dict):
            stats.skipped["dp_not_object"] += 1
            continue
        t = parse_time(dp.get("dataTime"))
        if t is None:
            stats.skipped["dp_bad_time"] += 1
            continue
        mag = _numeric_row(dp.get("rawData"), SAMPLES_PER_DP)
        if isinstance(mag, str):
            stats.skipped["dp_raw_" + mag] += 1
            continue
        times.append(t)
        mags.append(mag)
        alarms.append(_small_int(dp.get("alarmState")))
        hrs.append(_heart_rate(dp.get("hr")))
        raw3d.append(dp.get("rawData3D"))
    if not times:
        return None
    times = np.array(times)
    order = np.argsort(times, kind="stable")
    if np.any(np.diff(times) < 0):
        stats.repaired["event_datapoints_sorted"] += 1
    times, mags = times[order], np.stack(mags)[order]
    alarms = np.array(alarms, dtype=np.int8)[order]
    keep = np.r_[True, np.diff(times) != 0]
    stats.skipped["dp_duplicate_time"] += int((~keep).sum())
    distinct = np.flatnonzero(keep)
    same_raw = np.all(mags[distinct[1:]] == mags[distinct[:-1]], axis=1)
    stats.skipped["dp_duplicate_raw"] += int(same_raw.sum())
    keep[distinct[1:][same_raw]] = False
    merged = np.full(int(keep.sum()), -1, dtype=np.int8)
    np.maximum.at(merged, np.cumsum(keep) - 1, alarms)
    kept = order[keep]
    return (times[keep], mags[keep], merged, np.array(hrs, dtype=np.float32)[kept],
            [raw3d[i] for i in kept])


def _osd_settings(obj, dps):
    """The OSD algorithm settings an event was recorded with (alarmThresh, alarmRatioThresh, alarmFreqMin,
    alarmFreqMax; integers only): its first datapoint's where it records them, else the event's."""
    first = next((dp for dp in dps if isinstance(dp, dict)), {})
    settings = {}
    for key in ("alarmThresh", "alarmRatioThresh", "alarmFreqMin", "alarmFreqMax"):
        values = [_real(first.get(key)), _real(obj.get(key))]
        value = next((v for v in values if v is not None and np.isfinite(v) and v == int(v)), None)
        if value is not None:
            settings[key] = int(value)
    return settings


OSD_SETTING_MAX = 2 ** 31 - 1  # the app keeps them as Java ints
NYQUIST_HZ = SAMPLE_RATE_HZ / 2


def osd_settings_problem(settings):
    """Why recorded OSD settings cannot be what the app ran (see the module doc), or None."""
    for key, value in settings.items():
        if not 0 <= value <= OSD_SETTING_MAX:
            return f"OSD setting {key} {value} is out of range (0..{OSD_SETTING_MAX})"
        if key.startswith("alarmFreq") and value > NYQUIST_HZ:
            return f"OSD setting {key} {value} Hz is above {NYQUIST_HZ:g} Hz (half the 25 Hz sample rate)"
    low, high = settings.get("alarmFreqMin", 3), settings.get("alarmFreqMax", 8)  # the app's defaults
    if low >= high:
        return f"OSD settings alarmFreqMin {low} >= alarmFreqMax {high} (an empty frequency band)"
    return None


def _event(obj, stats):
    """An Event from one decoded event object, or (None, reason) when it is skipped."""
    if not isinstance(obj, dict):
        return None, "event_not_object"
    label = TYPE_LABELS.get(str(obj.get("type")).strip().lower())
    if label is None:
        return None, "event_unknown_type"
    data_time = parse_time(obj.get("dataTime"))
    if data_time is None:
        return None, "event_bad_time"
    dps = obj.get("datapoints")
    if not isinstance(dps, list) or not dps:
        return None, "event_no_datapoints"
    stats.datapoints_in += len(dps)
    cleaned = _datapoints(dps, stats)
    if cleaned is None:
        return None, "event_no_usable_datapoints"
    times, mag, alarm_state, hr, raw3d = cleaned
    source = obj.get("dataSourceName")
    desc = obj.get("desc")
    return Event(id=obj.get("id"), user_id=obj.get("userId"), type=str(obj.get("type")),
                 sub_type=obj.get("subType"), desc="" if desc is None else str(desc), data_time=data_time,
                 seizure_times=_seizure_times(obj.get("seizureTimes"), stats), label=label,
                 dp_times=times, mag=mag, acc3d=_acc3d(raw3d, stats), alarm_state=alarm_state, hr=hr,
                 source=None if source is None else str(source), osd_settings=_osd_settings(obj, dps),
                 convulsion_times=_seizure_times(obj.get("convulsionTimes"), stats)), None


def read_osdb_file(path, log=None):
    """Events of one OSDB JSON file and what was dropped; raises OsdbFileError for an unusable file.

    `log` is a logging.Logger (default: this module's); one warning line per file sums up the drops."""
    log = log or _LOG
    stats, events = ReadStats(files=1), []
    try:
        f = (gzip.open if str(path).endswith(".gz") else open)(path, "rt", encoding="utf-8-sig")
    except OSError as exc:
        raise OsdbFileError(f"{path}: cannot open ({exc.strerror})") from None
    with f:
        for obj in EventStream(f, path).values():
            stats.events_in += 1
            event, reason = _event(obj, stats)
            if event is None:
                stats.skipped[reason] += 1
                log.debug("%s: skipped event %s: %s", path, obj.get("id") if isinstance(obj, dict) else "?",
                          reason)
                continue
            problem = osd_settings_problem(event.osd_settings)
            if problem:
                stats.skipped["event_bad_osd_settings"] += 1
                log.warning("%s: event %s: %s; event skipped", path, event.id, problem)
                continue
            events.append(event)
    stats.events_kept = len(events)
    stats.datapoints_kept = sum(len(e.dp_times) for e in events)
    stats.skipped, stats.repaired = +stats.skipped, +stats.repaired
    if stats.skipped or stats.repaired:
        log.warning("%s: kept %d/%d events, %d/%d datapoints; skipped %s; repaired %s", path,
                    stats.events_kept, stats.events_in, stats.datapoints_kept, stats.datapoints_in,
                    dict(stats.skipped), dict(stats.repaired))
    return events, stats


def read_osdb_files(paths, log=None):
    """All events of several OSDB files, in order, with the summed ReadStats."""
    events, total = [], ReadStats()
    for path in paths:
        file_events, stats = read_osdb_file(path, log)
        events.extend(file_events)
        total.merge(stats)
    return events, total


def norm_key(value):
    """Comparison key for ids and names: case-insensitive text, None as "null"."""
    return "null" if value is None else str(value).strip().lower()
