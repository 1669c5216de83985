"""runSequence end to end on a tiny simulated database: formats, parity, resume after SIGKILL, torchrun,
k-fold and nested k-fold, and the issue-13 bugs that need the whole job."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from osdkit.training import configUtils, trainer, trainingData

from conftest import FIXTURES, ROOT, run_script

MODEL = "deepEpiCnnModel_pytorch"


def tiny_config(tmp_path, formats=("pt", "ptl", "pte"), epochs=1, users=8, real_dir=None, name="tiny.json",
                data=None, seed=1, **model):
    config = {
        "randomSeed": seed,
        "osdbConfig": {"cacheDir": str(tmp_path / "osdb"), "osdbFiles": ["osdb_simulated.json"], "simulate": True,
                       "simulation": {"users": users, "seizuresPerUser": 2, "ndaPerUser": 3,
                                      "falseAlarmsPerUser": 1, "seed": 3}},
        "dataProcessing": {"noiseAugmentationFactor": 1, "phaseAugmentation": False, **(data or {})},
        "modelConfig": {"epochs": epochs, "batchSize": 64, "warmupSteps": 2, "cooldownSteps": 2,
                        "numWorkers": 0, "exportFormats": list(formats), **model},
        "evaluation": {"realDataDir": None if real_dir is None else str(real_dir)},
    }
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return path


def tiny_real_data(folder):
    """A real-data folder as ../shared/data lays it out: the real OSDB event and two ADL recordings."""
    (folder / "osdb_example").mkdir(parents=True)
    shutil.copy(FIXTURES / "event_45781_tonic_clonic.json", folder / "osdb_example")
    rng = np.random.default_rng(0)
    for activity in ("Walk", "Brush_teeth"):
        (folder / "adl_wrist" / activity).mkdir(parents=True)
        codes = np.clip(np.round(rng.normal([30, 30, 45], 4, (32 * 60, 3))), 0, 63).astype(int)
        np.savetxt(folder / "adl_wrist" / activity / "rec.txt", codes, fmt="%d")
    return folder


def run_folder(out, n=1):
    return out / MODEL / str(n)


def test_end_to_end_writes_verified_formats_and_reports(tmp_path):
    config = tiny_config(tmp_path, quantize="int8")
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    folder = run_folder(tmp_path / "out")
    for suffix in (".pt", ".ptl", ".pte", ".json", "_model_card.md", "_training.png",
                   "_pt_testResults.json", "_pte_testResults.json", "_pte_event_results.csv",
                   "_pte_threshold_sweep.png", "_response_map.json", "_response_map.png"):
        assert (folder / f"{MODEL}{suffix}").exists(), suffix
    results = json.loads((folder / f"{MODEL}_results_by_variant.json").read_text())
    assert results["parity"]["ptl_vs_pte_max_abs_logit_diff"] <= 1e-4
    assert results["parity"]["pte_vs_pt_max_abs_logit_diff"] <= 1e-4
    for key in ("event_tpr", "false_alarms_per_day", "latency_median_s", "tpr", "fpr", "auc"):
        assert key in results["pte"]
    assert results["pte"]["max_prob_diff_vs_pt"] < 1e-5
    assert_int8_written_or_said(folder, results, res.stdout)
    entry = json.loads((folder / f"{MODEL}.json").read_text())
    assert entry["fname"] == f"{MODEL}.pte" and entry["input_size"] == 750
    summary = (folder / "kfold_summary.txt").read_text()
    assert "event sensitivity" in summary and "false alarms/day" in summary
    assert list(folder.glob("runSequence_*.log")) and (folder / "tiny.json").exists()
    data = json.loads((folder / "data_summary.json").read_text())
    assert not set(data["users"]["train"]) & set(data["users"]["test"])  # split by user
    card = (folder / f"{MODEL}_model_card.md").read_text()
    assert "## Test results (simulated test users)" in card and "Splits are by user" in card
    machine = torch.load(folder / f"{MODEL}.pt", weights_only=True)["training_machine"]
    assert machine["device"] == "cpu" and machine["processes"] == 1 and machine["threads"] >= 1
    assert machine["torch"] == torch.__version__ and machine["aten_kernels"] == torch.backends.cpu.get_cpu_capability()
    assert f"Trained on {machine['cpu']} (cpu, 1 process(es), {machine['threads']} threads" in card
    response = json.loads((folder / f"{MODEL}_response_map.json").read_text())
    assert response["input_size"] == 750 and response["threshold"] == entry["seizure_probability_threshold_pct"] / 100
    assert all(f"- {line}." in card for line in response["lines"]) and "response map: " in res.stdout


def assert_int8_written_or_said(folder, results, stdout):
    """A one-epoch model's int8 error may or may not stay within |dp| 0.15 (it depends on the machine's
    float rounding): either the int8 .pte is written, entered and tested, or the run says why not."""
    report = json.loads((folder / "export_report.json").read_text())["pte_int8"]
    if "refused" in report:
        assert not (folder / f"{MODEL}_int8.pte").exists() and "pte_int8" not in results
        assert f"warning: {report['refused']}" in stdout and "|dp| <= 0.15" in report["refused"]
        assert f"`{MODEL}_int8.pte`: not written: " in (folder / f"{MODEL}_model_card.md").read_text()
        return
    assert (folder / f"{MODEL}_int8.pte").exists() and (folder / f"{MODEL}_int8.json").exists()
    assert "event_tpr" in results["pte_int8"] and 0 <= results["pte_int8"]["class_agreement_vs_pt"] <= 1
    assert report["parity"]["max_prob_diff"] <= 0.15


def test_rerun_with_an_edited_config_exports_its_alarm_settings(tmp_path):
    """Bug 5 (issue 13): `--rerun N` with an edited config reused the old alarm_settings.json, so the new
    app entry carried the old threshold and gate."""
    config = tiny_config(tmp_path, formats=("pt", "pte"), totalTrainingSteps=4)
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--train", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    folder = run_folder(tmp_path / "out")
    first = json.loads((folder / f"{MODEL}.json").read_text())
    edited = tiny_config(tmp_path, formats=("pt", "pte"), totalTrainingSteps=4, name="edited.json",
                         data={"accelStdThresholdPct": 2.0}, thresholdFromValidation=False,
                         seizureProbabilityThresholdPct=37)
    (folder / config.name).write_text(edited.read_text())  # a rerun uses the run's own config (issue 17)
    res = run_script("runSequence.py", "--outDir", tmp_path / "out", "--rerun", "1", "--train", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    entry = json.loads((folder / f"{MODEL}.json").read_text())
    assert (first["seizure_probability_threshold_pct"], first["accel_std_threshold_pct"]) != (37, 2.0)
    assert (entry["seizure_probability_threshold_pct"], entry["accel_std_threshold_pct"]) == (37, 2.0)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    config = tiny_config(tmp, formats=("pt",), epochs=3)
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp / "out", cwd=tmp)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads((run_folder(tmp / "out") / "testResults.json").read_text())


def test_killed_run_resumes_to_the_same_result(tmp_path, uninterrupted):
    config = tiny_config(tmp_path, formats=("pt",), epochs=3)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, str(ROOT / "runSequence.py"), "--config", str(config),
                             "--outDir", str(tmp_path / "out")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resume = run_folder(tmp_path / "out") / f"{MODEL}_resume.pt"
    deadline = time.time() + 300
    while not resume.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # after epoch 1 was saved, in the middle of epoch 2
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--rerun", "1",
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    resumed = json.loads((run_folder(tmp_path / "out") / "testResults.json").read_text())
    for key in ("auc", "tpr", "fpr", "event_tpr", "false_alarms_per_day", "tp", "fp"):
        assert resumed[key] == pytest.approx(uninterrupted[key], abs=1e-6), key
    history = json.loads((run_folder(tmp_path / "out") / "training_history.json").read_text())
    assert len(history["val_loss"]) == 3


def train_like_ddp(config, world):
    """One process that takes the steps DDP must take on `world` ranks: per step, each rank's share of
    the batch forward (BatchNorm statistics per share) and backward with loss/world, the summed
    gradients, one optimizer step; BatchNorm buffers as rank 0 keeps them (DDP broadcasts rank 0's).
    Returns (state_dict, loss per epoch)."""
    run, _ = configUtils.load_run_config(config)
    events, source = trainingData.read_events(run)
    data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source)
    with trainer.denormals_flushed():  # as trainer.fit does
        return _steps_like_ddp(run, data, world)


def _steps_like_ddp(run, data, world):
    cfg, labels = run.model, data.train.labels
    total = cfg.totalTrainingSteps
    torch.manual_seed(run.randomSeed)
    model = trainer.build_model(cfg)
    optimizer = trainer.build_optimizer(cfg, model)
    scheduler = trainer.build_scheduler(cfg, optimizer, total)
    loss_fn, step, epoch, losses = torch.nn.CrossEntropyLoss(), 0, 0, []
    model.train()
    while step < total:
        shares = [trainer.epoch_batches(labels, cfg.batchSize, cfg.useBalancedBatches, run.randomSeed, epoch,
                                          rank, world) for rank in range(world)]
        loss_sum = seen = 0
        for b in range(min(len(shares[0]), total - step)):
            optimizer.zero_grad()
            rank0_buffers = {k: v.clone() for k, v in model.named_buffers()}
            for rank in reversed(range(world)):  # rank 0 last: its BatchNorm buffers are the ones kept
                if rank == 0:
                    model.load_state_dict(rank0_buffers, strict=False)
                idx = shares[rank][b]
                loss = loss_fn(model(torch.from_numpy(data.train.batch(idx))), torch.from_numpy(labels[idx]))
                (loss / world).backward()
                loss_sum, seen = loss_sum + loss.item() * len(idx), seen + len(idx)
            optimizer.step()
            scheduler.step()
            step += 1
        losses.append(loss_sum / seen)
        epoch += 1
    return model.state_dict(), losses


def test_torchrun_two_cpu_processes_match_single_process(tmp_path):
    """Bug 0 (issue 13): the torchrun check compared thresholded test metrics of a barely trained model,
    which flip with the smallest numeric difference. What DDP must preserve is checked instead: with 2
    gloo processes, every weight and BatchNorm buffer after the run and the loss curve equal those of
    one process that sums the two ranks' half-batch gradients (train_like_ddp), within float tolerance.
    Whole batches in one process end measurably elsewhere, so the check can fail."""
    config = tiny_config(tmp_path, formats=("pt",), totalTrainingSteps=6, denseDropout=0.0)
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(ROOT / "runSequence.py"), "--config", str(config), "--outDir", str(tmp_path / "out")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "out" / MODEL).iterdir())
    assert runs == ["1"]  # rank 1 made no run folder of its own
    folder = run_folder(tmp_path / "out")
    ddp = torch.load(folder / f"{MODEL}_resume.pt", weights_only=True)["model_state_dict"]
    reference, losses = train_like_ddp(config, world=2)
    whole_batches, _ = train_like_ddp(config, world=1)
    assert json.loads((folder / "training_history.json").read_text())["loss"] == pytest.approx(losses, abs=1e-6)
    for key, value in ddp.items():
        assert torch.allclose(value.double(), reference[key].double(), rtol=1e-5, atol=1e-6), key
    apart = max(float((ddp[k].double() - whole_batches[k].double()).abs().max()) for k in ddp
                if ddp[k].is_floating_point())
    assert apart > 1e-4


def test_torchrun_ranks_take_the_plateau_and_stopping_decisions_of_rank_0(tmp_path):
    """Bug 9 (issue 13): with useLrSchedule false, ReduceLROnPlateau and early stopping were decided on
    each rank from its own validation figures, so ranks could diverge or hang. Here rank 1 is given
    other validation windows (negatives only): both ranks must still record rank 0's figures, learning
    rates and stopping epoch."""
    config = tiny_config(tmp_path, formats=("pt",), epochs=5, batchSize=16, useLrSchedule=False, lrPatience=0,
                         earlyStoppingPatience=2)
    script = tmp_path / "fit_per_rank.py"
    script.write_text(FIT_PER_RANK)
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script), str(ROOT), str(config), str(tmp_path)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["epoch"] >= 2 and len(rank0["history"]["lr"]) == rank0["epoch"]
    assert rank1 == rank0


FIT_PER_RANK = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from osdkit.training import configUtils, distUtils, trainer, trainingData
run, _ = configUtils.load_run_config(sys.argv[2])
rank, _, _ = distUtils.init_distributed_mode()
events, source = trainingData.read_events(run)
data = trainingData.prepare_split(run, trainingData.fold_splits(run, events)[0], source)
labels = data.train.labels
train = data.train.select(np.r_[np.flatnonzero(labels == 0)[:32], np.flatnonzero(labels == 1)[:32]])
val = data.val if rank == 0 else data.val.select(data.val.labels == 0)
state = trainer.fit(run, train, val, sys.argv[3], show_progress=False)
with open(f"{sys.argv[3]}/rank{rank}.json", "w") as f:
    json.dump({"epoch": state["epoch"], "history": state["history"]}, f)
"""


@pytest.mark.parametrize("change, message", [
    ({"modelConfig": {"epochs": -1}}, "modelConfig.epochs must be >= 1"),
    ({"dataProcessing": {"window": 250}}, "dataProcessing.window must be 125 (samples per OSDB datapoint)"),
    ({"dataProcessing": {"testProp": 1.5}}, "dataProcessing.testProp must be between 0 and 1"),
    ({"modelConfig": {"batchSize": "big"}}, "modelConfig.batchSize must be an integer"),
    ({"modelConfig": {"lrPaek": 0.1}}, "unknown key modelConfig.lrPaek"),
    ({"eventFilters": {"excludeTypes": "NDA"}}, "eventFilters.excludeTypes must be a list"),
    # bug 7 (issue 13): dual_improvement silently became Youden
    ({"modelConfig": {"modelSelectionMetric": "dual_improvement"}},
     "modelConfig.modelSelectionMetric must be one of val_loss, min_fpr, youden, f1, f_beta"),
])
def test_bad_config_is_reported_before_any_work(tmp_path, change, message):
    config = json.loads(tiny_config(tmp_path).read_text())
    for section, values in change.items():
        config.setdefault(section, {}).update(values)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(config))
    res = run_script("runSequence.py", "--config", path, "--outDir", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {path}: {message}, got " +
                                               repr(list(list(change.values())[0].values())[0])] \
        or res.stderr.strip().splitlines() == [f"error: {path}: {message}"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "osdb").exists()


def test_kfold_writes_each_fold_and_a_mean(tmp_path):
    """Also bug 2 (issue 13): with --kfold the real-data report looked for <run>/<name>.pte, while the fold
    exports are in <run>/foldK/, so it was skipped; now each fold reports on its own .pte."""
    config = tiny_config(tmp_path, formats=("pt", "pte"), real_dir=tiny_real_data(tmp_path / "real"),
                         totalTrainingSteps=4)
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--kfold", "2",
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    folder = run_folder(tmp_path / "out")
    tests = [set(json.loads((folder / f"fold{k}" / "data_summary.json").read_text())["users"]["test"])
             for k in range(2)]
    assert tests[0] and tests[1] and not tests[0] & tests[1]  # each user tested in one fold only
    summary = json.loads((folder / "kfold_summary.json").read_text())
    assert len(summary["folds"]) == 2
    aucs = [fold["pt"]["auc"] for fold in summary["folds"]]
    assert summary["mean"]["pt"]["auc"] == pytest.approx(sum(aucs) / 2)
    for k, real in enumerate(summary["real_data"]):
        assert real["event_45781_tonic_clonic"]["n_windows"] == 24 and real["adl_wrist"]["n_recordings"] == 2
        card = (folder / f"fold{k}" / f"{MODEL}_model_card.md").read_text()
        assert "## Real recordings" in card and "real Tonic-Clonic event 45781" in card


def test_test_alone_needs_a_run_to_test(tmp_path):
    res = run_script("runSequence.py", "--config", tiny_config(tmp_path), "--outDir", tmp_path / "out", "--test",
                     cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["error: --test alone needs --rerun N: the run whose models to test"]
    assert not (tmp_path / "out").exists()


def test_export_error_in_the_main_job_is_one_line(tmp_path):
    """Bug 4 (issue 13): runSequence caught only ValueError/OSError, so an ExportError (here: the run's
    checkpoint is no PyTorch file) printed a traceback instead of one line naming the file."""
    config = tiny_config(tmp_path, formats=("pt",))
    folder = run_folder(tmp_path / "out")
    folder.mkdir(parents=True)
    (folder / f"{MODEL}.pt").write_text("not a model\n")
    shutil.copy(config, folder / config.name)  # a rerun uses the run's own config (issue 17)
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", "--rerun", "1", "--test",
                     cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (f"error: {folder / MODEL}.pt: not a PyTorch file (no zip "
                                                   "archive or pickle inside)")


def test_a_database_of_one_class_is_refused_before_training(tmp_path):
    """Bug 13 (issue 13): seizures alone trained and exited 0 with meaningless metrics."""
    sim = tmp_path / "sim.json"
    from osdkit.sim import osdbSim
    osdbSim.simulate_database(sim, n_users=4, seizures_per_user=2, nda_per_user=0, false_alarms_per_user=0)
    config = json.loads(tiny_config(tmp_path).read_text())
    config["osdbConfig"].update(cacheDir=str(tmp_path), osdbFiles=["sim.json"], simulate=False)
    path = tmp_path / "seizures_only.json"
    path.write_text(json.dumps(config))
    res = run_script("runSequence.py", "--config", path, "--outDir", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {sim}: 8 seizure and 0 non-seizure events after "
                                               "eventFilters; training needs both classes"]
    assert not list((tmp_path / "out").rglob("*.pt"))


def test_trainer_alone_quantizes_with_calibration_windows(tmp_path):
    """Bug 6 (issue 13): `nnTrainer.py` alone with quantize int8 crashed after training (no calibration
    windows); it now exports like the main job: verified .pte, int8 .pte and their app entries."""
    config = tiny_config(tmp_path, formats=("pt", "pte"), quantize="int8", totalTrainingSteps=4)
    res = run_script("nnTrainer.py", "--config", config, "--outDir", tmp_path / "trainer", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    folder = tmp_path / "trainer" / "1"  # a new run folder per call (issue 19)
    alarm = json.loads((folder / "alarm_settings.json").read_text())
    int8 = json.loads((folder / "export_report.json").read_text())["pte_int8"]
    assert "refused" not in int8 or "verification failed" in int8["refused"]  # calibrated, then judged
    for stem in (MODEL,) + (() if "refused" in int8 else (f"{MODEL}_int8",)):
        assert (folder / f"{stem}.pte").exists()
        entry = json.loads((folder / f"{stem}.json").read_text())
        assert entry["seizure_probability_threshold_pct"] == alarm["threshold_pct"]
