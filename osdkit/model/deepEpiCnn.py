"""DeepEpiCnn: the 1-D CNN of Spahr et al. (Epilepsia 2025) for wrist acceleration magnitude.

The module layout (and so every state_dict key) is that of the earlier OSDB pipeline, so its
checkpoints load unchanged:
- `conv_stack.<3k>` conv / `<3k+1>` BatchNorm without conv dropout, `<4k>` / `<4k+1>` with it;
- head `fc1..fc4`, `bn1..bn4`, `fc_out`.
Input: acceleration magnitude in g, (B,1,L), (B,L,1) or (B,L). Output: logits (B, num_classes).

Input normalisation (`modelConfig.inputNormalisation`, stored in the checkpoint's config):
- "none" (the earlier pipeline, and the default for checkpoints that do not say): windows as they come.
- "meanMagnitude": each window is divided by its mean magnitude (at least MEAN_FLOOR_G), i.e. by the
  watch's own reading of gravity plus the average motion. Real watches read 0.6-1.8 g at rest, so a
  model that sees g directly depends on the watch's gain; divided by its own mean, a window scaled by
  any gain gives the same input, so the model is gain-invariant by construction (up to the sensor's
  quantisation and clipping). It has no parameters: state_dict keys are unchanged, it is part of the
  exported .ptl / .pte, and the app's contract (float32 [1,1,750] in g in, 2 logits out) stays.
"""
import re

import torch
from torch import nn

CONV_FILTERS = [16] + [32] * 11 + [64, 64]
STRIDE_TWO_BLOCKS = {4, 9}  # blocks 5 and 10, counted from 1
KERNEL_SIZE = 5
HEAD_SIZES = [(64, 64), (64, 64), (64, 32), (32, 16)]
INPUT_NORMS = ("none", "meanMagnitude")
MEAN_FLOOR_G = 0.25  # far below any real watch's gravity reading (0.6 g); keeps all-zero input finite


class MeanMagnitudeNorm(nn.Module):
    """Divide each window (B,1,L) by its mean over time, floored at MEAN_FLOOR_G (no parameters).

    The mean is summed in float64 and rounded once to float32, so PyTorch, XNNPACK and the portable
    kernels (which run these two ops) get the same divisor in any summation order. A float32 mean
    differs in its last bits between runtimes, and a trained model turned that into logit differences
    above the export's 1e-4 check."""

    def forward(self, x):
        mean = x.to(torch.float64).mean(dim=2, keepdim=True).to(x.dtype)
        return x / torch.clamp(mean, min=MEAN_FLOOR_G)


def input_norm_module(input_norm):
    """The parameter-free first layer for an `inputNormalisation` value."""
    if input_norm not in INPUT_NORMS:
        raise ValueError(f"inputNormalisation must be one of {', '.join(INPUT_NORMS)}, got {input_norm!r}")
    return MeanMagnitudeNorm() if input_norm == "meanMagnitude" else nn.Identity()


def input_norm_of(config):
    """The `modelConfig.inputNormalisation` a checkpoint's config asks for ("none" when it says nothing,
    as in the earlier pipeline's checkpoints)."""
    model_cfg = config.get("modelConfig") if isinstance(config, dict) else None
    return model_cfg.get("inputNormalisation", "none") if isinstance(model_cfg, dict) else "none"


class DeepEpiCnn(nn.Module):
    def __init__(self, input_length=750, num_classes=2, conv_dropout=0.0, dense_dropout=0.025, input_norm="none"):
        super().__init__()
        self.input_length = input_length
        self.input_norm = input_norm
        self.normalise = input_norm_module(input_norm)
        layers, in_ch = [], 1
        for block, out_ch in enumerate(CONV_FILTERS):
            stride = 2 if block in STRIDE_TWO_BLOCKS else 1
            layers += [nn.Conv1d(in_ch, out_ch, KERNEL_SIZE, stride=stride),
                       nn.BatchNorm1d(out_ch), nn.ReLU()]
            if conv_dropout > 0:
                layers.append(nn.Dropout(conv_dropout))
            in_ch = out_ch
        self.conv_stack = nn.Sequential(*layers)
        self.global_pool = nn.AdaptiveAvgPool1d(1)
        for i, (n_in, n_out) in enumerate(HEAD_SIZES, start=1):
            setattr(self, f"fc{i}", nn.Linear(n_in, n_out))
            setattr(self, f"bn{i}", nn.BatchNorm1d(n_out))
            setattr(self, f"relu{i}", nn.ReLU())
        self.dropout1 = nn.Dropout(dense_dropout) if dense_dropout > 0 else nn.Identity()
        self.fc_out = nn.Linear(16, num_classes)

    def forward(self, x):
        if x.dim() == 2:
            x = x.unsqueeze(1)
        elif x.shape[1] != 1 and x.shape[2] == 1:
            x = x.permute(0, 2, 1)
        x = self.global_pool(self.conv_stack(self.normalise(x))).flatten(1)
        x = self.dropout1(self.relu1(self.bn1(self.fc1(x))))
        x = self.relu2(self.bn2(self.fc2(x)))
        x = self.relu3(self.bn3(self.fc3(x)))
        x = self.relu4(self.bn4(self.fc4(x)))
        return self.fc_out(x)


def output_length(input_length):
    """Length of the conv stack's output for an input of `input_length` samples (<1: too short)."""
    n = input_length
    for block in range(len(CONV_FILTERS)):
        stride = 2 if block in STRIDE_TWO_BLOCKS else 1
        n = (n - KERNEL_SIZE) // stride + 1
    return n


def minimum_input_length():
    """Smallest input length the conv stack accepts."""
    n = 1
    while output_length(n) < 1:
        n += 1
    return n


def expected_keys(conv_dropout, num_classes=2):
    """The state_dict keys of a DeepEpiCnn of this layout."""
    return set(DeepEpiCnn(num_classes=num_classes, conv_dropout=conv_dropout).state_dict())


def model_from_state_dict(state_dict, input_length=750, dense_dropout=0.025, input_norm="none"):
    """Build a DeepEpiCnn matching `state_dict` (either dropout layout, any class count) with the given
    input normalisation (see the module doc) and load it.

    Raises ValueError naming the first missing or unexpected key when the weights are not DeepEpiCnn's.
    """
    conv_indices = {int(m.group(1)) for k in state_dict
                    if (m := re.match(r"conv_stack\.(\d+)\.", k))}
    if not conv_indices or "fc_out.weight" not in state_dict:
        raise ValueError("weights are not DeepEpiCnn's (no conv_stack / fc_out keys)")
    conv_dropout = 0.1 if max(conv_indices) >= 4 * (len(CONV_FILTERS) - 1) else 0.0
    num_classes = int(state_dict["fc_out.weight"].shape[0])
    model = DeepEpiCnn(input_length, num_classes, conv_dropout, dense_dropout, input_norm)
    want, have = set(model.state_dict()), set(state_dict)
    if want != have:
        missing, extra = sorted(want - have), sorted(have - want)
        detail = f"missing key {missing[0]}" if missing else f"unexpected key {extra[0]}"
        raise ValueError(f"weights are not DeepEpiCnn's: {detail}")
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        raise ValueError("weights do not fit DeepEpiCnn: " + str(err).splitlines()[-1].strip()) from None
    return model.eval()
