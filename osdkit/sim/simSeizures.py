"""Seizure phases as wrist motion (simSignals.Motion), and the phases of each seizure subtype.

- tonic: the limb stiffens into a fixed posture over 0.5-2 s, with a fine vibratory tremor (6-12 Hz).
- clonic (the convulsion): jerks (fast flexions about the elbow, partly about the shoulder and wrist) whose
  rate falls from 4-8 Hz to 1-2.5 Hz, staying near 3-5 Hz for most of the convulsion and slowing most at
  its end, with irregular intervals and amplitudes; peak accelerations 0.2-5 g (magnitude SD mostly
  0.15-0.45 g, with weaker and stronger tails); the jerks start as a small fast vibration and grow to
  full strength over 2-15 s (the vibratory transition from the tonic phase), so a detector must
  react to the convulsion's rhythm before it is at full strength. A fifth to a half of the jerks go the
  other way (the rebound into extension) and the whole limb shakes over 2-12 Hz with the jerks'
  strength, so the magnitude swings both ways over a broad band, as at a real wrist, not as a train of
  identical one-way spikes (simCheck's skew and flatness).
- focal: one arm flapping regularly at 1-2 Hz.
- hypermotor: large irregular thrashing movements (0.3-2.5 Hz) with the trunk rocking.
- post-ictal: a limp arm, deep slow breathing.
Subtypes: Tonic-Clonic (tonic then the clonic convulsion, inside the one labelled seizure: half of the
convulsions last 15-30 s, as the real ones at the wrist (median 25 s), a fifth 5-15 s, the rest 30-100 s),
Focal, Tonic (tonic only) and Hypermotor. `user` needs the seizure traits drawn by osdbSim.make_user.
"""
import numpy as np

from osdkit.sim.simSensor import FS
from osdkit.sim.simSignals import add, angle_for, band_noise, jerk_angles, posture, pulses, rhythm, turn

SUBTYPES = ("Tonic-Clonic", "Focal", "Tonic", "Hypermotor")
ICTAL = ("tonic", "clonic", "focal", "hypermotor")
CONVULSION = "clonic"  # the phase recorded as the event's convulsionTimes
CLONIC_G = 1.8  # convulsion jerk peaks: the geometric mean of the user's seizure strength and this (g)


def tonic(rng, user, n, amp_g, **_):
    """Stiffening into a posture with a growing fine tremor."""
    t = np.arange(n) / FS
    u = np.clip(t / rng.uniform(0.5, 2), 0, 1)
    stiff = (3 * u ** 2 - 2 * u ** 3)[:, None] * rng.uniform(-70, 70, 3) * [0.3, 1, 1]
    tremor = np.minimum(1, t / 3)[:, None] * 1000 * min(amp_g, 1.5) * rng.uniform(0.03, 0.2) \
        * band_noise(rng, n, *user["tremor_hz"], 3)
    return add(posture(n), angles=stiff, body=tremor)


def clonic(rng, user, n, amp_g, f0, f1, **_):
    """Clonic jerks: rate f0 -> f1 Hz (the period growing linearly), interval jitter, per-jerk amplitude,
    growing from a tenth to full strength over the first 2-15 s (at most half the convulsion) and fading
    over the last fifth; some jerks thrown back the other way, and the limb's broadband shaking."""
    times, periods, t = [], [], rng.uniform(0, 0.3)
    while t < n / FS:
        period = (1 + (f0 / f1 - 1) * (t / (n / FS)) ** 2) / f0  # the silent periods grow, most at the end
        times.append(t)
        periods.append(period)
        t += max(0.08, rng.normal(1, user["clonic_jitter"]) * period)
    times = np.array(times)
    u = times / (n / FS)
    rise_s = rng.uniform(2, max(2.5, min(15, 0.5 * n / FS)))  # the vibratory onset
    envelope = (0.1 + 0.9 * np.clip(times / rise_s, 0, 1) ** 1.5) * np.clip((1 - u) / 0.2, 0.3, 1)
    peaks = np.minimum(amp_g * envelope * rng.lognormal(0, 0.25, len(times)), 5)
    width = np.minimum(user["jerk_width_s"], 0.25 * np.array(periods)) * rng.uniform(0.8, 1.25, len(times))
    back = np.where(rng.random(len(times)) < rng.uniform(0.2, 0.5), -rng.uniform(0.3, 1, len(times)), 1)
    m = posture(n)
    for axis, share, radius in (("pitch", 1.0, user["forearm_m"]), ("yaw", user["jerk_yaw"], user["forearm_m"]),
                                ("roll", user["jerk_roll"], 0.03)):
        sign = rng.choice([-1, 1])
        m = turn(m, sign * pulses(n, times, back * jerk_angles(share * peaks, width, radius), width), radius, axis)
    trunk = pulses(n, times + 0.02, 1000 * 0.2 * back * peaks * rng.uniform(0, 1), width * 1.5)
    strength = np.interp(np.arange(n) / FS, times, peaks)[:, None]
    shaking = 1000 * rng.uniform(0.1, 0.35) * strength * band_noise(rng, n, 2, 12, 3)
    return add(m, world=np.outer(trunk, [0, 0, 1]), body=10 * band_noise(rng, n, 1, 10, 3) + shaking)


def focal(rng, user, n, amp_g, **_):
    """One arm flapping at 1-2 Hz about the elbow, fairly regular, building up over a few seconds."""
    hz = rng.uniform(1, 2)
    wave, _ = rhythm(rng, n, hz * np.linspace(1, rng.uniform(0.8, 1), n), rng.uniform(0, 1), 0.2, 0.08)
    build = np.minimum(1, np.arange(n) / (FS * rng.uniform(2, 6)))
    angle = build * np.minimum(angle_for(amp_g, hz, user["forearm_m"]), 50) * wave
    return turn(posture(n), angle, user["forearm_m"], "pitch")


def hypermotor(rng, user, n, amp_g, **_):
    """Thrashing: large irregular turns about the shoulder, elbow and wrist (0.3-2.5 Hz) in bouts, the
    trunk rocking."""
    bout = np.clip(band_noise(rng, n, 0, 0.2)[:, 0] + 1, 0.2, 2)
    m = posture(n)
    scale = 0.5 + min(amp_g, 2) / 2
    for axis, radius, size in (("pitch", 0.6, 10), ("yaw", 0.6, 8), ("roll", 0.03, 20)):
        m = turn(m, bout * size * scale * band_noise(rng, n, 0.3, 2.5)[:, 0], radius, axis)
    rock = 1000 * rng.uniform(0.1, 0.5) * bout[:, None] * band_noise(rng, n, 0.5, 2, 3)
    return add(m, world=rock)


def postictal(rng, user, n, **_):
    """A limp arm and deep slow breathing."""
    breath = rng.uniform(3, 10) * np.sin(2 * np.pi * rng.uniform(0.25, 0.45) * np.arange(n) / FS)
    return add(posture(n), angles=2 * band_noise(rng, n, 0, 0.05, 3), world=np.outer(breath, [0, 0, 1]),
               body=0.5 * band_noise(rng, n, 0.1, 2, 3))


PHASES = {"tonic": tonic, "clonic": clonic, "focal": focal, "hypermotor": hypermotor, "post-ictal": postictal}


def phases(rng, user, sub_type):
    """The ictal phases of one seizure: [(phase, seconds, params)], params with amp_g (peak acceleration,
    0.2-5 g) and the clonic rates f0, f1 (Hz)."""
    amp = float(np.clip(user["seizure_g"] * rng.uniform(0.6, 1.4), 0.2, 5))
    f0, f1 = user["clonic_hz"]
    params = {"amp_g": amp, "f0": f0 * rng.uniform(0.85, 1.15), "f1": f1 * rng.uniform(0.85, 1.15)}
    if sub_type == "Tonic-Clonic":
        draw = rng.random()
        clonic_s = rng.uniform(15, 30) if draw < 0.5 else rng.uniform(5, 15) if draw < 0.7 else \
            user["clonic_s"] * rng.uniform(0.6, 1.4)
        clonic_g = np.sqrt(amp * CLONIC_G) * rng.lognormal(0, 0.4)  # one convulsion's strength varies more
        return [("tonic", user["tonic_s"] * rng.uniform(0.6, 1.4), params),
                ("clonic", clonic_s, dict(params, amp_g=float(np.clip(clonic_g, 0.2, 5))))]
    if sub_type == "Focal":
        return [("focal", rng.uniform(15, 120), dict(params, amp_g=float(np.clip(amp * rng.uniform(0.3, 1), 0.2, 5))))]
    if sub_type == "Tonic":
        return [("tonic", rng.uniform(10, 60), params)]
    if sub_type == "Hypermotor":
        return [("hypermotor", rng.uniform(15, 90), params)]
    raise ValueError(f"unknown seizure subtype {sub_type!r}")
