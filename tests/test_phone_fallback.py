"""One phone-check policy for the converters and the main job (issues 17 item 8 and 19): staged files,
renamed into place only after the check; a broken or hanging phone environment (stubbed here) leaves
the run going with the file "not checked" and a line saying how to rebuild it; a user-set time limit;
a NaN model blamed on itself, not on the phone; the main job without ExecuTorch."""
import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.phone import phoneCheck, phoneEnv
from osdkit.training import trainExport

import convertPt2Pte
import phoneCheck as phoneCheckScript
from conftest import make_checkpoint, run_main
from test_converter_safety import without_executorch
from test_phone_check import phone_result


class Windows:
    """The part of a WindowSet the export step uses: len() and batch(idx)."""

    def __init__(self, n=64, seed=0):
        from osdkit.sim import osdbSim
        self.x = osdbSim.example_windows(n, length=750, seed=seed)

    def __len__(self):
        return len(self.x)

    def batch(self, idx):
        return np.ascontiguousarray(self.x[idx])


def main_job_export(tmp_path, formats=("pt", "pte"), quantize="none"):
    """trainExport.export_trained on a random-init checkpoint as the main job calls it."""
    model = make_checkpoint(tmp_path / "m.pt")
    run = SimpleNamespace(randomSeed=1, model=SimpleNamespace(exportFormats=list(formats), pteBackend="xnnpack",
                                                               quantize=quantize))
    trained = SimpleNamespace(model=model, input_shape=(1, 1, 750), best_path=tmp_path / "m.pt")
    return trainExport.export_trained(run, trained, Windows(), {"threshold_pct": 42.0, "gate_pct": 3})


@pytest.fixture
def phone_on(monkeypatch):
    """The phone check switched on, its environment 'built' (stubbed)."""
    monkeypatch.delenv(phoneCheck.SKIP_VARIABLE)
    monkeypatch.setattr(phoneEnv, "missing_reason", lambda cache=None: None)
    monkeypatch.setattr(phoneEnv, "manifest", lambda cache=None: {"qemu": "qemu-aarch64 version 7.2 (stub)"})


def guest(monkeypatch, code):
    """Replace the emulated phone python by a host python running `code`."""
    monkeypatch.setattr(phoneEnv, "guest_command", lambda cpu, cache=None: [sys.executable, "-c", code])


def test_main_job_stages_the_pte_and_keeps_the_earlier_file_when_the_phone_check_fails(
        tmp_path, phone_on, monkeypatch):
    """The main job wrote the .pte at its final name and deleted it on failure, taking the earlier file
    with it; now it stages it as the converters do."""
    (tmp_path / "m.pte").write_bytes(b"the earlier, checked model")
    (tmp_path / "m.json").write_text('{"name": "earlier entry"}')
    checked = []

    def failing_check(paths, windows=None, cache_dir=None, **kwargs):
        checked.extend(str(p) for p in paths)
        return {str(p): phone_result(a76="illegal instruction") for p in paths}
    monkeypatch.setattr(phoneCheck, "check_ptes", failing_check)
    with pytest.raises(exportCore.ExportError, match="cortex-a76 .illegal instruction.; no file written"):
        main_job_export(tmp_path)
    assert [p.split("/")[-1] for p in checked] == [".m.pte.unchecked"]
    assert (tmp_path / "m.pte").read_bytes() == b"the earlier, checked model"
    assert (tmp_path / "m.json").read_text() == '{"name": "earlier entry"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt", "m.pte"]


def test_main_job_records_a_broken_phone_environment_and_goes_on(tmp_path, phone_on, monkeypatch, capsys):
    guest(monkeypatch, "import sys; print('libpython3.11.so.1.0: cannot open shared object file'); sys.exit(127)")
    reports = main_job_export(tmp_path)
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if ln.startswith("phone check: not run")]
    assert len(line) == 1 and "cannot open shared object file" in line[0]
    assert "python phoneEnv.py" in line[0] and "OSD_PHONE_CHECK=off" in line[0]
    entry = json.loads((tmp_path / "m.json").read_text())
    assert entry["phone_check"]["status"] == "not checked"
    assert "phone environment broken" in entry["phone_check"]["reason"]
    assert entry["seizure_probability_threshold_pct"] == 42.0 and entry["accel_std_threshold_pct"] == 3
    assert entry["framework"] == "pytorch" and entry["sha256"] == fileUtils.sha256_of(tmp_path / "m.pte")
    assert reports["pte"]["path"] == str(tmp_path / "m.pte")


def test_a_hanging_emulator_is_stopped_at_the_users_time_limit(tmp_path, phone_on, monkeypatch, capsys):
    guest(monkeypatch, "import time; time.sleep(120)")
    make_checkpoint(tmp_path / "m.pt")
    code, out, err = run_main(convertPt2Pte, tmp_path / "m.pt", "--jobs", "1", "--phone-timeout", "2",
                              capsys=capsys)
    assert code == 0, err
    assert "took over 2 s" in out and "rebuild it with" in out
    entry = json.loads((tmp_path / "m.json").read_text())
    assert entry["phone_check"]["status"] == "not checked" and "took over 2 s" in entry["phone_check"]["reason"]
    monkeypatch.setenv(phoneCheck.TIMEOUT_VARIABLE, "0")
    with pytest.raises(exportCore.UsageError, match="OSD_PHONE_CHECK_TIMEOUT '0'"):
        phoneCheck.timeout_s()
    monkeypatch.setenv(phoneCheck.TIMEOUT_VARIABLE, "90")
    assert phoneCheck.timeout_s() == 90 and phoneCheck.timeout_s("5") == 5


@pytest.mark.parametrize("case, problem", [("nan", "outputs NaN or inf"), ("two_in", "takes 2 inputs")])
def test_phone_check_blames_a_broken_model_not_the_phone(tmp_path, phone_on, monkeypatch, capsys, case, problem):
    """phoneCheck.py reported a NaN-output model as 'wrong outputs' on both phone CPUs (x86 gives NaN
    too), and a two-input model as 'unexpected RuntimeError: method->set_inputs()'."""
    from test_replay_safety import TwoInputs, TwoLogits, write_pte
    pte = (write_pte(tmp_path / "nan.pte", TwoLogits(scale=float("nan"))) if case == "nan" else
           write_pte(tmp_path / "two_in.pte", TwoInputs(), n_inputs=2))
    guest(monkeypatch, "raise SystemExit('the emulated phone must not be started')")
    code, out, err = run_main(phoneCheckScript, pte, "--report", tmp_path / "r.json", capsys=capsys)
    assert code == 1 and problem in err and str(pte) in err and "unexpected" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "r.json").exists()


def test_phone_check_names_a_broken_file_and_checks_the_others(tmp_path, phone_on, monkeypatch, capsys):
    """phoneCheck.py with several files stopped at the first broken one and checked none of the others."""
    from test_replay_safety import TwoLogits, write_pte
    bad = write_pte(tmp_path / "nan.pte", TwoLogits(scale=float("nan")))
    good = write_pte(tmp_path / "good.pte", TwoLogits())
    on_phone = []
    monkeypatch.setattr(phoneCheck, "_check_on_guests",
                        lambda references, *args: on_phone.extend(references) or {p: phone_result() for p in references})
    code, out, err = run_main(phoneCheckScript, bad, good, "--report", tmp_path / "r.json", capsys=capsys)
    assert code == 1 and on_phone == [str(good)]
    assert err.count("error:") == 1 and str(bad) in err and "outputs NaN or inf" in err
    files = json.loads((tmp_path / "r.json").read_text())["files"]
    assert files[str(good)]["ok"] and not files[str(bad)]["ok"] and "outputs NaN or inf" in files[str(bad)]["error"]
    assert f"{good}: cortex-a53 ok, cortex-a76 ok" in out and f"{bad}: refused: " in out


@pytest.mark.parametrize("args, problem, code", [
    (["--report", "{tmp}/missing/r.json"], "--report folder", 1),
    (["--report", "{tmp}"], "--report names a folder", 1),
    (["--timeout", "soon"], "--timeout 'soon'", 2)])
def test_phone_check_arguments_are_checked_before_the_run(tmp_path, capsys, args, problem, code):
    (tmp_path / "m.pte").write_bytes(b"not looked at")
    argv = [a.format(tmp=tmp_path) for a in args]
    got, out, err = run_main(phoneCheckScript, tmp_path / "m.pte", *argv, capsys=capsys)
    assert got == code and out == "" and problem in err and len(err.strip().splitlines()) == 1


def test_main_job_without_executorch_writes_and_tests_pt_and_ptl(tmp_path):
    """Without ExecuTorch the main job trained, wrote .pt and .ptl, then died with 'unexpected
    ModuleNotFoundError' before any test, summary or card."""
    import subprocess

    from conftest import ROOT
    from test_pipeline import MODEL, run_folder, tiny_config
    config = tiny_config(tmp_path, formats=("pt", "ptl", "pte"), totalTrainingSteps=3, users=6)
    res = subprocess.run([sys.executable, str(ROOT / "runSequence.py"), "--config", str(config), "--outDir",
                          str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path,
                         env=without_executorch(tmp_path), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    warning = f"warning: {exportCore.NO_EXECUTORCH}"
    assert (res.stdout + res.stderr).count(warning) == 1
    folder = run_folder(tmp_path / "out")
    assert (folder / f"{MODEL}.pt").exists() and (folder / f"{MODEL}.ptl").exists()
    assert not list(folder.glob("*.pte")) and not list(folder.glob(".*"))
    assert (folder / f"{MODEL}_model_card.md").exists()
    assert list(folder.glob("*pt_testResults.json")), sorted(p.name for p in folder.iterdir())


def test_main_job_leaves_out_an_int8_pte_outside_its_tolerance(tmp_path, monkeypatch, capsys):
    """An int8 .pte that misses its tolerance (here any |dp| > 0) is a property of the trained model: the
    float .pte is still written with its entry, the int8 one (and a stale one of that name, from another
    checkpoint) is not, and the warning and export report say why."""
    monkeypatch.setattr(exportCore, "INT8_MAX_PROB_DIFF", -1.0)
    (tmp_path / "m_int8.pte").write_bytes(b"an earlier checkpoint's int8")
    (tmp_path / "m_int8.json").write_text("{}")
    reports = main_job_export(tmp_path, quantize="int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export_report.json", "m.json", "m.pt", "m.pte"]
    refused = reports["pte_int8"]["refused"]
    assert refused.startswith(f"{tmp_path / 'm_int8.pte'}: verification failed") and "|dp| <= -1.0" in refused
    assert f"warning: {refused}; the run goes on without an int8 .pte" in capsys.readouterr().out
    assert json.loads((tmp_path / "export_report.json").read_text())["pte_int8"]["refused"] == refused
