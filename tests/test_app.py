"""App side: the replay computes what the evaluation computes; index entries and index merging."""
import json

import numpy as np
import pytest

from osdkit.app import appEvaluation, appIndex
from osdkit.data import osdbData, windowing
from osdkit.export import exportCore
from osdkit.model import checkpoints
from osdkit.reports import responseMap
from osdkit.sim import osdbSim
from osdkit.training import nnTester

import appReplay
from conftest import FIXTURES, run_script


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app")
    model, shape, _ = checkpoints.model_from_checkpoint(FIXTURES / "legacy_deepepicnn.pt")
    report = exportCore.export_pte(model, shape, tmp / "model.pte", inputs=osdbSim.reference_windows(shape))
    appIndex.write_entry_beside(tmp / "model.pte", appIndex.app_entry(tmp / "model.pte", report))
    db = tmp / "events.json"
    osdbSim.simulate_database(db, n_users=3, seizures_per_user=1, nda_per_user=1, false_alarms_per_user=1,
                              seed=9, quirk_rate=0.0)
    return tmp, model, db


def test_replay_gives_the_main_jobs_figures(exported, tmp_path):
    """Issue 18: appReplay built its own timeline (no restart at gaps), so one event scored differently
    there and in the main job. Both now run appEvaluation.app_view: the same figures per column, also
    for the real event with its irregular timestamps and repeated datapoint."""
    tmp, _, db = exported
    out = tmp_path / "replay.json"
    assert appReplay.main([str(tmp / "model.pte"), str(db), str(FIXTURES / "event_45781_tonic_clonic.json"),
                           "--json", str(out)]) == 0
    replayed = json.loads(out.read_text())["summary"]
    events = osdbData.read_osdb_file(db)[0] + osdbData.read_osdb_file(FIXTURES / "event_45781_tonic_clonic.json")[0]
    predict = nnTester.pte_predict_fn(tmp / "model.pte")
    windows = windowing.make_windows(events)
    p = nnTester.predict_windows(predict, windows) * windowing.movement_gate(windows, 5.0)
    results, _, _ = appEvaluation.evaluate_app(p, windows, events, 0.5)
    compared = 0
    for replay_column, column in (("model.pte", "ml"), ("OSD", "osd"), ("app", "combined")):
        for key in ("event_tp", "event_fn", "event_fp", "false_alarm_episodes", "nonseizure_hours",
                    "latency_median_s", "latency_n_detected", "tonic_clonic_tpr"):
            assert replayed[replay_column][key] == pytest.approx(results[f"{column}_{key}"]), (column, key)
            compared += 1
    assert compared == 24 and results["combined_event_tp"] >= 1


def test_replay_cli_prints_alarms_and_draws_timelines(exported, tmp_path):
    tmp, _, db = exported
    res = run_script("appReplay.py", tmp / "model.pte", db, FIXTURES / "event_45781_tonic_clonic.json",
                     "--plots", tmp_path / "plots", "--json", tmp_path / "replay.json")
    assert res.returncode == 0, res.stderr
    assert "event 45781 (Seizure/Tonic-Clonic)" in res.stdout
    assert "seizure events detected" in res.stdout.splitlines()[-1]
    assert (tmp_path / "plots" / "event_45781.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "replay.json").read_text())
    assert saved["models"]["model.pte"]["seizure_probability_threshold_pct"] == 50 and len(saved["events"]) == 10
    assert set(saved["events"][0]["states"]) == {"model.pte", "OSD", "app", "recorded"}
    lines = res.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[-4:]] == ["model.pte", "OSD", "recorded", "app"]


def test_response_map_of_any_model_is_the_main_jobs_map_with_its_entrys_settings(exported, tmp_path):
    """The main job writes a response map for its own model; --response-map gives the same for any .pte,
    with the settings of the entry beside it, and needs no event file."""
    tmp, _, _ = exported
    res = run_script("appReplay.py", tmp / "model.pte", "--response-map", tmp_path / "maps")
    assert res.returncode == 0, res.stderr
    saved = json.loads((tmp_path / "maps" / "model_pte_response_map.json").read_text())
    assert (tmp_path / "maps" / "model_pte_response_map.png").stat().st_size > 1000
    assert saved["input_size"] == 750 and saved["threshold"] == 0.5 and saved["gate_pct"] == 5  # the entry's
    expected = responseMap.response_map(nnTester.pte_predict_fn(tmp / "model.pte"), 750, 0.5, 5)
    assert saved["waveforms"] == json.loads(json.dumps(expected["waveforms"]))
    assert res.stdout.count("response map: ") == len(responseMap.WAVEFORMS)


@pytest.mark.parametrize("make_args, problem", [
    (lambda tmp, out: [str(FIXTURES / "event_45781_tonic_clonic.json"), "--response-map", str(out)], "needs a model"),
    (lambda tmp, out: [str(tmp / "model.pte"), "--response-map", str(out / "file.txt")], "names a file"),
])
def test_response_map_refuses_bad_requests_before_any_work(exported, tmp_path, make_args, problem):
    tmp, _, _ = exported
    out = tmp_path / "maps"
    out.mkdir()
    (out / "file.txt").write_text("keep")
    with pytest.raises(Exception, match=problem):
        appReplay.main(make_args(tmp, out))
    assert sorted(p.name for p in out.iterdir()) == ["file.txt"] and (out / "file.txt").read_text() == "keep"


def test_input_size_comes_from_the_program(exported, tmp_path):
    """Bug 8: without <model>.json the replay assumed input_size 125 for a program taking 750."""
    tmp, _, _ = exported
    bare = tmp_path / "bare.pte"
    bare.write_bytes((tmp / "model.pte").read_bytes())
    assert appReplay.app_settings(bare)["input_size"] == 750
    (tmp_path / "bare.json").write_text(json.dumps({"input_size": 125}))
    with pytest.raises(ValueError, match="input_size 125 but the program takes 750"):
        appReplay.app_settings(bare)


def _event_with(seizure_times, n=20, loud_from=14):
    """An event of n noisy datapoints (1 g +- 10 %), 2 g from datapoint loud_from on."""
    rng = np.random.default_rng(0)
    level = np.where(np.arange(n) >= loud_from, 2000.0, 1000.0)[:, None]
    mag = (level + rng.normal(0, 100, (n, 125))).astype(np.float32)
    return osdbData.Event(id=7, user_id=1, type="Seizure", sub_type="Focal", desc="", data_time=0.0,
                          seizure_times=seizure_times, label=1, dp_times=5.0 * np.arange(1, n + 1), mag=mag,
                          acc3d=None, alarm_state=np.full(n, -1, np.int8), hr=np.full(n, np.nan, np.float32),
                          source=None)


def test_alarm_after_the_seizure_is_no_detection():
    """Bug 8: an ALARM after the seizure ended counted as a detection; now only ALARM inside it does,
    as in the evaluation."""
    loud = lambda batch: np.where(batch[:, 0, -125:].mean(axis=1) > 1.5, 0.9, 0.1)  # noqa: E731
    settings = {"input_size": 750, "accel_std_threshold_pct": 5, "seizure_probability_threshold_pct": 50}
    for seizure_times, detected in (((30.0, 50.0), False), ((30.0, 90.0), True)):
        event = _event_with(seizure_times)
        run = appReplay.replay([event], {"m": (loud, settings)})
        per_event, summary = appReplay.detections(run["states"]["m"], run["timeline"], [event])
        assert per_event[0]["first_alarm_s"] == 85.0  # in alarm from t = 75 s, ALARM on the 3rd
        assert per_event[0]["detected"] is detected and summary["event_tp"] == int(detected)
        windows = windowing.make_windows([event])
        p = loud(windows.batch(np.arange(len(windows)))) * windowing.movement_gate(windows, 5)
        assert appEvaluation.evaluate_app(p, windows, [event], 0.5)[0]["ml_event_tp"] == int(detected)
    assert per_event[0]["latency_s"] == 55.0


@pytest.mark.parametrize("content, problem", [
    ('{"events": [EVENT]}', "a JSON object holding 1 records under 'events'"),
    ("[]", "an empty JSON array"),
    ('[{"type": "Seizure", "dataTime": "yesterday", "datapoints": []}]', "none of its 1 events is usable"),
])
def test_a_file_that_is_no_event_list_is_an_error_naming_it(tmp_path, content, problem):
    """Bug 11: such files were read as zero events ("0 of 0 seizure events detected", exit 0)."""
    path = tmp_path / "bad.json"
    path.write_text(content.replace("EVENT", (FIXTURES / "event_45781_tonic_clonic.json").read_text()))
    with pytest.raises(ValueError, match=problem) as err:
        appReplay.main([str(path)])
    assert str(path) in str(err.value)


def test_dropped_datapoints_are_reported_by_reason(tmp_path, capsys):
    """Bug 12: datapoints with bad rawData were dropped without a word."""
    event = json.loads((FIXTURES / "event_45781_tonic_clonic.json").read_text())
    event["datapoints"][0]["rawData"][3] = None
    event["datapoints"][1]["rawData"][0] = "1000"
    event["datapoints"][2]["rawData"] = event["datapoints"][2]["rawData"][:100]
    path = tmp_path / "bad_datapoints.json"
    path.write_text(json.dumps([event]))
    assert appReplay.main([str(path)]) == 0  # the OSD algorithm alone: no model given
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{path}: kept 1/1 events, 26/30 datapoints; 2 dp_raw_not_numeric, "
                      "1 dp_raw_wrong_length, 1 dp_duplicate_raw")
    assert out[-1].startswith("app: 1 of 1 seizure events detected")


def test_entry_fields_and_index_merge(exported, tmp_path):
    tmp, _, _ = exported
    entry = json.loads((tmp / "model.json").read_text())
    for key in ("name", "fname", "framework", "input_format", "input_format_val", "input_size",
                "alarm_threshold", "recommended", "min_cpu_features", "accel_std_threshold_pct",
                "seizure_probability_threshold_pct", "description", "version", "size", "sha256",
                "exporter", "min_runtime"):
        assert key in entry, key
    assert entry["framework"] == "pytorch" and entry["input_format"] == "1d_mag"
    assert entry["input_format_val"] == 1 and entry["recommended"] is False
    index = tmp_path / "index.json"
    index.write_text(json.dumps([{"name": "old", "fname": "model.pte"}, {"name": "other", "fname": "o.pte"}]))
    appIndex.add_to_index(index, [entry])
    merged = json.loads(index.read_text())
    assert [e["fname"] for e in merged] == ["o.pte", "model.pte"] and merged[1]["sha256"] == entry["sha256"]
    index.write_text("{not json")
    with pytest.raises(exportCore.ExportError, match="not a readable JSON index"):
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
