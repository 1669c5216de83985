"""What a trained model answers to synthetic shaking, beside the OSD algorithm: which rhythms and
strengths the model alarms on, and which it leaves to the algorithm the app ORs it with.

Each window is the watch at rest (1 g) shaken along gravity by one waveform at one rate and strength,
magnitude |1 g + shaking| as the watch reports it, the model's own input length:
- oscillation: a sine (a limb shaking back and forth: tremor, brushing teeth, a very regular convulsion);
- jerks: biphasic jerks (the push and the braking of one quick flexion, a Gaussian's derivative)
  at the rate, 15 % interval jitter, amplitudes varying by about 25 % (clonic jerking);
- irregular: noise in the octave around the rate (rate/sqrt 2 to rate*sqrt 2), no rhythm.
Strength is the shaking's standard deviation in g (real convulsions at the wrist: 3-4.5 Hz, 0.3-0.7 g).
Per cell, DRAWS windows (random phases, jitter, noise; a fixed seed): the median p(seizure), the share
the app's ML result counts in alarm (p > threshold and the movement gate passes) and the share the
OSD algorithm (the app's defaults) counts in alarm on the newest 5 s. A single datapoint, not the
escalation: shaking that lasts 15 s or more gives the app its three in a row when the cell is in alarm.
"""
import numpy as np
from matplotlib.figure import Figure

from osdkit.app import osdAlgorithm
from osdkit.app.osdAlgorithm import ALARM, SAMPLE_RATE_HZ, SAMPLES_PER_DP
from osdkit.data import windowing
from osdkit.io import fileUtils

WAVEFORMS = ("oscillation", "jerks", "irregular")
RATES_HZ = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
SDS_G = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
CONVULSION_RATES_HZ = (3.0, 4.0, 5.0)  # the cells the summary calls a real convulsion's band and strength
CONVULSION_SDS_G = (0.3, 0.5, 0.7)
DRAWS = 4
REST_G = 1.0
SENSOR_NOISE_G = 0.005
SEED = 20261207


def shaking(waveform, rate_hz, n, rng):
    """Zero-mean shaking of unit standard deviation, n samples at 25 Hz."""
    t = np.arange(n) / SAMPLE_RATE_HZ
    if waveform == "oscillation":
        s = np.sin(2 * np.pi * rate_hz * t + rng.uniform(0, 2 * np.pi))
    elif waveform == "jerks":
        width, s, at = 0.04, np.zeros(n), rng.uniform(0, 1 / rate_hz)
        while at < t[-1] + 3 * width:
            k = (t - at) / width
            s += rng.lognormal(0, 0.25) * -k * np.exp(-0.5 * k ** 2)
            at += max(0.3, rng.normal(1, 0.15)) / rate_hz
    elif waveform == "irregular":
        spectrum = np.fft.rfft(rng.normal(size=n))
        freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE_HZ)
        spectrum[(freqs < rate_hz / np.sqrt(2)) | (freqs > rate_hz * np.sqrt(2))] = 0
        s = np.fft.irfft(spectrum, n)
    else:
        raise ValueError(f"unknown waveform {waveform!r}, expected one of {WAVEFORMS}")
    s = s - s.mean()
    return s / s.std()


def synthetic_windows(waveform, rate_hz, sd_g, n, draws=DRAWS, rng=None):
    """(draws, n) magnitudes in g: |REST_G + sd_g * shaking| plus the sensor's noise."""
    rng = np.random.default_rng(SEED) if rng is None else rng
    return np.stack([np.abs(REST_G + sd_g * shaking(waveform, rate_hz, n, rng) + rng.normal(0, SENSOR_NOISE_G, n))
                     for _ in range(draws)])


def response_map(predict, input_size, threshold, gate_pct):
    """{waveform: {p_median, ml_in_alarm, osd_in_alarm}} as [rate][sd] lists, plus the grid and settings.
    `predict`: batch (N, 1, L) float32 -> p(seizure) (N,), e.g. nnTester.pte_predict_fn."""
    rng = np.random.default_rng(SEED)
    out = {"rates_hz": list(RATES_HZ), "sds_g": list(SDS_G), "input_size": int(input_size), "draws": DRAWS,
           "threshold": float(threshold), "gate_pct": gate_pct, "waveforms": {}}
    for waveform in WAVEFORMS:
        cells = [[synthetic_windows(waveform, rate, sd, input_size, rng=rng) for sd in SDS_G] for rate in RATES_HZ]
        flat = np.concatenate([w for row in cells for w in row]).astype(np.float32)
        p = np.asarray(predict(flat[:, None, :]), dtype=float).reshape(len(RATES_HZ), len(SDS_G), DRAWS)
        moving = windowing.movement_gate(flat, gate_pct).reshape(p.shape)
        osd = osdAlgorithm.osd_algorithm(1000 * flat[:, -SAMPLES_PER_DP:])["result"].reshape(p.shape) == ALARM
        out["waveforms"][waveform] = {"p_median": np.median(p, axis=-1).round(4).tolist(),
                                      "ml_in_alarm": ((p > threshold) & moving).mean(axis=-1).tolist(),
                                      "osd_in_alarm": osd.mean(axis=-1).tolist()}
    return out


def convulsion_band_counts(result, waveform):
    """(cells, model in alarm, algorithm in alarm) over the convulsion band and strengths: a cell counts
    when at least half its windows are in alarm."""
    rows = [result["rates_hz"].index(r) for r in CONVULSION_RATES_HZ]
    cols = [result["sds_g"].index(s) for s in CONVULSION_SDS_G]
    res = result["waveforms"][waveform]
    count = (lambda key: sum(res[key][i][j] >= 0.5 for i in rows for j in cols))
    return len(rows) * len(cols), count("ml_in_alarm"), count("osd_in_alarm")


def summary_lines(result):
    """One line per waveform: the convulsion band's cells in alarm, the model's and the algorithm's."""
    band = (f"{CONVULSION_RATES_HZ[0]:g}-{CONVULSION_RATES_HZ[-1]:g} Hz at {CONVULSION_SDS_G[0]:g}-"
            f"{CONVULSION_SDS_G[-1]:g} g SD")
    lines = []
    for waveform in WAVEFORMS:
        cells, ml, osd = convulsion_band_counts(result, waveform)
        lines.append(f"{waveform} shaking, {band}: the model in alarm on {ml} of {cells} cells, the OSD "
                     f"algorithm on {osd} (p > {result['threshold']:g}, one datapoint, no escalation)")
    return lines


def plot_response_map(result, path):
    """One panel per waveform: median p(seizure) by rate and strength; M where the model is in alarm,
    O where the OSD algorithm is (half the windows or more)."""
    fig = Figure(figsize=(5 * len(WAVEFORMS), 4), layout="tight")
    for i, waveform in enumerate(WAVEFORMS, start=1):
        res = result["waveforms"][waveform]
        ax = fig.add_subplot(1, len(WAVEFORMS), i)
        image = ax.imshow(np.array(res["p_median"]).T, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for r in range(len(result["rates_hz"])):
            for s in range(len(result["sds_g"])):
                marks = ("M" if res["ml_in_alarm"][r][s] >= 0.5 else "") + ("O" if res["osd_in_alarm"][r][s] >= 0.5 else "")
                ax.text(r, s, marks, ha="center", va="center", color="white" if res["p_median"][r][s] < 0.5 else "black")
        ax.set(xticks=range(len(result["rates_hz"])), xticklabels=[f"{r:g}" for r in result["rates_hz"]],
               yticks=range(len(result["sds_g"])), yticklabels=[f"{s:g}" for s in result["sds_g"]],
               xlabel="rate (Hz)", ylabel="shaking SD (g)", title=f"{waveform}: median p(seizure)")
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"Synthetic shaking at 1 g rest: M model in alarm (p > {result['threshold']:g}), O OSD algorithm")
    fileUtils.save_figure_atomic(fig, path)


def write_response_map(stem, predict, input_size, threshold, gate_pct):
    """response_map written to `stem`.json and `stem`.png, its summary printed; returns the result with
    its summary lines under "lines"."""
    result = response_map(predict, input_size, threshold, gate_pct)
    result["lines"] = summary_lines(result)
    fileUtils.write_json_atomic(f"{stem}.json", result)
    plot_response_map(result, f"{stem}.png")
    for line in result["lines"]:
        print(f"response map: {line}")
    return result
