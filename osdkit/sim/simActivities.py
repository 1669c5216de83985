"""Daily life and hard negatives as wrist motion (simSignals.Motion) over n samples at 25 Hz.

Each activity is `make(rng, user, n) -> Motion`, built from the physics of the movement: the posture the
forearm is held in, limb turns about the elbow or shoulder (whose accelerations follow from the angles),
and whole-body or vehicle accelerations in the world frame. Amplitudes are wide ranges of what such
movements produce (a 1 cm stroke at 4 Hz is 0.6 g; a hand clap is an impact of several g), scaled by the
user's vigour. `user` needs vigour, gait_hz, roll (the user's habitual wrist roll, deg) and forearm_m.
"""
import numpy as np

from osdkit.sim.simSensor import FS
from osdkit.sim.simSignals import (Motion, add, aliased_tone, angle_for, band_noise, bursts, direction, event_times,
                                   impacts, jerk_angles, posture, posture_steps, pulses, rhythm, turn)


def _held(rng, user, n, pitch, roll=(-20, 20)):
    """The forearm held at a pitch drawn from a range, the user's roll plus a range, a random yaw."""
    return posture(n, rng.uniform(0, 360), rng.uniform(*pitch), user["roll"] + rng.uniform(*roll))


def _fidget(rng, motion, n, size_deg=2.0):
    """Small slow drift of the wrist and tiny muscle noise, present in every activity."""
    return add(motion, angles=size_deg * band_noise(rng, n, 0, 0.3, 3), body=2.0 * band_noise(rng, n, 0.3, 5, 3))


def rest(rng, user, n):
    """Sitting or standing still, breathing, with an occasional adjustment of the arm."""
    m = _held(rng, user, n, (-40, 20), (-30, 60))
    steps, env = posture_steps(rng, n, 1 / 40, 15)
    m = add(m, angles=steps, body=60 * env[:, None] * band_noise(rng, n, 0.5, 4, 3))
    return _fidget(rng, add(m, world=[0, 0, 1] * (3 * band_noise(rng, n, 0.2, 0.4))), n)


def sleep(rng, user, n):
    """Lying still: a turn every few minutes and brief twitches (hypnic jerks), sometimes periodic."""
    m = posture(n, rng.uniform(0, 360), rng.uniform(-30, 30), rng.uniform(-180, 180))
    steps, env = posture_steps(rng, n, 1 / rng.uniform(60, 300), 50, (1.5, 4))
    twitch = event_times(rng, n, 1 / rng.uniform(8, 60))
    if rng.random() < 0.3:  # periodic limb movements of sleep: every 20-40 s
        twitch = np.sort(np.r_[twitch, np.arange(rng.uniform(0, 20), n / FS, rng.uniform(20, 40))])
    widths = rng.uniform(0.04, 0.1, len(twitch))
    angle = pulses(n, twitch, jerk_angles(rng.uniform(0.05, 0.8, len(twitch)), widths, user["forearm_m"])
                   * rng.choice([-1, 1], len(twitch)), widths)
    m = turn(add(m, angles=steps, body=150 * env[:, None] * band_noise(rng, n, 0.5, 5, 3)), angle, user["forearm_m"], "pitch")
    return add(m, world=[0, 0, 1] * (2 * band_noise(rng, n, 0.15, 0.35)), body=0.5 * band_noise(rng, n, 0.1, 3, 3))


def _cycle_starts(phase, on):
    """Times (s) at which a rhythm's phase starts a new cycle while the envelope `on` is up: a step, a
    clap, a hammer strike."""
    times = np.flatnonzero(np.diff(np.floor(phase / (2 * np.pi))) > 0) / FS
    return times[on[np.minimum((times * FS).astype(int), len(on) - 1)] > 0.5]


def heel_strikes(rng, n, step_hz, peak_g, on, push_off=(0.0, 0.0)):
    """Heel-strike impacts (n,) mg: one short spike (peak_g, varying step to step) per step of a gait at
    step_hz (with its wander), where the envelope `on` is up; push_off (delay s, share of peak_g) adds
    the toe-off's smaller spike after each, the gait's second peak."""
    _, phase = rhythm(rng, n, step_hz, 0.0, 0.0)
    steps = _cycle_starts(phase, on)
    peaks, width = peak_g * rng.uniform(0.7, 1.15, len(steps)), rng.uniform(0.02, 0.04)
    spikes = impacts(n, steps, peaks, width)
    return spikes + impacts(n, steps + push_off[0], push_off[1] * peaks, width) if push_off[1] else spikes


def watch_ring(rng, impacts_mg):
    """A loose watch's rattle (n,) mg: each impact rings the case on its strap, a 4-9 Hz oscillation
    that dies away in 0.08-0.25 s (its time constant)."""
    t = np.arange(int(1.25 * FS)) / FS
    ring = np.exp(-t / rng.uniform(0.08, 0.25)) * np.sin(2 * np.pi * rng.uniform(4, 9) * t)
    return np.convolve(impacts_mg, ring)[:len(impacts_mg)]


def walking(rng, user, n, stairs=False):
    """Walking (or stairs): the arm swings about the shoulder at half the step rate (1.6-2.2 steps a
    second), or hardly at all in a third of the walks (carrying something, a hand in a pocket); each heel
    strike jolts the body (0.2-0.6 g, plus a 0.3-1.2 g impact spike that reaches the wrist) and in half
    of them the toe-off pushes again 0.1-0.25 s later, which puts the step's second harmonic (3-4.5 Hz)
    in the magnitude; stairs are slower with harder landings and often a hand on the rail. In a third
    of them the watch sits loose and rings after each impact (a decaying 4-9 Hz rattle): energy in the
    convulsions' band that comes and goes with the steps."""
    step_hz = user["gait_hz"] * (rng.uniform(0.7, 0.9) if stairs else rng.uniform(0.9, 1.1))
    on = bursts(rng, n, (20, 90), (2, 10)) if not stairs else bursts(rng, n, (8, 20), (2, 8))
    swing_deg = rng.uniform(5, 25) * user["vigour"] * (rng.uniform(0.1, 0.5) if stairs and rng.random() < 0.5 else 1)
    swing_deg *= rng.uniform(0, 0.2) if rng.random() < 1 / 3 else 1
    push_off = (rng.uniform(0.1, 0.25), rng.uniform(0.3, 0.9)) if rng.random() < 0.5 else (0.0, 0.0)
    m = _held(rng, user, n, (-85, -55), (-30, 30))
    wave, _ = rhythm(rng, n, step_hz / 2, 0.0, 0.1)
    m = turn(m, swing_deg * on * wave, rng.uniform(0.55, 0.7), "pitch")
    strike = rhythm(rng, n, step_hz, rng.uniform(1.5, 4), 0.2)[0]
    jolt_g = rng.uniform(0.2, 0.6) * (rng.uniform(1.3, 2.2) if stairs else 1) * user["vigour"]
    vertical = 1000 * jolt_g * on * (strike - strike.min()) / np.ptp(strike)
    strikes = heel_strikes(rng, n, step_hz, rng.uniform(0.3, 1.2) * user["vigour"], on, push_off)
    vertical += strikes
    if rng.random() < 1 / 3:
        ring = watch_ring(rng, strikes)
        m = add(m, body=rng.uniform(0.2, 0.5) * ring[:, None] * direction(rng))
    sway = 1000 * rng.uniform(0.02, 0.08) * on * rhythm(rng, n, step_hz / 2)[0]
    world = np.column_stack([0.3 * vertical, sway, vertical - vertical.mean()])
    return _fidget(rng, add(m, world=world), n)


def stairs(rng, user, n):
    return walking(rng, user, n, stairs=True)


def running(rng, user, n, step_hz=None):
    """Jogging or running: elbow bent, the arm swinging about the shoulder at half the step rate
    (2.3-3 steps a second), the body bouncing and each heel strike an impact of 2-4 g at the wrist
    (which a watch clipping at 2 g per axis flattens)."""
    step_hz = rng.uniform(2.3, 3.0) if step_hz is None else step_hz
    m = _held(rng, user, n, (-25, 15), (-20, 40))
    m = turn(m, rng.uniform(10, 30) * user["vigour"] * rhythm(rng, n, step_hz / 2, 0.0, 0.1)[0],
             rng.uniform(0.45, 0.6), "pitch")
    strike = rhythm(rng, n, step_hz, rng.uniform(2, 5), 0.2)[0]
    vertical = 1000 * rng.uniform(0.6, 1.5) * user["vigour"] * (strike - strike.mean()) / np.ptp(strike)
    vertical += heel_strikes(rng, n, step_hz, rng.uniform(1.5, 3.2) * user["vigour"], np.ones(n))
    vertical -= vertical.mean()
    return _fidget(rng, add(m, world=np.column_stack([0.3 * vertical, np.zeros(n), vertical])), n)


def ball_games(rng, user, n):
    """Ball games (football, basketball): jogging in bursts with stops, walking in between, kicks or
    throws (a fast swing of the arm, 1-4 g) now and then."""
    jog = running(rng, user, n, rng.uniform(2.2, 3.0))
    walk = walking(rng, user, n)
    on = bursts(rng, n, (3, 15), (2, 10))[:, None]
    m = Motion(*(on * a + (1 - on) * b for a, b in zip(jog, walk)))
    kicks = event_times(rng, n, rng.uniform(0.05, 0.3))
    widths = rng.uniform(0.05, 0.12, len(kicks))
    swing = pulses(n, kicks, jerk_angles(rng.uniform(1, 4, len(kicks)), widths, 0.6) * rng.choice([-1, 1], len(kicks)),
                   widths)
    return turn(m, swing, 0.6, ("pitch", "yaw")[rng.integers(2)])


def transitions(rng, user, n):
    """Sitting down, standing up, lying down, getting up: a whole-body acceleration and a large change
    of wrist posture over 1.5-4 s, with rest in between."""
    m = rest(rng, user, n)
    t = np.arange(n) / FS
    angles, world = np.zeros((n, 3)), np.zeros((n, 3))
    for t0 in np.arange(rng.uniform(3, 15), n / FS - 4, rng.uniform(8, 30)):
        dur = rng.uniform(1.5, 4)
        u = np.clip((t - t0) / dur, 0, 1)
        angles += (3 * u ** 2 - 2 * u ** 3)[:, None] * rng.normal(0, [40, 40, 50])
        lobe = np.sin(2 * np.pi * u) * ((u > 0) & (u < 1))  # speed up, then slow down
        world += 1000 * rng.uniform(0.1, 0.5) * lobe[:, None] * np.r_[rng.normal(0, 0.7, 2), rng.choice([-1, 1])]
    push = 300 * (np.abs(np.gradient(angles[:, 1])) > 0.5)[:, None] * band_noise(rng, n, 0.5, 6, 3)
    return add(m, angles=angles, world=world, body=rng.uniform(0.2, 1) * push)


def brushing_teeth(rng, user, n):
    """Brushing teeth: forearm raised, side-to-side strokes of 3-6 Hz (0.2-1.5 g) in bursts with the
    wrist moved between regions of the mouth; an electric brush instead buzzes at 100-260 Hz, which a
    25 Hz watch sees aliased, with slow small strokes."""
    m = _held(rng, user, n, (15, 60), (20, 90))
    steps, _ = posture_steps(rng, n, 1 / 8, 20, (0.5, 1.5))
    on = bursts(rng, n, (4, 20), (0.5, 3))
    if rng.random() < 0.3:
        stroke_hz, peak_g = rng.uniform(0.5, 1.5), rng.uniform(0.03, 0.2)
        buzz = on[:, None] * aliased_tone(rng, n, rng.uniform(100, 260), rng.uniform(10, 150))
    else:
        stroke_hz, peak_g, buzz = rng.uniform(3, 6), rng.uniform(0.2, 1.5) * user["vigour"], 0.0
    wave, _ = rhythm(rng, n, stroke_hz, rng.uniform(0, 1.5), 0.2, 0.06)
    m = turn(add(m, angles=steps, body=buzz), on * angle_for(peak_g, stroke_hz, 0.3) * wave, 0.3, "yaw")
    return _fidget(rng, turn(m, rng.uniform(2, 12) * on * wave, 0.03, "roll"), n)


def combing_hair(rng, user, n):
    """Combing or brushing hair: arm raised high, strokes of 0.5-1.5 Hz (0.15-0.6 g) about the elbow and
    shoulder, with a jolt where the comb catches."""
    m = _held(rng, user, n, (35, 80), (-40, 60))
    on = bursts(rng, n, (5, 25), (1, 5))
    hz, radius = rng.uniform(0.5, 1.5), rng.uniform(0.3, 0.55)
    wave, _ = rhythm(rng, n, hz, rng.uniform(0, 1), 0.25, 0.08)
    m = turn(m, on * np.minimum(angle_for(rng.uniform(0.15, 0.6), hz, radius), 40) * wave, radius, "pitch")
    catches = event_times(rng, n, 0.3)
    tug = impacts(n, catches, rng.uniform(0.1, 0.8, len(catches))) * on
    return _fidget(rng, add(m, body=tug[:, None] * direction(rng)), n)


def eating(rng, user, n):
    """Eating: cutting (sawing 1.5-4 Hz along the forearm) or scooping between lifts of the hand to the
    mouth every 6-30 s, then chewing with the hand down."""
    m = _held(rng, user, n, (-15, 15), (-20, 50))
    lift_times = np.arange(rng.uniform(2, 10), n / FS, rng.uniform(6, 30))
    widths = rng.uniform(0.6, 1.2, len(lift_times))
    lift = pulses(n, lift_times, rng.uniform(40, 75, len(lift_times)), widths)
    m = turn(m, lift, user["forearm_m"], "pitch")
    saw_hz = rng.uniform(1.5, 4)
    saw = rng.uniform(0.02, 0.3) * user["vigour"] * bursts(rng, n, (2, 8), (2, 10)) * rhythm(rng, n, saw_hz, 0, 0.2)[0]
    m = add(m, body=np.column_stack([1000 * saw, np.zeros(n), np.zeros(n)]))
    return _fidget(rng, turn(m, 20 * band_noise(rng, n, 0.1, 1)[:, 0], 0.03, "roll"), n)


def drinking(rng, user, n):
    """Drinking from a glass or cup: lift, tilt by turning the wrist, hold while drinking, lower."""
    m = rest(rng, user, n)
    t = np.arange(n) / FS
    for t0 in np.arange(rng.uniform(2, 10), n / FS - 8, rng.uniform(12, 40)):
        hold = rng.uniform(2, 6)
        lift = np.clip((t - t0) / 1.2, 0, 1) - np.clip((t - t0 - 1.2 - hold) / 1.2, 0, 1)
        smooth = 3 * lift ** 2 - 2 * lift ** 3
        m = turn(m, smooth * rng.uniform(40, 70), user["forearm_m"], "pitch")
        m = turn(m, smooth * -rng.uniform(20, 80), 0.03, "roll")
    return m


def typing(rng, user, n):
    """Typing: small fast taps (3-7 per second) in bursts, forearm nearly level."""
    m = _held(rng, user, n, (-5, 15), (-15, 15))
    on = bursts(rng, n, (3, 15), (1, 6))
    taps = event_times(rng, n, rng.uniform(3, 7))
    kick = impacts(n, taps, rng.uniform(0.01, 0.06, len(taps)), 0.03) * on
    return _fidget(rng, add(m, body=kick[:, None] * direction(rng)), n, 1.0)


def phone_use(rng, user, n):
    """Using a phone: held in front with physiological tremor (8-12 Hz), thumb scrolling, and now and
    then lifted to the ear for a call."""
    m = _held(rng, user, n, (15, 50), (10, 60))
    tremor = rng.uniform(2, 12) * band_noise(rng, n, 8, 12, 3)
    swipes = impacts(n, event_times(rng, n, rng.uniform(0.3, 2)), rng.uniform(0.01, 0.05), 0.08)
    m = add(m, body=tremor + swipes[:, None] * direction(rng))
    if rng.random() < 0.4:
        t = np.arange(n) / FS
        t0, hold = rng.uniform(0, n / FS / 2), rng.uniform(10, 60)
        u = np.clip((t - t0) / 1.5, 0, 1) - np.clip((t - t0 - hold) / 1.5, 0, 1)
        m = turn(turn(m, (3 * u ** 2 - 2 * u ** 3) * 40, user["forearm_m"], "pitch"), u * 60, 0.03, "roll")
    return _fidget(rng, m, n, 1.5)


def vehicle(rng, user, n):
    """Travelling by car, bus or train: road vibration with the body's vertical resonance at 4-8 Hz, the
    engine's vibration aliased by the 25 Hz watch, bumps ringing through the suspension (1-2 Hz),
    braking and accelerating, cornering; trains add rail-joint knocks; a driver turns the wheel."""
    m = _held(rng, user, n, (-20, 20), (-30, 60))
    resonance_hz, bounce_hz = rng.uniform(4, 8), rng.uniform(1, 2)
    road = (rng.uniform(5, 60) * band_noise(rng, n, bounce_hz * 0.7, bounce_hz * 1.3)[:, 0]
            + rng.uniform(5, 80) * band_noise(rng, n, resonance_hz - 1, resonance_hz + 1)[:, 0]
            + rng.uniform(3, 30) * band_noise(rng, n, 0.5, 12)[:, 0])
    world = np.column_stack([0.3 * band_noise(rng, n, 0.5, 12)[:, 0] * road.std(), 0.3 * road[::-1], road])
    bumps = event_times(rng, n, rng.uniform(0.02, 0.3))
    if rng.random() < 0.3:  # train: rail joints every 15-25 m at 15-35 m/s
        bumps = np.sort(np.r_[bumps, np.arange(0, n / FS, rng.uniform(15, 25) / rng.uniform(15, 35))])
    t = np.arange(n) / FS
    for t0 in bumps:
        dt = np.clip(t - t0, 0, None)
        ring = np.exp(-dt * rng.uniform(1.5, 4)) * np.sin(2 * np.pi * bounce_hz * dt) * (t >= t0)
        world[:, 2] += 1000 * rng.uniform(0.03, 0.5) * ring
    world[:, 2] += impacts(n, bumps, rng.uniform(0.05, 0.6, len(bumps)), 0.03)
    manoeuvres = event_times(rng, n, 1 / 30)  # braking (-) and accelerating (+)
    drive = pulses(n, manoeuvres, rng.uniform(-350, 350, len(manoeuvres)), rng.uniform(1, 3))
    world[:, :2] += np.column_stack([drive, 150 * band_noise(rng, n, 0, 0.1)[:, 0] * rng.uniform(0, 1)])
    m = add(m, world=world, body=aliased_tone(rng, n, rng.uniform(20, 110), rng.uniform(2, 40)))
    if rng.random() < 0.4:  # driving: turning the wheel
        m = turn(m, rng.uniform(10, 60) * band_noise(rng, n, 0.02, 0.3)[:, 0], 0.05, "roll")
    return _fidget(rng, m, n)


# ---------------------------------------------------------------- hard negatives: rhythmic, 2-7 Hz
def hand_washing(rng, user, n):
    """Rubbing hands under the tap: 2.5-5 Hz strokes of 0.3-1.5 g, hands low, in bursts."""
    hz = rng.uniform(2.5, 5)
    m = _held(rng, user, n, (-35, 0), (0, 80))
    on = bursts(rng, n, (5, 20), (1, 3))
    wave, _ = rhythm(rng, n, hz, rng.uniform(0, 1), 0.2, 0.06)
    m = turn(m, on * angle_for(rng.uniform(0.3, 1.5) * user["vigour"], hz, 0.3) * wave, 0.3, "yaw")
    return _fidget(rng, turn(m, on * rng.uniform(5, 25) * rhythm(rng, n, hz, 0, 0.2)[0], 0.03, "roll"), n)


def clapping(rng, user, n):
    """Clapping at 2-5 Hz: each clap is an impact of 2-8 g on the hand, the arm sweeping in between."""
    hz = rng.uniform(2, 5)
    m = _held(rng, user, n, (-10, 40), (40, 100))
    on = bursts(rng, n, (4, 15), (1, 5))
    wave, phase = rhythm(rng, n, hz, 0, 0.1, 0.03)
    m = turn(m, on * rng.uniform(5, 20) * wave, 0.3, "yaw")
    claps = _cycle_starts(phase, on)
    return add(m, body=impacts(n, claps, rng.uniform(2, 8) * rng.uniform(0.7, 1, len(claps)))[:, None] * [0, 0.3, 1])


def shaking(rng, user, n):
    """Shaking something (a bottle, a rattle, a cocktail shaker): 3-7 Hz, 0.5-3 g, in bursts."""
    hz = rng.uniform(3, 7)
    m = _held(rng, user, n, (-20, 40), (-30, 60))
    on = bursts(rng, n, (3, 10), (1, 4))
    wave, _ = rhythm(rng, n, hz, rng.uniform(0, 2), 0.15, 0.05)
    axis = ("pitch", "yaw")[rng.integers(2)]
    return _fidget(rng, turn(m, on * angle_for(rng.uniform(0.5, 3) * user["vigour"], hz, 0.3) * wave, 0.3, axis), n)


def whisking(rng, user, n):
    """Whisking or stirring: 3-6 Hz turns of the wrist and forearm, 0.2-1.5 g."""
    hz = rng.uniform(3, 6)
    m = _held(rng, user, n, (-20, 20), (0, 70))
    on = bursts(rng, n, (5, 30), (1, 5))
    wave, _ = rhythm(rng, n, hz, 0, 0.15, 0.05)
    m = turn(m, on * angle_for(rng.uniform(0.2, 1.5), hz, 0.25) * wave, 0.25, "yaw")
    return _fidget(rng, turn(m, on * rng.uniform(10, 30) * np.roll(wave, 2), 0.03, "roll"), n)


def rhythmic_exercise(rng, user, n):
    """Exercise: jumping jacks (arms sweeping overhead, body bouncing), arm curls, or cycling."""
    kind = rng.integers(3)
    m = _held(rng, user, n, (-70, 0), (-20, 40))
    if kind == 0:
        hz = rng.uniform(0.8, 1.3)
        m = turn(m, rng.uniform(50, 100) * rhythm(rng, n, hz, 0, 0.1)[0], 0.65, "yaw")
        bounce = rhythm(rng, n, 2 * hz, 2, 0.2)[0]
        return add(m, world=[0, 0, 1] * (1000 * rng.uniform(0.3, 1.2) * bounce[:, None]))
    if kind == 1:
        return _fidget(rng, turn(m, rng.uniform(40, 100) * rhythm(rng, n, rng.uniform(0.3, 0.8), 0.5, 0.1)[0],
                                 user["forearm_m"], "pitch"), n)
    hz = rng.uniform(1, 1.6)
    m = add(m, world=np.column_stack([np.zeros(n), 1000 * rng.uniform(0.05, 0.2) * rhythm(rng, n, hz)[0],
                                      rng.uniform(20, 80) * band_noise(rng, n, 2, 12)[:, 0]]))
    return _fidget(rng, m, n)


def power_tool(rng, user, n):
    """Holding something with a motor (drill, sander, hair dryer, massager, mixer): its 50-400 Hz
    vibration, which a 25 Hz watch sees aliased to a steady tone of 0.02-0.4 g, in bursts of 5-40 s,
    the arm steady."""
    m = _held(rng, user, n, (-30, 30), (-30, 60))
    on = bursts(rng, n, (5, 40), (1, 5))
    buzz = on[:, None] * aliased_tone(rng, n, rng.uniform(50, 400), rng.uniform(20, 400))
    return _fidget(rng, add(m, body=buzz), n)


def manual_work(rng, user, n):
    """Manual work at 0.8-2.5 strokes per second, in bursts with pauses: sawing or scrubbing / sanding
    (the hand pushed to and fro along the forearm, 0.3-1.5 g, a jolt at each reversal, a saw's teeth
    chattering at 5-12 Hz on the push) or hammering (a 10-30 deg swing about the elbow ending in a 2-6 g
    strike). The OSD algorithm flags a fifth of such datapoints, as it does on real sawing."""
    kind = rng.integers(3)
    m = _held(rng, user, n, (-45, 10), (-30, 40))
    on = bursts(rng, n, (4, 30), (1, 6))
    hz = rng.uniform(1.5, 2.5) if kind == 1 else rng.uniform(0.8, 2.2)
    if kind == 1:  # hammering
        wave, phase = rhythm(rng, n, hz, 1.0, 0.15, 0.05)
        m = turn(m, on * rng.uniform(10, 30) * wave, user["forearm_m"], "pitch")
        strikes = _cycle_starts(phase, on)
        hit = impacts(n, strikes, rng.uniform(2, 6) * rng.uniform(0.7, 1.1, len(strikes)), rng.uniform(0.02, 0.05))
        return _fidget(rng, add(m, body=hit[:, None] * [1, 0.2, 0.3]), n)
    wave, phase = rhythm(rng, n, hz, rng.uniform(0, 1.5), 0.15, 0.06)  # sawing (0) or scrubbing (2)
    push = 1000 * rng.uniform(0.3, 1.5) * user["vigour"] * wave
    reversals = np.flatnonzero((np.diff(np.sign(np.sin(phase)), prepend=0) != 0) & (on > 0.5)) / FS
    jolts = impacts(n, reversals, rng.uniform(0.2, 0.8), 0.04) * np.sign(np.cos(phase))
    chatter = (rng.uniform(50, 300) if kind == 0 else rng.uniform(20, 100)) * band_noise(rng, n, 5, 12)[:, 0]
    chatter = chatter * (np.sin(phase) > 0)
    body = on[:, None] * np.column_stack([push + jolts + chatter, 0.2 * push * rng.uniform(-1, 1), 0.15 * chatter])
    m = turn(m, on * rng.uniform(3, 12) * wave, user["forearm_m"], "yaw")
    return _fidget(rng, add(m, body=body), n)


def bouncing(rng, user, n):
    """Smooth rhythmic hand movement at 1.2-3 Hz in bursts: bouncing or patting a baby, dribbling, waving,
    beating time (the hand moved up and down, 0.1-0.8 g, or waved about the elbow)."""
    hz = rng.uniform(1.2, 3.0)
    m = _held(rng, user, n, (-40, 20), (-30, 60))
    on = bursts(rng, n, (5, 40), (1, 5))
    wave, _ = rhythm(rng, n, hz, rng.uniform(0, 0.6), 0.15, 0.05)
    if rng.random() < 0.6:
        updown = 1000 * rng.uniform(0.1, 0.8) * user["vigour"] * on * wave
        m = add(m, world=np.column_stack([np.zeros(n), np.zeros(n), updown]))
    else:
        m = turn(m, on * angle_for(rng.uniform(0.1, 0.8) * user["vigour"], hz, user["forearm_m"]) * wave,
                 user["forearm_m"], ("yaw", "pitch")[rng.integers(2)])
    return _fidget(rng, m, n)


DAILY_LIFE = {"Rest": rest, "Sleep": sleep, "Walking": walking, "Stairs": stairs, "Transitions": transitions,
              "Brushing teeth": brushing_teeth, "Combing hair": combing_hair, "Eating": eating,
              "Drinking": drinking, "Typing": typing, "Phone use": phone_use, "Vehicle": vehicle}
HARD_NEGATIVES = {"Hand washing": hand_washing, "Clapping": clapping, "Shaking": shaking, "Running": running,
                  "Whisking": whisking, "Rhythmic exercise": rhythmic_exercise, "Ball games": ball_games,
                  "Power tool": power_tool, "Manual work": manual_work, "Bouncing": bouncing}
