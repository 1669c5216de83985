"""What a trained model answers to synthetic shaking, beside the OSD algorithm: which rhythms and
strengths raise ALARM from the model alone, and which it leaves to the algorithm the app ORs it with.

A bout is a watch at rest (1 g) for one input length, then BOUT_S seconds shaken along gravity by one
waveform at one rate and strength; the watch reports the magnitude |1 g + shaking| plus its noise:
- oscillation: a sine (a limb shaking back and forth: tremor, brushing teeth, a very regular convulsion);
- jerks: biphasic jerks (the push and the braking of one quick flexion, a Gaussian's derivative)
  at the rate, 15 % interval jitter, amplitudes varying by about 25 % (clonic jerking);
- irregular: noise in the octave around the rate (rate/sqrt 2 to rate*sqrt 2), no rhythm.
Strength is the shaking's standard deviation in g (real convulsions at the wrist: 3-4.5 Hz, 0.3-0.7 g).
The app runs on it as on a recording: a datapoint every 5 s, the model on the newest input length
(p > threshold and the movement gate passing: in alarm), the OSD algorithm (the app's defaults) on the
newest 5 s, each escalated alone (ALARM on the 3rd in-alarm datapoint in a row, osdAlgorithm.escalate).
Per cell, DRAWS bouts (random phases, jitter, noise; a fixed seed): the share reaching ALARM before the
shaking ends and the median seconds from its onset, for the model and the algorithm, and the median p
on the last datapoint (the shaking alone when the input is at most BOUT_S long).
"""
import numpy as np
from matplotlib.figure import Figure

from osdkit.app import osdAlgorithm
from osdkit.app.osdAlgorithm import ALARM, SAMPLE_RATE_HZ, SAMPLES_PER_DP
from osdkit.data import windowing
from osdkit.io import fileUtils

WAVEFORMS = ("oscillation", "jerks", "irregular")
LABELS = {"oscillation": "a regular oscillation", "jerks": "a train of jerks", "irregular": "irregular shaking"}
RATES_HZ = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
SDS_G = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
CONVULSION_RATES_HZ = (3.0, 4.0, 5.0)  # the cells the summary calls a real convulsion's band and strength
CONVULSION_SDS_G = (0.3, 0.5, 0.7)
DRAWS = 3
BOUT_S = 30  # the longest of the 15-30 s convulsions that must reach ALARM before they end
BOUT_SAMPLES = int(BOUT_S * SAMPLE_RATE_HZ)
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


def bout(waveform, rate_hz, sd_g, input_size, rng):
    """Magnitude (g) of a watch at rest for input_size samples, then BOUT_S s of sd_g * shaking."""
    motion = np.r_[np.zeros(input_size), sd_g * shaking(waveform, rate_hz, BOUT_SAMPLES, rng)]
    return np.abs(REST_G + motion + rng.normal(0, SENSOR_NOISE_G, len(motion)))


def datapoint_ends(input_size):
    """Sample index after each datapoint that holds shaking: the app's 5 s datapoints from its onset."""
    return input_size + SAMPLES_PER_DP * np.arange(1, BOUT_SAMPLES // SAMPLES_PER_DP + 1)


def _alarm_after(in_alarm):
    """Seconds from the shaking's onset to ALARM (escalated per bout, rows of datapoints), NaN for none."""
    n_bouts, n_dps = in_alarm.shape
    state = osdAlgorithm.escalate(in_alarm.ravel(), group=np.repeat(np.arange(n_bouts), n_dps)).reshape(in_alarm.shape)
    reached = state == ALARM
    return np.where(reached.any(axis=1), (reached.argmax(axis=1) + 1) * SAMPLES_PER_DP / SAMPLE_RATE_HZ, np.nan)


def _cell_figures(after):
    """(share of bouts reaching ALARM, median seconds to it or None) of one cell."""
    reached = after[~np.isnan(after)]
    return float(len(reached) / len(after)), float(np.median(reached)) if len(reached) else None


def response_map(predict, input_size, threshold, gate_pct):
    """{waveform: {p_median, ml_alarm, ml_latency_s, osd_alarm, osd_latency_s}} as [rate][sd] lists, plus
    the grid and settings. `predict`: batch (N, 1, L) float32 -> p(seizure) (N,), e.g. nnTester.pte_predict_fn."""
    rng = np.random.default_rng(SEED)
    ends = datapoint_ends(input_size)
    shape = (len(RATES_HZ), len(SDS_G), DRAWS, len(ends))
    out = {"rates_hz": list(RATES_HZ), "sds_g": list(SDS_G), "input_size": int(input_size), "draws": DRAWS,
           "bout_s": BOUT_S, "threshold": float(threshold), "gate_pct": gate_pct, "waveforms": {}}
    for waveform in WAVEFORMS:
        bouts = np.stack([bout(waveform, rate, sd, input_size, rng) for rate in RATES_HZ for sd in SDS_G
                          for _ in range(DRAWS)])
        windows = np.stack([bouts[:, end - input_size:end] for end in ends], axis=1).astype(np.float32)
        flat = windows.reshape(-1, input_size)
        p = np.asarray(predict(flat[:, None, :]), dtype=float).reshape(shape)
        ml = (p > threshold) & windowing.movement_gate(flat, gate_pct).reshape(shape)
        osd = (osdAlgorithm.osd_algorithm(1000 * flat[:, -SAMPLES_PER_DP:])["result"] == ALARM).reshape(shape)
        res = {"p_median": np.median(p[..., -1], axis=-1).round(4).tolist()}
        for name, in_alarm in (("ml", ml), ("osd", osd)):
            after = _alarm_after(in_alarm.reshape(-1, len(ends))).reshape(shape[:3])
            cells = [[_cell_figures(after[r, s]) for s in range(len(SDS_G))] for r in range(len(RATES_HZ))]
            res[f"{name}_alarm"] = [[share for share, _ in row] for row in cells]
            res[f"{name}_latency_s"] = [[latency for _, latency in row] for row in cells]
        out["waveforms"][waveform] = res
    return out


def counts(share):
    """Whether a cell counts as reaching ALARM: at least half its bouts did."""
    return share >= 0.5


def convulsion_band_counts(result, waveform):
    """(cells, model's ALARM, algorithm's ALARM) over the convulsion band and strengths: a cell counts
    when at least half its bouts reach ALARM before the shaking ends."""
    cells = _band_cells(result)
    res = result["waveforms"][waveform]
    return len(cells), *(sum(counts(res[key][i][j]) for i, j in cells) for key in ("ml_alarm", "osd_alarm"))


def _band_cells(result):
    """(rate index, sd index) of the convulsion band's cells."""
    return [(result["rates_hz"].index(r), result["sds_g"].index(s)) for r in CONVULSION_RATES_HZ
            for s in CONVULSION_SDS_G]


def _band_latency(result, waveform, name):
    """Median seconds from onset to ALARM over the band's cells that count for `name` (ml, osd); '' if none."""
    res = result["waveforms"][waveform]
    seconds = [res[f"{name}_latency_s"][i][j] for i, j in _band_cells(result) if counts(res[f"{name}_alarm"][i][j])]
    return f" (median {np.median(seconds):.0f} s after onset)" if seconds else ""


def summary_lines(result):
    """One line per waveform: the convulsion band's cells in ALARM, the model's and the algorithm's."""
    band = (f"{CONVULSION_RATES_HZ[0]:g}-{CONVULSION_RATES_HZ[-1]:g} Hz at {CONVULSION_SDS_G[0]:g}-"
            f"{CONVULSION_SDS_G[-1]:g} g SD")
    lines = []
    for waveform in WAVEFORMS:
        cells, ml, osd = convulsion_band_counts(result, waveform)
        lines.append(f"{LABELS[waveform]}, {band}: {result['bout_s']} s bouts reach ALARM from the model alone "
                     f"(p > {result['threshold']:g}) on {ml} of {cells} cells{_band_latency(result, waveform, 'ml')}, "
                     f"from the OSD algorithm on {osd}{_band_latency(result, waveform, 'osd')}")
    return lines


def plot_response_map(result, path):
    """One panel per waveform: median p(seizure) on the last datapoint by rate and strength; M where the
    model reaches ALARM, O where the OSD algorithm does (half the bouts or more)."""
    fig = Figure(figsize=(5 * len(WAVEFORMS), 4), layout="tight")
    for i, waveform in enumerate(WAVEFORMS, start=1):
        res = result["waveforms"][waveform]
        ax = fig.add_subplot(1, len(WAVEFORMS), i)
        image = ax.imshow(np.array(res["p_median"]).T, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for r in range(len(result["rates_hz"])):
            for s in range(len(result["sds_g"])):
                marks = ("M" if counts(res["ml_alarm"][r][s]) else "") + ("O" if counts(res["osd_alarm"][r][s]) else "")
                ax.text(r, s, marks, ha="center", va="center", color="white" if res["p_median"][r][s] < 0.5 else "black")
        ax.set(xticks=range(len(result["rates_hz"])), xticklabels=[f"{r:g}" for r in result["rates_hz"]],
               yticks=range(len(result["sds_g"])), yticklabels=[f"{s:g}" for s in result["sds_g"]],
               xlabel="rate (Hz)", ylabel="shaking SD (g)", title=f"{waveform}: median p, last datapoint")
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"{result['bout_s']} s of synthetic shaking after rest: M the model reaches ALARM (p > "
                 f"{result['threshold']:g}), O the OSD algorithm does")
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
