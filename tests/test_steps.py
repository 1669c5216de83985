"""The main job's steps one at a time, on hand-made data: rates per day with another window step, alarm
settings, model card facts, resampling, documentation and the module graph (issue 13)."""
import ast
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from osdkit.data import windowing
from osdkit.data.osdbData import Event
from osdkit.reports import modelCard, runSummary
from osdkit.training import alarmSettings, configUtils, nnTester, trainer, trainingData

from conftest import ROOT, make_checkpoint
from test_run_correctness import write_config

T0 = 1683268127.0
BOUT = slice(300, 312)  # datapoints 300..311: one 60 s bout of 2 g in an hour of 1 g


def hour_with_one_bout():
    """One non-seizure event: 720 datapoints 5 s apart (1 h) at 1 g, with 60 s at 2 g."""
    mag = np.full((720, 125), 1000.0, dtype=np.float32)
    mag[BOUT] = 2000.0
    return Event(id=1, user_id=1, type="NDA", sub_type="Walking", desc="", data_time=T0, seizure_times=None,
                 label=0, dp_times=T0 + 5.0 * np.arange(720), mag=mag, acc3d=None,
                 alarm_state=np.zeros(720, dtype=np.int8), hr=np.full(720, np.nan, dtype=np.float32), source=None)


class BoutModel(torch.nn.Module):
    """Logits whose p(seizure) is ~1 when the newest 5 s of the window average 2 g, ~0 at 1 g."""

    def forward(self, x):
        level = x[..., -125:].mean(-1).reshape(len(x))
        return torch.stack([torch.zeros_like(level), 40 * (level - 1.5)], 1)


def test_rates_per_day_use_the_window_step(tmp_path):
    """Bug 1 (issue 13): with dataProcessing.step 250 (10 s) nnTester did not pass the step to
    evaluation, which assumed 5 s per window: one 60 s alarm bout in 1 h counted as 6 episodes in half
    an hour. The WindowSet now carries its step."""
    windows = windowing.make_windows([hour_with_one_bout()], step_samples=250)
    assert len(windows) == 358 and windows.step_s == 10.0
    data = SimpleNamespace(test=windows, test_events=[hour_with_one_bout()])
    predictors = {"pt": nnTester.eager_predict_fn(BoutModel())}
    results = nnTester.evaluate_models(tmp_path, "m", predictors, data, {"threshold_pct": 50, "gate_pct": 0})["pt"]
    assert results["false_alarm_episodes"] == 1
    assert results["nonseizure_hours"] == pytest.approx(358 * 10 / 3600)
    assert results["false_alarms_per_day"] == pytest.approx(86400 / (358 * 10))


def test_alarm_settings_count_false_alarms_with_the_window_step(tmp_path):
    """Bug 1 (issue 13), the chosen threshold: 24 false alarms/day at step 10 s meet a target of 30; at
    the assumed 5 s they were 290 and no setting met it. The choice counts as the app alerts (ALARM
    episodes over the hour's 720 datapoints of 5 s), so one bout in the hour is exactly 24 per day."""
    run = configUtils.run_config({"modelConfig": {"targetFalseAlarmsPerDay": 30},
                                  "dataProcessing": {"step": 250, "accelStdThresholdPct": 0}})
    windows = windowing.make_windows([hour_with_one_bout()], step_samples=250)
    data = SimpleNamespace(val=windows, val_events=[hour_with_one_bout()])
    alarm = alarmSettings.choose_alarm_settings(run, BoutModel(), data, tmp_path)
    assert alarm["chosen_on"] == "validation split" and alarm["gate_pct"] == 0
    assert alarm["val_false_alarms_per_day"] == pytest.approx(86400 / (720 * 5))
    assert json.loads((tmp_path / "alarm_settings.json").read_text())["threshold_pct"] == alarm["threshold_pct"]


def test_model_card_states_the_runs_facts(tmp_path):
    """Bug 3 (issue 13): the card said "splits are by user" and "simulated test users" whatever the run
    did, with a hard-coded layer count and sample rate."""
    run = configUtils.run_config({"dataProcessing": {"splitByUser": False}})
    make_checkpoint(tmp_path / f"{run.model.modelFname}.pt")
    trained = trainer.load_trained(run, tmp_path)
    counts = {"Seizure/Tonic-Clonic": 2}
    summary = {"provenance": "OSDB", "files": ["osdb_3min_allSeizures.json"], "split_by": "event",
               "read": {"events_kept": 6, "events_in": 6, "datapoints_kept": 200, "skipped": {}},
               "events": {s: counts for s in ("train", "val", "test")},
               "windows": {s: {"n": 10, "seizure": 4} for s in ("train", "val", "test")}}
    results = {"pt": {"event_tpr": 1.0, "false_alarms_per_day": 0.0, "latency_median_s": 5.0, "tpr": 0.9,
                      "fpr": 0.01, "auc": 0.99, "ml_event_tpr": 0.5, "ml_tonic_clonic_tpr": 0.5,
                      "ml_false_alarms_per_day": 1.25, "ml_latency_median_s": 15.0, "osd_event_tpr": 0.25,
                      "osd_tonic_clonic_tpr": 0.0, "osd_false_alarms_per_day": 3.0, "osd_latency_median_s": None,
                      "combined_event_tpr": 0.75, "combined_tonic_clonic_tpr": 0.5,
                      "combined_false_alarms_per_day": 4.0, "combined_latency_median_s": 15.0}}
    fold = runSummary.FoldResult("", tmp_path, trained, summary, {"threshold_pct": 50, "gate_pct": 5,
                                                                   "chosen_on": "config"}, results, {}, [])
    card = modelCard.write_model_card(run, fold).read_text()
    n_conv = sum(isinstance(m, torch.nn.Conv1d) for m in trained.model.modules())
    assert f"{n_conv} Conv1d blocks + 5-layer dense head" in card and "30 s of acceleration" in card
    assert "at 25 Hz" in card
    assert "Splits are by event (splitByUser false)" in card and "Splits are by user" not in card
    assert "## Test results (OSDB test events)" in card and "simulated" not in card
    assert "Input normalisation: none" in card  # the checkpoint's model, not the config's default
    assert "| pt (ML alone) | 0.500 | 0.500 | 1.25 | 15.0 |" in card  # as the app alerts
    assert "| OSD algorithm | 0.250 | 0.000 | 3.00 | n/a |" in card
    assert "| pt + OSD (the app) | 0.750 | 0.500 | 4.00 | 15.0 |" in card
    assert "Trained on" not in card  # an earlier pipeline's checkpoint does not say where it was trained


def test_the_checkpoint_and_card_say_which_kernels_and_threads_trained_it(monkeypatch):
    """The same config and seed give other weights with another CPU's kernels or thread count, so the
    checkpoint keeps both, with the kernel caps the user set (README, "Reproducing a run elsewhere")."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.delenv("MKL_CBWR", raising=False)
    machine = trainer.training_machine(torch.device("cpu"), 1)
    assert machine["kernel_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "not set"}
    assert machine["threads"] == torch.get_num_threads() and machine["cpu"] == trainer.cpu_name() != ""
    text = modelCard._machine_text(dict(machine, cpu="Test CPU", threads=2, aten_kernels="AVX512"))
    assert text.startswith(" Trained on Test CPU (cpu, 1 process(es), 2 threads, ATen AVX512 kernels; "
                           "ONEDNN_MAX_CPU_ISA AVX2, MKL_CBWR not set) with torch ")


def test_a_run_resumed_on_another_machine_records_where_each_part_ran(tmp_path, monkeypatch):
    """The same config and seed give other weights on another CPU, so a checkpoint must not say one
    machine trained it when another trained its first epochs (the resume state keeps both, in order)."""
    def on(cpu):
        machine = {"cpu": cpu, "device": "cpu", "processes": 1, "torch": str(torch.__version__), "aten_kernels": "AVX2",
                   "threads": 1, "kernel_caps": {"ONEDNN_MAX_CPU_ISA": "not set", "MKL_CBWR": "not set"}}
        monkeypatch.setattr(trainer, "training_machine", lambda device, world: machine)
        return machine
    first, second = (write_config(tmp_path / f"c{n}.json", epochs=n, totalTrainingSteps=0, useLrSchedule=False,
                                  earlyStoppingPatience=5) for n in (1, 2))
    run, _ = configUtils.load_run_config(first)
    events, source = trainingData.read_events(run)
    data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source)
    train = data.train.select(np.r_[np.flatnonzero(data.train.labels == 0)[:64],
                                    np.flatnonzero(data.train.labels == 1)[:64]])
    a = on("CPU A")
    assert trainer.fit(run, train, data.val, tmp_path, show_progress=False)["machines"] == [a]
    saved = torch.load(tmp_path / f"{run.model.modelFname}.pt", weights_only=True)
    assert saved["training_machine"] == a and saved["training_machines"] == [a]
    b = on("CPU B")
    state = trainer.fit(configUtils.load_run_config(second)[0], train, data.val, tmp_path, show_progress=False)
    assert state["epoch"] == 2 and state["machines"] == [a, b]
    saved = torch.load(tmp_path / f"{run.model.modelFname}.pt", weights_only=True)
    assert saved["training_machines"] == [a, b][:[a, b].index(saved["training_machine"]) + 1]
    text = modelCard._machine_text(b, [a, b])
    assert text.startswith(" Trained on CPU B (cpu, 1 process(es), 1 threads, ATen AVX2 kernels; ") and \
        "(resumed there; earlier epochs on CPU A (cpu, 1 process(es)" in text
    assert "resumed" not in modelCard._machine_text(a, [a])
    back = modelCard._machine_text(a, [a, b, a])  # resumed on B, then back on A: both parts before the last
    assert "(resumed there; earlier epochs on CPU A (" in back and "; CPU B (" in back


def test_model_card_lists_the_measured_weak_points():
    """Issue 16: the card must say what is still weak, from the run's own figures."""
    conv = {"ml": {"n": 10, "n_before_end": 7, "before_end_share": 0.7}}
    episodes = {"Jogging": {"ml": {"alarm_episodes_per_hour": 4.0}, "osd": {"alarm_episodes_per_hour": 2.0}},
                "Walking": {"ml": {"alarm_episodes_per_hour": 0.0}, "osd": {"alarm_episodes_per_hour": 2.0}}}
    real = {"event_1": {"sub_type": "Tonic-Clonic", "event_id": 1,
                        "app": {"ml": {"latency_s": 80.0}, "osd": {"latency_s": 50.0}}},
            "wisdm_watch": {"app_hours": 2.0, "app_episodes_by_activity": episodes,
                            "app_episodes_by_person": {"wisdm-1603": {"ml": 8}, "wisdm-1606": {"ml": 0}}}}
    fold = SimpleNamespace(results={"pte": {"convulsion_15_30s": conv}, "parity": {}}, real=real,
                           data_summary={"provenance": "OSDB and simulated"}, response=None)
    limits = modelCard._limits(fold)
    assert "pte: only 7 of 10 test convulsions of 15-30 s reach ALARM before they end (the target is 80 %)." in limits
    assert "wisdm_watch: 2.00 h of held-out recordings, so one ALARM episode is 0.5 per hour" in limits
    assert "wisdm_watch: the model raises more ALARM episodes per hour than the OSD algorithm on Jogging." in limits
    assert ("wisdm_watch: the model's ALARM episodes come from 1 of 2 held-out people (wisdm-1603: 8); other people's "
            "recordings may bring more.") in limits
    assert any(line.startswith("The real Tonic-Clonic event 1: the model reaches ALARM 80 s after onset, the OSD "
                               "algorithm 50 s") for line in limits)
    real["event_1"]["app"]["ml"]["latency_s"] = 40.0
    conv["ml"].update(n_before_end=9, before_end_share=0.9)
    assert not any("event 1" in line or "test convulsions" in line for line in modelCard._limits(fold))


def test_provenance_comes_from_the_events():
    """Bug 3 (issue 13): provenance was the `simulate` flag, not what was read."""
    sim, real = SimpleNamespace(desc="Simulated walking (nda), osdbSim"), SimpleNamespace(desc="walking")
    assert [trainingData.provenance(e) for e in ([sim, sim], [real], [sim, real])] == [
        "simulated", "OSDB", "OSDB and simulated"]


def test_random_over_and_undersampling_balance_the_training_windows():
    """Bug 7 (issue 13): oversample/undersample "random" were accepted and did nothing."""
    labels = np.array([0] * 10 + [1] * 3)
    windows = windowing.WindowSet(np.arange(13 * 750, dtype=np.float32), 750 * np.arange(13), labels,
                                  np.zeros(13, np.int32), np.zeros(13), 750, 125)
    rng = np.random.default_rng(0)
    assert trainingData.resample(windows, "none", "none", rng) is windows
    over = trainingData.resample(windows, "random", "none", rng)
    under = trainingData.resample(windows, "none", "random", rng)
    both = trainingData.resample(windows, "random", "random", rng)
    assert np.bincount(over.labels).tolist() == [10, 10] and over.starts[:13].tolist() == windows.starts.tolist()
    assert np.bincount(under.labels).tolist() == [3, 3] and len(set(under.starts.tolist())) == 6
    assert np.bincount(both.labels).tolist() == [3, 3]
    assert set(over.starts[over.labels == 1].tolist()) == {750 * 10, 750 * 11, 750 * 12}


def test_typed_sections_hold_every_schema_key_with_its_default():
    run = configUtils.run_config({"modelConfig": {"batchSize": 32}})
    sections = {"osdbConfig.simulation": run.osdb.simulation, "osdbConfig": run.osdb, "dataProcessing": run.data,
                "modelConfig": run.model, "evaluation": run.evaluation}
    for key, (_, default, _, _) in configUtils.SCHEMA.items():
        prefix, _, field = key.rpartition(".")
        if prefix:
            assert getattr(sections[prefix], field) == (32 if key == "modelConfig.batchSize" else default), key
    with pytest.raises(AttributeError):
        run.model.batchSize = 64  # frozen: built once from the validated config


@pytest.mark.parametrize("script", ["runSequence.py", "nnTrainer.py", "benchmark.py"])
def test_training_commands_set_openmp_waiting_before_torch_loads(script):
    """Speed beside other work (issue 13): OpenMP reads OMP_WAIT_POLICY when torch loads, so cpuSettings
    must be the command's first import."""
    first = next(node for node in ast.parse((ROOT / script).read_text()).body
                 if isinstance(node, (ast.Import, ast.ImportFrom)))
    assert [a.name for a in first.names] == ["cpuSettings"]


def test_benchmark_times_the_default_runs_own_training_step():
    """benchmark.py's budget line times nnConfig.json's model, batch and input size, and turns its
    totalTrainingSteps into minutes."""
    import benchmark
    cfg = configUtils.load_run_config(ROOT / "nnConfig.json")[0].model
    timed = benchmark.training_speed("PASSIVE", False)
    assert (timed["steps"], timed["batch"], timed["input_size"]) == (
        cfg.totalTrainingSteps, cfg.batchSize, cfg.sampleFreq * cfg.bufferSeconds)
    assert timed["s_per_step"] > 0 and timed["windows_per_s"] == pytest.approx(cfg.batchSize / timed["s_per_step"])
    line = benchmark.default_run_line({"s_per_step": 0.6, "steps": 1000, "batch": 256, "input_size": 375})
    assert line.startswith("default run training: 1000 steps of 256 windows of 375 samples, 0.600 s/step = "
                           "10.0 min of training")
    assert benchmark.avx2_kernels_line({"s_per_step": 0.3}, {"s_per_step": 0.25}) == (
        'training with the kernels capped at AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, MKL_CBWR=AVX2, README "Reproducing a '
        'run elsewhere"): 0.300 s/step = 1.20x this CPU\'s own kernels')
