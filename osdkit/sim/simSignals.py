"""Building blocks of simulated wrist motion at 25 Hz: a Motion (orientation plus linear acceleration,
see simSensor), random rhythms, bursts, jerks and posture changes."""
from typing import NamedTuple

import numpy as np

from osdkit.sim.simSensor import FS, limb_turn


class Motion(NamedTuple):
    """Wrist motion over n samples: orientation (yaw, pitch, roll) in degrees, linear acceleration in
    the world frame and in the sensor frame (mg), each (n, 3)."""
    angles: np.ndarray
    world: np.ndarray
    body: np.ndarray


def posture(n, yaw=0.0, pitch=0.0, roll=0.0):
    """A wrist held still at one orientation."""
    return Motion(np.tile([yaw, pitch, roll], (n, 1)).astype(float), np.zeros((n, 3)), np.zeros((n, 3)))


def add(motion, angles=None, world=None, body=None):
    """The motion with orientation changes / accelerations added ((n, 3) or broadcastable)."""
    return Motion(*(base if extra is None else base + extra
                    for base, extra in zip(motion, (angles, world, body))))


def turn(motion, angle_deg, radius_m, axis):
    """The motion with a limb turn added (orientation change and its linear acceleration)."""
    angles, body = limb_turn(angle_deg, radius_m, axis)
    return add(motion, angles=angles, body=body)


def angle_for(peak_g, hz, radius_m):
    """Angle amplitude (deg) of a sinusoidal turn at hz about a joint radius_m away whose tangential
    acceleration peaks at peak_g."""
    return np.degrees(peak_g * 9.81 / (radius_m * (2 * np.pi * hz) ** 2))


def band_noise(rng, n, lo, hi, dims=1):
    """Unit-variance Gaussian noise (n, dims) keeping only frequencies in [lo, hi] Hz."""
    size = 1 << max(n - 1, 1).bit_length()  # a fast FFT length; the first n samples are kept
    freqs = np.fft.rfftfreq(size, 1 / FS)
    spec = np.fft.rfft(rng.standard_normal((size, dims)), axis=0) * ((freqs >= lo) & (freqs <= hi))[:, None]
    x = np.fft.irfft(spec, size, axis=0)[:n]
    sd = x.std(axis=0)
    return np.where(sd > 1e-6, x / np.maximum(sd, 1e-6), 0.0)


def direction(rng, dims=3):
    """A random unit vector."""
    v = rng.standard_normal(dims)
    return v / np.linalg.norm(v)


def bursts(rng, n, on_s, off_s):
    """0..1 envelope of alternating on / off periods (uniform durations in s) with soft edges."""
    k = int(n / (FS * min(on_s[0], off_s[0]))) + 2
    lengths = (np.column_stack([rng.uniform(*on_s, k), rng.uniform(*off_s, k)]).ravel() * FS).astype(int) + 1
    env = np.repeat(np.tile([1.0, 0.0], k), lengths)
    start = rng.integers(0, lengths[0] + lengths[1])
    env = np.concatenate([env, np.ones(n)])[start:start + n]
    return np.convolve(env, np.hanning(9) / np.hanning(9).sum(), "same")


def rhythm(rng, n, hz, kappa=0.0, amp_var=0.1, wander=0.04):
    """Zero-mean periodic wave (peak about 1) at hz (a number or an (n,) array) with slow frequency
    wander; sharper pulses for larger kappa (0: a sinusoid), amplitude drifting from cycle to cycle.
    Returns (wave, phase in radians)."""
    freq = np.broadcast_to(np.asarray(hz, float), (n,)) * (1 + wander * band_noise(rng, n, 0, 0.1)[:, 0])
    phase = 2 * np.pi * np.cumsum(np.maximum(freq, 0.1)) / FS + rng.uniform(0, 2 * np.pi)
    cycles = phase / (2 * np.pi)
    knots = np.arange(np.floor(cycles[0]), np.ceil(cycles[-1]) + 1)
    amps = np.interp(cycles, knots, np.clip(1 + amp_var * rng.standard_normal(len(knots)), 0.2, None))  # smooth
    if kappa <= 0:
        return amps * np.sin(phase), phase
    mean = np.exp(-kappa) * np.i0(kappa)
    return amps * (np.exp(kappa * (np.cos(phase) - 1)) - mean) / (1 - mean), phase


def event_times(rng, n, rate_hz):
    """Sample times (s) of a Poisson process of rate_hz over n samples."""
    count = rng.poisson(rate_hz * n / FS)
    return np.sort(rng.uniform(0, n / FS, count))


def pulses(n, times_s, amps, width_s):
    """Sum of Gaussian bumps (n,) of standard deviation width_s (s or per bump) centred at times_s."""
    t = np.arange(n) / FS
    out = np.zeros(n)
    widths = np.broadcast_to(np.asarray(width_s, float), np.shape(times_s))
    for t0, a, w in zip(times_s, amps, widths):
        lo, hi = max(0, int((t0 - 5 * w) * FS)), min(n, int((t0 + 5 * w) * FS) + 2)
        out[lo:hi] += a * np.exp(-0.5 * ((t[lo:hi] - t0) / w) ** 2)
    return out


def jerk_angles(peak_g, width_s, radius_m):
    """Angle (deg) of a Gaussian-bump turn of width_s whose tangential acceleration peaks at peak_g."""
    return np.degrees(np.asarray(peak_g) * 9.81 * np.asarray(width_s) ** 2 / radius_m)


def posture_steps(rng, n, rate_hz, size_deg, move_s=(1.0, 3.0)):
    """Random posture changes (n, 3) deg: steps of N(0, size_deg) per axis at Poisson times, each
    eased over move_s seconds, with the gentle acceleration of the move as a (n,) activity envelope."""
    angles, envelope = np.zeros((n, 3)), np.zeros(n)
    t = np.arange(n) / FS
    for t0 in event_times(rng, n, rate_hz):
        dur = rng.uniform(*move_s)
        u = np.clip((t - t0) / dur, 0, 1)
        angles += (3 * u ** 2 - 2 * u ** 3)[:, None] * rng.normal(0, size_deg, 3)
        envelope += np.exp(-0.5 * ((t - t0 - dur / 2) / (dur / 3)) ** 2)
    return angles, np.minimum(envelope, 1)


def aliased_tone(rng, n, vib_hz, amp_mg):
    """A vibration at vib_hz (may be far above 12.5 Hz) as the 25 Hz watch samples it: a tone at the
    aliased frequency with slowly wandering phase (n, 3) in a random direction."""
    alias = abs(vib_hz - FS * np.round(vib_hz / FS))
    phase = 2 * np.pi * alias * np.arange(n) / FS + 0.5 * np.cumsum(band_noise(rng, n, 0, 0.5)[:, 0]) / FS
    return (amp_mg * np.sin(phase))[:, None] * direction(rng)


def impacts(n, times_s, peak_g, width_s=0.02):
    """Short impact accelerations (n,) mg at times_s: Gaussian spikes narrower than a sample, so each
    lands on one or two samples depending on where it falls between them."""
    return pulses(n, times_s, np.broadcast_to(np.asarray(peak_g, float) * 1000.0, np.shape(times_s)), width_s)

