"""The OSD app's seizure detection as plain numpy: the OSD spectral algorithm (SdAlgOsd), the ML
algorithm's result (SdAlgMl), how results are combined (VotingStrategy) and the alarm escalation
(SeizureDetector), ported from OpenSeizureDetector/Android_Pebble_SD app/.../alg/*.java.

OSD algorithm, per datapoint of N (125) magnitude samples in milli-g at 25 Hz: a real FFT of the raw
samples (JTransforms realForward, unscaled like numpy.fft.rfft); bin(f) = int(N*f/25); bins above
bin(12 Hz) are zeroed; specPower = sum |X_i|^2, i = 1..bin(12 Hz), / N / 2; roiPower = sum |X_i|^2,
i = bin(fmin)..bin(fmax)-1, / (bin(fmax)-bin(fmin)); simpleSpec[j] = mean |X_i|^2 over the bins of
j..j+1 Hz (plus 1 to skip DC), j = 0..9. Stored as integers: (long) value / 1000 ((int) for
simpleSpec); specPower 0 becomes 1; roiRatio = 10*roiPower/specPower (integer division). ALARM when
roiPower > alarmThresh and roiRatio > alarmRatioThresh, else OK. App defaults 100, 57, 3 Hz, 8 Hz.

ML algorithm: p(seizure) is 0 until the model's buffer is full and when the movement gate holds
(windowing.movement_gate); ALARM when p > threshold, compared as Java floats (float32).

Combining (SeizureDetector.processData): the results of all algorithms (OSD, each ML model) are voted
on, default ANY: ALARM if any is ALARM. Escalation, per datapoint, timer in seconds:
- combined ALARM ("in alarm"): timer += 5; state ALARM if timer > AlarmTime (10), WARNING if
  timer > WarnTime (5), else OK. So ALARM on the 3rd in-alarm datapoint in a row.
- not in alarm: if the previous state was ALARM, state WARNING and timer = WarnTime + 1 (so one more
  in-alarm datapoint gives ALARM again at once); otherwise OK and timer 0.
The app's state machine never restarts; here it restarts (timer 0, previous state OK) at the first
datapoint of each group (event or recording) and where successive datapoints are more than
max_gap_s apart (osdbData.MAX_DP_GAP_S by default; pass numpy.inf to run on as the app does).
"""
import numpy as np

from osdkit.data.osdbData import MAX_DP_GAP_S, SAMPLE_RATE_HZ, SAMPLES_PER_DP

OK, WARNING, ALARM = 0, 1, 2
DATAPOINT_S = SAMPLES_PER_DP / SAMPLE_RATE_HZ  # SeizureDetector's mSamplePeriod (5 s)
WARN_TIME_S, ALARM_TIME_S = 5, 10  # the app's WarnTime and AlarmTime defaults (sd_prefs_voting.xml)
FREQ_CUTOFF_HZ = 12
SIMPLE_SPEC_BANDS = 10
ACCEL_SCALE = 1000
OSD_DEFAULTS = {"alarm_thresh": 100, "alarm_ratio_thresh": 57, "alarm_freq_min": 3, "alarm_freq_max": 8}
OSD_FILE_KEYS = {"alarmThresh": "alarm_thresh", "alarmRatioThresh": "alarm_ratio_thresh",
                 "alarmFreqMin": "alarm_freq_min", "alarmFreqMax": "alarm_freq_max"}
STRATEGIES = ("ANY", "MAJORITY", "UNANIMOUS")


def freq_to_bin(freq_hz, n_samples):
    """FFT bin of a frequency, as SdAlgOsd.freq2FftBin: int(n_samples * freq / 25); works on arrays."""
    return (n_samples * np.asarray(freq_hz, dtype=np.float64) / SAMPLE_RATE_HZ).astype(np.int64)


def _java_long_div(value, divisor=ACCEL_SCALE):
    """(long) value / divisor for non-negative doubles (truncate, then integer division)."""
    return np.floor(value).astype(np.int64) // divisor


def osd_spectrum(mag_mg, freq_min=3, freq_max=8):
    """(specPower, roiPower, roiRatio, simpleSpec) int64 arrays of datapoints of magnitude samples in
    milli-g, as SdAlgOsd computes and OSDB records them.

    mag_mg has shape (..., N) (one (125,) datapoint or rows (n, 125)); the first three results have
    shape mag_mg.shape[:-1], simpleSpec one more axis of 10 bands. freq_min/freq_max are scalars or
    arrays broadcasting to mag_mg.shape[:-1] (one setting per datapoint)."""
    x = np.asarray(mag_mg, dtype=np.float64)
    n = x.shape[-1]
    spectrum = np.fft.rfft(x, axis=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2  # getMagnitude: re*re + im*im
    cutoff = int(freq_to_bin(FREQ_CUTOFF_HZ, n))
    power[..., cutoff + 1:n // 2] = 0.0  # zeroed above the cutoff inside the specPower loop
    spec = power[..., 1:min(cutoff, n // 2 - 1) + 1].sum(axis=-1) / n / 2
    lo, hi = freq_to_bin(freq_min, n), freq_to_bin(freq_max, n)
    if np.any(hi <= lo):
        raise ValueError(f"alarm frequencies need freq_min < freq_max, got {freq_min} and {freq_max}")
    lo, hi = np.broadcast_to(lo, x.shape[:-1]), np.broadcast_to(hi, x.shape[:-1])
    k = np.arange(power.shape[-1])
    in_roi = (k >= lo[..., None]) & (k < hi[..., None])
    roi = np.where(in_roi, power, 0.0).sum(axis=-1) / (hi - lo)
    freq_res = 1.0 * SAMPLE_RATE_HZ / n
    bands = []
    for j in range(SIMPLE_SPEC_BANDS):
        b0, b1 = int(1 + j / freq_res), int(1 + (j + 1) / freq_res)
        bands.append(_java_long_div(power[..., b0:b1].sum(axis=-1) / (b1 - b0)))
    spec_power = np.maximum(_java_long_div(spec), 1)  # 0 becomes 1 (values are never negative)
    roi_power = _java_long_div(roi)
    return spec_power, roi_power, 10 * roi_power // spec_power, np.stack(bands, axis=-1)


def osd_in_alarm(roi_power, roi_ratio, alarm_thresh=100, alarm_ratio_thresh=57):
    """SdAlgOsd's test: roiPower > alarmThresh and roiRatio > alarmRatioThresh (bool array)."""
    return (np.asarray(roi_power) > alarm_thresh) & (np.asarray(roi_ratio) > alarm_ratio_thresh)


def osd_algorithm(mag_mg, alarm_thresh=100, alarm_ratio_thresh=57, alarm_freq_min=3, alarm_freq_max=8):
    """SdAlgOsd.processSdData on every datapoint (rows of milli-g samples; settings scalars or one per
    row): dict of int64 arrays spec_power, roi_power, roi_ratio, simple_spec and result (ALARM/OK)."""
    spec, roi, ratio, simple = osd_spectrum(mag_mg, alarm_freq_min, alarm_freq_max)
    result = np.where(osd_in_alarm(roi, ratio, alarm_thresh, alarm_ratio_thresh), ALARM, OK).astype(np.int8)
    return {"spec_power": spec, "roi_power": roi, "roi_ratio": ratio, "simple_spec": simple, "result": result}


def osd_settings(recorded=None):
    """osd_algorithm's keyword settings: the app's defaults, replaced by those an OSDB event records
    (a dict with the file's keys alarmThresh, alarmRatioThresh, alarmFreqMin, alarmFreqMax)."""
    settings = dict(OSD_DEFAULTS)
    for key, name in OSD_FILE_KEYS.items():
        if (recorded or {}).get(key) is not None:
            settings[name] = recorded[key]
    return settings


def osd_on_events(events):
    """osd_algorithm over the datapoints of osdbData Events, each with the settings it records; the
    settings come back too, as per-datapoint arrays (alarm_thresh, ...)."""
    counts = [len(e.mag) for e in events]
    per_event = [osd_settings(e.osd_settings) for e in events]
    settings = {name: np.repeat([s[name] for s in per_event], counts) for name in OSD_DEFAULTS}
    mag = np.concatenate([e.mag for e in events]) if events else np.zeros((0, SAMPLES_PER_DP))
    return {**osd_algorithm(mag, **settings), **settings}


def ml_result(p, threshold):
    """SdAlgMl's result per datapoint: ALARM where p(seizure) > threshold (as Java floats), else OK.
    p is 0 where the buffer is not yet full or the movement gate holds, so those are OK."""
    return np.where(np.asarray(p, dtype=np.float32) > np.float32(threshold), ALARM, OK).astype(np.int8)


def combine(results, strategy="ANY"):
    """SeizureDetector's combination of algorithm results (k, n) -> (n,) state. One result takes the
    app's OR path: ALARM if ALARM, else OK. Several are voted on (VotingStrategy): ANY: ALARM if any
    ALARM, else WARNING if any WARNING. MAJORITY: ALARM if more than half ALARM, else WARNING if any
    WARNING or ALARM. UNANIMOUS: ALARM if all ALARM, else WARNING if any WARNING. Only ALARM counts as
    in alarm for the escalation. (The app's WEIGHTED strategy is not ported.)"""
    results = np.atleast_2d(np.asarray(results))
    if strategy not in STRATEGIES:
        raise ValueError(f"combine strategy must be one of {STRATEGIES}, got {strategy!r}")
    n_alarm, n_warn = (results == ALARM).sum(axis=0), (results == WARNING).sum(axis=0)
    if len(results) == 1:
        alarm, warn = n_alarm > 0, np.zeros_like(n_alarm, dtype=bool)
    elif strategy == "ANY":
        alarm, warn = n_alarm > 0, n_warn > 0
    elif strategy == "MAJORITY":
        alarm, warn = n_alarm > len(results) / 2, (n_warn + n_alarm) > 0
    else:
        alarm, warn = n_alarm == len(results), n_warn > 0
    return np.select([alarm, warn], [ALARM, WARNING], OK).astype(np.int8)


def segment_starts(n, group=None, time=None, max_gap_s=MAX_DP_GAP_S):
    """True where the detector restarts: the first datapoint, a change of group, or more than
    max_gap_s after the previous datapoint. Datapoints must be in time order within a group."""
    new = np.zeros(n, dtype=bool)
    if n:
        new[0] = True
    if group is not None:
        group = np.asarray(group)
        new[1:] |= group[1:] != group[:-1]
    if time is not None:
        dt = np.diff(np.asarray(time, dtype=np.float64))
        if np.any((dt < 0) & ~new[1:]):
            raise ValueError("datapoints must be in time order within each group")
        new[1:] |= dt > max_gap_s
    return new


def last_index(mask):
    """For each position, the last index <= it where mask holds (-1 before the first)."""
    return np.maximum.accumulate(np.where(mask, np.arange(len(mask)), -1)) if len(mask) else np.zeros(0, int)


def escalate(in_alarm, group=None, time=None, max_gap_s=MAX_DP_GAP_S, warn_time_s=WARN_TIME_S,
             alarm_time_s=ALARM_TIME_S, sample_period_s=DATAPOINT_S):
    """SeizureDetector's state (int8 OK/WARNING/ALARM) per datapoint from the combined in-alarm flags,
    vectorised; datapoints in time order, restarting as segment_starts says (see the module doc).

    Runs of in-alarm datapoints: a run whose predecessor run ended in ALARM one datapoint earlier
    starts with timer warn+1 (the datapoint between them is WARNING), any other with timer 0."""
    a = np.asarray(in_alarm, dtype=bool)
    new = segment_starts(len(a), group, time, max_gap_s)
    prev_a = np.r_[False, a[:-1]] & ~new  # the previous datapoint, in the same segment, is in alarm
    next_a = np.r_[a[1:] & ~new[1:], False]
    starts, ends = np.flatnonzero(a & ~prev_a), np.flatnonzero(a & ~next_a)
    if len(starts) == 0:
        return np.zeros(len(a), dtype=np.int8)
    length = ends - starts + 1
    boost = warn_time_s + 1
    before = np.maximum(starts - 2, 0)  # the datapoint before the one between two runs
    after_one_gap = (starts >= 2) & ~new[starts] & ~new[starts - 1] & a[before]
    big = sample_period_s * length > alarm_time_s
    chained = after_one_gap & (boost + sample_period_s * length > alarm_time_s)
    # ends_in_alarm[r] = big[r] or (chained[r] and ends_in_alarm[r-1]): some run j <= r is big and
    # every run after j up to r is chained
    ends_in_alarm = last_index(big) >= last_index(~chained)
    boosted = after_one_gap & np.r_[False, ends_in_alarm[:-1]]
    run = np.maximum(np.cumsum(a & ~prev_a) - 1, 0)  # the latest run started at or before each datapoint
    timer = np.where(boosted, boost, 0)[run] + sample_period_s * (np.arange(len(a)) - starts[run] + 1)
    run_state = np.select([timer > alarm_time_s, timer > warn_time_s], [ALARM, WARNING], OK)
    dropped = np.r_[False, prev_a[1:] & ends_in_alarm[run[:-1]]]  # just after a run that ended in ALARM
    return np.where(a, run_state, np.where(dropped, WARNING, OK)).astype(np.int8)
