"""Robustness: every bad input to a converter script fails cleanly.

Each case runs the real script as a subprocess and checks the contract of `cliUtils.run_cli`:
- exit code 1 for a bad input/output/conversion, 2 for a usage error (argparse's, or a malformed
  --input-shape value), 128+N when stopped by signal N (130 SIGINT, 143 SIGTERM);
- stderr is exactly one line, 'error: ...', naming the offending file (or flag); no traceback;
- the output folder is unchanged (names, sizes, mtimes, bytes), also with an earlier output at the
  target path, and no temp file is left.
A batch run prints one 'error: FILE: ...' line per bad file plus the count 'N of M converted, K failed'.
"""
import hashlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from osdkit.io import fileUtils
from osdkit.model import deepEpiCnn

from conftest import FIXTURES, ROOT, make_checkpoint, run_script

HAVE_LEGACY_PTL = importlib.util.find_spec("osdkit.export.legacyPtl") is not None
needs_legacy_ptl = pytest.mark.skipif(not HAVE_LEGACY_PTL,
                                      reason="legacyPtl.py (used by convertPtl2Pte.py) is not there yet")
PT2PTE, PT2PTL, PTL2PTE = "convertPt2Pte.py", "convertPt2Ptl.py", "convertPtl2Pte.py"
SUFFIX = {PT2PTE: ".pte", PT2PTL: ".ptl", PTL2PTE: ".pte"}
LEGACY_PTL = FIXTURES / "legacy_deepepicnn.ptl"


@pytest.fixture(autouse=True)
def one_thread_per_script(monkeypatch):
    """Script subprocesses run side by side under xdist: OpenMP spinning would slow them ~30x."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _first_half(src, dst):
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[:len(data) // 2])


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Read-only input files, one set per xdist worker: good, broken and wrong ones."""
    d = tmp_path_factory.mktemp("inputs")
    make_checkpoint(d / "good.pt")
    _first_half(d / "good.pt", d / "truncated.pt")
    _first_half(LEGACY_PTL, d / "truncated_legacy.ptl")
    (d / "empty.pt").write_bytes(b"")
    (d / "empty.ptl").write_bytes(b"")
    (d / "text.pt").write_text("not a model\n")
    (d / "text.ptl").write_text("not a model\n")
    (d / "checkpoint.ptl").write_bytes((d / "good.pt").read_bytes())
    (d / "empty_dir").mkdir()
    (d / "no_models_dir").mkdir()
    (d / "no_models_dir" / "notes.txt").write_text("no models here\n")
    other = torch.nn.Sequential(torch.nn.Linear(750, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    torch.save({"epoch": 1, "model_state_dict": other.state_dict(), "optimizer_state_dict": {},
                "config": {}}, d / "other_arch.pt")
    for name, value in (("nan", float("nan")), ("inf", float("inf"))):
        ckpt = torch.load(d / "good.pt", weights_only=True)
        ckpt["model_state_dict"]["conv_stack.0.weight"][0, 0, 2] = value
        torch.save(ckpt, d / f"{name}_weights.pt")
    torch.save(deepEpiCnn.DeepEpiCnn(), d / "whole_module.pt")
    import convertPt2Ptl
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert convertPt2Ptl.main([str(d / "good.pt"), "-o", str(d / "plain.ptl"), "-q"]) == 0
    finally:
        torch.set_num_threads(threads)
    _first_half(d / "plain.ptl", d / "truncated_plain.ptl")
    for folder, names in (("batch", "abc"), ("pool", "xyz")):
        (d / folder).mkdir()
        for i, name in enumerate(names):
            make_checkpoint(d / folder / f"{name}.pt", seed=i)
    (d / "batch" / "b.pt").write_text("not a model\n")
    return d


@pytest.fixture
def out(tmp_path):
    """An output folder holding earlier outputs at every target path (old mtime, known bytes)."""
    folder = tmp_path / "out"
    folder.mkdir()
    for name in ("target.pte", "target.json", "target.ptl", "b.ptl"):
        (folder / name).write_bytes(f"earlier {name}\n".encode())
        os.utime(folder / name, ns=(1_600_000_000_000_000_000,) * 2)
    (folder / "blocker").write_text("a regular file where a folder should be\n")
    return folder


def listing(folder):
    """{name: (bytes, mtime_ns, sha256)} of every entry, hidden temp files included."""
    result = {}
    for p in sorted(Path(folder).iterdir()):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        result[p.name] = (st.st_size, st.st_mtime_ns, digest)
    return result


def assert_clean_failure(res, mentions, code=1):
    """Exit code, exactly one 'error:' line on stderr naming `mentions`, nothing else, no traceback."""
    lines = res.stderr.splitlines()
    assert res.returncode == code, res.stderr[-3000:]
    assert len(lines) == 1, res.stderr[-3000:]
    assert lines[0].startswith("error: ") and str(mentions) in lines[0], lines[0]
    assert "Traceback" not in res.stderr + res.stdout
    assert res.stdout == ""
    return lines[0]


def check_case(script, args, out, mentions, code=1):
    """The case with --force: the earlier outputs at the targets may be replaced, yet must stay as they
    were because the case fails."""
    before = listing(out)
    res = run_script(script, *args, "--force")
    line = assert_clean_failure(res, mentions, code)
    assert listing(out) == before, line
    return line


# ---------------------------------------------------------------- bad input files
PT_CASES = {  # name -> (input, what the line must name besides the file)
    "missing file": ("missing.pt", "no such file"),
    "empty dir": ("empty_dir", "holding no .pt/.pth files"),
    "dir without models": ("no_models_dir", "holding no .pt/.pth files"),
    "empty file": ("empty.pt", "file is empty"),
    "text renamed .pt": ("text.pt", "not a PyTorch file"),
    "truncated .pt": ("truncated.pt", "truncated"),
    "plain .ptl": ("plain.ptl", "use convertPtl2Pte.py"),
    "legacy .ptl": (LEGACY_PTL, "use convertPtl2Pte.py"),
    "other architecture": ("other_arch.pt", "not DeepEpiCnn's"),
    "NaN weights": ("nan_weights.pt", "NaN or inf"),
    "inf weights": ("inf_weights.pt", "NaN or inf"),
    "pickled module": ("whole_module.pt", "--allow-pickle"),
}
PTL_CASES = {
    "missing file": ("missing.ptl", "no such file"),
    "empty dir": ("empty_dir", "holding no .ptl files"),
    "dir without models": ("no_models_dir", "holding no .ptl files"),
    "empty file": ("empty.ptl", "file is empty"),
    "text renamed .ptl": ("text.ptl", "not a PyTorch file"),
    "truncated legacy .ptl": ("truncated_legacy.ptl", "truncated"),
    "truncated plain .ptl": ("truncated_plain.ptl", "truncated"),
    ".pt checkpoint": ("good.pt", "use convertPt2Pte.py"),
    "checkpoint renamed .ptl": ("checkpoint.ptl", "use convertPt2Pte.py"),
}


@pytest.mark.parametrize("script", [PT2PTE, PT2PTL])
@pytest.mark.parametrize("case", PT_CASES)
def test_bad_checkpoint_input(script, case, inputs, out):
    name, problem = PT_CASES[case]
    src = inputs / name
    line = check_case(script, [src, "-o", out / f"target{SUFFIX[script]}"], out, src)
    assert problem in line


@needs_legacy_ptl
@pytest.mark.parametrize("case", PTL_CASES)
def test_bad_ptl_input(case, inputs, out):
    name, problem = PTL_CASES[case]
    src = inputs / name
    line = check_case(PTL2PTE, [src, "-o", out / "target.pte"], out, src)
    assert problem in line


# ---------------------------------------------------------------- --input-shape
@pytest.mark.parametrize("script,value", [(PT2PTE, v) for v in ("abc", "0,1,750", "1,1,-5", "1;1;750")]
                         + [(PT2PTL, "abc"), pytest.param(PTL2PTE, "abc", marks=needs_legacy_ptl)])
def test_malformed_input_shape_is_a_usage_error(script, value, inputs, out):
    src = inputs / ("plain.ptl" if script == PTL2PTE else "good.pt")
    line = check_case(script, [src, "-o", out / f"target{SUFFIX[script]}", "--input-shape", value],
                      out, f"--input-shape {value!r}", code=2)
    assert "expected" in line


@pytest.mark.parametrize("script,src,value,problem", [
    (PT2PTE, "good.pt", "1,1", "too short"),  # well-formed (B,L), but one sample
    (PT2PTE, "good.pt", "1,1,50", "too short"),
    (PT2PTE, "good.pt", "1,2,750", "one channel"),
    (PT2PTL, "good.pt", "1,1,50", "too short"),
    pytest.param(PTL2PTE, "plain.ptl", "1,1,50", "cannot take it", marks=needs_legacy_ptl),
    pytest.param(PTL2PTE, LEGACY_PTL, "1,1,50", "cannot take it", marks=needs_legacy_ptl),
])
def test_shape_the_model_cannot_take(script, src, value, problem, inputs, out):
    src = inputs / src
    line = check_case(script, [src, "-o", out / f"target{SUFFIX[script]}", "--input-shape", value],
                      out, src)
    assert f"--input-shape {value}" in line and problem in line


def test_argparse_usage_errors_are_one_line(inputs, out):
    line = check_case(PT2PTE, [inputs / "good.pt", "--backend", "fast"], out, "--backend", code=2)
    assert "invalid choice" in line and "--help" in line


# ---------------------------------------------------------------- output folders
@pytest.mark.parametrize("script", [PT2PTE, PT2PTL, pytest.param(PTL2PTE, marks=needs_legacy_ptl)])
@pytest.mark.parametrize("where", ["missing folder", "parent is a file", "folder not writable"])
def test_bad_output_folder(script, where, inputs, out):
    src = inputs / ("plain.ptl" if script == PTL2PTE else "good.pt")
    name = f"target{SUFFIX[script]}"
    if where == "missing folder":
        dst, problem = out / "missing" / name, "does not exist"
    elif where == "parent is a file":
        dst, problem = out / "blocker" / name, "is not a folder"
    else:
        if os.geteuid() == 0:
            pytest.skip("running as root: a chmod'ed folder stays writable ('parent is a file' covers it)")
        dst, problem = out / name, "is not writable"
        out.chmod(0o555)
    try:
        line = check_case(script, [src, "-o", dst], out, dst)
    finally:
        out.chmod(0o755)
    assert problem in line


def test_output_that_is_the_input_is_refused(inputs, out):
    src = out / "copy.pt"
    src.write_bytes((inputs / "good.pt").read_bytes())
    line = check_case(PT2PTL, [src, "-o", src], out, src)
    assert "would overwrite an input" in line


# ---------------------------------------------------------------- --allow-pickle, --debug
def test_allow_pickle_accepts_a_pickled_module(inputs, out):
    res = run_script(PT2PTL, inputs / "whole_module.pt", "--allow-pickle", "--input-norm", "none", "-o",
                     out / "target.ptl", "--force", "-q")
    assert res.returncode == 0 and res.stderr == "", res.stderr[-3000:]
    assert (out / "target.ptl").read_bytes() != b"earlier target.ptl\n"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_debug_shows_the_traceback(inputs, out):
    before = listing(out)
    res = run_script(PT2PTE, inputs / "text.pt", "-o", out / "target.pte", "--force", "--debug")
    assert res.returncode == 1 and "Traceback" in res.stderr
    assert res.stderr.splitlines()[-1].startswith(f"error: {inputs / 'text.pt'}: ")
    assert listing(out) == before


# ---------------------------------------------------------------- batches
def test_batch_with_one_bad_file_converts_the_others(inputs, out):
    """Three inputs, the middle one bad: two outputs, one error line for it, the count, exit 1."""
    srcs = [inputs / "batch" / n for n in ("a.pt", "b.pt", "c.pt")]
    before = listing(out)
    res = run_script(PT2PTL, *srcs, "-o", out, "--jobs", "2", "--force")
    assert res.returncode == 1, res.stderr[-3000:]
    assert res.stderr.splitlines() == [f"error: {srcs[1]}: not a PyTorch file (no zip archive or pickle "
                                       "inside)", "2 of 3 converted, 1 failed"]
    assert "Traceback" not in res.stdout
    assert [ln.split(" -> ")[0] for ln in res.stdout.splitlines()] == [str(srcs[0]), str(srcs[2])]
    after = listing(out)
    assert sorted(set(after) - set(before)) == ["a.ptl", "c.ptl"]
    assert {k: after[k] for k in before} == before  # b.ptl (earlier output of the bad file) untouched


# ---------------------------------------------------------------- Ctrl-C and SIGTERM
def _group(pgid):
    """{pid: cpu seconds} of the processes in process group `pgid`."""
    result = {}
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            result[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return result


def _interrupt_mid_conversion(args, sig, to_group, cpu_seconds):
    """Start a script in its own process group; once it has worked `cpu_seconds` (past imports,
    inside torch.export / lowering), send `sig` to it (or to the whole group, like Ctrl-C)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # as a user runs it
    proc = subprocess.Popen([sys.executable, str(ROOT / args[0]), *map(str, args[1:])], cwd=ROOT,
                            env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while sum(_group(proc.pid).values()) < cpu_seconds and proc.poll() is None:
            assert time.monotonic() < deadline, "conversion did not start"
            time.sleep(0.05)
        assert proc.poll() is None, "conversion finished before the signal: raise cpu_seconds"
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    deadline = time.monotonic() + 20  # workers, forkserver and resource tracker must go too
    while _group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group(proc.pid), "processes left running after the interrupt"
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def _assert_interrupted(res, sig, out, before):
    line = assert_clean_failure(res, "interrupted", code=128 + sig)
    assert line == f"error: interrupted by {signal.Signals(sig).name}; unfinished outputs discarded"
    assert listing(out) == before


@pytest.mark.parametrize("sig,to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c", "sigterm"])
def test_interrupt_single_conversion(sig, to_group, inputs, out):
    before = listing(out)
    # imports take ~3.8 s of CPU (the signal handlers come after them), the conversion ~25 s more
    res = _interrupt_mid_conversion([PT2PTE, inputs / "good.pt", "-o", out / "target.pte", "--force"], sig,
                                    to_group, cpu_seconds=8.0)
    _assert_interrupted(res, sig, out, before)


def test_ctrl_c_stops_the_worker_pool(inputs, out):
    """Ctrl-C (SIGINT to the whole group) while two workers lower: the workers ignore SIGINT, the
    parent sends them SIGTERM, they remove their temp files; no traceback, the third never starts.
    (SIGTERM to the parent alone takes the same path: the workers get no signal of their own.)"""
    srcs = [inputs / "pool" / f"{n}.pt" for n in "xyz"]
    before = listing(out)
    res = _interrupt_mid_conversion([PT2PTE, *srcs, "-o", out, "--jobs", "2"], signal.SIGINT,
                                    to_group=True, cpu_seconds=11.0)
    _assert_interrupted(res, signal.SIGINT, out, before)


def test_ctrl_c_while_torch_loads_is_one_line(inputs, out):
    """Ctrl-C in the seconds torch takes to load (before run_cli's handlers): exit 130 and one line, not
    Python's traceback through the import machinery (osdkit.cli.startup)."""
    before = listing(out)
    proc = subprocess.Popen([sys.executable, str(ROOT / PT2PTE), inputs / "good.pt", "-o", out / "t.pte"],
                            cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while proc.poll() is None and "libtorch" not in Path(f"/proc/{proc.pid}/maps").read_text():
        assert time.monotonic() < deadline, "torch never started loading"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert_clean_failure(subprocess.CompletedProcess([], proc.returncode, stdout, stderr), "interrupted by SIGINT",
                         code=130)  # one line, no traceback
    assert listing(out) == before


def test_importing_a_script_leaves_ctrl_c_alone():
    """Only a script run as the program takes Ctrl-C over while loading; importing one (tests, library
    users) keeps Python's handler."""
    res = subprocess.run([sys.executable, "-c", "import signal, convertPt2Pte; "
                          "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "True", res.stderr[-2000:]


def test_atomic_output_removes_temp_file_on_interrupt(tmp_path):
    target = tmp_path / "m.pte"
    target.write_bytes(b"earlier")
    with pytest.raises(KeyboardInterrupt):
        with fileUtils.atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pte"]
    assert target.read_bytes() == b"earlier"


def test_a_swallowed_ctrl_c_still_discards_the_output(tmp_path, capsys):
    """A library that catches the KeyboardInterrupt of a Ctrl-C must not let the command finish as if
    nothing happened: the output is not committed and the exit is still 130 with the one line."""
    import types

    from conftest import run_main
    target = tmp_path / "m.pte"
    target.write_bytes(b"earlier")

    def main(argv):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here and raises
        except BaseException:  # what a careless library does
            pass
        with fileUtils.atomic_output(target) as tmp:
            tmp.write_bytes(b"new")
        return 0

    try:
        code, out, err = run_main(types.SimpleNamespace(main=main), capsys=capsys)
    finally:
        fileUtils.STOP_SIGNALS.clear()
    assert code == 130
    assert err == "error: interrupted by SIGINT; unfinished outputs discarded\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pte"] and target.read_bytes() == b"earlier"
