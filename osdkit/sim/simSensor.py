"""Simulated wrist accelerometer: wrist orientation and motion in, what a watch reports out.

Physics. An accelerometer measures specific force, f = a - g: at rest it reads 1 g pointing up. The
world frame has z up. The sensor frame has x along the forearm towards the hand, y across the wrist and
z out of the watch face. The wrist's orientation is (yaw, pitch, roll) in degrees: yaw about world z,
pitch of the forearm above the horizontal, roll about the forearm; pitch 0, roll 0 is the forearm
level with the watch face up, which reads (0, 0, +1000) mg. So a motion is its orientation over time
(which turns the gravity reading), its linear acceleration in the world frame (vehicles, gait) and its
linear acceleration in the sensor frame (the wrist swinging about the elbow, see `limb_turn`).

The watch's sensor (`draw_sensor`) then applies, in this order: sample-timing jitter, the chip's
low-pass filter (none for a fifth of the watches, 9 Hz for a fifth, 6.25 Hz = a quarter of the 25 Hz
rate for the rest: mostly filtered, so that a model trained here cannot rest on the 8-12.5 Hz content
of sharp jerks, which one unfiltered chip shows and most watches do not), its sensitivity
per axis (within 2 %), a zero-g offset per axis, white noise, clipping at its full scale
(2, 4 or 8 g per axis), quantisation to its step (1-64 mg per axis), and last the watch's scale (gain
0.6-1.8: what it reports at rest, in g). A sensitivity error of a MEMS chip is a few per cent; a watch
that reports 1.6 g at rest does so because its raw units are converted with the wrong factor, which
scales everything it reports, noise, steps and full scale included. The app's magnitude is computed
from the reported axes.
"""
import numpy as np
from scipy.signal import butter, lfilter
from scipy.spatial.transform import Rotation

from osdkit.data.osdbData import SAMPLE_RATE_HZ

FS = int(SAMPLE_RATE_HZ)
G_MG = 1000.0
MG_PER_MS2 = 1000.0 / 9.81
RANGES_MG = (2000, 4000, 8000)
COMMON_STEPS_MG = (1, 2, 4, 8)
BANDWIDTHS_HZ = (None, 9.0, 6.25, 6.25, 6.25)  # drawn uniformly: a fifth unfiltered


def draw_sensor(rng):
    """Random traits of one watch's accelerometer. Half the watches report close to 1 g at rest, the
    others anywhere in 0.6-1.8 g (log-uniform); half have a common step of 1-8 mg, the others a coarse
    one of 8-64 mg (log-uniform). The noise is at least a third of a step, so that a still watch's
    samples still flicker (identical datapoints would be read as the phone's repeats and dropped)."""
    gain = rng.uniform(0.97, 1.03) if rng.random() < 0.5 else float(np.exp(rng.uniform(np.log(0.6), np.log(1.8))))
    step = float(rng.choice(COMMON_STEPS_MG)) if rng.random() < 0.5 else float(np.exp(rng.uniform(np.log(8), np.log(64))))
    noise = float(np.exp(rng.uniform(np.log(0.5), np.log(15))))
    return {"gain": gain, "axis_gain": 1 + rng.uniform(-0.02, 0.02, 3), "offset_mg": rng.uniform(-40, 40, 3),
            "noise_mg": max(noise, 0.35 * step), "jitter_s": rng.uniform(0, 0.008),
            "range_mg": float(rng.choice(RANGES_MG)), "step_mg": step, "bandwidth_hz": BANDWIDTHS_HZ[rng.integers(len(BANDWIDTHS_HZ))],
            "mount_deg": np.array([180.0 * rng.integers(2), *rng.normal(0, 5, 2)])}  # x to the hand or the elbow


def with_gain(sensor, gain):
    """The same watch reporting `gain` g at rest."""
    return dict(sensor, gain=float(gain))


def specific_force(angles_deg, world_mg, body_mg):
    """Sensor-frame specific force (n, 3) in mg: gravity's reading turned by the orientation (n, 3)
    (yaw, pitch, roll), plus the world-frame linear acceleration turned likewise, plus the sensor-frame
    linear acceleration."""
    yaw, pitch, roll = np.radians(angles_deg).T
    v = np.broadcast_to(world_mg + [0.0, 0.0, G_MG], (len(yaw), 3))
    # world -> sensor: undo yaw (about z), then pitch (about y), then roll (about x)
    x1, y1, z1 = np.cos(yaw) * v[:, 0] + np.sin(yaw) * v[:, 1], np.cos(yaw) * v[:, 1] - np.sin(yaw) * v[:, 0], v[:, 2]
    x2, z2 = np.cos(pitch) * x1 + np.sin(pitch) * z1, np.cos(pitch) * z1 - np.sin(pitch) * x1
    y3, z3 = np.cos(roll) * y1 + np.sin(roll) * z2, np.cos(roll) * z2 - np.sin(roll) * y1
    return np.column_stack([x2, y3, z3]) + body_mg


def limb_turn(angle_deg, radius_m, axis):
    """A wrist turning by angle_deg(t) about a joint radius_m away: the orientation change (n, 3)
    (yaw, pitch, roll) and the sensor-frame linear acceleration (n, 3) in mg, tangential (radius x
    angular acceleration) plus centripetal (radius x angular rate squared).
    axis "pitch": elbow flexion (wrist moves along z); "yaw": a sideways sweep (along y);
    "roll": pronation / supination, the watch sitting radius_m above the forearm's axis."""
    theta = np.radians(angle_deg)
    rate = np.gradient(theta) * FS
    accel = np.diff(np.pad(theta, 1, mode="edge"), 2) * FS ** 2
    tangential, centripetal = radius_m * accel * MG_PER_MS2, radius_m * rate ** 2 * MG_PER_MS2
    angles, body = np.zeros((len(theta), 3)), np.zeros((len(theta), 3))
    if axis == "pitch":
        angles[:, 1], body[:, 2], body[:, 0] = angle_deg, tangential, -centripetal
    elif axis == "yaw":
        angles[:, 0], body[:, 1], body[:, 0] = angle_deg, tangential, -centripetal
    elif axis == "roll":
        angles[:, 2], body[:, 1], body[:, 2] = angle_deg, -tangential, -centripetal
    else:
        raise ValueError(f"axis must be pitch, yaw or roll, got {axis!r}")
    return angles, body


def read_sensor(rng, sensor, force_mg):
    """What the watch reports for a wrist-frame specific force (n, 3) mg sampled at 25 Hz: int mg
    (n, 3) in the chip's axes (as mounted in the watch) after timing jitter, low-pass filter,
    sensitivity, offset, noise, clipping, quantisation and the watch's scale."""
    force_mg = Rotation.from_euler("ZYX", sensor["mount_deg"], degrees=True).apply(force_mg, inverse=True)
    slope = np.gradient(force_mg, axis=0) * FS
    x = force_mg + rng.normal(0, sensor["jitter_s"], (len(force_mg), 1)) * slope  # sampled at t + dt
    if sensor.get("bandwidth_hz"):
        b, a = butter(2, sensor["bandwidth_hz"] / (FS / 2))
        x = lfilter(b, a, x - x[0], axis=0) + x[0]  # started at rest on the first sample
    x = x * sensor["axis_gain"] + sensor["offset_mg"] + rng.normal(0, sensor["noise_mg"], x.shape)
    top = np.floor(sensor["range_mg"] / sensor["step_mg"])  # the largest code within full scale
    codes = np.clip(np.round(x / sensor["step_mg"]), -top, top)
    return np.round(sensor["gain"] * codes * sensor["step_mg"]).astype(np.int64)


def magnitude_mg(xyz):
    """The app's magnitude of x, y, z (mg), as the watch sends it in rawData."""
    return np.sqrt(np.square(xyz, dtype=np.float64).sum(axis=-1))
