"""TorchScript lite (.ptl): trace, mobile-optimise where this PyTorch can, save for the lite interpreter,
verify against the eager model, rename into place; and load a .ptl back (convertPtl2Pte.py)."""
import json
import warnings
import zipfile
from pathlib import Path

import torch

from osdkit.export.exportCore import (ExportError, VerificationError, app_contract_notes, archive_problem, as_inputs,
                                      check_file, check_logits, compare_outputs, eager_outputs, first_line,
                                      is_torchscript_archive, parity_text, short_error)
from osdkit.io.fileUtils import atomic_output

PTL_SHAPE_FILE = "osd_input_shape.json"  # extra file in our .ptl archives: the traced input shape


def trace(model, example):
    """torch.jit.trace, quiet about the shape checks in forward (the trace is for this shape)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(model.eval(), example)


def optimize_for_mobile(scripted):
    """Return (module, note): mobile-optimised when this torch has XNNPACK, else unchanged + why."""
    from torch.utils.mobile_optimizer import optimize_for_mobile as optimize
    try:
        return optimize(scripted), "mobile-optimised"
    except RuntimeError as err:
        if "XNNPACK" in str(err):
            return scripted, "not mobile-optimised: this PyTorch build has no XNNPACK"
        return scripted, f"not mobile-optimised: {first_line(err)[:120]}"


def load_torchscript(path):
    """Load a TorchScript .ptl; return (module, stored input shape or None); ExportError if broken."""
    path = check_file(path)
    problem = archive_problem(path)
    if problem:
        raise ExportError(f"{path}: {problem}")
    if not (zipfile.is_zipfile(path) and is_torchscript_archive(path)):
        raise ExportError(f"{path}: is a PyTorch checkpoint (.pt), not a TorchScript model: "
                          "use convertPt2Pte.py")
    extra = {PTL_SHAPE_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
        shape = tuple(json.loads(extra[PTL_SHAPE_FILE])) if extra[PTL_SHAPE_FILE] else None
        if shape and not (len(shape) in (2, 3) and all(isinstance(v, int) and v > 0 for v in shape)):
            raise ValueError(f"stored input shape {list(shape)} is malformed")
        return module, shape
    except Exception as err:
        text = str(err)
        if "xnnpack" in text.lower() or "OpContext" in text:
            raise ExportError(f"{path}: legacy mobile-optimised file (prepacked XNNPACK ops) that this "
                              "PyTorch cannot load") from None
        raise ExportError(f"{path}: not a loadable TorchScript model ({short_error(err)})") from None


def run_ptl(path, inputs, batch=1):
    """Run a saved .ptl with the lite interpreter (what PyTorch Mobile ran)."""
    from torch.jit.mobile import _load_for_lite_interpreter
    return eager_outputs(_load_for_lite_interpreter(str(path)), inputs, batch)


def export_ptl(module, input_shape, path, *, inputs, num_classes=None):
    """Trace, mobile-optimise where possible, save for the lite interpreter, verify on `inputs`, rename."""
    inputs, batch = as_inputs(inputs, input_shape), input_shape[0]
    reference = eager_outputs(module, inputs, batch)
    check_logits(reference, None, num_classes or 2)
    scripted, note = optimize_for_mobile(trace(module, inputs[:batch].contiguous()))
    with atomic_output(path) as tmp:
        scripted._save_for_lite_interpreter(str(tmp), _extra_files={
            PTL_SHAPE_FILE: json.dumps(list(input_shape))})
        parity = compare_outputs(reference, run_ptl(tmp, inputs, batch))
        if not parity["ok"]:
            raise VerificationError(f"{path}: verification failed, {parity_text(parity)}; no file written")
    return {"path": str(path), "parity": parity, "mobile": note, "input_shape": list(input_shape),
            "size_bytes": Path(path).stat().st_size, "notes": app_contract_notes(input_shape, reference)}
