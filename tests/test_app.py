"""App side: the replay computes what the evaluation computes; index entries and index merging."""
import json

import numpy as np
import pytest

import appIndex
import appReplay
import exportUtils
import nnTester
import osdbData
import osdbSim
import windowing
from conftest import FIXTURES, run_script


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    model, shape, _ = exportUtils.model_from_checkpoint(FIXTURES / "legacy_deepepicnn.pt")
    report = exportUtils.export_pte(model, shape, tmp / "model.pte")
    appIndex.write_entry_beside(tmp / "model.pte", appIndex.app_entry(tmp / "model.pte", report))
    db = tmp / "events.json"
    osdbSim.simulate_database(db, n_users=3, seizures_per_user=1, nda_per_user=1, false_alarms_per_user=1,
                              seed=9, quirk_rate=0.0)
    return tmp, model, db


def test_replay_agrees_with_evaluation(exported):
    tmp, model, db = exported
    events, _ = osdbData.read_osdb_file(db)
    settings = appReplay.app_settings(tmp / "model.pte")
    assert settings["input_size"] == 750
    predict = nnTester.pte_predict_fn(tmp / "model.pte")
    windows = windowing.make_windows(events)
    p_eval = nnTester.predict_windows(predict, windows) * windowing.movement_gate(windows, 5.0)
    compared = 0
    for i, event in enumerate(events):
        assert len(windowing.segment_bounds(event.dp_times)) == 1  # no gaps: app buffer == windows
        replay = appReplay.replay_event(event, predict, settings)
        mine = p_eval[windows.event_index == i]
        assert np.all(replay["p"][:5] == 0)  # buffer not yet full
        np.testing.assert_allclose(replay["p"][5:], mine, atol=1e-6)
        np.testing.assert_allclose(replay["times"][5:], windows.end_time[windows.event_index == i], atol=1e-6)
        compared += len(mine)
    assert compared == len(windows) > 50


def test_replay_cli_prints_alarms_and_draws_timelines(exported, tmp_path):
    tmp, _, db = exported
    res = run_script("appReplay.py", tmp / "model.pte", db, FIXTURES / "event_45781_tonic_clonic.json",
                     "--plots", tmp_path / "plots", "--json", tmp_path / "replay.json")
    assert res.returncode == 0, res.stderr
    assert "event 45781 (Seizure/Tonic-Clonic)" in res.stdout
    assert "seizure events detected" in res.stdout.splitlines()[-1]
    assert (tmp_path / "plots" / "event_45781.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "replay.json").read_text())
    assert saved["settings"]["seizure_probability_threshold_pct"] == 50 and len(saved["events"]) == 10


def test_entry_fields_and_index_merge(exported, tmp_path):
    tmp, _, _ = exported
    entry = json.loads((tmp / "model.json").read_text())
    for key in ("name", "fname", "framework", "input_format", "input_format_val", "input_size",
                "alarm_threshold", "recommended", "min_cpu_features", "accel_std_threshold_pct",
                "seizure_probability_threshold_pct", "description", "version", "size", "sha256",
                "exporter", "min_runtime"):
        assert key in entry, key
    assert entry["framework"] == "executorch" and entry["input_format"] == "1d_mag"
    assert entry["input_format_val"] == 1 and entry["recommended"] is False
    index = tmp_path / "index.json"
    index.write_text(json.dumps([{"name": "old", "fname": "model.pte"}, {"name": "other", "fname": "o.pte"}]))
    appIndex.add_to_index(index, [entry])
    merged = json.loads(index.read_text())
    assert [e["fname"] for e in merged] == ["o.pte", "model.pte"] and merged[1]["sha256"] == entry["sha256"]
    index.write_text("{not json")
    with pytest.raises(exportUtils.ExportError, match="not a readable JSON index"):
        appIndex.add_to_index(index, [entry])


def test_runtime_check_script_saves_and_compares(exported, tmp_path):
    tmp, _, _ = exported
    ref = tmp_path / "ref.npz"
    saved = run_script("checkPteRuntime.py", tmp / "model.pte", "--save", ref)
    assert saved.returncode == 0, saved.stderr
    same = run_script("checkPteRuntime.py", tmp / "model.pte", "--compare", ref)
    assert same.returncode == 0 and "same outputs" in same.stdout
    data = dict(np.load(ref))
    data["outputs"] = data["outputs"] + 1e-3
    np.savez(tmp_path / "off.npz", **data)
    off = run_script("checkPteRuntime.py", tmp / "model.pte", "--compare", tmp_path / "off.npz")
    assert off.returncode == 1 and "DIFFERENT" in off.stdout
