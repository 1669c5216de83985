"""Export core: .pt -> .pte, .pt -> .ptl -> .pte, checkpoint layouts, verification, atomic output."""
import json
import re

import numpy as np
import pytest
import torch

from osdkit.export import exportCore, stagedPte
from osdkit.io import fileUtils
from osdkit.model import checkpoints, deepEpiCnn
from osdkit.sim import osdbSim

import convertPt2Pte
import convertPt2Ptl
import convertPtl2Pte
from conftest import FIXTURES, make_checkpoint, run_script


def pte_outputs(path, inputs):
    return exportCore.run_pte(str(path), torch.from_numpy(np.ascontiguousarray(inputs)))


def test_state_dict_keys_match_earlier_layouts():
    plain = deepEpiCnn.expected_keys(conv_dropout=0.0)
    dropout = deepEpiCnn.expected_keys(conv_dropout=0.1)
    assert max(int(k.split(".")[1]) for k in plain if k.startswith("conv_stack")) == 40
    assert max(int(k.split(".")[1]) for k in dropout if k.startswith("conv_stack")) == 53
    legacy = torch.load(FIXTURES / "legacy_deepepicnn.pt", weights_only=True)["model_state_dict"]
    assert set(legacy) == plain
    assert {"fc_out.weight", "bn4.running_var", "conv_stack.53.num_batches_tracked"} <= dropout
    assert deepEpiCnn.output_length(750) == 157


@pytest.mark.parametrize("shape", [(4, 1, 750), (4, 750, 1), (4, 750)])
def test_forward_accepts_all_input_layouts(shape):
    model = deepEpiCnn.DeepEpiCnn().eval()
    x = torch.randn(4, 1, 750)
    ref = model(x)
    assert torch.allclose(model(x.reshape(shape)), ref)


def test_dropout_layout_checkpoint_loads(tmp_path):
    src = tmp_path / "drop.pt"
    model = make_checkpoint(src, conv_dropout=0.025)
    loaded, shape, info = checkpoints.model_from_checkpoint(src)
    x = torch.from_numpy(osdbSim.reference_windows((1, 1, 750)))
    assert torch.equal(loaded(x), model(x))
    assert shape == (1, 1, 750) and info["epoch"] == 3


def test_legacy_checkpoint_to_pte_matches_old_pytorch(tmp_path, legacy_io):
    out = tmp_path / "legacy.pte"
    assert convertPt2Pte.main([str(FIXTURES / "legacy_deepepicnn.pt"), "-o", str(out), "-q"]) == 0
    got = pte_outputs(out, legacy_io["inputs"])
    assert np.abs(got - legacy_io["outputs"]).max() < 1e-4
    entry = json.loads((tmp_path / "legacy.json").read_text())
    assert entry["fname"] == "legacy.pte" and entry["input_size"] == 750
    assert entry["framework"] == "pytorch" and entry["sha256"] == fileUtils.sha256_of(out)


def test_two_step_pt_ptl_pte_matches_old_pytorch(tmp_path, legacy_io):
    ptl, pte = tmp_path / "m.ptl", tmp_path / "m.pte"
    assert convertPt2Ptl.main([str(FIXTURES / "legacy_deepepicnn.pt"), "-o", str(ptl), "-q"]) == 0
    from torch.jit.mobile import _load_for_lite_interpreter
    lite = _load_for_lite_interpreter(str(ptl))
    x = torch.from_numpy(legacy_io["inputs"].copy())
    assert np.abs(lite(x[:1]).detach().numpy() - legacy_io["outputs"][:1]).max() < 1e-4
    assert convertPtl2Pte.main([str(ptl), "-o", str(pte), "-q"]) == 0  # shape read from the .ptl
    assert np.abs(pte_outputs(pte, legacy_io["inputs"]) - legacy_io["outputs"]).max() < 1e-4


def test_three_class_1500_sample_bare_state_dict(tmp_path):
    """A bare state_dict (no config): length from --input-shape, classes from the weights."""
    src, out = tmp_path / "bare.pt", tmp_path / "bare.pte"
    model = make_checkpoint(src, num_classes=3, conv_dropout=0.1, bare=True)
    assert convertPt2Pte.main([str(src), "-o", str(out), "--input-shape", "1,1,1500",
                               "--num-classes", "3", "--input-norm", "none", "-q"]) == 0
    x = torch.from_numpy(osdbSim.reference_windows((1, 1, 1500), n=4, seed=7))
    got = pte_outputs(out, x.numpy())
    assert got.shape == (4, 3)
    assert np.abs(got - model(x).detach().numpy()).max() < 1e-4
    assert json.loads((tmp_path / "bare.json").read_text())["input_size"] == 1500


def test_input_length_from_checkpoint_config(tmp_path):
    cases = [({"modelConfig": {"sampleFreq": 25, "bufferSeconds": 60}}, 1500),
             ({"sampleFreq": 25, "bufferSeconds": 20}, 500),
             ({"dataProcessing": {"rawDataLength": 1000}}, 1000), ({}, 750)]
    for i, (config, length) in enumerate(cases):
        make_checkpoint(tmp_path / f"c{i}.pt", config=config)
        assert checkpoints.model_from_checkpoint(tmp_path / f"c{i}.pt")[1] == (1, 1, length)


def test_portable_backend_is_verified_too(tmp_path):
    src, out = tmp_path / "p.pt", tmp_path / "p.pte"
    make_checkpoint(src)
    assert convertPt2Pte.main([str(src), "-o", str(out), "--backend", "portable", "-q"]) == 0
    entry = json.loads((tmp_path / "p.json").read_text())
    assert entry["backend"] == "portable"


def test_failed_verification_leaves_no_file_and_keeps_old_one(tmp_path, monkeypatch, capsys):
    src, out = tmp_path / "m.pt", tmp_path / "m.pte"
    make_checkpoint(src)
    out.write_bytes(b"previous verified model")
    real_run = exportCore.run_pte
    monkeypatch.setattr(exportCore, "run_pte", lambda *a, **k: real_run(*a, **k) + 1e-3)
    assert convertPt2Pte.main([str(src), "-o", str(out), "--jobs", "1", "--force"]) == 1
    err = capsys.readouterr().err
    assert f"{out}: verification failed" in err and ".unchecked" not in err  # the file asked for, not the staged one
    assert out.read_bytes() == b"previous verified model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pte"]


def test_a_staged_export_reports_the_file_asked_for(tmp_path):
    """export_staged_pte writes the hidden staged file, and its report names the target (not yet written)."""
    src, dst = tmp_path / "m.pt", tmp_path / "m.pte"
    make_checkpoint(src)
    model, shape, _ = checkpoints.model_from_checkpoint(src)
    report = stagedPte.export_staged_pte(model, shape, dst, "portable", inputs=osdbSim.reference_windows(shape))
    assert report["path"] == str(dst) and report["size_bytes"] == stagedPte.staged_path(dst).stat().st_size
    assert not dst.exists()


def test_a_pte_that_cannot_run_the_windows_is_named(tmp_path):
    """The runtime's error on windows of another size than the program's input ('method->set_inputs()
    ... failed') names the .pte asked for, never the atomic temp file it was staged in."""
    src, pte = tmp_path / "m.pt", tmp_path / "m.pte"
    make_checkpoint(src)
    assert convertPt2Pte.main([str(src), "-o", str(pte), "--backend", "portable", "-q"]) == 0
    wrong = torch.zeros(2, 1, 375)
    named = rf"^{re.escape(str(pte))}: .*cannot run it on windows of \(1, 375\)"
    with pytest.raises(exportCore.ExportError, match=named):
        exportCore.run_pte(str(pte), wrong)
    target = tmp_path / "again.pte"
    with pytest.raises(exportCore.ExportError) as err:
        exportCore.write_verified_pte(pte.read_bytes(), target, wrong, np.zeros((2, 2)))
    assert str(err.value).startswith(f"{target}: ") and ".tmp" not in str(err.value)
    assert not target.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt", "m.pte"]


def test_needs_pickle_is_refused_with_flag_name(tmp_path):
    src = tmp_path / "whole.pt"
    torch.save(deepEpiCnn.DeepEpiCnn(), src)  # a pickled whole nn.Module
    with pytest.raises(exportCore.ExportError, match="--allow-pickle"):
        checkpoints.load_checkpoint(src)
    state, _ = checkpoints.load_checkpoint(src, allow_pickle=True)
    assert "fc_out.weight" in state


def test_app_contract_notes():
    assert exportCore.app_contract_notes((1, 1, 750), np.zeros((2, 2))) == []
    notes = exportCore.app_contract_notes((4, 750), np.zeros((2, 1)))
    assert len(notes) == 2 and "class dimension" in notes[1]


def test_int8_tolerance_judges_the_probability_not_flips_at_one_half():
    """A barely trained model puts windows at p ~ 0.5, where a |dp| of 0.01 flips the class: that is within
    int8's tolerance (it failed before: class agreement 0.5 < 0.95); a |dp| of 0.2 anywhere is not."""
    logit = np.log(np.array([0.495, 0.505, 0.9, 0.1]) / (1 - np.array([0.495, 0.505, 0.9, 0.1])))
    reference = np.stack([np.zeros(4), logit], axis=1).astype(np.float32)
    flipped = reference.copy()
    flipped[:2, 1] = -flipped[:2, 1]  # p 0.495 <-> 0.505
    parity = exportCore.compare_outputs(reference, flipped, quantized=True)
    assert parity["ok"] and parity["class_agreement"] == 0.5 and parity["max_prob_diff"] < 0.011
    drifted = reference.copy()
    drifted[2, 1] = np.log(0.7 / 0.3)  # p 0.9 -> 0.7, the class kept
    parity = exportCore.compare_outputs(reference, drifted, quantized=True)
    assert not parity["ok"] and parity["class_agreement"] == 1.0
    assert "|dp| <= 0.15" in exportCore.parity_text(parity)


def test_cli_success_and_failure_exit_codes(tmp_path):
    src = tmp_path / "m.pt"
    make_checkpoint(src)
    ok = run_script("convertPt2Pte.py", src, "-o", tmp_path / "m.pte")
    assert ok.returncode == 0, ok.stderr
    assert "verified, max |d logit|" in ok.stdout
    bad = run_script("convertPt2Pte.py", tmp_path / "missing.pt")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.pt'}: no such file"]


@pytest.mark.parametrize("name", ["legacy_deepepicnn", "legacy_smallnet"])
def test_legacy_mobile_ptl_to_pte_reproduces_old_pytorch(tmp_path, name):
    """The issue's 'done when': convertPtl2Pte.py on a PyTorch 2.5 mobile-optimised file."""
    out = tmp_path / f"{name}.pte"
    assert convertPtl2Pte.main([str(FIXTURES / f"{name}.ptl"), "-o", str(out), "-q"]) == 0
    io = np.load(FIXTURES / f"{name}_io.npz")
    assert np.abs(pte_outputs(out, io["inputs"]) - io["outputs"]).max() < 1e-4
    assert json.loads((tmp_path / f"{name}.json").read_text())["input_size"] == 750


def test_int8_conversion_is_calibrated_and_checked(tmp_path, legacy_io):
    calibration = tmp_path / "cal.json"
    osdbSim.simulate_database(calibration, n_users=4, seizures_per_user=1, nda_per_user=2,
                              false_alarms_per_user=1, seed=3)
    out = tmp_path / "m8.pte"
    assert convertPt2Pte.main([str(FIXTURES / "legacy_deepepicnn.pt"), "-o", str(out), "--quantize", "int8",
                               "--calibration", str(calibration), "-q", "--jobs", "1"]) == 0
    entry = json.loads((tmp_path / "m8.json").read_text())
    assert entry["quantize"] == "int8" and entry["backend"] == "xnnpack"
    assert out.stat().st_size < 0.4 * (FIXTURES / "legacy_deepepicnn.pt").stat().st_size
    got = exportCore.softmax(pte_outputs(out, legacy_io["inputs"]))
    want = exportCore.softmax(legacy_io["outputs"])
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.95 and np.abs(got - want).max() < 0.15
    with pytest.raises(exportCore.UsageError, match="needs --calibration"):
        convertPt2Pte.main([str(FIXTURES / "legacy_deepepicnn.pt"), "-o", str(out), "--quantize", "int8"])

