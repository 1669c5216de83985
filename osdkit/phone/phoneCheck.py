"""Run .pte files the way a phone would: the app's ExecuTorch runtime (1.0.1, aarch64) on emulated phone CPUs.

    python phoneCheck.py model.pte [more.pte ...] [--report phone_check.json] [--windows 32]

Each file runs under QEMU user mode on an ARMv8.0 core (cortex-a53: no dotprod, no fp16 arithmetic,
like many cheap phones) and an ARMv8.2 core (cortex-a76: dotprod and fp16), on realistic windows, and is
compared with this toolkit's x86 runtime (executorch 1.5.1). Per CPU: ok / wrong outputs / illegal
instruction / cannot load (or crashed / run failed). Exit 0 only when every file is ok on every CPU.
The environment is built once by phoneEnv.py (--build here builds it when missing). An app entry
`<name>.json` beside a checked file (same sha256) gets the result; --allow-no-dotprod also drops
asimddp from its min_cpu_features, only when the emulated ARMv8.0 core ran the file correctly.
QEMU is no phone: its timings mean nothing, and the Android library is built differently from the
PyPI wheel (see EXECUTORCH_EXPORT.md).
"""
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from osdkit.app import appIndex
from osdkit.export import exportCore
from osdkit.export.exportCore import ExportError
from osdkit.io import fileUtils
from osdkit.phone import phoneEnv
from osdkit.sim import osdbSim

SKIP_VARIABLE = "OSD_PHONE_CHECK"  # "off": converters and the main job skip the check (the tests set it)
ADMITTED_CPU = "cortex-a76"  # the emulated core class that min_cpu_features ["asimd", "asimddp"] admits
CPUS = tuple(phoneEnv.CPUINFO)  # cortex-a53 (ARMv8.0), cortex-a76 (ARMv8.2 + dotprod + fp16)
TOLERANCE = exportCore.PARITY_TOLERANCE
GUEST = Path(__file__).resolve().with_name("phoneGuest.py")
TIMEOUT_VARIABLE = "OSD_PHONE_CHECK_TIMEOUT"  # seconds the emulated runs may take (default GUEST_TIMEOUT_S)
GUEST_TIMEOUT_S = 1800


class PhoneEnvironmentError(ExportError):
    """The phone environment is there but broken or too slow: not the model's fault."""


def skip_reason():
    """"skipped (OSD_PHONE_CHECK=off)" when the environment variable turns the check off, else None."""
    return f"skipped ({SKIP_VARIABLE}=off)" if os.environ.get(SKIP_VARIABLE, "").lower() == "off" else None


def timeout_s(value=None):
    """The phone check's time limit in seconds: `value` (a flag), else $OSD_PHONE_CHECK_TIMEOUT, else
    GUEST_TIMEOUT_S; UsageError for anything but a positive number."""
    source = "--timeout" if value is not None else TIMEOUT_VARIABLE
    value = value if value is not None else os.environ.get(TIMEOUT_VARIABLE, GUEST_TIMEOUT_S)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (np.isfinite(seconds) and seconds > 0):
        raise exportCore.UsageError(f"{source} {value!r}: expected a positive number of seconds")
    return seconds


def rebuild_hint(cache=None):
    return (f"rebuild it with: rm -rf {phoneEnv.env_dir(cache)} && python phoneEnv.py; "
            f"{SKIP_VARIABLE}=off skips the check")


def x86_runtime():
    import platform

    import executorch.version
    return f"executorch {executorch.version.__version__} ({platform.machine()})"


def _x86_reference(pte, windows, n_windows):
    """(windows (n, 1, L) as the app passes them one by one, this toolkit's x86 outputs for them):
    `n_windows` realistic reference windows unless `windows` are given. ExportError naming the file when it is no
    program the app can run (one float32 [1, 1, L] input, two finite logits out), here on x86 already."""
    _, length = exportCore.load_app_pte(pte, osdbSim.reference_windows)
    shape = (1, 1, length)
    if windows is None:
        inputs = osdbSim.reference_windows(shape, n=n_windows)
    else:
        inputs = np.ascontiguousarray(windows, dtype=np.float32).reshape((-1,) + shape[1:])
    try:
        outputs = exportCore.run_pte(str(pte), inputs, shape[0])
    except ExportError as err:
        raise ExportError(str(err) if str(err).startswith(str(pte)) else f"{pte}: {err}") from None
    exportCore.check_logits(outputs, pte)
    return inputs, outputs


def _run_guests(jobs, cache, timeout):
    """Start one emulated python per CPU (side by side), wait, return {cpu: guest report}."""
    procs = {}
    try:
        for cpu, job in jobs.items():
            log = open(job["result"] + ".log", "w")
            try:
                proc = subprocess.Popen([*phoneEnv.guest_command(cpu, cache), str(GUEST), job["path"]],
                                        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        env=dict(os.environ, OMP_NUM_THREADS="1"))
            except OSError as err:
                log.close()
                raise PhoneEnvironmentError(f"cannot start the emulated {cpu}: {err.strerror}") from None
            procs[cpu] = proc, log, time.perf_counter()
        reports = {}
        for cpu, (proc, log, start) in procs.items():
            try:
                proc.wait(timeout=max(1, timeout - (time.perf_counter() - start)))
            except subprocess.TimeoutExpired:
                raise PhoneEnvironmentError(f"emulated {cpu} took over {timeout:g} s; {TIMEOUT_VARIABLE} or "
                                            "--phone-timeout sets the limit") from None
            log.close()
            reports[cpu] = _guest_report(cpu, jobs[cpu]["result"], proc.returncode)
            reports[cpu]["process_seconds"] = round(time.perf_counter() - start, 1)
        return reports
    finally:
        for proc, log, _ in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def _guest_report(cpu, result_path, returncode):
    """The guest's report; ExportError when the emulated python itself failed."""
    try:
        report = json.loads(Path(result_path).read_text())
    except (OSError, ValueError):
        lines = Path(result_path + ".log").read_text(errors="replace").strip().splitlines()
        raise PhoneEnvironmentError(f"emulated {cpu} python exited {returncode} without a result: "
                                    f"{(lines or ['no output'])[-1][:200]}") from None
    if not isinstance(report, dict) or not isinstance(report.get("files", []), list):
        raise PhoneEnvironmentError(f"emulated {cpu} wrote a malformed result")
    if "error" in report:
        raise PhoneEnvironmentError(f"the runtime on emulated {cpu} failed to start: {report['error']}")
    return report


def check_ptes(pte_paths, windows=None, cache_dir=None, cpus=CPUS, cpuinfo_fix=True,
               n_windows=osdbSim.REFERENCE_WINDOWS, timeout=None, obey_skip=True, keep_going=False):
    """Phone-check several .pte files in one emulated process per CPU; return {path: result}.

    Each result is what check_pte returns. A model that gives no two finite logits on x86 raises
    ExportError naming the file, or with keep_going gets {"available": True, "ok": False, "error": that
    line} and the other files are checked. Raises PhoneEnvironmentError when the environment is there
    but the emulated runtime cannot start or takes over `timeout` s (timeout_s). obey_skip=False runs it
    even under OSD_PHONE_CHECK=off."""
    timeout = timeout_s(timeout)
    reason = (skip_reason() if obey_skip else None) or phoneEnv.missing_reason(cache_dir)
    if reason:
        return {str(p): {"available": False, "reason": reason} for p in pte_paths}
    references, broken = {}, {}
    for pte in pte_paths:
        try:
            references[str(pte)] = _x86_reference(pte, windows, n_windows)
        except ExportError as err:
            if not keep_going:
                raise
            broken[str(pte)] = {"available": True, "ok": False, "error": str(err)}
    checked = _check_on_guests(references, cache_dir, cpus, cpuinfo_fix, timeout) if references else {}
    return {str(p): broken.get(str(p)) or checked[str(p)] for p in pte_paths}


def _check_on_guests(references, cache_dir, cpus, cpuinfo_fix, timeout):
    """{path: result} of the files in references ({path: (inputs, x86 outputs)}) on the emulated CPUs."""
    env = phoneEnv.manifest(cache_dir)
    pte_paths = list(references)
    with tempfile.TemporaryDirectory(prefix="osd-phone-check-") as tmp:
        files = []
        for i, pte in enumerate(pte_paths):
            np.save(f"{tmp}/in{i}.npy", references[pte][0])
            files.append({"pte": str(Path(pte).resolve()), "inputs": f"{tmp}/in{i}.npy"})
        jobs = {}
        for cpu in cpus:
            jobs[cpu] = {"site": str(phoneEnv.env_dir(cache_dir) / "site"), "cpuinfo_fix": cpuinfo_fix,
                         "result": f"{tmp}/{cpu}.json", "path": f"{tmp}/{cpu}.job.json",
                         "files": [dict(f, outputs=f"{tmp}/{cpu}_out{i}.npy") for i, f in enumerate(files)]}
            Path(jobs[cpu]["path"]).write_text(json.dumps(jobs[cpu]))
        guests = _run_guests(jobs, cache_dir, timeout)
        first = guests[cpus[0]]
        torch_version = first["torch"].split("+")[0]
        runtime = (f"executorch {first['executorch']} (PyPI aarch64 wheel, torch {torch_version}"
                   f"{', cpuinfo fix' if cpuinfo_fix else ''})")
        results = {}
        for i, pte in enumerate(pte_paths):
            reference = references[pte][1]
            per_cpu = {cpu: _outcome(guests[cpu]["files"][i], jobs[cpu]["files"][i]["outputs"], reference)
                       for cpu in cpus}
            diffs = [r["max_abs_diff"] for r in per_cpu.values() if "max_abs_diff" in r]
            results[pte] = {
                "available": True, "ok": all(r["outcome"] == "ok" for r in per_cpu.values()),
                "cpus": per_cpu, "max_abs_diff": max(diffs) if diffs else None,
                "n_windows": int(len(reference)), "tolerance": TOLERANCE,
                "runtime": runtime,
                "emulator": env["qemu"].split(" (")[0], "reference": x86_runtime(),
                "guests": {cpu: {k: guests[cpu][k] for k in guests[cpu] if k != "files"} for cpu in cpus}}
    return results


def check_ptes_or_not_checked(pte_paths, windows=None, cache_dir=None, timeout=None, log=print):
    """check_ptes for the converters and the main job: when the environment is broken or times out,
    one line says so and how to rebuild it, and every file is recorded "not checked" with the reason."""
    try:
        return check_ptes(pte_paths, windows, cache_dir, timeout=timeout)
    except PhoneEnvironmentError as err:
        reason = f"phone environment broken ({err})"
        log(f"phone check: not run: {reason}; {rebuild_hint(cache_dir)}")
        return {str(p): {"available": False, "reason": reason} for p in pte_paths}


def check_pte(pte_path, windows=None, cache_dir=None):
    """Run one .pte on the app's runtime on emulated cortex-a53 and cortex-a76, compare with x86.

    Returns {"available": False, "reason": ...} when the environment is not built (or
    OSD_PHONE_CHECK=off), else
    {"available": True, "ok", "cpus": {cpu: {"outcome", "max_abs_diff", "seconds"}}, "max_abs_diff",
    "n_windows", "tolerance", "runtime", "emulator", "reference", "guests"}; outcome is "ok",
    "wrong outputs", "illegal instruction", "cannot load", "crashed (SIG...)" or "run failed"."""
    return check_ptes([pte_path], windows, cache_dir)[str(pte_path)]


def _outcome(ran, outputs_path, reference):
    """One file on one CPU: the guest's outcome, compared with the x86 outputs when it ran."""
    result = {k: v for k, v in ran.items() if k != "outcome"}
    if ran["outcome"] != "ran":
        return {"outcome": ran["outcome"], **result}
    got = np.load(outputs_path)
    diff = float(np.abs(got - reference).max()) if got.shape == reference.shape else float("inf")
    return {"outcome": "ok" if diff <= TOLERANCE else "wrong outputs", "max_abs_diff": diff, **result}


def admitted_cpu_failure(result):
    """Why the file fails on ADMITTED_CPU, the core class min_cpu_features ["asimd", "asimddp"] lets
    load it (so the app would run it there and die), or None when it ran ok or was not checked."""
    admitted = result["cpus"][ADMITTED_CPU] if result.get("available") else {"outcome": "ok"}
    if admitted["outcome"] == "ok":
        return None
    return (f"fails on the app's runtime on an emulated {ADMITTED_CPU} ({admitted['outcome']}"
            + (f": {admitted['detail']}" if admitted.get("detail") else "") + ")")


def summary(result):
    """One line per file: the outcome per CPU and the largest difference from x86."""
    if not result["available"]:
        return f"not checked: {result['reason']}"
    if "error" in result:
        return f"refused: {result['error']}"
    cpus = ", ".join(f"{cpu} {r['outcome']}" for cpu, r in result["cpus"].items())
    details = sorted({r["detail"] for r in result["cpus"].values() if r.get("detail")})
    diff = result["max_abs_diff"]
    return (f"{cpus} (max |d logit| vs x86 {'-' if diff is None else f'{diff:.1e}'} on "
            f"{result['n_windows']} windows, {result['runtime']})" + "".join(f"; {d}" for d in details))


def update_entry(pte, result, allow_no_dotprod=False):
    """Record `result` in the app entry `<name>.json` beside `pte` when it describes this very file."""
    path = Path(pte).with_suffix(".json")
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("sha256") != fileUtils.sha256_of(pte):
        return None
    entry["min_cpu_features"] = appIndex.min_cpu_features(result, allow_no_dotprod, pte)
    entry["phone_check"] = appIndex.phone_check_record(result)
    fileUtils.write_json_atomic(path, entry)
    return path
