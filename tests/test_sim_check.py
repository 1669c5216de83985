"""Tests for simCheck: the per-datapoint features on signals of known shape, the distances, and the
simulated convulsions' shape (shaking that swings both ways over a broad band, as the real one does)."""
import numpy as np

from osdkit.sim import simCheck

T = np.arange(125) / 25.0


def test_features_of_a_sine_a_spike_train_and_noise():
    sine = 1 + 0.3 * np.sin(2 * np.pi * 4 * T)
    spikes = 1 + 2.0 * (np.arange(125) % 10 == 0)
    noise = 1 + 0.2 * np.random.default_rng(0).standard_normal((40, 125))
    f = simCheck.datapoint_features(np.vstack([sine, spikes, noise]))
    assert f["dominant_hz"][0] == 4.0 and abs(f["sd"][0] - 0.3 / np.sqrt(2)) < 1e-3
    assert abs(f["mean"][0] - 1) < 1e-9 and abs(f["skew"][0]) < 0.01 and f["flatness"][0] < 0.01
    assert f["skew"][1] > 2  # one-sided spikes
    assert np.median(f["flatness"][2:]) > 0.4 and np.median(np.abs(f["skew"][2:])) < 0.3  # white noise
    assert np.allclose(f["bands"].sum(axis=1), 1)


def test_distances_are_zero_on_the_same_data_and_large_on_disjoint_data():
    rng = np.random.default_rng(1)
    a = 1 + 0.1 * rng.standard_normal((30, 125))
    same = simCheck.compare(a, a)
    assert same["sd_ks_distance"] == 0 and same["spectrum_l1_distance"] == 0
    assert same["skew_quartiles"]["sim"] == same["skew_quartiles"]["real"]
    far = simCheck.compare(1 + 0.5 * np.sin(2 * np.pi * 2 * T)[None].repeat(30, 0), a)
    assert far["sd_ks_distance"] == 1 and far["spectrum_l1_distance"] > 1


def test_simulated_convulsions_shake_both_ways_over_a_broad_band():
    """A train of identical one-way jerks skews the magnitude and puts its power in a few harmonics;
    the real convulsion swings it both ways over a broad band (skew median 0.36, flatness 0.44)."""
    mag, lengths = simCheck.simulated_convulsions(n_events=12, seed=0)
    f = simCheck.datapoint_features(mag)
    strong = f["sd"] > 0.05
    assert strong.mean() > 0.8 and lengths.min() >= 2
    assert np.median(f["skew"][strong]) < 0.75 and np.median(f["flatness"][strong]) > 0.3
