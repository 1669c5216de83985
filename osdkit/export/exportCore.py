"""The export core: eager model -> verified .pte (ExecuTorch), and the checks every export shares
(input files, logits, parity); the .ptl path is ptlExport.

Read top to bottom this is the whole `.pt` -> `.pte` path after checkpoints.model_from_checkpoint:
export_program (torch.export) -> [quantizeInt8.quantize_int8]
-> lower (to_edge_transform_and_lower, XNNPACK or portable) -> to_executorch -> write_verified
(temp file, run it with the ExecuTorch runtime, compare with the eager model, rename).
Every failure is an ExportError whose message is one line; cliUtils.run_cli prints it and exits non-zero.
"""
import contextlib
import importlib.util
import logging
import os
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from osdkit.data import osdbData, windowing
from osdkit.export import quantizeInt8
from osdkit.io.fileUtils import atomic_output

PARITY_TOLERANCE = 1e-4
INT8_MAX_PROB_DIFF = 0.15  # |dp(seizure)| bound for int8; a window the model decides by more keeps its class


# Framework chatter that is not about the user's model (missing CUDA kernels, deprecations).
for _name in ("torchao", "torch._export", "torch.utils._pytree", "torch.export"):
    logging.getLogger(_name).setLevel(logging.ERROR)


class ExportError(Exception):
    """A problem with an input or an export; the message is one line for the user."""


class VerificationError(ExportError):
    """An exported file that ran but does not compute what the model computes (outside the tolerance)."""


class UsageError(ExportError):
    """A malformed command-line value; `run_cli` exits 2 for it, as argparse does for usage errors."""


NO_EXECUTORCH = "Could not convert model to .pte format: executorch is not installed"


def executorch_missing():
    """NO_EXECUTORCH when ExecuTorch cannot be imported (it is optional: .pt/.ptl work without it), else None."""
    try:  # finds the exporter and the runtime without importing them (that takes seconds)
        found = all(importlib.util.find_spec(name) for name in ("executorch.exir", "executorch.runtime"))
    except ImportError:
        found = False
    return None if found else NO_EXECUTORCH


def require_executorch():
    """ExportError(NO_EXECUTORCH) for the .pte converters when ExecuTorch is not installed."""
    if executorch_missing():
        raise ExportError(NO_EXECUTORCH)


def check_logits(outputs, what, num_classes=2):
    """ExportError naming `what` unless `outputs` is (N, num_classes) of finite logits (the app takes
    softmax(output)[1] of two)."""
    outputs, what = np.asarray(outputs), f"{what}: " if what else ""
    if outputs.ndim != 2 or outputs.shape[1] != num_classes:
        raise ExportError(f"{what}outputs of shape {list(outputs.shape[1:])} per window, expected "
                          f"{num_classes} logits (the app takes softmax(output)[1])")
    if not np.isfinite(outputs).all():
        raise ExportError(f"{what}outputs NaN or inf on realistic windows (already on x86: the model "
                          "itself is broken)")


# ---------------------------------------------------------------- inputs and checkpoints
def parse_input_shape(text):
    """'1,1,750' -> (1, 1, 750); raise UsageError (an ExportError) for anything else."""
    try:
        shape = tuple(int(v) for v in str(text).replace("x", ",").split(","))
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: expected integers like 1,1,750") from None
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise UsageError(f"--input-shape {text!r}: expected 2 or 3 positive integers like 1,1,750")
    return shape


def check_file(path):
    """The path of an existing, non-empty regular file, else ExportError."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path}: no such file")
    if path.is_dir():
        raise ExportError(f"{path}: is a directory, expected a file")
    if not path.is_file():
        raise ExportError(f"{path}: is not a regular file")
    if path.stat().st_size == 0:
        raise ExportError(f"{path}: file is empty")
    if not os.access(path, os.R_OK):
        raise ExportError(f"{path}: file is not readable")
    return path


def is_torchscript_archive(path):
    with zipfile.ZipFile(path) as zf:
        return any(n.split("/", 1)[-1].startswith(("code/", "bytecode.pkl")) for n in zf.namelist())


def archive_problem(path):
    """Why `path` is no torch.save zip or pickle: "truncated ...", "not a ..."; None if it may be one."""
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        zipfile.ZipFile(path).close()
        return None
    except (zipfile.BadZipFile, ValueError, OSError):
        if head.startswith(b"PK"):
            return "truncated or corrupt file (the zip archive is incomplete)"
    return "not a PyTorch file (no zip archive or pickle inside)" if head[:1] != b"\x80" else None


def short_error(err, limit=160):
    """The first line of an exception from torch's internals, without miniz's advice paragraph."""
    text = str(err).split("WeightsUnpickler error:", 1)[-1]  # after torch.load's advice
    text = first_line(text or err).split(" This is an internal miniz error")[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------- torch.export and ExecuTorch (.pte)
def export_program(module, example):
    """torch.export a module (eager, or TorchScript via TS2EPConverter) with a static input shape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if isinstance(module, torch.jit.ScriptModule):
                from torch._export.converter import TS2EPConverter
                module = TS2EPConverter(module, (example,)).convert().module()  # a graph: no .eval()
            elif not isinstance(module, torch.fx.GraphModule):  # quantised graphs have no .eval()
                module = module.eval()
            return torch.export.export(module, (example,))
        except Exception as err:
            raise ExportError(f"torch.export failed: {first_line(err)}") from None


def calibration_windows(osdb_path, input_shape, n=512, seed=0):
    """Up to n real windows from an OSDB file, in the model's input layout, for int8 calibration."""
    events, _ = osdbData.read_osdb_file(check_file(osdb_path))
    windows = windowing.make_windows(events, max(input_shape[1:]))
    if len(windows) == 0:
        raise ExportError(f"{osdb_path}: no complete {max(input_shape[1:])}-sample windows to calibrate on")
    idx = np.sort(np.random.default_rng(seed).choice(len(windows), min(n, len(windows)), replace=False))
    return windows.batch(idx).reshape((len(idx),) + tuple(input_shape[1:]))


def lower(program, backend="xnnpack"):
    """ExportedProgram -> ExecuTorch program bytes; XNNPACK-delegated or portable kernels."""
    from executorch.exir import to_edge_transform_and_lower
    if backend not in ("xnnpack", "portable"):
        raise ExportError(f"unknown backend {backend!r} (use xnnpack or portable)")
    partitioner = []
    if backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        partitioner = [XnnpackPartitioner()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return to_edge_transform_and_lower(program, partitioner=partitioner).to_executorch().buffer
        except Exception as err:
            raise ExportError(f"ExecuTorch lowering failed: {first_line(err)}") from None


@contextlib.contextmanager
def native_stderr_to(log):
    """Send C++ runtime chatter on fd 2 to `log` (a temp file) so the console stays clean."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def load_pte_method(path_or_bytes):
    """Load the `forward` method of a .pte with the ExecuTorch runtime."""
    from executorch.runtime import Runtime
    with tempfile.TemporaryFile("w+") as log, native_stderr_to(log), contextlib.redirect_stderr(log):
        try:  # the runtime logs through fd 2 and, via pybind11, through sys.stderr
            return Runtime.get().load_program(path_or_bytes).load_method("forward")
        except Exception as err:
            log.seek(0)
            detail = log.read().strip().splitlines()[-1:] or [first_line(err)]
            raise ExportError(f"ExecuTorch runtime cannot load the program: {detail[0][:160]}") from None


FLOAT32 = 6  # ExecuTorch's ScalarType code for float32 tensors


def load_app_pte(path, example_windows):
    """(forward method, input_size) of a .pte the app can run: one float32 input [1, 1, input_size],
    one output of two finite logits on `example_windows(input_shape)` (realistic windows, e.g.
    osdbSim.reference_windows); ExportError naming the file otherwise."""
    path = check_file(path)
    try:
        method = load_pte_method(str(path))
    except ExportError as err:
        raise ExportError(f"{path}: {err}") from None
    meta = method.metadata
    if meta.num_inputs() != 1:
        raise ExportError(f"{path}: takes {meta.num_inputs()} inputs; the app passes one [1, 1, input_size] tensor")
    sizes, dtype = tuple(meta.input_tensor_meta(0).sizes()), meta.input_tensor_meta(0).dtype()
    if len(sizes) != 3 or sizes[:2] != (1, 1) or dtype != FLOAT32:
        raise ExportError(f"{path}: input shape {list(sizes)}{'' if dtype == FLOAT32 else ' (not float32)'}, "
                          "the app passes float32 [1, 1, input_size]")
    if meta.num_outputs() != 1:
        raise ExportError(f"{path}: returns {meta.num_outputs()} outputs; the app reads one tensor of 2 logits")
    windows = torch.as_tensor(np.ascontiguousarray(example_windows(sizes)[:4], dtype=np.float32))
    try:
        outputs = execute_method(method, windows, 1)
    except Exception as err:
        raise ExportError(f"{path}: the ExecuTorch runtime cannot run it ({first_line(err)})") from None
    check_logits(outputs, path)
    return method, int(sizes[2])


def execute_method(method, inputs, batch):
    """`method`'s outputs on `inputs` in chunks of `batch`, the runtime's log kept off the terminal."""
    with tempfile.TemporaryFile("w+") as log, native_stderr_to(log), contextlib.redirect_stderr(log):
        return np.concatenate([method.execute([inputs[i:i + batch]])[0].numpy() for i in range(0, len(inputs), batch)])


def run_pte(path_or_bytes, inputs, batch=1, name=None):
    """Run a .pte on `inputs` in chunks of its static batch (1 for the app); outputs as numpy.
    ExportError naming `name` (default: the path) when the runtime cannot load or run it."""
    name = name or (path_or_bytes if isinstance(path_or_bytes, (str, Path)) else "the program")
    inputs = torch.as_tensor(np.ascontiguousarray(inputs))
    try:
        return execute_method(load_pte_method(path_or_bytes), inputs, batch)
    except Exception as err:
        raise ExportError(f"{name}: {err}" if isinstance(err, ExportError) else f"{name}: the ExecuTorch runtime "
                          f"cannot run it on windows of {tuple(inputs.shape[1:])} ({first_line(err)})") from None


def eager_outputs(module, inputs, batch=1):
    with torch.no_grad():
        return np.concatenate([module(inputs[i:i + batch]).numpy() for i in range(0, len(inputs), batch)])


def softmax(logits):
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def compare_outputs(reference, got, quantized=False):
    """Parity figures; `ok` uses 1e-4 max abs for float exports, |dp| <= INT8_MAX_PROB_DIFF for int8.
    The share of windows keeping their class is reported, not judged: a window the float model puts
    near p = 0.5 may flip under any allowed |dp|, and every window it decides by more cannot."""
    if got.shape != reference.shape:
        return {"ok": False, "reason": f"output shape {got.shape[1:]} != eager {reference.shape[1:]}"}
    diff = float(np.abs(got - reference).max())
    result = {"max_abs_diff": diff, "n_windows": int(len(reference))}
    if reference.shape[1] >= 2:
        p_ref, p_got = softmax(reference), softmax(got)
        result["class_agreement"] = float((p_ref.argmax(1) == p_got.argmax(1)).mean())
        result["max_prob_diff"] = float(np.abs(p_ref[:, 1] - p_got[:, 1]).max())
    if quantized:
        result["ok"] = bool(result.get("max_prob_diff", 1) <= INT8_MAX_PROB_DIFF)
        result["tolerance"] = f"|dp| <= {INT8_MAX_PROB_DIFF} on every window"
    else:
        result["ok"] = bool(np.isfinite(diff) and diff <= PARITY_TOLERANCE)
        result["tolerance"] = f"max |d logit| <= {PARITY_TOLERANCE}"
    return result


def app_contract_notes(input_shape, reference):
    """What the OSD app needs: float32 (1,1,L) in, >= 2 logits out (it takes softmax(out)[1])."""
    notes = []
    if len(input_shape) != 3 or input_shape[0] != 1 or input_shape[1] != 1:
        notes.append(f"input {tuple(input_shape)} is not the app's (1,1,L)")
    if reference.ndim != 2 or reference.shape[1] < 2:
        notes.append(f"output {tuple(reference.shape[1:])} has no class dimension of >= 2 logits "
                     "(the app takes softmax(output)[1])")
    return notes


# ---------------------------------------------------------------- verified writing
def write_verified_pte(buffer, path, inputs, reference, batch=1, quantized=False, name=None):
    """Write `buffer` to a temp file, run that file, and rename it to `path` only if it matches; errors
    name `name` (default: `path`)."""
    name = name or path
    with atomic_output(path) as tmp:
        tmp.write_bytes(buffer)
        parity = compare_outputs(reference, run_pte(str(tmp), inputs, batch, name=name), quantized)
        if not parity["ok"]:
            raise VerificationError(f"{name}: verification failed, {parity_text(parity)}; no file written")
    return parity


def parity_text(parity):
    if "reason" in parity:
        return parity["reason"]
    text = f"max |d logit| {parity['max_abs_diff']:.2e}"
    if "class_agreement" in parity:
        text += f", class agreement {parity['class_agreement']:.3f}, max |dp| {parity['max_prob_diff']:.4f}"
    return f"{text} on {parity['n_windows']} windows ({parity['tolerance']})"


def as_inputs(windows, input_shape):
    """Realistic windows (numpy or tensor, any leading count) as a contiguous float32 tensor in the
    model's input layout, a whole number of batches of input_shape[0]."""
    windows = torch.as_tensor(np.ascontiguousarray(windows, dtype=np.float32))
    n = len(windows) // input_shape[0] * input_shape[0]
    if n == 0:
        raise ExportError(f"need at least {input_shape[0]} example windows to verify an export")
    return windows[:n].reshape((n,) + tuple(input_shape[1:])).contiguous()


def export_pte(module, input_shape, path, backend="xnnpack", quantize=None, calibration=None, *, inputs,
               num_classes=None, name=None):
    """The whole eager -> verified .pte path, checked on `inputs` (realistic windows, e.g.
    osdbSim.reference_windows); returns a report dict (parity, size, notes). The model must give
    finite logits, two of them unless `num_classes` (--num-classes) says otherwise. `name` is the file
    the user knows (errors and the report's "path" say it; default `path`)."""
    inputs = as_inputs(inputs, input_shape)
    batch = input_shape[0]
    example = inputs[:batch].contiguous()
    reference = eager_outputs(module, inputs, batch)
    check_logits(reference, None, num_classes or 2)
    exported_from = module
    if quantize == "int8":
        if backend != "xnnpack":
            raise ExportError("--quantize int8 needs the xnnpack backend")
        if calibration is None or len(calibration) < 1:
            raise ExportError("--quantize int8 needs calibration windows from real recordings")
        exported_from = quantizeInt8.quantize_int8(module, example, calibration)
    elif quantize not in (None, "none"):
        raise ExportError(f"unknown --quantize {quantize!r} (use int8)")
    buffer = lower(export_program(exported_from, example), backend)
    parity = write_verified_pte(buffer, path, inputs, reference, batch, quantized=quantize == "int8", name=name)
    return {"path": str(name or path), "backend": backend, "quantize": quantize or "none",
            "input_shape": list(input_shape), "num_classes": int(reference.shape[1]),
            "parity": parity, "size_bytes": Path(path).stat().st_size,
            "notes": app_contract_notes(input_shape, reference)}


def first_line(err):
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return (lines[0] if lines else type(err).__name__)[:200]
