"""30 s model windows, their labels and the app's movement gate, from cleaned OSDB events.

Windows follow the app: each datapoint appends its 125 samples (milli-g / 1000 = g) to a buffer and,
once `window_samples` samples are buffered, the window ending at that datapoint's last sample is
scored. With the defaults (750, step 125) the first 5 datapoints of a segment give no window and each
later one gives one.
Segments: an event is cut where successive datapoints are more than MAX_DP_GAP_S (7.5 s, 1.5 times the
nominal 5 s) apart. A window never spans a gap, because a buffer holding data from both sides would not
show the signal the app saw; the buffer fills again after the gap.
Window time: `end_time` is the time of the window's last sample (its datapoint's time minus the samples
after it / 25 Hz) relative to the event's data_time; a window covers (end_time - window_samples/25,
end_time].
Labels (label_mode):
- "event": every window of a seizure event is 1, others 0 (the earlier pipeline).
- "seizureTimes" (default): a window of a seizure event with seizure_times is 1 when it overlaps
  [start, end] by at least min(min_overlap_s, end - start) seconds (default 5 s = one datapoint of
  seizure, so the earliest windows of a seizure count; a seizure shorter than that needs to lie wholly in
  the window). Its other windows (pre-/post-ictal) are 0, or dropped with
  seizure_event_negatives="drop". Seizure events without seizure_times use the event label; windows of
  non-seizure events are always 0.
Memory: a WindowSet holds one float32 signal (all segments that give a window, concatenated) and small
per-window index arrays; windows are only copied out by `batch`.
"""
from dataclasses import dataclass

import numpy as np

from osdkit.data.osdbData import MAX_DP_GAP_S, SAMPLE_RATE_HZ, SAMPLES_PER_DP, WINDOW_SAMPLES

LABEL_MODES = ("event", "seizureTimes")
_GATE_CHUNK = 1 << 16


@dataclass(eq=False)
class WindowSet:
    """Windows as start offsets into one concatenated signal (g), with labels and event positions."""
    signal: np.ndarray  # float32 (total samples,)
    starts: np.ndarray  # int64 (n,) index of each window's first sample in signal
    labels: np.ndarray  # int64 (n,)
    event_index: np.ndarray  # int32 (n,) position of the window's event in the events list
    end_time: np.ndarray  # float64 (n,) seconds of the last sample relative to the event's data_time
    window_samples: int
    step_samples: int  # samples between successive windows of a segment

    def __len__(self):
        return len(self.starts)

    @property
    def step_s(self):
        """Seconds between successive windows: the time each window stands for in rates per day."""
        return self.step_samples / SAMPLE_RATE_HZ

    def batch(self, idx):
        """A new contiguous float32 array (len(idx), 1, window_samples) of the windows at idx."""
        starts = self.starts[np.asarray(idx, dtype=np.int64)]
        rows = self.signal[starts[:, None] + np.arange(self.window_samples)]
        return rows.reshape(len(starts), 1, self.window_samples)

    def select(self, idx):
        """The windows at idx (indices or a bool mask) as a WindowSet sharing this signal."""
        return WindowSet(self.signal, self.starts[idx], self.labels[idx], self.event_index[idx],
                         self.end_time[idx], self.window_samples, self.step_samples)


def segment_bounds(dp_times, max_gap_s=MAX_DP_GAP_S):
    """(first, stop) datapoint index pairs of the runs whose successive times differ by <= max_gap_s."""
    if len(dp_times) == 0:
        return []
    edges = np.r_[0, np.flatnonzero(np.diff(dp_times) > max_gap_s) + 1, len(dp_times)]
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def seizure_overlap_s(event, end_time, span_s):
    """Seconds of the event's seizure inside each span (end_time - span_s, end_time] (relative seconds):
    the one definition of "in a seizure". A seizure event without seizure_times is seizure throughout
    (the whole span counts); other events have none. Window labels need min(min_overlap_s, seizure
    length) of it; an app datapoint (span 5 s) is in the seizure when it holds any."""
    end_time = np.asarray(end_time, dtype=np.float64)
    if event.label != 1:
        return np.zeros(len(end_time))
    if event.seizure_times is None:
        return np.full(len(end_time), float(span_s))
    start, end = event.seizure_times
    return np.maximum(np.minimum(end_time, end) - np.maximum(end_time - span_s, start), 0.0)


def window_labels(event, end_time, window_s, label_mode="seizureTimes", min_overlap_s=5.0):
    """int64 labels of an event's windows ending at end_time (relative seconds); see the module doc."""
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    if event.label == 1 and (label_mode == "event" or event.seizure_times is None):
        return np.ones(len(end_time), dtype=np.int64)
    needed = min(min_overlap_s, event.seizure_times[1] - event.seizure_times[0]) if event.label == 1 else np.inf
    return (seizure_overlap_s(event, end_time, window_s) >= needed - 1e-9).astype(np.int64)


def make_windows(events, window_samples=WINDOW_SAMPLES, step_samples=SAMPLES_PER_DP, label_mode="seizureTimes",
                 min_overlap_s=5.0, seizure_event_negatives="keep"):
    """WindowSet of every event's windows: per segment, one window ending every step_samples samples
    (counted from the segment start) once window_samples samples exist. seizure_event_negatives "drop"
    leaves out the 0-labelled windows of seizure events that have seizure_times."""
    if seizure_event_negatives not in ("keep", "drop"):
        raise ValueError(f"seizure_event_negatives must be 'keep' or 'drop', got {seizure_event_negatives!r}")
    if window_samples < 1 or step_samples < 1:
        raise ValueError("window_samples and step_samples must be positive")
    window_s = window_samples / SAMPLE_RATE_HZ
    parts, starts, labels, event_index, end_times = [], [], [], [], []
    offset = 0
    for i, event in enumerate(events):
        for first, stop in segment_bounds(event.dp_times):
            n_samples = (stop - first) * SAMPLES_PER_DP
            ends = np.arange(step_samples, n_samples + 1, step_samples, dtype=np.int64)
            ends = ends[ends >= window_samples]
            if ends.size == 0:
                continue
            last = ends - 1
            dp_time = event.dp_times[first + last // SAMPLES_PER_DP]
            end_time = dp_time - (SAMPLES_PER_DP - 1 - last % SAMPLES_PER_DP) / SAMPLE_RATE_HZ - event.data_time
            label = window_labels(event, end_time, window_s, label_mode, min_overlap_s)
            keep = slice(None)
            if seizure_event_negatives == "drop" and event.label == 1 and event.seizure_times is not None:
                keep = label == 1
            parts.append((event.mag[first:stop].reshape(-1).astype(np.float64) / 1000.0).astype(np.float32))
            starts.append(offset + ends[keep] - window_samples)
            labels.append(label[keep])
            event_index.append(np.full(len(label[keep]), i, dtype=np.int32))
            end_times.append(end_time[keep])
            offset += n_samples

    def joined(arrays, dtype):
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)

    return WindowSet(joined(parts, np.float32), joined(starts, np.int64), joined(labels, np.int64),
                     joined(event_index, np.int32), joined(end_times, np.float64), window_samples, step_samples)


def _gate_rows(rows, threshold_pct):
    rows = rows.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * rows.std(axis=-1) / rows.mean(axis=-1)
    return ~(pct < threshold_pct)


def movement_gate(windows, threshold_pct):
    """The app's movement test: False where 100*std/mean of the newest 125 samples is below threshold_pct.

    `windows` is a WindowSet or an array whose last axis ends with the newest samples (a (n, 1, 750)
    batch, (n, 750) or one (125,) datapoint); the mask has shape windows.shape[:-1] (len(windows) for a
    WindowSet). As in SdAlgMl.calcRawDataStd, std is the population std (divide by 125), and a NaN
    ratio (all-zero data) passes because NaN < threshold is false in Java too."""
    if not isinstance(windows, WindowSet):
        windows = np.asarray(windows)
        if windows.shape[-1] < SAMPLES_PER_DP:
            raise ValueError(f"need at least {SAMPLES_PER_DP} samples on the last axis, got {windows.shape}")
        return _gate_rows(windows[..., -SAMPLES_PER_DP:], threshold_pct)
    if windows.window_samples < SAMPLES_PER_DP:
        raise ValueError(f"windows shorter than {SAMPLES_PER_DP} samples")
    newest = np.arange(windows.window_samples - SAMPLES_PER_DP, windows.window_samples)
    mask = np.empty(len(windows), dtype=bool)
    for lo in range(0, len(windows), _GATE_CHUNK):
        starts = windows.starts[lo:lo + _GATE_CHUNK]
        mask[lo:lo + len(starts)] = _gate_rows(windows.signal[starts[:, None] + newest], threshold_pct)
    return mask
