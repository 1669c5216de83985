"""Training checkpoints (.pt, ours and the earlier pipeline's) read safely and rebuilt as eager DeepEpiCnn."""
import zipfile
from pathlib import Path

import torch

from osdkit.data import osdbData
from osdkit.export.exportCore import ExportError, archive_problem, check_file, is_torchscript_archive, short_error
from osdkit.model import deepEpiCnn

DEFAULT_LENGTH = osdbData.WINDOW_SAMPLES  # input length when a checkpoint does not say
RESUME_SUFFIX = "_resume.pt"  # the trainer's per-epoch training state: no config, not a model to ship


def load_checkpoint(path, allow_pickle=False):
    """Load a .pt checkpoint safely; return (state_dict, info) where info holds config and metadata."""
    path = check_file(path)
    problem = archive_problem(path)
    if problem:
        raise ExportError(f"{path}: {problem}")
    if zipfile.is_zipfile(path) and is_torchscript_archive(path):
        raise ExportError(f"{path}: is a TorchScript/mobile model (.ptl), not a checkpoint: "
                          "use convertPtl2Pte.py")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as err:  # torch raises many types for bad files
        if "Unsupported global" in str(err):
            raise ExportError(f"{path}: needs full unpickling (it holds Python objects, e.g. a whole "
                              "nn.Module); rerun with --allow-pickle only if you trust this file") from None
        raise ExportError(f"{path}: not a readable PyTorch checkpoint ({short_error(err)})") from None
    if isinstance(obj, torch.nn.Module):
        obj = {"model_state_dict": obj.state_dict()}
    if not isinstance(obj, dict):
        raise ExportError(f"{path}: holds a {type(obj).__name__}, expected a checkpoint dict or state_dict")
    state = obj.get("model_state_dict", obj)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{path}: no model_state_dict of tensors found")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ExportError(f"{path}: weight {bad[0]} holds NaN or inf values")
    info = {k: v for k, v in obj.items() if k not in ("model_state_dict", "optimizer_state_dict")} \
        if "model_state_dict" in obj else {}
    return state, info


def input_length_from_config(config):
    """Input length as the earlier pipeline stored it in a checkpoint's config, or None."""
    if not isinstance(config, dict):
        return None
    for section in (config.get("modelConfig"), config):
        if isinstance(section, dict) and "sampleFreq" in section and "bufferSeconds" in section:
            return int(round(float(section["sampleFreq"]) * float(section["bufferSeconds"])))
    raw = (config.get("dataProcessing") or {}).get("rawDataLength")
    return int(raw) if raw else None


def checkpoint_input_norm(path, info, asked=None):
    """The input normalisation a checkpoint was trained with: its config's (earlier pipeline's configs,
    which had none, mean "none"); `asked` (--input-norm) only for a checkpoint without a config, never
    guessed. ExportError naming the file when it cannot be known or the flag contradicts the file."""
    config = info.get("config")
    if isinstance(config, dict) and config:
        own = deepEpiCnn.input_norm_of(config)
        if own not in deepEpiCnn.INPUT_NORMS:
            raise ExportError(f"{path}: its config's inputNormalisation {own!r} is none of "
                              f"{', '.join(deepEpiCnn.INPUT_NORMS)}")
        if asked is not None and asked != own:
            raise ExportError(f"{path}: --input-norm {asked} but the checkpoint's config says "
                              f"inputNormalisation {own}")
        return own
    if asked is not None:
        return asked
    what = ("is the trainer's resume state (no config): convert "
            f"{Path(path).name[:-len(RESUME_SUFFIX)]}.pt instead, or give"
            if Path(path).name.endswith(RESUME_SUFFIX) else "has no config saying how its input was normalised: give")
    raise ExportError(f"{path}: {what} --input-norm meanMagnitude|none (the default nnConfig.json trains "
                      "with meanMagnitude)")


def model_from_checkpoint(path, input_shape=None, num_classes=None, allow_pickle=False, input_norm=None):
    """Rebuild the eager DeepEpiCnn of a checkpoint with its input normalisation (see
    checkpoint_input_norm); return (model, input_shape, info)."""
    state, info = load_checkpoint(path, allow_pickle)
    try:  # the architecture first: "not DeepEpiCnn's" says more than a missing normalisation
        deepEpiCnn.model_from_state_dict(state)
    except ValueError as err:
        raise ExportError(f"{path}: {err}") from None
    model = deepEpiCnn.model_from_state_dict(state, input_norm=checkpoint_input_norm(path, info, input_norm))
    classes = model.fc_out.out_features
    if num_classes is not None and num_classes != classes:
        raise ExportError(f"{path}: --num-classes {num_classes} but the weights have {classes} classes")
    flag = "" if input_shape is None else f"--input-shape {','.join(map(str, input_shape))}: "
    if input_shape is None:
        input_shape = (1, 1, input_length_from_config(info.get("config")) or DEFAULT_LENGTH)
    if len(input_shape) == 3 and 1 not in input_shape[1:]:
        raise ExportError(f"{path}: {flag}DeepEpiCnn takes one channel: (B,1,L), (B,L,1) or (B,L)")
    length = max(input_shape[1:])
    if deepEpiCnn.output_length(length) < 1:
        raise ExportError(f"{path}: {flag}input length {length} is too short for DeepEpiCnn "
                          f"(needs >= {deepEpiCnn.minimum_input_length()} samples)")
    model.input_length = length
    return model, tuple(input_shape), info
