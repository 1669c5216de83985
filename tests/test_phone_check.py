"""Phone check: .pte files on the app's runtime (ExecuTorch 1.0.1, aarch64) on emulated phone CPUs,
the cpuinfo fix, and the safe app entry (min_cpu_features, what the file was verified on)."""
import ctypes
import json
import os

import numpy as np
import pytest
import torch

from osdkit.app import appIndex
from osdkit.export import exportCore
from osdkit.io import fileUtils
from osdkit.phone import phoneCheck, phoneEnv, phoneGuest
from osdkit.sim import osdbSim

import convertPt2Pte
import convertPtl2Pte
import phoneCheck as phoneCheckScript
from conftest import FIXTURES, make_checkpoint


def phone_result(a53="ok", a76="ok"):
    """A check_pte result as the phone check returns it, with the given outcomes."""
    return {"available": True, "ok": a53 == a76 == "ok", "max_abs_diff": 0.0, "n_windows": 8,
            "cpus": {"cortex-a53": {"outcome": a53}, "cortex-a76": {"outcome": a76}},
            "runtime": "executorch 1.0.1", "emulator": "qemu-aarch64 version 7.2", "reference": "x86"}


def test_entry_keeps_dotprod_unless_the_armv80_check_passed():
    assert appIndex.min_cpu_features() == ["asimd", "asimddp"]
    assert appIndex.min_cpu_features(phone_result(), allow_no_dotprod=False) == ["asimd", "asimddp"]
    assert appIndex.min_cpu_features(phone_result(), allow_no_dotprod=True) == ["asimd"]
    for refused in (None, {"available": False, "reason": "no phone environment"},
                    phone_result(a53="illegal instruction"), phone_result(a53="wrong outputs")):
        with pytest.raises(exportCore.ExportError, match="--allow-no-dotprod refused.*cortex-a53"):
            appIndex.min_cpu_features(refused, allow_no_dotprod=True, path="m.pte")
    assert appIndex.phone_check_record(None) == {"status": "not checked", "reason": "not run"}
    record = appIndex.phone_check_record(phone_result(a53="illegal instruction"))
    assert record["cpus"] == {"cortex-a53": "illegal instruction", "cortex-a76": "ok"}
    assert record["status"] == "checked" and record["runtime"] == "executorch 1.0.1"


def test_phone_cpuinfo_texts_match_the_emulated_cores():
    a53, a76 = (phoneEnv.cpuinfo_text(cpu).split("\n\n")[0] for cpu in ("cortex-a53", "cortex-a76"))
    features = {cpu: set(text.split("Features\t: ")[1].split("\n")[0].split()) for cpu, text in
                (("a53", a53), ("a76", a76))}
    assert {"asimd", "aes"} <= features["a53"] and not {"asimddp", "fphp", "asimdhp"} & features["a53"]
    assert {"asimd", "asimddp", "fphp", "asimdhp"} <= features["a76"]
    assert "CPU part\t: 0xd03" in a53 and "CPU part\t: 0xd0b" in a76  # QEMU's MIDR part numbers


def test_cpuinfo_fix_moves_the_fields_and_checks_the_layout():
    """torch 2.9.1's table: rdm..fhm at 16..21, aes at 22; the 1.0.1 wheel's XNNPACK reads 20..25."""
    a53_caps = phoneGuest.HWCAP_AES  # ARMv8.0 with crypto: no dotprod, no fp16 arithmetic
    table = (ctypes.c_uint8 * 32)(*([0] * 22 + [1, 1, 1, 1, 1] + [0] * 5))  # aes sha1 sha2 pmull crc32
    assert table[22] == 1  # where XNNPACK reads "dot": the SIGILL on Cortex-A53 phones' wheels
    phoneGuest.apply_cpuinfo_fix(table, a53_caps)
    assert list(table[20:26]) == [0] * 6
    a76_caps = a53_caps | phoneGuest.HWCAP_ASIMDDP | phoneGuest.HWCAP_FPHP | phoneGuest.HWCAP_ASIMDHP
    table = (ctypes.c_uint8 * 32)(*([1] + [0] * 15 + [1, 1, 1, 0, 0, 0] + [1] * 5 + [0] * 5))
    phoneGuest.apply_cpuinfo_fix(table, a76_caps)
    assert list(table[20:26]) == [1, 1, 1, 0, 0, 0]  # rdm, fp16arith, dot where XNNPACK reads them
    with pytest.raises(RuntimeError, match="layout differs"):  # e.g. another torch's cpuinfo
        phoneGuest.apply_cpuinfo_fix((ctypes.c_uint8 * 32)(*([0] * 32)), a53_caps)


def test_converter_writes_only_what_the_admitted_cpu_runs(tmp_path, monkeypatch, capsys):
    """Fails on the ARMv8.2 core: no file. Fails on ARMv8.0 only: written, asimddp kept, and
    --allow-no-dotprod refused for it."""
    for name in ("a", "b"):
        make_checkpoint(tmp_path / f"{name}.pt")
    (tmp_path / "b.pte").write_bytes(b"previous model")
    outcomes = {".a.pte.unchecked": phone_result(a76="illegal instruction"),
                ".b.pte.unchecked": phone_result(a53="wrong outputs")}
    checked = []

    def fake_check(paths, windows=None, cache_dir=None, **kwargs):
        checked.extend(os.path.basename(p) for p in paths)
        assert all(os.path.exists(p) for p in paths)  # staged, verified on x86, not yet in place
        return {str(p): outcomes[os.path.basename(p)] for p in paths}

    monkeypatch.delenv(phoneCheck.SKIP_VARIABLE)
    monkeypatch.setattr(phoneEnv, "missing_reason", lambda cache=None: None)
    monkeypatch.setattr(phoneCheck, "check_ptes", fake_check)
    argv = [str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "-o", str(tmp_path), "--jobs", "1", "--force"]
    assert convertPt2Pte.main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'a.pte'}: fails on the app's runtime on an emulated cortex-a76 " \
           "(illegal instruction); no file written" in err
    assert sorted(checked) == sorted(outcomes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.json", "b.pt", "b.pte"]
    entry = json.loads((tmp_path / "b.json").read_text())
    assert entry["min_cpu_features"] == ["asimd", "asimddp"] and "fp16" not in entry["min_cpu_features"]
    assert entry["phone_check"]["cpus"] == {"cortex-a53": "wrong outputs", "cortex-a76": "ok"}
    assert entry["sha256"] == fileUtils.sha256_of(tmp_path / "b.pte")
    assert convertPt2Pte.main(argv[1:] + ["--allow-no-dotprod"]) == 1
    assert "--allow-no-dotprod refused" in capsys.readouterr().err
    assert (tmp_path / "b.pte").read_bytes() != b"previous model"
    assert not list(tmp_path.glob(".*"))  # no staged or temp file left


def test_off_switch_is_obeyed_by_default(tmp_path):
    """OSD_PHONE_CHECK=off (conftest sets it) skips check_pte for the converters and the main job."""
    assert phoneCheck.check_pte(tmp_path / "any.pte") == {"available": False,
                                                         "reason": "skipped (OSD_PHONE_CHECK=off)"}


def test_converter_without_environment_says_so_and_records_not_checked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(phoneCheck.SKIP_VARIABLE)
    make_checkpoint(tmp_path / "m.pt")
    empty = tmp_path / "no-env"
    assert convertPt2Pte.main([str(tmp_path / "m.pt"), "--jobs", "1", "--phone-cache", str(empty)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("phone check")]
    assert len(lines) == 1 and "not run" in lines[0]
    entry = json.loads((tmp_path / "m.json").read_text())
    assert entry["phone_check"]["status"] == "not checked"
    assert entry["min_cpu_features"] == ["asimd", "asimddp"]
    with pytest.raises(exportCore.UsageError, match="needs the phone check"):
        convertPt2Pte.main([str(tmp_path / "m.pt"), "--phone-cache", str(empty), "--allow-no-dotprod"])


# ---------------------------------------------------------------- on the emulated phones
@pytest.fixture(scope="module")
def phone_env():
    reason = phoneEnv.missing_reason()
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"phone environment missing under CI ({reason}); .ci/run must build it")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def small_ptes(tmp_path_factory, phone_env):
    """Small fp32 and int8 XNNPACK .pte of DeepEpiCnn with app entries ("not checked") beside them."""
    tmp = tmp_path_factory.mktemp("phone")
    model = make_checkpoint(tmp / "m.pt")
    shape = (1, 1, 750)
    calibration = torch.from_numpy(osdbSim.example_windows(64, length=750, seed=5))
    paths = {}
    for kind, quantize in (("fp32", None), ("int8", "int8")):
        path = tmp / f"{kind}.pte"
        report = exportCore.export_pte(model, shape, path, "xnnpack", quantize,
                                        calibration if quantize else None,
                                        inputs=osdbSim.reference_windows(shape))
        appIndex.write_entry_beside(path, appIndex.app_entry(path, report))
        paths[kind] = path
    return paths


def test_fp32_and_int8_run_on_both_emulated_cpus_and_entries_record_it(small_ptes, tmp_path):
    report = tmp_path / "report.json"
    argv = [str(small_ptes["fp32"]), str(small_ptes["int8"]), "--windows", "8", "--report", str(report),
            "--allow-no-dotprod"]
    assert phoneCheckScript.main(argv) == 0
    results = json.loads(report.read_text())["files"]
    for kind, path in small_ptes.items():
        result = results[str(path)]
        assert {cpu: r["outcome"] for cpu, r in result["cpus"].items()} == \
            {"cortex-a53": "ok", "cortex-a76": "ok"}, result
        assert result["n_windows"] == 8 and result["max_abs_diff"] <= 1e-4
        assert result["runtime"].startswith("executorch 1.0.1 ")
        entry = json.loads(path.with_suffix(".json").read_text())
        assert entry["min_cpu_features"] == ["asimd"]  # allowed: the ARMv8.0 core ran it
        assert entry["phone_check"]["status"] == "checked"
        assert entry["phone_check"]["cpus"] == {"cortex-a53": "ok", "cortex-a76": "ok"}
        assert entry["phone_check"]["runtime"] == result["runtime"]
    guests = results[str(small_ptes["int8"])]["guests"]
    # the cpuinfo fix holds: the wheel's XNNPACK sees no dotprod / fp16 on the A53, both on the A76
    assert guests["cortex-a53"]["xnnpack_sees"]["dot"] is False
    assert guests["cortex-a53"]["xnnpack_sees"]["fp16arith"] is False
    assert guests["cortex-a76"]["xnnpack_sees"]["dot"] is True
    assert guests["cortex-a76"]["cpu"]["midr"] == "0x414fd0b1"  # the phone's /proc/cpuinfo was read


def test_without_the_fix_the_wheel_dies_on_armv80(small_ptes):
    """What the fix prevents (and proof that the emulated A53 traps dotprod instructions)."""
    result = phoneCheck.check_ptes([small_ptes["int8"]], cpus=("cortex-a53",), cpuinfo_fix=False,
                                   n_windows=2, obey_skip=False)[str(small_ptes["int8"])]
    assert result["cpus"]["cortex-a53"]["outcome"] == "illegal instruction"
    assert not result["ok"]
    inputs = osdbSim.reference_windows((1, 1, 750), n=2)
    assert np.isfinite(exportCore.run_pte(str(small_ptes["int8"]), inputs)).all()  # fine on x86


def test_legacy_model_with_adaptive_pooling_runs_on_both_emulated_cpus(phone_env, tmp_path, monkeypatch):
    """legacy_smallnet.ptl pools with adaptive_avg_pool1d: exported as that op, the app's 1.0.1 runtime
    could not load the file ("Missing operator: aten::_adaptive_avg_pool2d.out"); exported as the
    equal avg_pool it runs on both emulated cores."""
    monkeypatch.delenv("OSD_PHONE_CHECK", raising=False)
    out = tmp_path / "small.pte"
    assert convertPtl2Pte.main([str(FIXTURES / "legacy_smallnet.ptl"), "-o", str(out), "--quiet"]) == 0
    entry = json.loads(out.with_suffix(".json").read_text())
    assert entry["phone_check"]["cpus"] == {"cortex-a53": "ok", "cortex-a76": "ok"}
    io = np.load(FIXTURES / "legacy_smallnet_io.npz")
    assert np.abs(exportCore.run_pte(str(out), io["inputs"]) - io["outputs"]).max() < 1e-4
