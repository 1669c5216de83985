"""appReplay and the app entry read back (issue 19): no file outside --plots, a column per model, only
models that give two finite logits, strict JSON, entries checked (keys named, sha256 of the model),
output paths checked before the run, and one error line naming the file for every bad input."""
import json
import subprocess

import pytest
import torch

from osdkit.app import appIndex
from osdkit.export import exportCore
from osdkit.io import fileUtils

import appReplay
from conftest import FIXTURES, make_checkpoint, run_main, run_script

EVENT = FIXTURES / "event_45781_tonic_clonic.json"


class TwoLogits(torch.nn.Module):
    """A tiny stand-in for DeepEpiCnn: two logits from the window's mean (fast to lower)."""

    def __init__(self, scale=1.0, n_out=2):
        super().__init__()
        self.scale, self.n_out = scale, n_out

    def forward(self, x):
        return (x.mean(dim=2) * self.scale).repeat(1, self.n_out) * torch.arange(1.0, self.n_out + 1)


class TwoInputs(torch.nn.Module):
    def forward(self, x, y):
        return (x.mean(dim=2) + y.mean(dim=2)).repeat(1, 2)


class TwoOutputs(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=2).repeat(1, 2), x.std(dim=2)


def write_pte(path, module, n_inputs=1):
    example = tuple(torch.zeros(1, 1, 750) for _ in range(n_inputs))
    program = torch.export.export(module.eval(), example)
    path.write_bytes(exportCore.lower(program, "portable"))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay_models")
    paths = {"good": write_pte(d / "good.pte", TwoLogits()),
             "nan": write_pte(d / "nan.pte", TwoLogits(scale=float("nan"))),
             "three": write_pte(d / "three.pte", TwoLogits(n_out=3)),
             "two_in": write_pte(d / "two_in.pte", TwoInputs(), n_inputs=2),
             "two_out": write_pte(d / "two_out.pte", TwoOutputs())}
    data = paths["good"].read_bytes()
    (d / "truncated.pte").write_bytes(data[:len(data) // 2])
    paths["truncated"] = d / "truncated.pte"
    return paths


def events_file(path, ids):
    """An OSDB file holding the fixture's real event once per id."""
    event = json.loads(EVENT.read_text())
    path.write_text(json.dumps([dict(event, id=i) for i in ids]))
    return path


def replay(*args, capsys):
    """appReplay in this process (start-up once per test file, not once per case), as a CompletedProcess."""
    code, out, err = run_main(appReplay, *args, capsys=capsys)
    return subprocess.CompletedProcess(["appReplay.py", *args], code, out, err)


def assert_one_error_line(res, *mentions, code=1):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code, res.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr[-2000:]
    assert "unexpected" not in lines[0] and "Traceback" not in res.stderr
    for text in mentions:
        assert str(text) in lines[0], lines[0]
    return lines[0]


def test_event_ids_never_write_outside_the_plot_folder(models, tmp_path):
    """ids 'x/../../escape' wrote a PNG outside --plots; '../../outside/pwn' made folders; two events
    with one id overwrote each other's plot."""
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    db = events_file(work / "events.json", ["x/../../escape", "../../outside/pwn", 7, 7])
    res = run_script("appReplay.py", models["good"], db, "--plots", work / "plots", cwd=work)
    assert res.returncode == 0, res.stderr[-2000:]
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(["a/b/events.json", "a/b/plots/event__.._outside_pwn.png", "a/b/plots/event_7.png",
                              "a/b/plots/event_7_2.png", "a/b/plots/event_x_.._.._escape.png"])
    assert appReplay.plot_names([type("E", (), {"id": ".."})()]) == ["event_event.png"]


def test_two_models_of_one_name_get_a_column_each(models, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.pte").write_bytes(models["good"].read_bytes())
    db = events_file(tmp_path / "events.json", [1])
    report = tmp_path / "replay.json"
    res = replay(tmp_path / "a" / "model.pte", tmp_path / "b" / "model.pte", db, "--json", report,
                 capsys=capsys)
    assert res.returncode == 0, res.stderr[-2000:]
    columns = set(json.loads(report.read_text())["models"])
    assert columns == {str(tmp_path / "a" / "model.pte"), str(tmp_path / "b" / "model.pte")}
    twice = replay(tmp_path / "a" / "model.pte", tmp_path / "a" / "model.pte", db, capsys=capsys)
    assert_one_error_line(twice, "model given twice")


@pytest.mark.parametrize("case, problem", [
    ("nan", "outputs NaN or inf"), ("three", "expected 2 logits"), ("two_out", "returns 2 outputs"),
    ("two_in", "takes 2 inputs"), ("truncated", "cannot load the program")])
def test_a_model_that_is_not_two_finite_logits_is_refused(models, tmp_path, capsys, case, problem):
    db = events_file(tmp_path / "events.json", [1])
    res = replay(models[case], db, "--json", tmp_path / "r.json", capsys=capsys)
    assert_one_error_line(res, models[case], problem)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("flag, value", [("--threshold-pct", "nan"), ("--threshold-pct", "1000"),
                                         ("--gate-pct", "-1"), ("--gate-pct", "inf"), ("--max-plots", "0")])
def test_absurd_flag_values_are_usage_errors(models, tmp_path, capsys, flag, value):
    res = replay(models["good"], EVENT, flag, value, capsys=capsys)
    assert_one_error_line(res, flag, code=2)


@pytest.mark.parametrize("content, problem", [
    ('{"name": "m", ', "not readable JSON"),
    ('{"input_size": "abc"}', "input_size must be a positive integer"),
    ('[{"fname": "good.pte"}]', "must be a JSON object"),
    ('{"seizure_probability_threshold_pct": "50"}', "seizure_probability_threshold_pct: must be a number"),
    ('{"accel_std_threshold_pct": 1e30}', "accel_std_threshold_pct: must be a number in 0..100")])
def test_a_bad_entry_beside_the_model_is_one_line_naming_it(models, tmp_path, capsys, content, problem):
    model = tmp_path / "m.pte"
    model.write_bytes(models["good"].read_bytes())
    (tmp_path / "m.json").write_text(content)
    res = replay(model, EVENT, capsys=capsys)
    assert_one_error_line(res, tmp_path / "m.json", problem)
    assert res.stdout == ""  # refused before any event was read


def test_an_entry_for_another_file_is_ignored_with_a_warning(models, tmp_path, capsys):
    model = tmp_path / "m.pte"
    model.write_bytes(models["good"].read_bytes())
    entry = {"seizure_probability_threshold_pct": 20, "accel_std_threshold_pct": 1, "sha256": "0" * 64}
    (tmp_path / "m.json").write_text(json.dumps(entry))
    settings = appReplay.app_settings(model)
    assert settings["seizure_probability_threshold_pct"] == 50 and settings["accel_std_threshold_pct"] == 5
    assert "sha256 is not" in capsys.readouterr().out
    entry["sha256"] = fileUtils.sha256_of(model)
    (tmp_path / "m.json").write_text(json.dumps(entry))
    assert appReplay.app_settings(model)["seizure_probability_threshold_pct"] == 20


def test_report_is_strict_json_and_output_paths_are_checked_first(models, tmp_path, capsys):
    assert json.loads(json.dumps(appReplay.json_ready({"a": [float("nan"), 1.0], "b": float("inf")}),
                                 allow_nan=False)) == {"a": [None, 1.0], "b": None}
    (tmp_path / "blocker").write_text("a file\n")
    for flag, value, problem in (("--json", tmp_path / "no" / "r.json", "does not exist"),
                                 ("--json", tmp_path, "names a folder"),
                                 ("--plots", tmp_path / "blocker", "names a file"),
                                 ("--plots", tmp_path / "blocker" / "p", "is a file")):
        res = replay(models["good"], EVENT, flag, value, capsys=capsys)
        assert_one_error_line(res, flag, problem)
        assert res.stdout == ""


def test_checkpoint_models_need_their_input_norm(tmp_path, capsys):
    make_checkpoint(tmp_path / "bare.pt", bare=True)
    res = replay(tmp_path / "bare.pt", EVENT, capsys=capsys)
    assert_one_error_line(res, tmp_path / "bare.pt", "--input-norm")


def test_entry_framework_is_what_the_app_checks_for_64_bit(models, tmp_path):
    """Issue 17 item 9: MlModelManager.isDeviceCompatible applies its 64-bit check only for "pytorch"."""
    report = {"input_shape": [1, 1, 750], "backend": "portable", "parity": {"max_abs_diff": 0.0}}
    entry = appIndex.app_entry(models["good"], report)
    assert entry["framework"] == "pytorch"
