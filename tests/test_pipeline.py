"""runSequence end to end on a tiny simulated database: formats, parity, resume after SIGKILL, torchrun."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_script

MODEL = "deepEpiCnnModel_pytorch"


def tiny_config(tmp_path, formats=("pt", "ptl", "pte"), epochs=1, **model):
    config = {
        "randomSeed": 1,
        "osdbConfig": {"cacheDir": str(tmp_path / "osdb"), "osdbFiles": ["sim.json"], "simulate": True,
                       "simulation": {"users": 8, "seizuresPerUser": 2, "ndaPerUser": 3,
                                      "falseAlarmsPerUser": 1, "seed": 3}},
        "dataProcessing": {"noiseAugmentationFactor": 1, "phaseAugmentation": False},
        "modelConfig": {"epochs": epochs, "batchSize": 64, "warmupSteps": 2, "cooldownSteps": 2,
                        "numWorkers": 0, "exportFormats": list(formats), **model},
        "evaluation": {"realDataDir": None},
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    return path


def run_folder(out, n=1):
    return out / MODEL / str(n)


def test_end_to_end_writes_verified_formats_and_reports(tmp_path):
    config = tiny_config(tmp_path, quantize="int8")
    res = run_script("runSequence.py", "--config", config, "--outDir", tmp_path / "out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    folder = run_folder(tmp_path / "out")
    for suffix in (".pt", ".ptl", ".pte", ".json", "_model_card.md", "_training.png",
                   "_pt_testResults.json", "_pte_testResults.json", "_pte_event_results.csv",
                   "_pte_threshold_sweep.png"):
        assert (folder / f"{MODEL}{suffix}").exists(), suffix
    results = json.loads((folder / f"{MODEL}_results_by_variant.json").read_text())
    assert results["parity"]["ptl_vs_pte_max_abs_logit_diff"] <= 1e-4
    assert results["parity"]["pte_vs_pt_max_abs_logit_diff"] <= 1e-4
    for key in ("event_tpr", "false_alarms_per_day", "latency_median_s", "tpr", "fpr", "auc"):
        assert key in results["pte"]
    assert results["pte"]["max_prob_diff_vs_pt"] < 1e-5
    assert (folder / f"{MODEL}_int8.pte").exists() and (folder / f"{MODEL}_int8.json").exists()
    assert "event_tpr" in results["pte_int8"] and results["pte_int8"]["class_agreement_vs_pt"] >= 0.9
    entry = json.loads((folder / f"{MODEL}.json").read_text())
    assert entry["fname"] == f"{MODEL}.pte" and entry["input_size"] == 750
    summary = (folder / "kfold_summary.txt").read_text()
    assert "event sensitivity" in summary and "false alarms/day" in summary
    assert list(folder.glob("runSequence_*.log")) and (folder / "tiny.json").exists()
    data = json.loads((folder / "data_summary.json").read_text())
    assert not set(data["users"]["train"]) & set(data["users"]["test"])  # split by user


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


def test_torchrun_two_cpu_processes_match_single_process(tmp_path, uninterrupted):
    """DDP (gloo) splits each batch over 2 ranks; only BatchNorm statistics and dropout masks differ
    from one process, so test metrics agree within a stated tolerance: AUC and window rates +-0.1."""
    config = tiny_config(tmp_path, formats=("pt",), epochs=3)
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(ROOT / "runSequence.py"), "--config", str(config), "--outDir", str(tmp_path / "out")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "out" / MODEL).iterdir())
    assert runs == ["1"]  # rank 1 made no run folder of its own
    ddp = json.loads((run_folder(tmp_path / "out") / "testResults.json").read_text())
    for key in ("auc", "tpr", "fpr"):
        assert ddp[key] == pytest.approx(uninterrupted[key], abs=0.1), key


@pytest.mark.parametrize("change, message", [
    ({"modelConfig": {"epochs": -1}}, "modelConfig.epochs must be >= 1"),
    ({"dataProcessing": {"window": 250}}, "dataProcessing.window must be 125 (samples per OSDB datapoint)"),
    ({"dataProcessing": {"testProp": 1.5}}, "dataProcessing.testProp must be between 0 and 1"),
    ({"modelConfig": {"batchSize": "big"}}, "modelConfig.batchSize must be an integer"),
    ({"modelConfig": {"lrPaek": 0.1}}, "unknown key modelConfig.lrPaek"),
    ({"eventFilters": {"excludeTypes": "NDA"}}, "eventFilters.excludeTypes must be a list"),
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
    config = tiny_config(tmp_path, formats=("pt",))
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


def test_test_alone_needs_a_run_to_test(tmp_path):
    res = run_script("runSequence.py", "--config", tiny_config(tmp_path), "--outDir", tmp_path / "out", "--test",
                     cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["error: --test alone needs --rerun N: the run whose models to test"]
    assert not (tmp_path / "out").exists()
