"""Shared test helpers: the repo root on sys.path, fixture paths, checkpoint factories, CLI runner."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(ROOT))

from osdkit.model import deepEpiCnn  # noqa: E402

# pytest-xdist runs two workers on two cores: one thread each (and in the scripts they start), or
# OpenMP threads spin against each other and everything runs several times slower.
os.environ["OMP_NUM_THREADS"] = "1"
# The phone check of converters and the main job (emulated ARM CPUs, ~1 minute a call): only in
# test_phone_check.py, which turns it on where it needs it.
os.environ["OSD_PHONE_CHECK"] = "off"
torch.set_num_threads(1)


def make_checkpoint(path, num_classes=2, conv_dropout=0.0, config=None, bare=False, seed=0, input_norm="none"):
    """Save a randomly initialised DeepEpiCnn checkpoint in the earlier pipeline's layout (its config,
    unless given, names only the input normalisation)."""
    torch.manual_seed(seed)
    model = deepEpiCnn.DeepEpiCnn(num_classes=num_classes, conv_dropout=conv_dropout, input_norm=input_norm)
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    state = model.state_dict()
    obj = state if bare else {"epoch": 3, "global_step": 30, "model_state_dict": state,
                              "optimizer_state_dict": {}, "conv_dropout": conv_dropout,
                              "dense_dropout": 0.025,
                              "config": config or {"modelConfig": {"inputNormalisation": input_norm}}}
    torch.save(obj, path)
    return model.eval()


def run_script(script, *args, cwd=None):
    """Run one of the repo's scripts as a user would; return CompletedProcess (text)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=600)


@pytest.fixture
def legacy_io():
    import numpy as np
    return np.load(FIXTURES / "legacy_deepepicnn_io.npz")


def run_main(module, *args, capsys):
    """Run a script's `main` in this process through cliUtils.run_cli, as the command line does (one
    error line, exit code), without a new interpreter's start-up; return (code, stdout, stderr)."""
    import logging
    import signal
    import warnings

    from osdkit.cli import cliUtils
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    capsys.readouterr()
    try:
        with warnings.catch_warnings(), pytest.raises(SystemExit) as stop:
            cliUtils.run_cli(module.main, [str(a) for a in args])
    finally:
        logging.disable(logging.NOTSET)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    out, err = capsys.readouterr()
    return stop.value.code, out, err
