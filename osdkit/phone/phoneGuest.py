"""What runs inside the emulated phone (aarch64 CPython under qemu-user): the app's ExecuTorch runtime
on some .pte files. Started by phoneCheck.py; needs only the standard library, numpy, torch and
executorch of the phone environment (phoneEnv.py), never this toolkit's x86 modules.

    python3.11 phoneGuest.py JOB.json   # {"site", "cpuinfo_fix", "result", "files": [{pte, inputs, outputs}]}

Each file runs in a forked child, so an illegal instruction kills that child only; the parent writes
JOB's "result" file: one outcome per file, plus what the runtime saw of the CPU.

The cpuinfo fix: the executorch 1.0.1 aarch64 wheel has no cpuinfo of its own; its XNNPACK reads the
`cpuinfo_isa` table of torch 2.9.1's libtorch_cpu, but was compiled against a newer cpuinfo.h that has
a `uint32_t smelen` after `svelen`. Every field from `rdm` on is 4 bytes later for XNNPACK than where
torch's cpuinfo wrote it: XNNPACK reads fp16arith from torch's `fhm` byte and dotprod from its `aes`
byte, so on an ARMv8.0 core with AES (Cortex-A53) it picks dotprod kernels and dies of SIGILL. Copying
torch's rdm..fhm bytes (16..21) to where XNNPACK reads them (20..25) before the runtime is loaded (its
XNNPACK reads the table once, at load) gives the kernel choice a correct build makes.
"""
import ctypes
import json
import os
import signal
import sys
import time
import traceback

HWCAP_AES, HWCAP_FPHP, HWCAP_ASIMDHP, HWCAP_ASIMDDP = 1 << 3, 1 << 9, 1 << 10, 1 << 20
TORCH_RDM, XNNPACK_RDM, N_MOVED = 16, 20, 6  # rdm, fp16arith, dot, jscvt, fcma, fhm
TORCH_FP16ARITH, TORCH_DOT, TORCH_AES = 17, 18, 22
TORCH_ISA_BYTES = 28  # sizeof(struct cpuinfo_arm_isa) on aarch64 in torch 2.9.1's cpuinfo


def hwcap():
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    return libc.getauxval(16)  # AT_HWCAP: the features the (emulated) kernel reports


def cpuinfo_table(torch_lib_dir):
    """torch's initialised `cpuinfo_isa` table (writable bytes) and the core cpuinfo detected."""
    # RTLD_LOCAL (ctypes' default): global scope would let torch's own, older xnn_* symbols
    # interpose on executorch's XNNPACK, whose delegate then fails to initialise
    lib = ctypes.CDLL(os.path.join(torch_lib_dir, "libtorch_cpu.so"))
    if not lib.cpuinfo_initialize():
        raise RuntimeError("cpuinfo_initialize failed")
    lib.cpuinfo_get_uarch.restype = ctypes.POINTER(ctypes.c_uint32 * 2)
    uarch, midr = lib.cpuinfo_get_uarch(0).contents
    isa = (ctypes.c_uint8 * TORCH_ISA_BYTES).in_dll(lib, "cpuinfo_isa")
    return isa, {"uarch": hex(uarch), "midr": hex(midr)}


def apply_cpuinfo_fix(isa, caps):
    """Move rdm..fhm to XNNPACK's offsets, after checking the table is laid out as the fix assumes."""
    expected = {TORCH_DOT: caps & HWCAP_ASIMDDP, TORCH_AES: caps & HWCAP_AES,
                TORCH_FP16ARITH: caps & HWCAP_FPHP and caps & HWCAP_ASIMDHP}
    wrong = [i for i, want in expected.items() if isa[i] != bool(want)]
    if wrong:
        raise RuntimeError(f"torch's cpuinfo_isa bytes {wrong} do not match the CPU's hwcaps: "
                           "the layout differs from the one the cpuinfo fix was written for")
    moved = bytes(isa[TORCH_RDM:TORCH_RDM + N_MOVED])
    for i, value in enumerate(moved):
        isa[XNNPACK_RDM + i] = value


def load_runtime(site):
    """The wheel's C++ runtime module (what executorch.extension.pybindings.portable_lib re-exports,
    without the exporter's Python packages that the wrapper imports first: saves ~15 s emulated)."""
    import importlib.util
    name = "executorch.extension.pybindings._portable_lib"
    folder = os.path.join(site, *name.split(".")[:-1])
    path = os.path.join(folder, next(f for f in os.listdir(folder) if f.startswith("_portable_lib.")))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def runtime_complaint(log_path, err):
    """The runtime's own reason (e.g. 'Missing operator: [2] aten::...') from its log, else err's."""
    with open(log_path, errors="replace") as f:
        lines = [ln.split("] ", 1)[-1].strip() for ln in f if "Missing operator" in ln or "rror" in ln]
    return (lines[0] if lines else str(err).strip().splitlines()[-1])[:200]


def run_file(runtime, job_file):
    """Child: load the program and its forward method (operators resolved, delegates initialised),
    then run every window; outputs to job_file['outputs']."""
    import numpy as np
    import torch
    log_path = job_file["outputs"] + ".log"
    with open(log_path, "w") as log:  # the runtime logs to stderr: keep this file's lines apart
        os.dup2(log.fileno(), 2)
    try:
        method = runtime._load_program(job_file["pte"]).load_method("forward")
        shape = tuple(method.method_meta().input_tensor_meta(0).sizes())
    except Exception as err:
        return {"outcome": "cannot load", "detail": runtime_complaint(log_path, err)}
    batches = torch.from_numpy(np.load(job_file["inputs"])).reshape((-1,) + shape)
    outputs = [method((batch,))[0].numpy() for batch in batches]
    np.save(job_file["outputs"], np.concatenate(outputs))
    return {"outcome": "ran"}


def run_in_child(runtime, job_file):
    """Fork, run one file, and classify how the child ended."""
    result_path, start = job_file["outputs"] + ".json", time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            result = run_file(runtime, job_file)
        except BaseException:
            result = {"outcome": "run failed", "detail": traceback.format_exc(limit=1)[-300:]}
        with open(result_path, "w") as f:
            json.dump(result, f)
        sys.stdout.flush()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    seconds = round(time.perf_counter() - start, 2)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        outcome = "illegal instruction" if sig == signal.SIGILL else f"crashed ({signal.Signals(sig).name})"
        return {"outcome": outcome, "seconds": seconds}
    with open(result_path) as f:
        return dict(json.load(f), seconds=seconds)


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    sys.path.insert(0, job["site"])
    report, start = {"hwcap": hex(hwcap())}, time.perf_counter()
    try:
        import torch
        isa, report["cpu"] = cpuinfo_table(os.path.join(os.path.dirname(torch.__file__), "lib"))
        if job["cpuinfo_fix"]:
            apply_cpuinfo_fix(isa, hwcap())
        # rdm, fp16arith, dot, jscvt, fcma, fhm where the 1.0.1 wheel's XNNPACK reads them
        report["xnnpack_sees"] = dict(zip(("rdm", "fp16arith", "dot", "jscvt", "fcma", "fhm"),
                                          map(bool, isa[XNNPACK_RDM:XNNPACK_RDM + N_MOVED])))
        runtime = load_runtime(job["site"])  # its XNNPACK reads the table now
        from importlib.metadata import version
        report.update(torch=torch.__version__, executorch=version("executorch"),
                      import_seconds=round(time.perf_counter() - start, 1))
        report["files"] = [run_in_child(runtime, f) for f in job["files"]]
    except Exception as err:
        report["error"] = f"{type(err).__name__}: {err}"[:300]
    with open(job["result"], "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(sys.argv[1])
