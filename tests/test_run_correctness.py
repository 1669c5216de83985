"""Issue 17: a researcher's real OSDB run: nothing silent, selection that means something, an entry the
app checks. One test (or more) per item; each failed before the fix (item 4: test_alarm_choice.py)."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from osdkit.app import metrics
from osdkit.data import osdbData
from osdkit.reports import plots
from osdkit.sim import osdbSim
from osdkit.training import configUtils, distUtils, nestedKfold, trainer, trainingData

from conftest import ROOT, run_script

MODEL = "deepEpiCnnModel_pytorch"
SIM = {"users": 8, "seizuresPerUser": 2, "ndaPerUser": 3, "falseAlarmsPerUser": 1, "seed": 3}


def write_config(path, osdb=None, data=None, evaluation_=None, **model):
    """A tiny config at `path` (a few optimizer steps); osdb replaces parts of osdbConfig."""
    config = {"randomSeed": 1,
              "osdbConfig": {"cacheDir": str(path.parent / "osdb"), "osdbFiles": ["osdb_simulated.json"],
                             "simulate": True, "simulation": SIM, **(osdb or {})},
              "dataProcessing": {"noiseAugmentationFactor": 1, **(data or {})},
              "modelConfig": {"epochs": 1, "batchSize": 64, "warmupSteps": 1, "cooldownSteps": 1, "numWorkers": 0,
                              "totalTrainingSteps": 2, "exportFormats": ["pt"], **model}}
    if evaluation_ is not None:
        config["evaluation"] = evaluation_
    path.write_text(json.dumps(config))
    return path


def simulated_db(folder, name="osdb_simulated.json", users=8):
    folder.mkdir(parents=True, exist_ok=True)
    osdbSim.simulate_database(folder / name, n_users=users, seizures_per_user=2, nda_per_user=3,
                              false_alarms_per_user=1, seed=3)
    return folder / name


# ---------------------------------------------------------------- 1. never trained on the wrong data
@pytest.mark.parametrize("simulate", [None, True])
def test_a_missing_real_file_is_an_error_never_a_simulation(tmp_path, simulate):
    """`simulate` defaulted to true and wrote a simulated database under the real file's name."""
    osdb = {"osdbFiles": ["osdb_3min_allSeizures.json"]}
    if simulate is not None:
        osdb["simulate"] = simulate
    config = write_config(tmp_path / "real.json", osdb=osdb)
    if simulate is None:
        raw = json.loads(config.read_text())
        del raw["osdbConfig"]["simulate"]
        config.write_text(json.dumps(raw))
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 1
    missing = tmp_path / "osdb" / "osdb_3min_allSeizures.json"
    line = res.stderr.strip().splitlines()
    assert len(line) == 1 and line[0].startswith(f"error: {missing}: OSDB file not found")
    assert not missing.exists()


def test_db_dir_points_the_run_at_a_folder_of_osdb_files(tmp_path):
    config = write_config(tmp_path / "c.json", osdb={"cacheDir": str(tmp_path / "nowhere"), "simulate": False})
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--dbDir",
                     tmp_path / "db", cwd=tmp_path)
    assert res.returncode == 1 and "--dbDir is not a folder" in res.stderr
    (tmp_path / "db").mkdir()
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--dbDir",
                     tmp_path / "db", cwd=tmp_path)
    assert res.stderr.strip().splitlines()[-1].startswith(
        f"error: {tmp_path / 'db' / 'osdb_simulated.json'}: OSDB file not found")


# ---------------------------------------------------------------- 2., 4., 12.: one run, its reruns
@pytest.fixture(scope="module")
def made_run(tmp_path_factory):
    """A run on a database in --dbDir, trained with a .pte export (the config's alarm settings)."""
    tmp = tmp_path_factory.mktemp("run")
    simulated_db(tmp / "db")
    config = write_config(tmp / "tiny.json", osdb={"cacheDir": str(tmp / "elsewhere"), "simulate": False},
                          exportFormats=["pt", "pte"], thresholdFromValidation=False)
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp / "out", "--train", "--dbDir", tmp / "db",
                     cwd=tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    return tmp, config, tmp / "out" / MODEL / "1"


def test_the_run_log_holds_one_line_per_epoch_and_no_progress_frames(made_run):
    """Every tqdm frame was written into the log."""
    _, _, folder = made_run
    log = next(folder.glob("runSequence_*.log")).read_text()
    assert "\r" not in log and "it/s" not in log
    assert [line for line in log.splitlines() if line.startswith("epoch ")][0].startswith("epoch 1: loss ")
    assert len([line for line in log.splitlines() if line.startswith("epoch ")]) == 1


def test_a_rerun_uses_the_runs_own_config_and_refuses_another(made_run):
    """`--rerun` read the current --config and recomputed the split: an edited testProp moved users."""
    tmp, config, folder = made_run
    before = (folder / "data_summary.json").read_text()
    edited = json.loads(config.read_text())
    edited["dataProcessing"]["testProp"] = 0.5
    edited_path = tmp / "edited.json"
    edited_path.write_text(json.dumps(edited))
    res = run_script("runSequence.py", "--config", edited_path, "--outDir", tmp / "out", "--rerun", "1", "--test",
                     cwd=tmp)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"error: {edited_path}: differs from {folder / 'tiny.json'}, the config run 1 was made with; a rerun "
        "uses the run's own config (edit that copy to change alarm settings, or start a new run)"]
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp / "out", "--rerun", "1", "--kfold", "2",
                     cwd=tmp)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {folder}: run 1 was made with --kfold 1 --nestedKfold 0; a "
                                               "rerun needs the same fold counts, not --kfold 2 --nestedKfold 0"]
    assert (folder / "data_summary.json").read_text() == before and not (folder / "fold0").exists()


def test_a_rerun_on_other_events_is_refused_before_training(made_run):
    """A fold's `_resume.pt` was resumed without checking its split (e.g. nested 3 on a nested-2 run)."""
    tmp, config, folder = made_run
    simulated_db(tmp / "other_db", users=9)
    resume = (folder / f"{MODEL}_resume.pt").read_bytes()
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp / "out", "--rerun", "1", "--train",
                     "--dbDir", tmp / "other_db", cwd=tmp)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1].startswith(
        f"error: {folder / 'split_events.json'}: this fold was made with another split (")
    assert (folder / f"{MODEL}_resume.pt").read_bytes() == resume


def test_test_alone_rewrites_the_app_entry_from_the_cards_settings(made_run):
    """With --test alone the alarm settings were re-chosen but the app entry kept the old ones."""
    tmp, _, folder = made_run
    own = json.loads((folder / "tiny.json").read_text())
    assert json.loads((folder / f"{MODEL}.json").read_text())["seizure_probability_threshold_pct"] == 50
    own["modelConfig"]["seizureProbabilityThresholdPct"] = 37
    (folder / "tiny.json").write_text(json.dumps(own))
    res = run_script("runSequence.py", "--outDir", tmp / "out", "--rerun", "1", "--test", cwd=tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    entry = json.loads((folder / f"{MODEL}.json").read_text())
    card = (folder / f"{MODEL}_model_card.md").read_text()
    assert entry["seizure_probability_threshold_pct"] == 37 and "softmax(logits)[1] > 0.37" in card


def test_repeated_events_are_read_once_and_counted(tmp_path):
    """OSDB's tcSeizures file is a subset of allSeizures: its events were read twice."""
    full = simulated_db(tmp_path / "db", "osdb_simulated.json")
    events = json.loads(full.read_text())
    (tmp_path / "db" / "subset.json").write_text(json.dumps([e for e in events if e["type"] == "Seizure"]))
    config = write_config(tmp_path / "c.json", osdb={"cacheDir": str(tmp_path / "db"), "simulate": False,
                                                     "osdbFiles": ["osdb_simulated.json", "subset.json"]})
    run, _ = configUtils.load_run_config(config)
    read, source = trainingData.read_events(run)
    ids = [e.id for e in read]
    assert len(ids) == len(set(ids)) == len(events)
    assert source["read"]["duplicate_events"] == sum(e["type"] == "Seizure" for e in events) == 16


# ---------------------------------------------------------------- 3. no stale simulated database
def test_the_simulated_database_is_rewritten_when_its_parameters_or_the_simulator_change(tmp_path, monkeypatch):
    config = write_config(tmp_path / "c.json", osdb={"simulation": {**SIM, "users": 4}})
    run, _ = configUtils.load_run_config(config)
    assert len({e.user_id for e in trainingData.read_events(run)[0]}) == 4
    path = tmp_path / "osdb" / "osdb_simulated.json"
    written = path.stat().st_mtime_ns
    trainingData.read_events(run)
    assert path.stat().st_mtime_ns == written  # current: reused
    more = replace(run, osdb=replace(run.osdb, simulation=replace(run.osdb.simulation, users=5)))
    assert len({e.user_id for e in trainingData.read_events(more)[0]}) == 5
    written = path.stat().st_mtime_ns
    monkeypatch.setattr(osdbSim, "SIM_VERSION", osdbSim.SIM_VERSION + "-next")
    trainingData.read_events(more)
    assert path.stat().st_mtime_ns != written
    stored = json.loads((tmp_path / "osdb" / "osdb_simulated.json.params.json").read_text())
    assert stored == {"simulation": {**SIM, "users": 5, "quirkRate": 0.05}, "sim_version": osdbSim.SIM_VERSION}


# ---------------------------------------------------------------- 5. early stopping and keys that do nothing
def test_an_early_stop_is_kept_so_a_rerun_trains_no_further(tmp_path):
    config = write_config(tmp_path / "c.json", useLrSchedule=False, earlyStoppingPatience=1, epochs=4,
                          totalTrainingSteps=0, saveBestMinSensitivity=1.0, saveBestMaxFpr=0.0)
    run, _ = configUtils.load_run_config(config)
    events, source = trainingData.read_events(run)
    data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source)
    train = data.train.select(np.r_[np.flatnonzero(data.train.labels == 0)[:64],
                                    np.flatnonzero(data.train.labels == 1)[:64]])
    val = data.val.select(np.arange(8))  # never a perfect score: no epoch improves, the first one stops
    first = trainer.fit(run, train, val, tmp_path, show_progress=False)
    assert first["epoch"] == 1 and first["stopped"]
    assert subnormals_survive()  # fit flushed denormals only while it ran (hypothesis needs them)
    again = trainer.fit(run, train, val, tmp_path, show_progress=False)
    assert again["epoch"] == 1 and len(again["history"]["loss"]) == 1


def subnormals_survive():
    return torch.tensor([1e-40]).item() != 0.0


def test_denormal_flushing_gives_the_callers_setting_back():
    for before in (False, True):
        torch.set_flush_denormal(before)
        try:
            with trainer.denormals_flushed():
                assert not subnormals_survive()
            assert subnormals_survive() is not before
        finally:
            torch.set_flush_denormal(False)


def test_keys_that_do_nothing_are_reported(tmp_path):
    config = write_config(tmp_path / "c.json", earlyStoppingPatience=3, modelClass="myModels.Transformer",
                          classWeights=[1, 5])
    run, warnings = configUtils.load_run_config(config)
    notes = trainer.unused_key_notes(run) + warnings
    assert notes == [
        f"{config}: modelConfig.earlyStoppingPatience is not used with useLrSchedule true (early stopping runs "
        "with the plateau schedule, useLrSchedule false)",
        f"{config}: modelConfig.modelClass 'myModels.Transformer' is not used: this toolkit trains "
        "deepEpiCnn.DeepEpiCnn",
        f"{config}: modelConfig.classWeights is not used by this toolkit (ignored)"]
    quiet = configUtils.run_config({"modelConfig": {"useLrSchedule": False, "earlyStoppingPatience": 3,
                                                    "modelClass": "deepEpiCnn.DeepEpiCnn"}})
    assert trainer.unused_key_notes(quiet) == []


# ---------------------------------------------------------------- 6. nested k-fold that selects something
def test_nested_kfold_chooses_on_inner_folds_and_retrains_on_the_whole_outer_training_set(tmp_path):
    config = write_config(tmp_path / "c.json", osdb={"simulation": {**SIM, "users": 12}},
                          hyperParameterGrid={"modelConfig.bufferSeconds": [25, 30]})
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--nestedKfold", "2",
                     "--kfold", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    folder = tmp_path / "out" / MODEL / "1"
    summary = json.loads((folder / "nested_kfold_outer_summary.json").read_text())
    text = (folder / "nested_kfold_outer_summary.txt").read_text()
    per_fold = []
    for o in range(2):
        outer = folder / f"outerfold{o}"
        choice = json.loads((outer / "inner_selection.json").read_text())
        means = [c["mean_inner_score"] for c in choice["candidates"]]
        assert [c["overrides"] for c in choice["candidates"]] == [{"modelConfig.bufferSeconds": s} for s in (25, 30)]
        for c, cand in enumerate(choice["candidates"]):
            inner = [json.loads((outer / f"candidate{c}" / f"fold{k}" / "data_summary.json").read_text())
                     for k in range(2)]
            assert cand["inner_epochs"] == [torch.load(outer / f"candidate{c}" / f"fold{k}" / f"{MODEL}.pt",
                                                       weights_only=True)["epoch"] for k in range(2)]
            assert not set(inner[0]["users"]["test"]) & set(inner[1]["users"]["test"])
        valid = [m if m is not None else -np.inf for m in means]
        assert choice["candidate"] == int(np.argmax(valid))
        chosen = choice["candidates"][choice["candidate"]]
        assert choice["epochs"] == max(1, round(float(np.median(chosen["inner_epochs"]))))
        assert choice["alarm"]["chosen_on"].startswith("inner held-out folds")
        data = json.loads((outer / "data_summary.json").read_text())
        inner_users = set().union(*(json.loads((outer / f"candidate0/fold{k}/data_summary.json").read_text())
                                    ["users"]["test"] for k in range(2)))
        assert set(data["users"]["train"]) == inner_users and data["users"]["val"] == []
        assert not set(data["users"]["train"]) & set(data["users"]["test"])
        checkpoint = torch.load(outer / f"{MODEL}.pt", weights_only=True)
        assert checkpoint["epoch"] == choice["epochs"] and checkpoint["sensitivity"] is None
        buffer = choice["overrides"]["modelConfig.bufferSeconds"]
        assert json.loads((outer / f"{MODEL}_pt_testResults.json").read_text()) and buffer in (25, 30)
        alarm = json.loads((outer / "alarm_settings.json").read_text())
        assert alarm["threshold_pct"] == choice["alarm"]["threshold_pct"]
        assert f"outerfold{o}: chosen on the inner folds: {{'modelConfig.bufferSeconds': {buffer}}}" in text
        per_fold.append(json.loads((outer / "testResults.json").read_text()))
    for key in ("event_tpr", "false_alarms_per_day", "auc"):
        values = [r[key] for r in per_fold if r[key] is not None]
        assert summary["mean"]["pt"][key] == pytest.approx(np.mean(values)), key
        assert summary["std"]["pt"][key] == pytest.approx(np.std(values)), key
    res = run_script("runSequence.py", "--outDir", tmp_path / "out", "--nestedKfold", "2", "--kfold", "2",
                     "--rerun", "1", "--test", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    again = json.loads((folder / "nested_kfold_outer_summary.json").read_text())
    assert again["mean"] == summary["mean"] and again["selection"] == summary["selection"]


def test_a_grid_value_is_checked_like_a_config_value(tmp_path):
    run = configUtils.run_config({"modelConfig": {"hyperParameterGrid": {"modelConfig.bufferSeconds": [30, 33]}}},
                                 "c.json")
    with pytest.raises(configUtils.ConfigError, match=r"modelConfig.bufferSeconds must be a positive multiple of 5"):
        nestedKfold.grid_candidates(run)


# ---------------------------------------------------------------- 7. torchrun
def test_the_process_group_waits_longer_than_rank_0s_slow_steps(monkeypatch):
    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda backend, **kw: seen.update(kw))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    distUtils.init_distributed_mode()
    assert seen["timeout"].total_seconds() >= 60 * 60  # the phone check alone can take 30 minutes


RANKS = """
import json, sys
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
from osdkit.training import configUtils, distUtils, trainer, trainingData
from osdkit.data import osdbData
run, _ = configUtils.load_run_config(sys.argv[2])
rank, _, _ = distUtils.init_distributed_mode()
other = replace(run, osdb=replace(run.osdb, cacheDir=sys.argv[3] + "/not_on_this_host")) if rank else run
try:
    trainingData.read_events(other)
    error = None
except osdbData.OsdbFileError as err:
    error = str(err)
events, source = trainingData.read_events(run)
data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source)
out = sys.argv[3] + ("/rank0" if rank == 0 else "/rank1_own_disk")
state = trainer.fit(run, data.train, data.val, out, show_progress=False)
with open(f"{sys.argv[3]}/rank{rank}.json", "w") as f:
    json.dump({"error": error, "epoch": state["epoch"], "history": state["history"]}, f)
"""


def test_torchrun_ranks_without_a_shared_disk_resume_from_rank_0_or_stop_with_one_message(tmp_path):
    """Ranks decided alone whether to resume (a host without the resume file started over and the
    collectives went out of step) and whether the database existed."""
    config = write_config(tmp_path / "c.json", epochs=2, totalTrainingSteps=0, batchSize=256)
    run, _ = configUtils.load_run_config(config)
    events, source = trainingData.read_events(run)
    data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source)
    one_epoch = replace(run, model=replace(run.model, epochs=1))
    (tmp_path / "rank0").mkdir()
    trainer.fit(one_epoch, data.train, data.val, tmp_path / "rank0", show_progress=False)  # only rank 0's disk
    (tmp_path / "rank0" / f"{MODEL}.pt").unlink()
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", OSD_DIST_TIMEOUT_MIN="2")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(ROOT), str(config), str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    missing = tmp_path / "not_on_this_host" / "osdb_simulated.json"
    assert rank0["error"] == rank1["error"] == (
        f"{missing}: OSDB file not found on the host of rank 1 (rank 0 has it): put cacheDir on a disk every "
        "host shares, or copy the database to each host")
    assert rank0["epoch"] == rank1["epoch"] == 2 and rank1["history"] == rank0["history"]
    assert len(rank0["history"]["loss"]) == 2  # epoch 1 from the resume file, epoch 2 trained by both


# ---------------------------------------------------------------- 10. figures that say what they are
def test_figures_say_which_latency_and_which_days(monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "save_figure_atomic", lambda fig, path: figures.append(fig))
    plots.plot_latency_histogram({"latency_s": [5.0, 10.0], "latency_n_undetected": 1}, "x.png")
    sweep = {"thresholds": [0.5], "event_tpr": [1.0], "window_tpr": [1.0], "window_fpr": [0.0],
             "false_alarms_per_day": [2.0]}
    plots.plot_threshold_sweep(sweep, "y.png")
    latency, swept = figures
    assert latency.axes[0].get_title().startswith("Single-window latency (no app escalation)")
    assert swept.axes[1].get_ylabel() == "false alarms per day of recorded events"
    assert "not of daily life" in swept.axes[0].get_title()
    res = {"pt": {"ml_event_tpr": 1.0}}
    assert plots.compare_variants_app(res).splitlines()[-1] == f"FA/day: {metrics.FA_DAY_NOTE}"
    assert "not of daily life" in plots.compare_variants({"pt": {}})


# ---------------------------------------------------------------- 11. bad recorded settings, impossible folds
@pytest.mark.parametrize("settings, problem", [
    ({"alarmFreqMin": 5, "alarmFreqMax": 5}, "OSD settings alarmFreqMin 5 >= alarmFreqMax 5 (an empty frequency band)"),
    ({"alarmFreqMax": 20}, "OSD setting alarmFreqMax 20 Hz is above 12.5 Hz (half the 25 Hz sample rate)"),
    ({"alarmThresh": -100}, "OSD setting alarmThresh -100 is out of range (0..2147483647)"),
    ({"alarmRatioThresh": 1e30}, f"OSD setting alarmRatioThresh {int(1e30)} is out of range (0..2147483647)"),
])
def test_an_event_with_impossible_osd_settings_is_skipped_by_name(tmp_path, caplog, settings, problem):
    path = simulated_db(tmp_path, "db.json", users=4)
    events = json.loads(path.read_text())
    events[2].update(settings)
    for dp in events[2]["datapoints"]:
        dp.update(settings)
    path.write_text(json.dumps(events))
    read, stats = osdbData.read_osdb_file(path)
    assert [e.id for e in read] == [e["id"] for i, e in enumerate(events) if i != 2]
    assert stats.skipped["event_bad_osd_settings"] == 1
    assert f"{path}: event {events[2]['id']}: {problem}; event skipped" in caplog.text


def test_folds_and_windows_that_cannot_work_are_refused_before_training(tmp_path):
    config = write_config(tmp_path / "c.json")
    run, _ = configUtils.load_run_config(config)
    events, _ = trainingData.read_events(run)
    with pytest.raises(configUtils.ConfigError, match=r"9 folds but only 8 users with seizure events: every test "
                                                      r"fold needs one \(at most 8 folds\)"):
        trainingData.fold_splits(run, events, 9)
    longest = max(e.mag.size for e in events) / 25
    long = replace(run, model=replace(run.model, bufferSeconds=int(longest // 5 + 1) * 5))
    with pytest.raises(configUtils.ConfigError, match=f"modelConfig.bufferSeconds {long.model.bufferSeconds} is "
                                                      f"longer than every event \\(the longest holds {longest:g} s\\)"):
        trainingData.fold_splits(long, events)


# ---------------------------------------------------------------- 12. no real-data folder unless named
def test_real_data_is_reported_only_from_a_folder_the_config_names(tmp_path):
    config = write_config(tmp_path / "c.json")
    assert configUtils.load_run_config(config)[0].evaluation.realDataDir is None
    named = write_config(tmp_path / "n.json", evaluation_={"realDataDir": "../shared/data"})
    assert configUtils.load_run_config(named)[0].evaluation.realDataDir == "../shared/data"
