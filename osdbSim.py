"""Simulated Open Seizure Database (OSDB) in the real OSDB JSON format.

Real OSDB data needs a licence, so the default training run uses a database written here: a JSON
array of events, each with 5 s datapoints of 125 acceleration magnitudes (rawData, mg) and 3 x 125
interleaved x,y,z samples (rawData3D, mg, 4 mg steps), read through the same code as real files.

Signals are 25 Hz wrist accelerometry: a ~1 g gravity vector that turns with the wrist, activity
motion expressed along / across gravity, per-user sensor gain, offset and noise. Seizures have a
tonic phase (tremor, stiff posture), a clonic phase of jittered jerks whose rate falls from ~4-7 Hz
to ~1-2 Hz, then post-ictal stillness. The OSD spectral alarm (specPower, roiPower, roiRatio,
simpleSpec, alarmState) is computed with the formulas that reproduce the real example event.
"""
import argparse
import datetime as dt
import json
import os
import tempfile
import time
from collections import Counter

import numpy as np
from tqdm import tqdm

FS = 25
DP_SAMPLES = 125
QUANT_MG = 4  # Garmin raw x,y,z come in 4 mg steps (a user's own sensor may differ)
RANGE_MG = 8000
SEIZURE_TYPES = ("Tonic-Clonic", "Focal", "Other")
NDA_TYPES = ("Walking", "Brushing teeth", "Eating", "Typing", "Rest", "Sleep")
FALSE_ALARM_TYPES = ("Clapping", "Shaking", "Running", "Hand washing", "Rhythmic exercise")
SUB_TYPES = {"Seizure": SEIZURE_TYPES, "NDA": NDA_TYPES, "False Alarm": FALSE_ALARM_TYPES}
PHRASES = ("OK", "WARNING", "ALARM")
# rhythmic activities: Hz range (None: the user's gait), amplitude mg, pulse sharpness kappa,
# burst on / off seconds, wrist pitch (deg), arm swing (deg)
RHYTHMS = {
    "Walking": (None, (100, 280), 1.0, (40, 90), (1, 4), -10, 15),
    "Brushing teeth": ((3.5, 5.0), (25, 160), 0.5, (2, 8), (0.5, 3), 50, 3),
    "Clapping": ((3.0, 5.0), (400, 1500), 3.0, (4, 15), (1, 5), 30, 5),
    "Shaking": ((4.0, 7.0), (300, 1200), 0.5, (3, 10), (1, 4), 20, 8),
    "Running": ((2.6, 3.3), (500, 1400), 2.0, (60, 120), (1, 3), -20, 25),
    "Hand washing": ((3.0, 5.0), (150, 500), 1.0, (5, 20), (1, 3), 30, 5),
    "Rhythmic exercise": ((2.5, 4.5), (300, 900), 1.5, (10, 30), (2, 6), 0, 10),
}
HR_RISE = {"Sleep": -8, "Walking": 20, "Brushing teeth": 5, "Eating": 5, "Clapping": 15, "Shaking": 15,
           "Running": 50, "Hand washing": 8, "Rhythmic exercise": 35, "tonic": 25, "clonic": 45, "post-ictal": 35}
WATCHES = (("006-B2337-00", "2.4.9", "V1.2_ben"), ("006-B3113-00", "6.30", "V1.3"),
           ("006-B3290-00", "8.28", "V1.4"), ("006-B2700-00", "5.10", "V1.2"))
APP_VERSIONS = ("4.1.2", "4.2.3", "4.2.8", "5.0.9")


def make_user(rng, user_id):
    """Random traits of one user: sensor, watch orientation, seizure style, activity mix, settings."""
    return {
        "id": int(user_id), "gain": 1 + np.clip(rng.normal(0, 0.015, 3), -0.035, 0.035),
        "offset": np.clip(rng.normal(0, 10, 3), -25, 25),
        "noise_mg": rng.uniform(2, 6), "handed": rng.choice([-1, 1]),
        "pitch": rng.normal(0, 15), "roll": rng.normal(20, 15),
        "vigour": rng.lognormal(0, 0.25), "walk_hz": rng.uniform(1.75, 2.2),
        "seizure_amp": float(np.clip(rng.lognormal(np.log(700), 0.5), 300, 2500)),
        "clonic_hz": (rng.uniform(4.5, 7.5), rng.uniform(1.0, 2.2)),
        "tonic_s": rng.uniform(5, 18), "clonic_s": rng.uniform(35, 100),
        "hr_base": rng.uniform(58, 85), "hr_response": rng.uniform(0.6, 1.4), "has_o2": bool(rng.random() < 0.2),
        "alarm_thresh": int(rng.choice([500, 900, 1200])), "alarm_ratio": int(rng.choice([54, 57, 60])),
        "watch": WATCHES[rng.integers(len(WATCHES))], "app": APP_VERSIONS[rng.integers(len(APP_VERSIONS))],
        "mix": {"Seizure": rng.dirichlet([3, 1.5, 0.7]), "NDA": rng.dirichlet(np.full(len(NDA_TYPES), 1.5)),
                "False Alarm": rng.dirichlet(np.full(len(FALSE_ALARM_TYPES), 1.5))},
        # sensors differ: resolution from 1 mg to a few tens of mg per step, full scale 4 g or 8 g
        "quant_mg": float(rng.choice([1, 2, 4, 4, 8, 16, 32])), "range_mg": float(rng.choice([4000, 8000])),
    }


# ---------------------------------------------------------------- signal building blocks
def _band_noise(rng, n, lo, hi, dims=1):
    """Unit-variance Gaussian noise (n, dims) keeping only frequencies in [lo, hi] Hz."""
    size = 1 << max(n - 1, 1).bit_length()  # a fast FFT length; the first n samples are kept
    freqs = np.fft.rfftfreq(size, 1 / FS)
    spec = np.fft.rfft(rng.standard_normal((size, dims)), axis=0) * ((freqs >= lo) & (freqs <= hi))[:, None]
    x = np.fft.irfft(spec, size, axis=0)[:n]
    sd = x.std(axis=0)
    return np.where(sd > 1e-6, x / np.maximum(sd, 1e-6), 0.0)


def _bursts(rng, n, on_s, off_s):
    """0..1 envelope of alternating on / off periods with soft edges."""
    k = int(n / (FS * min(on_s[0], off_s[0]))) + 2
    lengths = (np.column_stack([rng.uniform(*on_s, k), rng.uniform(*off_s, k)]).ravel() * FS).astype(int) + 1
    env = np.repeat(np.tile([1.0, 0.0], k), lengths)
    start = rng.integers(0, lengths[0] + lengths[1])
    env = np.concatenate([env, np.ones(n)])[start:start + n]
    return np.convolve(env, np.hanning(9) / np.hanning(9).sum(), "same")


def _pulse_train(rng, freq, kappa, amp_var):
    """Zero-mean periodic pulses (peak ~1) following an instantaneous frequency array (Hz); sharper
    pulses for larger kappa, random per-cycle amplitude. Returns (wave, phase)."""
    phase = 2 * np.pi * np.cumsum(np.maximum(freq, 0.2)) / FS + rng.uniform(0, 2 * np.pi)
    cycle = (phase // (2 * np.pi)).astype(int)
    amps = np.clip(1 + amp_var * rng.standard_normal(cycle[-1] - cycle[0] + 1), 0.2, None)[cycle - cycle[0]]
    mean = np.exp(-kappa) * np.i0(kappa)
    return amps * (np.exp(kappa * (np.cos(phase) - 1)) - mean) / (1 - mean), phase


def _direction(rng, along_gravity):
    """Random unit motion direction in the (along gravity, across 1, across 2) frame."""
    par = np.clip(rng.uniform(along_gravity - 0.2, along_gravity + 0.2), 0, 1) * rng.choice([-1, 1])
    across = rng.standard_normal(2)
    return np.concatenate([[par], np.sqrt(1 - par ** 2) * across / np.linalg.norm(across)])


# ---------------------------------------------------------------- activities: (motion (n,3) mg, angles (n,2) deg)
def _rhythm(rng, user, n, spec):
    """Rhythmic activity in bursts (walking, brushing, clapping, running ...)."""
    hz, amp, kappa, on_s, off_s, pitch, swing = spec
    f0 = user["walk_hz"] if hz is None else rng.uniform(*hz)
    wave, phase = _pulse_train(rng, f0 * (1 + 0.04 * _band_noise(rng, n, 0, 0.1)[:, 0]), kappa, 0.15)
    env = _bursts(rng, n, on_s, off_s)
    motion = (rng.uniform(*amp) * user["vigour"] * env * wave)[:, None] * _direction(rng, 0.6)
    motion += 4 * _band_noise(rng, n, 0.2, 3, 3)
    angles = np.column_stack([pitch + swing * env * np.sin(phase / 2), 5 * _band_noise(rng, n, 0, 0.1)[:, 0]])
    return motion, angles


def _rest(rng, user, n):
    """Sitting or standing still: small fidgets and slow drift."""
    return rng.uniform(2, 6) * _band_noise(rng, n, 0.2, 3, 3), 4 * _band_noise(rng, n, 0, 0.05, 2)


def _sleep(rng, user, n):
    """Near still, with a rare turn (posture change plus a short burst of movement)."""
    turns = rng.random(n) < 1 / (FS * 120)
    steps = np.zeros((n, 2))
    steps[turns] = rng.normal(0, 40, (turns.sum(), 2))
    posture = np.pad(np.cumsum(steps, axis=0), ((FS, FS - 1), (0, 0)), mode="edge")
    kernel = np.hanning(2 * FS) / np.hanning(2 * FS).sum()
    angles = np.column_stack([np.convolve(a, kernel, "valid") for a in posture.T])  # ~2 s turns
    burst = np.convolve(turns.astype(float), np.hanning(3 * FS), "same")
    motion = 1.5 * _band_noise(rng, n, 0.1, 2, 3) + 150 * burst[:, None] * _band_noise(rng, n, 0.5, 5, 3)
    return motion, angles


def _eating(rng, user, n):
    """Hand-to-mouth lifts every 10-25 s with small cutting movements in between."""
    lifts = (rng.random(n) < 1 / (FS * rng.uniform(10, 25))) * rng.uniform(40, 80, n)
    bump = np.minimum(np.convolve(lifts, np.hanning(int(FS * rng.uniform(3, 5))), "same"), 100)
    motion = 15 * _band_noise(rng, n, 0.5, 4, 3) + 40 * (bump / 80)[:, None] * _band_noise(rng, n, 0.3, 1.5, 3)
    return motion, np.column_stack([-bump, 5 * _band_noise(rng, n, 0, 0.1)[:, 0]])


def _typing(rng, user, n):
    """Small fast taps (3-7 per second) in bursts."""
    taps = (rng.random(n) < rng.uniform(3, 7) / FS) * rng.uniform(10, 40, n) * _bursts(rng, n, (3, 15), (1, 6))
    t = np.arange(int(0.24 * FS)) / FS
    wave = np.convolve(taps, np.sin(2 * np.pi * 9 * t) * np.exp(-t / 0.05))[:n]
    motion = wave[:, None] * _direction(rng, 0.8) + 3 * _band_noise(rng, n, 0.2, 2, 3)
    return motion, np.column_stack([10 + 2 * _band_noise(rng, n, 0, 0.1)[:, 0], 3 * _band_noise(rng, n, 0, 0.1)[:, 0]])


def _tonic(rng, user, n, amp, **_):
    """Tonic phase: stiffening into a fixed posture with a small high-frequency tremor."""
    env = np.minimum(1, np.arange(n) / (2 * FS))[:, None]
    motion = env * (amp * rng.uniform(0.05, 0.2) * _band_noise(rng, n, 6, 12, 3) + 20 * _band_noise(rng, n, 1, 3, 3))
    return motion, env * rng.uniform(-60, 60, 2) + 2 * _band_noise(rng, n, 3, 8, 2)


def _clonic(rng, user, n, amp, f0, f1):
    """Clonic phase: jittered rhythmic jerks, rate falling f0 -> f1 Hz, getting sharper, fading at the end."""
    u = np.arange(n) / max(n - 1, 1)
    freq = f0 * (f1 / f0) ** u * (1 + 0.12 * _band_noise(rng, n, 0, 2)[:, 0])
    wave, _ = _pulse_train(rng, freq, 0.5 + 3 * u, 0.3)
    env = np.minimum(1, np.arange(n) / (3 * FS)) * (0.4 + 0.6 * np.clip((1 - u) / 0.3, 0, 1))
    motion = (amp * env * wave)[:, None] * _direction(rng, 0.8) + 10 * _band_noise(rng, n, 1, 10, 3)
    return motion, (8 * env * wave)[:, None] * rng.uniform(-1, 1, 2)


def _postictal(rng, user, n):
    """Post-ictal stillness: limp arm, deep slow breathing."""
    breath = 3 * np.sin(2 * np.pi * rng.uniform(0.25, 0.45) * np.arange(n) / FS)
    return np.column_stack([breath, np.zeros(n), np.zeros(n)]) + _band_noise(rng, n, 0.1, 1, 3), \
        _band_noise(rng, n, 0, 0.02, 2)


ACTIVITIES = {"Rest": _rest, "Sleep": _sleep, "Eating": _eating, "Typing": _typing,
              "tonic": _tonic, "clonic": _clonic, "post-ictal": _postictal}


def _seizure_params(rng, user, kind):
    """Durations (s), amplitude (mg) and clonic start / end rates (Hz) of one seizure of a subtype."""
    tonic_scale, clonic_scale, amp_scale = {"Tonic-Clonic": (1, 1, 1), "Focal": (0.15, 0.4, 0.25),
                                            "Other": (1.8, 0.3, 0.45)}[kind]
    f0, f1 = user["clonic_hz"]
    if kind == "Focal":
        f0, f1 = f0 * rng.uniform(0.7, 1), max(f1, 2.0)
    return (user["tonic_s"] * tonic_scale * rng.uniform(0.7, 1.3), user["clonic_s"] * clonic_scale * rng.uniform(0.6, 1.3),
            {"amp": user["seizure_amp"] * amp_scale * rng.uniform(0.6, 1.4), "f0": f0, "f1": f1})


def _plan(rng, user, kind, n, onset_s):
    """The event's segments as (label, samples, params)."""
    if kind in SEIZURE_TYPES:
        tonic_s, clonic_s, params = _seizure_params(rng, user, kind)
        pre = int(FS * (rng.uniform(20, 60) if onset_s is None else onset_s))
        tonic = int(FS * tonic_s)
        clonic = int(FS * clonic_s) if onset_s is not None else max(5 * FS, min(int(FS * clonic_s), n - pre - tonic - 10 * FS))
        pre_kind = ("Sleep", "Rest", "Rest", "Typing", "Eating")[rng.integers(5)]
        return [(pre_kind, pre, {}), ("tonic", tonic, params), ("clonic", clonic, params),
                ("post-ictal", n - pre - tonic - clonic, {})]
    if kind in FALSE_ALARM_TYPES:
        active = min(n, int(FS * rng.uniform(25, 90)))
        lead = int(rng.integers(0, n - active + 1))
        return [(("Rest", "Walking", "Typing")[rng.integers(3)], lead, {}), (kind, active, {}), ("Rest", n - lead - active, {})]
    return [(kind, n, {})]


def simulate_signal(rng, user, kind, n_samples, onset_s=None):
    """3-D wrist acceleration (n_samples, 3) in mg (quantised, clipped) for an event kind (a seizure
    subtype or an activity), plus its segments [(label, start, stop)] in samples. onset_s fixes the
    seizure onset (the clonic phase may then run past the end)."""
    motions, angles, segments, pos = [], [], [], 0
    for label, planned, params in _plan(rng, user, kind, n_samples, onset_s):
        length = min(planned, n_samples - pos)
        if length <= 0:
            continue
        make, full = ACTIVITIES.get(label), max(planned, 8 * FS)  # generate whole, >= 8 s, then cut
        m, a = make(rng, user, full, **params) if make else _rhythm(rng, user, full, RHYTHMS[label])
        m, a = m[:length], a[:length]
        if angles:  # ease posture from the previous segment's last angles over ~1 s
            a = a - (a[0] - angles[-1][-1]) * np.exp(-np.arange(length) / (0.8 * FS))[:, None]
        motions.append(m)
        angles.append(a)
        segments.append((label, pos, pos + length))
        pos += length
    local = np.concatenate(motions)
    angle = np.concatenate(angles) + 3 * _band_noise(rng, n_samples, 0, 0.03, 2)
    p, r = np.radians(user["pitch"] + angle[:, 0]), np.radians(user["roll"] + angle[:, 1])
    g = np.column_stack([-np.sin(p), np.cos(p) * np.sin(r), np.cos(p) * np.cos(r)])
    e1 = np.column_stack([-np.cos(p), -np.sin(p) * np.sin(r), -np.sin(p) * np.cos(r)])
    xyz = (1000 + local[:, :1]) * g + local[:, 1:2] * e1 + local[:, 2:3] * np.cross(g, e1)
    xyz = xyz * user["gain"] + user["offset"] + user["noise_mg"] * rng.standard_normal(xyz.shape)
    xyz[:, 0] *= user["handed"]
    quant = user.get("quant_mg", QUANT_MG)
    return np.clip(np.round(xyz / quant) * quant, -user.get("range_mg", RANGE_MG), user.get("range_mg", RANGE_MG)), segments


# ---------------------------------------------------------------- OSD algorithm imitation
def osd_spectrum(magnitude, freq_min=3, freq_max=8):
    """OSD spectral values of 5 s datapoints (rows of 125 mg magnitudes), as int arrays:
    specPower (0.2-12 Hz), roiPower (freq_min-freq_max Hz), roiRatio (10 x roi / spec), simpleSpec (10 x 1 Hz)."""
    power = np.abs(np.fft.rfft(magnitude, axis=1)) ** 2  # 0.2 Hz bins
    lo, hi = 5 * freq_min, 5 * freq_max
    spec = (power[:, 1:61].sum(1) / 250000).astype(int)
    roi = (power[:, lo:hi].sum(1) / (1000 * (hi - lo))).astype(int)
    simple = (power[:, 1:51].reshape(-1, 10, 5).sum(2) / 5000).astype(int)
    return spec, roi, 10 * roi // np.maximum(spec, 1), simple


def osd_alarm_states(roi_power, roi_ratio, thresh, ratio_thresh):
    """0 OK / 1 WARNING / 2 ALARM per datapoint: WARNING after one datapoint over both thresholds,
    ALARM after two or more in a row. As in the real example, a datapoint reports the state reached
    with the datapoints before it."""
    hit = (roi_power > thresh) & (roi_ratio > ratio_thresh)
    idx = np.arange(len(hit))
    run = idx - np.maximum.accumulate(np.where(hit, -1, idx))
    return np.concatenate([[0], np.select([run >= 2, run == 1], [2, 1], 0)])[:len(hit)]


def _heart_rate(rng, user, segments, n):
    """Heart rate (bpm) per sample: baseline plus activity / seizure rises, lagging by ~20 s."""
    rise = np.zeros(n)
    for label, start, stop in segments:
        scale = user["hr_response"] if label in ("tonic", "clonic", "post-ictal") else 1
        rise[start:stop] = HR_RISE.get(label, 0) * scale
    lag = 20 * FS
    smooth = np.convolve(np.pad(rise, (lag - 1, 0), mode="edge"), np.ones(lag) / lag, "valid")
    return user["hr_base"] + smooth + 2 * _band_noise(rng, n, 0, 0.05)[:, 0]


def _iso(t):
    """OSDB time string, e.g. 2023-05-05T06:28:47Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def simulate_event(rng, user, event_type, event_id, start_time, sub_type=None, quirk_rate=0.0):
    """One OSDB event dict ("Seizure", "NDA" or "False Alarm") of about 3 minutes starting at start_time
    (naive UTC datetime). Datapoint ids are event_id * 1000 + index. Random draws do not depend on
    quirk_rate, so quirk_rate=0 and >0 give the same signals."""
    if sub_type is None:
        sub_type = SUB_TYPES[event_type][rng.choice(len(SUB_TYPES[event_type]), p=user["mix"][event_type])]
    n_dp = int(rng.integers(33, 40))
    xyz, segments = simulate_signal(rng, user, sub_type, n_dp * DP_SAMPLES)
    mag = np.round(np.sqrt((xyz ** 2).sum(1)), 2).reshape(n_dp, DP_SAMPLES)  # rawData as written
    spec, roi, ratio, simple = osd_spectrum(mag)
    states = osd_alarm_states(roi, ratio, user["alarm_thresh"], user["alarm_ratio"])
    hr = np.round(_heart_rate(rng, user, segments, n_dp * DP_SAMPLES)[DP_SAMPLES - 1::DP_SAMPLES]).astype(int)
    o2 = rng.integers(94, 100, n_dp) if user["has_o2"] else np.zeros(n_dp, int)
    ictal = [(s, e) for label, s, e in segments if label in ("tonic", "clonic")]
    if (states == 2).any():
        anchor = int(np.argmax(states == 2))
    else:
        anchor = min(n_dp - 1, ictal[0][0] // DP_SAMPLES + 2) if ictal else n_dp // 2
    anchor_s = 5 * (anchor + 1)
    # quirks, drawn whatever quirk_rate is
    q_event, q_dp = rng.random(4) < quirk_rate, rng.random((4, n_dp)) < quirk_rate
    jitter = np.where(q_dp[0], rng.choice([-1, 1], n_dp), 0)
    gap_start, gap_len = int(rng.integers(1, n_dp - 4)), int(rng.integers(1, 4))
    keep = np.ones(n_dp, bool)
    if q_event[0]:
        keep[gap_start:gap_start + gap_len] = False
    no_hr, no_3d, no_times = q_event[1:]
    raw, raw3d = mag.tolist(), xyz.astype(int).reshape(n_dp, 3 * DP_SAMPLES).tolist()
    datapoints = []
    for k in np.flatnonzero(keep):
        t = start_time + dt.timedelta(seconds=int(5 * (k + 1) + jitter[k]))
        dp = {"dataTime": _iso(t), "eventId": event_id, "userId": user["id"],
              "hr": -1 if no_hr or q_dp[1, k] else int(hr[k]), "o2Sat": int(o2[k]), "pSeizure": 0,
              "alarmState": int(states[k]), "alarmPhrase": PHRASES[states[k]], "specPower": int(spec[k]),
              "roiPower": int(roi[k]), "roiRatio": int(ratio[k]), "simpleSpec": simple[k].tolist(), "rawData": raw[k]}
        if not no_3d:
            dp["rawData3D"] = raw3d[k]
        if q_dp[2, k]:
            del dp["o2Sat"]
        datapoints.append(dp)
        if q_dp[3, k]:  # the phone sent the same datapoint twice
            datapoints.append(dict(dp, dataTime=_iso(t + dt.timedelta(seconds=1))))
    for j, dp in enumerate(datapoints):
        dp["id"] = event_id * 1000 + j
    top = int(states.max())
    part_no, fw, sd_version = user["watch"]
    event = {
        "id": event_id, "userId": user["id"], "type": event_type, "subType": sub_type,
        "desc": f"Simulated {sub_type.lower()} ({event_type.lower()}), osdbSim",
        "dataTime": _iso(start_time + dt.timedelta(seconds=anchor_s)), "sampleFreq": FS, "analysisPeriod": 0,
        "dataSourceName": "Garmin", "osdAlarmState": top, "alarmState": top, "alarmPhrase": PHRASES[top],
        "osdAlarmActive": True, "cnnAlarmActive": False, "alarmFreqMin": 3, "alarmFreqMax": 8,
        "alarmThresh": user["alarm_thresh"], "alarmRatioThresh": user["alarm_ratio"],
        "hrAlarmActive": False, "hrAlarmStanding": False, "hrThreshMin": 40, "hrThreshMax": 150,
        "o2SatAlarmActive": False, "o2SatAlarmStanding": False, "o2SatThreshMin": 80,
        "has3dData": not no_3d, "hasHrData": not no_hr, "hasO2SatData": user["has_o2"],
        "batteryPc": int(rng.integers(15, 101)), "sdMode": 0, "phoneAppVersion": user["app"],
        "watchPartNo": part_no, "watchFwVersion": fw, "watchSdName": "GarminSD", "watchSdVersion": sd_version,
        "datapoints": datapoints,
    }
    if ictal and not no_times:
        event["seizureTimes"] = [round((ictal[0][0] + 1) / FS - anchor_s, 1), round(ictal[-1][1] / FS - anchor_s, 1)]
    return event


# ---------------------------------------------------------------- database, windows, plot, CLI
def simulate_database(path, n_users=40, seizures_per_user=3, nda_per_user=6, false_alarms_per_user=3,
                      seed=42, quirk_rate=0.05, progress=False):
    """Write a simulated OSDB JSON file (streamed, one event at a time; atomic replace) and return a
    summary: users, events, datapoints, by_type, by_subtype ("type/subType") and osd_alarm_events
    (events with osdAlarmState 2, by type)."""
    counts = {"by_type": Counter(), "by_subtype": Counter(), "osd_alarm_events": Counter()}
    n_events = n_datapoints = 0
    kinds = ["Seizure"] * seizures_per_user + ["NDA"] * nda_per_user + ["False Alarm"] * false_alarms_per_user
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".osdbSim-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f, \
                tqdm(total=n_users * len(kinds), disable=not progress, unit="event") as bar:
            f.write("[")
            for user_id, seq in enumerate(np.random.SeedSequence(seed).spawn(n_users), start=1):
                rng = np.random.default_rng(seq)
                user = make_user(rng, user_id)
                t = dt.datetime(2023, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 365 * 86400)))
                for kind in rng.permutation(kinds):
                    event = simulate_event(rng, user, str(kind), 10000 + n_events, t, quirk_rate=quirk_rate)
                    f.write(("\n" if n_events == 0 else ",\n") + json.dumps(event, sort_keys=True, separators=(",", ":")))
                    t += dt.timedelta(seconds=int(rng.integers(3600, 14 * 86400)))
                    n_events, n_datapoints = n_events + 1, n_datapoints + len(event["datapoints"])
                    counts["by_type"][event["type"]] += 1
                    counts["by_subtype"][f"{event['type']}/{event['subType']}"] += 1
                    counts["osd_alarm_events"][event["type"]] += event["osdAlarmState"] == 2
                    bar.update()
            f.write("\n]\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return {"path": str(path), "users": n_users, "events": n_events, "datapoints": n_datapoints,
            **{key: {k: v for k, v in c.items() if v} for key, c in counts.items()}}


def example_windows(n, length=750, seed=0):
    """n deterministic example windows, float32 (n, 1, length) acceleration magnitude in g, cycling
    through rest, activities, hard negatives and seizures (onset in the first third of the window)."""
    rng = np.random.default_rng(seed)
    kinds = ("Rest", "Tonic-Clonic", "Walking", "Focal", "Brushing teeth", "Clapping", "Sleep", "Other",
             "Eating", "Shaking", "Typing", "Running", "Tonic-Clonic", "Hand washing")
    out = np.empty((n, 1, length), np.float32)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        onset = rng.uniform(0, length / FS / 3) if kind in SEIZURE_TYPES else None
        xyz, _ = simulate_signal(rng, make_user(rng, i + 1), kind, length, onset_s=onset)
        out[i, 0] = np.sqrt((xyz ** 2).sum(1)) / 1000
    return out


def plot_examples(path, seed=0, seconds=180):
    """Save a PNG with the acceleration magnitude of one simulated example of every event kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = SEIZURE_TYPES + NDA_TYPES + FALSE_ALARM_TYPES
    rng = np.random.default_rng(seed)
    user = make_user(rng, 1)
    t = np.arange(seconds * FS) / FS
    fig, axes = plt.subplots(len(kinds), 1, figsize=(11, 1.5 * len(kinds)), sharex=True)
    for ax, kind in zip(axes, kinds):
        xyz, segments = simulate_signal(rng, user, kind, len(t))
        ax.plot(t, np.sqrt((xyz ** 2).sum(1)), lw=0.5)
        for label, start, stop in segments:
            if label in ("tonic", "clonic"):
                ax.axvspan(start / FS, stop / FS, color="tab:red" if label == "clonic" else "tab:orange", alpha=0.2)
        ax.set_ylabel(kind, rotation=0, ha="right", fontsize=8)
    axes[-1].set_xlabel("time (s); shaded: tonic (orange), clonic (red)")
    fig.suptitle("osdbSim examples: acceleration magnitude (mg)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None):
    """Command line: write a simulated OSDB file and print its summary."""
    parser = argparse.ArgumentParser(description="Write a simulated Open Seizure Database JSON file.")
    parser.add_argument("out", help="output JSON file")
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--seizures", type=int, default=3, help="seizure events per user")
    parser.add_argument("--nda", type=int, default=6, help="normal daily activity events per user")
    parser.add_argument("--false-alarms", type=int, default=3, help="false alarm events per user")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quirk-rate", type=float, default=0.05, help="rate of real-file quirks")
    parser.add_argument("--plot", metavar="PNG", help="also draw example signals of every kind")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = simulate_database(args.out, args.users, args.seizures, args.nda, args.false_alarms,
                                seed=args.seed, quirk_rate=args.quirk_rate, progress=True)
    print(json.dumps(summary, indent=1))
    print(f"written in {time.perf_counter() - start:.1f} s")
    if args.plot:
        plot_examples(args.plot, seed=args.seed)
    return summary


if __name__ == "__main__":
    main()
