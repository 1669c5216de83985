"""How far simulated signals are from real ones: per 5 s datapoint amplitude statistics and spectra.

A check, never a tuning target (the real tonic-clonic event in ../shared/data/osdb_example is never
trained or tuned on). Features per datapoint of acceleration magnitude (g): mean, standard deviation,
dominant frequency, the spectrum's share in 1 Hz bands (0.5-12.5 Hz, mean removed), skewness (a train of
one-sided spikes is skewed, shaking that swings both ways is not) and spectral flatness over 1-12.5 Hz
(near 0 for one steady tone, higher for broadband shaking). `compare` gives the quartiles on both
sides, the Kolmogorov-Smirnov distance of the SD distributions and the L1 distance of the mean band
spectra (0 = same shape, 2 = disjoint).
`check_real` is what `python osdbSim.py --check-real ../shared/data/osdb_example/<event>.json` prints.
"""
import numpy as np

from osdkit.data.osdbData import SAMPLE_RATE_HZ, SAMPLES_PER_DP, read_osdb_file
from osdkit.sim import osdbSim, simSeizures
from osdkit.sim.simSensor import FS, magnitude_mg

BANDS_HZ = np.arange(0.5, 12.6, 1.0)


def datapoint_features(mag_g):
    """(n, 125) magnitudes in g -> dict of per-datapoint arrays: mean, sd, dominant_hz, bands (n, 12),
    skew, flatness."""
    mag_g = np.asarray(mag_g, np.float64).reshape(-1, SAMPLES_PER_DP)
    freqs = np.fft.rfftfreq(SAMPLES_PER_DP, 1 / SAMPLE_RATE_HZ)
    mean = mag_g.mean(axis=1)
    centred = mag_g - mean[:, None]
    sd = centred.std(axis=1)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2
    bands = np.stack([power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1)
                      for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:])], axis=1)
    bands = bands / np.maximum(bands.sum(axis=1, keepdims=True), 1e-12)
    above, upper = freqs >= BANDS_HZ[0], power[:, freqs >= 1.0] + 1e-12
    return {"mean": mean, "sd": sd,
            "dominant_hz": freqs[above][np.argmax(power[:, above], axis=1)], "bands": bands,
            "skew": (centred ** 3).mean(axis=1) / np.maximum(sd, 1e-9) ** 3,
            "flatness": np.exp(np.log(upper).mean(axis=1)) / upper.mean(axis=1)}


def simulated_convulsions(n_events=60, seed=0):
    """Magnitudes (n, 125) g of the simulated tonic-clonic convulsions' whole datapoints (osdbSim users and
    watches), and the convulsion lengths in s."""
    rng = np.random.default_rng(seed)
    out, lengths = [], []
    for i in range(n_events):
        user = osdbSim.make_user(rng, i + 1)
        xyz, segments = osdbSim.simulate_signal(rng, user, "Tonic-Clonic", 180 * FS, onset_s=20)
        mag = magnitude_mg(xyz) / 1000.0
        for label, start, stop in segments:
            if label == simSeizures.CONVULSION:
                first = -(-start // SAMPLES_PER_DP) * SAMPLES_PER_DP
                n_dp = (stop - first) // SAMPLES_PER_DP
                out.append(mag[first:first + n_dp * SAMPLES_PER_DP].reshape(-1, SAMPLES_PER_DP))
                lengths.append((stop - start) / FS)
    return np.concatenate(out), np.array(lengths)


def real_seizure_datapoints(path):
    """Magnitudes (n, 125) g of the datapoints of an OSDB file's seizure events that lie in seizureTimes."""
    events, _ = read_osdb_file(path)
    rows = []
    for e in events:
        if e.label == 1 and e.seizure_times:
            t = e.dp_times - e.data_time
            inside = (t - SAMPLES_PER_DP / SAMPLE_RATE_HZ >= e.seizure_times[0]) & (t <= e.seizure_times[1])
            rows.append(e.mag[inside] / 1000.0)
    if not rows:
        raise ValueError(f"{path}: no seizure event with seizureTimes")
    return np.concatenate(rows)


def _ks(a, b):
    grid = np.sort(np.r_[a, b])
    return float(np.max(np.abs(np.searchsorted(np.sort(a), grid, "right") / len(a)
                               - np.searchsorted(np.sort(b), grid, "right") / len(b))))


def compare(sim_mag, real_mag):
    """Distance figures between simulated and real datapoints (see the module doc)."""
    s, r = datapoint_features(sim_mag), datapoint_features(real_mag)
    q = lambda x: [round(float(v), 3) for v in np.percentile(x, [25, 50, 75])]  # noqa: E731
    return {"n_sim": len(s["sd"]), "n_real": len(r["sd"]),
            "sd_g_quartiles": {"sim": q(s["sd"]), "real": q(r["sd"])},
            "mean_g_quartiles": {"sim": q(s["mean"]), "real": q(r["mean"])},
            "dominant_hz_quartiles": {"sim": q(s["dominant_hz"]), "real": q(r["dominant_hz"])},
            "skew_quartiles": {"sim": q(s["skew"]), "real": q(r["skew"])},
            "flatness_quartiles": {"sim": q(s["flatness"]), "real": q(r["flatness"])},
            "share_3_8hz": {"sim": round(float(s["bands"][:, 3:8].sum(1).mean()), 3),
                            "real": round(float(r["bands"][:, 3:8].sum(1).mean()), 3)},
            "sd_ks_distance": round(_ks(s["sd"], r["sd"]), 3),
            "mean_ks_distance": round(_ks(s["mean"], r["mean"]), 3),
            "spectrum_l1_distance": round(float(np.abs(s["bands"].mean(0) - r["bands"].mean(0)).sum()), 3)}


def check_real(path, n_events=60, seed=0):
    """compare() of the simulated convulsions (n_events tonic-clonic seizures) with the seizure datapoints
    of the OSDB file at path, plus the simulated convulsion lengths' quartiles (s)."""
    sim, lengths = simulated_convulsions(n_events, seed)
    result = compare(sim, real_seizure_datapoints(path))
    result["sim_convulsion_s_quartiles"] = [round(float(v), 1) for v in np.percentile(lengths, [25, 50, 75])]
    return result
