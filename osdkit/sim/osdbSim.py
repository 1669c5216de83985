"""Simulated Open Seizure Database (OSDB) in the real OSDB JSON format.

Real OSDB data needs a licence, so the default training run uses a database written here: a JSON array
of events, each with 5 s datapoints of 125 acceleration magnitudes (rawData, mg) and 3 x 125 interleaved
x, y, z samples (rawData3D, mg), read through the same code as real files.

It is meant as a broad distribution rather than one idealised watch. Every user has their own watch
(simSensor: gain 0.6-1.8, offsets, noise, 1-64 mg steps, clipping at 2, 4 or 8 g, timing jitter), body
(forearm length, gait, vigour) and seizures (simSeizures: tonic-clonic with falling clonic rate, short
ones, focal flapping, tonic-only, hypermotor; 0.2-5 g). Events are sequences of activities (simActivities:
rest, sleep with twitches, walking, stairs, posture transitions, vehicle travel, brushing teeth, combing
hair, eating, drinking, typing, phone use; hard negatives with rhythmic 1-7 Hz motion, manual work and
power tools). Each activity is wrist orientation plus linear acceleration; gravity is turned into the
sensor frame, the sensor reads it, and rawData is the magnitude of the quantised axes. specPower,
roiPower, roiRatio, simpleSpec and alarmState come from osdAlgorithm (the OSD algorithm and the app's
alarm escalation), computed with the user's OSD settings on the written rawData.
"""
import datetime as dt
import json
from collections import Counter

import numpy as np
from tqdm import tqdm

from osdkit.app import osdAlgorithm
from osdkit.data.osdbData import SAMPLES_PER_DP
from osdkit.io.fileUtils import atomic_output
from osdkit.sim import simActivities, simSeizures
from osdkit.sim.simSensor import FS, draw_sensor, magnitude_mg, read_sensor, specific_force
from osdkit.sim.simSignals import band_noise

REFERENCE_WINDOWS = 32  # windows each export is verified on
SEIZURE_TYPES = simSeizures.SUBTYPES
NDA_TYPES = tuple(simActivities.DAILY_LIFE)
FALSE_ALARM_TYPES = tuple(simActivities.HARD_NEGATIVES)
SUB_TYPES = {"Seizure": SEIZURE_TYPES, "NDA": NDA_TYPES, "False Alarm": FALSE_ALARM_TYPES}
ACTIVITIES = {**simActivities.DAILY_LIFE, **simActivities.HARD_NEGATIVES, **simSeizures.PHASES}
PHRASES = ("OK", "WARNING", "ALARM")
SIM_VERSION = "10"  # raise with any change to what the simulator writes: cached simulated databases are rewritten
BEFORE_SEIZURE = ("Sleep", "Sleep", "Rest", "Rest", "Typing", "Phone use", "Eating")
HR_RISE = {"Sleep": -8, "Walking": 20, "Stairs": 30, "Running": 50, "Ball games": 45, "Rhythmic exercise": 35,
           "Clapping": 15, "Shaking": 15, "Manual work": 25, "Transitions": 10, "tonic": 25, "clonic": 45, "focal": 20,
           "hypermotor": 40, "post-ictal": 35}
WATCHES = (("006-B2337-00", "2.4.9", "V1.2_ben"), ("006-B3113-00", "6.30", "V1.3"),
           ("006-B3290-00", "8.28", "V1.4"), ("006-B2700-00", "5.10", "V1.2"))
APP_VERSIONS = ("4.1.2", "4.2.3", "4.2.8", "5.0.9")


def make_user(rng, user_id):
    """Random traits of one user: watch sensor, body, seizure style, activity mix, OSD settings."""
    return {
        "id": int(user_id), "sensor": draw_sensor(rng), "roll": rng.normal(0, 20),
        "forearm_m": rng.uniform(0.24, 0.32), "vigour": rng.lognormal(0, 0.25), "gait_hz": rng.uniform(1.6, 2.2),
        "seizure_g": float(np.clip(rng.lognormal(np.log(1.2), 0.7), 0.2, 5)),
        "clonic_hz": (rng.uniform(4, 8), rng.uniform(1, 2.5)), "clonic_jitter": rng.uniform(0.05, 0.25),
        "jerk_width_s": rng.uniform(0.035, 0.09), "jerk_yaw": rng.uniform(0, 0.6), "jerk_roll": rng.uniform(0, 0.6),
        "tremor_hz": (lambda lo: (lo, lo + 4))(rng.uniform(5, 9)),
        "tonic_s": rng.uniform(5, 20), "clonic_s": rng.uniform(30, 100),
        "hr_base": rng.uniform(58, 85), "hr_response": rng.uniform(0.6, 1.4), "has_o2": bool(rng.random() < 0.2),
        "alarm_thresh": int(rng.choice([100, 500, 900, 1200])), "alarm_ratio": int(rng.choice([54, 57, 60])),
        "watch": WATCHES[rng.integers(len(WATCHES))], "app": APP_VERSIONS[rng.integers(len(APP_VERSIONS))],
        "mix": {"Seizure": rng.dirichlet([4, 1.5, 0.6, 0.6]), "NDA": rng.dirichlet(np.full(len(NDA_TYPES), 1.5)),
                "False Alarm": rng.dirichlet(np.full(len(FALSE_ALARM_TYPES), 1.5))},
    }


# ---------------------------------------------------------------- one signal
def _plan(rng, user, kind, n, onset_s):
    """The event's segments as (label, samples, params); onset_s fixes a seizure's onset."""
    if kind in SEIZURE_TYPES:
        pre = int(FS * (rng.uniform(20, 60) if onset_s is None else onset_s))
        plan = [(BEFORE_SEIZURE[rng.integers(len(BEFORE_SEIZURE))], pre, {})]
        for phase, seconds, params in simSeizures.phases(rng, user, kind):
            plan.append((phase, max(int(FS * seconds), 2 * FS), params))
        if onset_s is None:  # keep the seizure's end inside the event, 10 s before its end at least
            last = plan[-1]
            room = n - 10 * FS - sum(s for _, s, _ in plan[:-1])
            plan[-1] = (last[0], max(5 * FS, min(last[1], room)), last[2])
        return plan + [("post-ictal", max(n - sum(s for _, s, _ in plan), 0), {})]
    if kind in FALSE_ALARM_TYPES:
        active = min(n, int(FS * rng.uniform(25, 120)))
        lead = int(rng.integers(0, n - active + 1))
        before = ("Rest", "Walking", "Typing", "Phone use")[rng.integers(4)]
        return [(before, lead, {}), (kind, active, {}), ("Rest", n - lead - active, {})]
    plan, left = [], n  # daily life: the main activity for most of the event, maybe others around it
    for other in rng.choice(NDA_TYPES, rng.integers(0, 3)):
        length = int(n * rng.uniform(0.05, 0.2))
        plan.append((str(other), length, {}))
        left -= length
    cut = int(rng.integers(0, len(plan) + 1))
    return plan[:cut] + [(kind, left, {})] + plan[cut:]


def _join(angles, previous):
    """A segment's orientation eased from the previous segment's last orientation over about 1 s (the
    shorter way round in yaw and roll)."""
    if previous is None:
        return angles
    gap = angles[0] - previous
    gap[[0, 2]] = (gap[[0, 2]] + 180) % 360 - 180
    return angles - gap * np.exp(-np.arange(len(angles)) / (0.8 * FS))[:, None]


def simulate_motion(rng, user, kind, n_samples, onset_s=None):
    """Wrist-frame specific force (n_samples, 3) mg of an event kind (a seizure subtype or an
    activity) and its segments [(label, start, stop)] in samples."""
    forces, segments, pos, previous = [], [], 0, None
    for label, planned, params in _plan(rng, user, kind, n_samples, onset_s):
        length = min(planned, n_samples - pos)
        if length <= 0:
            continue
        full = max(planned, 8 * FS)  # generated whole (>= 8 s), then cut
        motion = ACTIVITIES[label](rng, user, full, **params)
        angles = motion.angles[:length]
        if label in simSeizures.PHASES:  # seizure phases move relative to where the arm was
            angles = angles + (0 if previous is None else previous)
        else:
            angles = _join(angles, previous)
        forces.append(specific_force(angles, motion.world[:length], motion.body[:length]))
        segments.append((label, pos, pos + length))
        previous, pos = angles[-1], pos + length
    return np.concatenate(forces), segments


def simulate_signal(rng, user, kind, n_samples, onset_s=None, sensor=None):
    """What the user's watch (or `sensor`) reports for an event kind: int x, y, z (n_samples, 3) mg and
    the segments [(label, start, stop)] in samples."""
    force, segments = simulate_motion(rng, user, kind, n_samples, onset_s)
    return read_sensor(rng, user["sensor"] if sensor is None else sensor, force), segments


# ---------------------------------------------------------------- one event
def _heart_rate(rng, user, segments, n):
    """Heart rate (bpm) per sample: baseline plus activity / seizure rises, lagging by ~20 s."""
    rise = np.zeros(n)
    for label, start, stop in segments:
        scale = user["hr_response"] if label in simSeizures.PHASES else 1
        rise[start:stop] = HR_RISE.get(label, 0) * scale
    lag = 20 * FS
    smooth = np.convolve(np.pad(rise, (lag - 1, 0), mode="edge"), np.ones(lag) / lag, "valid")
    return user["hr_base"] + smooth + 2 * band_noise(rng, n, 0, 0.05)[:, 0]


def _timeline(segments, anchor_s):
    """'rest -40..-12 s, tonic -12..3 s, ...': the event's activities in seconds from its dataTime."""
    return ", ".join(f"{label.lower()} {start / FS - anchor_s:.0f}..{stop / FS - anchor_s:.0f} s"
                     for label, start, stop in segments)


def _iso(t):
    """OSDB time string, e.g. 2023-05-05T06:28:47Z."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def osd_fields(mag, user):
    """The OSD algorithm's datapoint fields with the user's settings, and the app's alarm state."""
    osd = osdAlgorithm.osd_algorithm(mag, user["alarm_thresh"], user["alarm_ratio"], 3, 8)
    return osd, osdAlgorithm.escalate(osd["result"] == osdAlgorithm.ALARM)


def simulate_event(rng, user, event_type, event_id, start_time, sub_type=None, quirk_rate=0.0):
    """One OSDB event dict ("Seizure", "NDA" or "False Alarm") of about 3 minutes starting at start_time
    (naive UTC datetime). Datapoint ids are event_id * 1000 + index. Random draws do not depend on
    quirk_rate, so quirk_rate=0 and >0 give the same signals."""
    if sub_type is None:
        sub_type = SUB_TYPES[event_type][rng.choice(len(SUB_TYPES[event_type]), p=user["mix"][event_type])]
    n_dp = int(rng.integers(33, 40))
    xyz, segments = simulate_signal(rng, user, sub_type, n_dp * SAMPLES_PER_DP)
    mag = np.round(magnitude_mg(xyz), 2).reshape(n_dp, SAMPLES_PER_DP)  # rawData as written
    osd, states = osd_fields(mag, user)
    hr = np.round(_heart_rate(rng, user, segments, n_dp * SAMPLES_PER_DP)[SAMPLES_PER_DP - 1::SAMPLES_PER_DP]).astype(int)
    o2 = rng.integers(94, 100, n_dp) if user["has_o2"] else np.zeros(n_dp, int)
    ictal = [(s, e) for label, s, e in segments if label in simSeizures.ICTAL]
    if (states == osdAlgorithm.ALARM).any():
        anchor = int(np.argmax(states == osdAlgorithm.ALARM))
    else:
        anchor = min(n_dp - 1, ictal[0][0] // SAMPLES_PER_DP + 2) if ictal else n_dp // 2
    anchor_s = 5 * (anchor + 1)
    # quirks, drawn whatever quirk_rate is
    q_event, q_dp = rng.random(4) < quirk_rate, rng.random((4, n_dp)) < quirk_rate
    jitter = np.where(q_dp[0], rng.choice([-1, 1], n_dp), 0)
    gap_start, gap_len = int(rng.integers(1, n_dp - 4)), int(rng.integers(1, 4))
    keep = np.ones(n_dp, bool)
    if q_event[0]:
        keep[gap_start:gap_start + gap_len] = False
    no_hr, no_3d, no_times = q_event[1:]
    raw, raw3d = mag.tolist(), xyz.reshape(n_dp, 3 * SAMPLES_PER_DP).tolist()
    datapoints = []
    for k in np.flatnonzero(keep):
        t = start_time + dt.timedelta(seconds=int(5 * (k + 1) + jitter[k]))
        dp = {"dataTime": _iso(t), "eventId": event_id, "userId": user["id"],
              "hr": -1 if no_hr or q_dp[1, k] else int(hr[k]), "o2Sat": int(o2[k]), "pSeizure": 0,
              "alarmState": int(states[k]), "alarmPhrase": PHRASES[states[k]], "specPower": int(osd["spec_power"][k]),
              "roiPower": int(osd["roi_power"][k]), "roiRatio": int(osd["roi_ratio"][k]),
              "simpleSpec": osd["simple_spec"][k].tolist(), "rawData": raw[k]}
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
        "desc": f"Simulated {sub_type.lower()} ({event_type.lower()}): {_timeline(segments, anchor_s)}, osdbSim",
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
        convulsion = [(s, e) for label, s, e in segments if label == simSeizures.CONVULSION]
        if convulsion:  # the convulsion inside the labelled seizure, for latency from its onset
            event["convulsionTimes"] = [round((convulsion[0][0] + 1) / FS - anchor_s, 1),
                                        round(convulsion[0][1] / FS - anchor_s, 1)]
    return event


# ---------------------------------------------------------------- database, windows, plot, CLI
def simulate_database(path, n_users=40, seizures_per_user=3, nda_per_user=6, false_alarms_per_user=3,
                      seed=42, quirk_rate=0.05, progress=False, seizure_sub_type=None, first_user_id=1,
                      first_event_id=10000):
    """Write a simulated OSDB JSON file (streamed, one event at a time; atomic replace) and return a
    summary: users, events, datapoints, by_type, by_subtype ("type/subType") and osd_alarm_events
    (events with osdAlarmState 2, by type). seizure_sub_type: every seizure of that subtype (else each
    user's own mix); user and event ids count from first_user_id and first_event_id. `seed` (an int or a
    list of ints) draws the users: another seed, other people."""
    counts = {"by_type": Counter(), "by_subtype": Counter(), "osd_alarm_events": Counter()}
    n_events = n_datapoints = 0
    kinds = ["Seizure"] * seizures_per_user + ["NDA"] * nda_per_user + ["False Alarm"] * false_alarms_per_user
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f, \
            tqdm(total=n_users * len(kinds), disable=not progress, unit="event") as bar:
        f.write("[")
        for user_id, seq in enumerate(np.random.SeedSequence(seed).spawn(n_users), start=first_user_id):
            rng = np.random.default_rng(seq)
            user = make_user(rng, user_id)
            t = dt.datetime(2023, 1, 1) + dt.timedelta(seconds=int(rng.integers(0, 365 * 86400)))
            for kind in rng.permutation(kinds):
                sub_type = seizure_sub_type if kind == "Seizure" else None
                event = simulate_event(rng, user, str(kind), first_event_id + n_events, t, sub_type, quirk_rate)
                f.write(("\n" if n_events == 0 else ",\n") + json.dumps(event, sort_keys=True, separators=(",", ":")))
                t += dt.timedelta(seconds=int(rng.integers(3600, 14 * 86400)))
                n_events, n_datapoints = n_events + 1, n_datapoints + len(event["datapoints"])
                counts["by_type"][event["type"]] += 1
                counts["by_subtype"][f"{event['type']}/{event['subType']}"] += 1
                counts["osd_alarm_events"][event["type"]] += event["osdAlarmState"] == 2
                bar.update()
        f.write("\n]\n")
    return {"path": str(path), "users": n_users, "events": n_events, "datapoints": n_datapoints,
            **{key: {k: v for k, v in c.items() if v} for key, c in counts.items()}}


def reference_windows(input_shape, n=REFERENCE_WINDOWS, seed=0):
    """A fixed set of realistic windows (g) for checking exports, a whole number of batches of
    input_shape[0], float32 (n, *input_shape[1:]): rest, activities, seizures."""
    n = -(-n // input_shape[0]) * input_shape[0]
    windows = example_windows(n, length=max(input_shape[1:]), seed=seed)  # (n, 1, L)
    return np.ascontiguousarray(windows.reshape((n,) + tuple(input_shape[1:])))


def example_windows(n, length=750, seed=0):
    """n deterministic example windows, float32 (n, 1, length) acceleration magnitude in g, cycling
    through daily life, hard negatives and seizures (onset in the first third of the window)."""
    rng = np.random.default_rng(seed)
    kinds = [k for trio in zip(NDA_TYPES, FALSE_ALARM_TYPES * 2, SEIZURE_TYPES * 3) for k in trio]
    out = np.empty((n, 1, length), np.float32)
    for i in range(n):
        kind = kinds[i % len(kinds)]
        onset = rng.uniform(0, length / FS / 3) if kind in SEIZURE_TYPES else None
        xyz, _ = simulate_signal(rng, make_user(rng, i + 1), kind, length, onset_s=onset)
        out[i, 0] = magnitude_mg(xyz) / 1000
    return out


def plot_examples(path, seed=0, seconds=180):
    """Save a PNG (atomically) with the acceleration magnitude of one simulated example of every kind."""
    from matplotlib.figure import Figure

    kinds = SEIZURE_TYPES + NDA_TYPES + FALSE_ALARM_TYPES
    rng = np.random.default_rng(seed)
    user = make_user(rng, 1)
    t = np.arange(seconds * FS) / FS
    fig = Figure(figsize=(11, 1.2 * len(kinds)))
    axes = fig.subplots(len(kinds), 1, sharex=True)
    for ax, kind in zip(axes, kinds):
        xyz, segments = simulate_signal(rng, user, kind, len(t))
        ax.plot(t, magnitude_mg(xyz), lw=0.5)
        for label, start, stop in segments:
            if label in simSeizures.ICTAL:
                ax.axvspan(start / FS, stop / FS, color="tab:red" if label != "tonic" else "tab:orange", alpha=0.2)
        ax.set_ylabel(kind, rotation=0, ha="right", fontsize=8)
    axes[-1].set_xlabel("time (s); shaded: tonic (orange), clonic / focal / hypermotor (red)")
    fig.suptitle(f"osdbSim examples: acceleration magnitude (mg), one watch (gain {user['sensor']['gain']:.2f})")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
