"""The response map (osdkit.reports.responseMap): the synthetic shaking is what it says, the map's
cells escalate as the app does, and the card says where the model leaves shaking to the OSD
algorithm. Stub models with known p; no trained model's accuracy."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from osdkit.reports import modelCard, responseMap

N = 375


def constant(p):
    return lambda batch: np.full(len(batch), p)


@pytest.mark.parametrize("sd", [0.05, 0.3, 0.5])
def test_a_bout_rests_then_oscillates_at_the_rate_and_strength_asked(sd):
    rng = np.random.default_rng(1)
    mag = responseMap.bout("oscillation", 4.0, sd, N, rng)
    assert mag.shape == (N + 30 * 25,) and np.all(mag > 0)
    assert mag[:N].std() < 0.01 and mag[:N].mean() == pytest.approx(1.0, abs=0.002)  # at rest first
    shaking = mag[N:]
    assert shaking.std() == pytest.approx(sd, rel=0.03)  # the sensor's 5 mg noise on top
    spectrum = np.abs(np.fft.rfft(shaking - shaking.mean()))
    assert np.fft.rfftfreq(len(shaking), 1 / 25)[spectrum.argmax()] == pytest.approx(4.0, abs=0.05)
    assert list(responseMap.datapoint_ends(N)) == [N + 125 * k for k in range(1, 7)]  # 5 s datapoints


def test_jerks_come_at_the_rate_and_irregular_shaking_stays_in_its_octave():
    rng = np.random.default_rng(0)
    jerks = responseMap.shaking("jerks", 3.0, N, rng)
    pushes = np.flatnonzero((jerks[1:-1] > jerks[:-2]) & (jerks[1:-1] >= jerks[2:]) & (jerks[1:-1] > 0.5))
    assert 3.0 * 15 * 0.8 <= len(pushes) <= 3.0 * 15 * 1.2  # one push per jerk, 15 % jitter
    irregular = responseMap.shaking("irregular", 4.0, N, rng)
    power = np.abs(np.fft.rfft(irregular)) ** 2
    freqs = np.fft.rfftfreq(N, 1 / 25)
    inside = (freqs >= 4 / np.sqrt(2)) & (freqs <= 4 * np.sqrt(2))
    assert power[inside].sum() / power.sum() > 0.999


def test_cells_escalate_the_models_p_the_movement_gate_and_the_osd_algorithm_as_the_app_does():
    result = responseMap.response_map(constant(0.7), N, threshold=0.5, gate_pct=7)
    osc = result["waveforms"]["oscillation"]
    assert np.all(np.array(osc["p_median"]) == 0.7)
    ml, latency = np.array(osc["ml_alarm"]), np.array(osc["ml_latency_s"], dtype=float)
    assert np.all(ml[:, 0] == 0) and np.all(np.isnan(latency[:, 0]))  # 0.05 g SD moves 5 % < the 7 % gate
    assert np.all(ml[:, 1:] == 1) and np.all(latency[:, 1:] == 15)  # in alarm from the first datapoint: 3rd at 15 s
    osd, rates = np.array(osc["osd_alarm"]), result["rates_hz"]
    assert np.all(osd[rates.index(4.0), 2:] == 1)  # a 4 Hz oscillation of 0.2 g and more: in the 3-8 Hz band
    assert np.all(np.array(osc["osd_latency_s"])[rates.index(4.0)][2:] == 15)
    assert np.all(osd[rates.index(1.0)] == 0)  # 1 Hz: outside it
    below = responseMap.response_map(constant(0.4), N, threshold=0.5, gate_pct=0)
    assert all(np.all(np.array(w["ml_alarm"]) == 0) for w in below["waveforms"].values())
    assert below["waveforms"]["oscillation"]["osd_alarm"] == osc["osd_alarm"]


def only_when_full(batch):
    """p = 1 when the window's oldest 5 s already move (the whole window is shaking), else 0."""
    return (batch[:, 0, :125].std(axis=1) > 0.02).astype(float)


@pytest.mark.parametrize("input_size, seconds", [(375, 25.0), (250, 20.0), (750, None)])
def test_the_alarm_comes_as_late_as_the_window_fills_and_needs_three_datapoints_in_a_row(input_size, seconds):
    """A model that answers only to a window full of shaking is in alarm from the datapoint its window
    fills (15 s for 375 samples) and reaches ALARM two datapoints later; a 30 s window fills only at
    the bout's last datapoint, so never ALARM within it."""
    result = responseMap.response_map(only_when_full, input_size, threshold=0.5, gate_pct=0)
    cell = result["waveforms"]["oscillation"]
    assert cell["ml_latency_s"][3][4] == seconds and cell["ml_alarm"][3][4] == (0.0 if seconds is None else 1.0)
    assert cell["p_median"][3][4] == 1.0  # the last datapoint's window is all shaking for every size here


def test_the_map_uses_the_models_own_input_size():
    seen = []
    responseMap.response_map(lambda batch: seen.append((batch.shape[1:], batch.dtype)) or np.zeros(len(batch)),
                             250, 0.5, 0)
    assert set(seen) == {((1, 250), np.dtype(np.float32))}
    with pytest.raises(ValueError, match="unknown waveform 'tap'"):
        responseMap.bout("tap", 3.0, 0.3, 250, np.random.default_rng(0))


def hand_made(ml_cells):
    """A result whose oscillation is in alarm for the OSD algorithm on every cell and for the model on
    the (rate, sd) cells given; the other waveforms in alarm for both everywhere."""
    shape = (len(responseMap.RATES_HZ), len(responseMap.SDS_G))
    ml = np.zeros(shape)
    for rate, sd in ml_cells:
        ml[responseMap.RATES_HZ.index(rate), responseMap.SDS_G.index(sd)] = 1.0
    full = np.ones(shape).tolist()
    latency = np.where(ml > 0, 20.0, np.nan)
    latency[responseMap.RATES_HZ.index(5.0), responseMap.SDS_G.index(0.7)] = 30.0
    fifteen = np.full(shape, 15.0).tolist()
    waveforms = {w: {"p_median": full, "ml_alarm": full, "osd_alarm": full, "ml_latency_s": fifteen,
                     "osd_latency_s": fifteen} for w in responseMap.WAVEFORMS}
    waveforms["oscillation"] = {"p_median": ml.tolist(), "ml_alarm": ml.tolist(), "osd_alarm": full,
                                "ml_latency_s": latency.tolist(), "osd_latency_s": fifteen}
    return {"rates_hz": list(responseMap.RATES_HZ), "sds_g": list(responseMap.SDS_G), "input_size": N,
            "bout_s": 30, "threshold": 0.5, "gate_pct": 2, "waveforms": waveforms}


def test_the_summary_counts_the_convulsion_band_and_the_card_says_what_the_model_leaves_to_the_algorithm():
    result = hand_made([(3.0, 0.3), (4.0, 0.5), (5.0, 0.7), (1.0, 0.7), (3.0, 0.05)])  # three inside the band
    assert responseMap.convulsion_band_counts(result, "oscillation") == (9, 3, 9)
    assert responseMap.convulsion_band_counts(result, "jerks") == (9, 9, 9)
    result["lines"] = responseMap.summary_lines(result)
    assert result["lines"][0] == ("a regular oscillation, 3-5 Hz at 0.3-0.7 g SD: 30 s bouts reach ALARM from the "
                                  "model alone (p > 0.5) on 3 of 9 cells (median 20 s after onset), from the OSD "
                                  "algorithm on 9 (median 15 s after onset)")
    nothing = hand_made([])
    assert "on 0 of 9 cells, from the OSD algorithm on 9 (median 15 s" in responseMap.summary_lines(nothing)[0]
    fold = SimpleNamespace(results={}, real={}, data_summary={}, response=result)
    limits = modelCard._limits(fold)
    assert sum("at a real convulsion's rate and strength" in line for line in limits) == 1
    assert ("A regular oscillation at a real convulsion's rate and strength (the response map): the model alone "
            "reaches ALARM on 3 of 9 cells, the OSD algorithm on 9; the app ORs them, so where the model does not, "
            "the algorithm raises the ALARM.") in limits
    section = modelCard._response_lines(result)
    assert "## What the model answers to (synthetic shaking, `*_response_map.json/png`)" in section
    assert f"- {result['lines'][0]}." in section
    assert modelCard._response_lines(None) == []
    assert not any("convulsion's rate" in line for line in modelCard._limits(SimpleNamespace(
        results={}, real={}, data_summary={}, response=None)))


def test_written_files_hold_the_map_and_its_lines(tmp_path, capsys):
    result = responseMap.write_response_map(tmp_path / "m_response_map", constant(0.9), N, 0.5, 2)
    saved = json.loads((tmp_path / "m_response_map.json").read_text())
    assert saved["lines"] == result["lines"] and saved["input_size"] == N and saved["draws"] == responseMap.DRAWS
    assert (tmp_path / "m_response_map.png").stat().st_size > 0
    assert capsys.readouterr().out.count("response map: ") == len(responseMap.WAVEFORMS)
    assert not list(tmp_path.glob("*.tmp*"))
