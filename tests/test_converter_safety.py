"""The converters never put a wrong model under a right name (issue 19): every output decided and
checked before any work (two inputs for one name, an existing file, a bad --index), the input
normalisation never guessed, the run's alarm settings carried into the entry, only models with two
finite logits, and ExecuTorch optional."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.model import deepEpiCnn
from osdkit.sim import osdbSim

import convertPt2Pte
import convertPt2Ptl
from conftest import ROOT, make_checkpoint, run_main


def listing(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def convert(*args, capsys, module=convertPt2Pte):
    return run_main(module, *args, "--jobs", "1", capsys=capsys)


def one_error_line(err, *mentions):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "unexpected" not in lines[0]
    for text in mentions:
        assert str(text) in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("module", [convertPt2Pte, convertPt2Ptl])
def test_two_inputs_for_one_output_are_refused_before_any_work(tmp_path, capsys, monkeypatch, module):
    """`convertPt2Pte.py a.pt a.pth` printed 'verified' twice, then left a.pte holding a.pth's model
    beside an a.json describing a.pt; `good.pt ./good.pt` failed the same way."""
    make_checkpoint(tmp_path / "a.pt", seed=0)
    make_checkpoint(tmp_path / "a.pth", seed=1)
    before = listing(tmp_path)
    suffix = ".pte" if module is convertPt2Pte else ".ptl"
    code, out, err = convert(tmp_path / "a.pt", tmp_path / "a.pth", capsys=capsys, module=module)
    assert code == 1 and out == ""
    one_error_line(err, tmp_path / f"a{suffix}", "would both write it")
    monkeypatch.chdir(tmp_path)
    code, out, err = convert("a.pt", "./a.pt", capsys=capsys, module=module)
    assert code == 1 and out == ""
    one_error_line(err, "would both write it")
    assert listing(tmp_path) == before


def test_an_existing_output_needs_force(tmp_path, capsys):
    """Re-converting a run's checkpoint silently replaced the run's .pte and its entry."""
    make_checkpoint(tmp_path / "m.pt")
    (tmp_path / "m.json").write_text('{"name": "the run\'s entry"}')
    before = listing(tmp_path)
    code, out, err = convert(tmp_path / "m.pt", capsys=capsys)
    assert code == 1 and out == ""
    one_error_line(err, tmp_path / "m.json", "exists; --force replaces it")
    (tmp_path / "m.pte").write_bytes(b"the run's model")
    code, _, err = convert(tmp_path / "m.pt", capsys=capsys)
    one_error_line(err, tmp_path / "m.pte", "exists; --force replaces it")
    assert listing(tmp_path) == {**before, "m.pte": b"the run's model"}
    code, _, err = convert(tmp_path / "m.pt", "--force", capsys=capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["sha256"] == fileUtils.sha256_of(tmp_path / "m.pte")


def test_a_corrupt_index_stops_the_run_before_a_file_is_replaced(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt")
    (tmp_path / "m.pte").write_bytes(b"earlier model")
    (tmp_path / "m.json").write_text("{}")
    (tmp_path / "index.json").write_text("[{not json")
    before = listing(tmp_path)
    code, out, err = convert(tmp_path / "m.pt", "--force", "--index", tmp_path / "index.json", capsys=capsys)
    assert code == 1 and out == ""
    one_error_line(err, tmp_path / "index.json", "not a readable JSON index")
    assert listing(tmp_path) == before


def test_the_runs_alarm_settings_go_into_the_entry_and_the_index(tmp_path, capsys):
    """The converters wrote 50 % / 5 % whatever the run had chosen, so --index never carried them."""
    make_checkpoint(tmp_path / "m.pt")
    (tmp_path / "m.json").write_text(json.dumps({"seizure_probability_threshold_pct": 37.0,
                                                 "accel_std_threshold_pct": 2}))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = convert(tmp_path / "m.pt", "-o", out_dir, "--index", out_dir / "index.json", capsys=capsys)
    assert code == 0, err
    assert f"alarm settings from {tmp_path / 'm.json'}" in out
    entry = json.loads((out_dir / "m.json").read_text())
    assert (entry["seizure_probability_threshold_pct"], entry["accel_std_threshold_pct"]) == (37.0, 2)
    assert entry["alarm_threshold"] == 0.37 and entry["framework"] == "pytorch"
    assert json.loads((out_dir / "index.json").read_text()) == [entry]


def test_a_checkpoint_without_config_needs_its_input_norm(tmp_path, capsys):
    """A bare state_dict was exported without the meanMagnitude normalisation it was trained with and
    passed as 'verified' against the same un-normalised model."""
    torch.manual_seed(0)
    trained = deepEpiCnn.DeepEpiCnn(input_norm="meanMagnitude").eval()
    torch.save(trained.state_dict(), tmp_path / "bare.pt")
    torch.save(trained, tmp_path / "whole.pt")
    for name, extra in (("bare.pt", []), ("whole.pt", ["--allow-pickle"])):
        code, out, err = convert(tmp_path / name, *extra, capsys=capsys)
        assert code == 1
        one_error_line(err, tmp_path / name, "--input-norm meanMagnitude|none")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.pt", "whole.pt"]
    code, out, err = convert(tmp_path / "bare.pt", "--input-norm", "meanMagnitude", capsys=capsys)
    assert code == 0, err
    x = torch.from_numpy(osdbSim.reference_windows((1, 1, 750), n=4))
    got = exportCore.run_pte(str(tmp_path / "bare.pte"), x)
    np.testing.assert_allclose(got, trained(x).detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(exportCore.run_pte(str(tmp_path / "bare.pte"), 1.3 * x), got, atol=1e-4)


def test_input_norm_flag_never_overrides_the_checkpoints_config(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt", input_norm="meanMagnitude")
    code, _, err = convert(tmp_path / "m.pt", "--input-norm", "none", capsys=capsys, module=convertPt2Ptl)
    assert code == 1
    one_error_line(err, tmp_path / "m.pt", "--input-norm none but the checkpoint's config says "
                                           "inputNormalisation meanMagnitude")


def test_resume_state_is_refused_alone_and_skipped_in_a_folder(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    make_checkpoint(run / "m.pt")
    torch.save({"model_state_dict": deepEpiCnn.DeepEpiCnn().state_dict(), "optimizer_state_dict": {},
                "train_state": "{}"}, run / "m_resume.pt")
    code, _, err = convert(run / "m_resume.pt", capsys=capsys, module=convertPt2Ptl)
    assert code == 1
    one_error_line(err, run / "m_resume.pt", "resume state", "convert m.pt instead")
    code, out, err = convert(run, capsys=capsys, module=convertPt2Ptl)
    assert code == 0, err
    assert f"note: {run}: skipped 1 training-state file(s) *_resume.pt" in out
    assert sorted(p.name for p in run.iterdir()) == ["m.pt", "m.ptl", "m_resume.pt"]


def test_a_model_giving_nan_is_refused_by_the_converters(tmp_path, capsys):
    make_checkpoint(tmp_path / "m.pt")
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["model_state_dict"]["fc_out.weight"] *= 1e38  # finite weights, logits overflow to inf/NaN
    ckpt["model_state_dict"]["fc4.weight"] *= 1e38
    torch.save(ckpt, tmp_path / "m.pt")
    for module in (convertPt2Pte, convertPt2Ptl):
        code, _, err = convert(tmp_path / "m.pt", capsys=capsys, module=module)
        assert code == 1
        one_error_line(err, tmp_path / "m.pt", "outputs NaN or inf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def without_executorch(tmp_path):
    """An environment where `import executorch` fails, as on a machine without it installed."""
    shadow = tmp_path / "no_executorch"
    (shadow / "executorch").mkdir(parents=True)
    (shadow / "executorch" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'executorch'\", name='executorch')\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(shadow), str(ROOT)]), PYTHONWARNINGS="ignore")


def test_pte_converters_without_executorch_say_so_in_one_line(tmp_path):
    make_checkpoint(tmp_path / "m.pt")
    res = subprocess.run([sys.executable, str(ROOT / "convertPt2Pte.py"), str(tmp_path / "m.pt")],
                         capture_output=True, text=True, env=without_executorch(tmp_path), timeout=600)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [f"error: {exportCore.NO_EXECUTORCH}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "no_executorch"]
