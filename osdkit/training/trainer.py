"""Train DeepEpiCnn on WindowSets, shaped like torchvision's references/classification/train.py.

`train_one_epoch` and `evaluate` do one epoch and one validation; `fit` holds the epoch loop with
resume, checkpoint choice and early stopping; `train` is what the main job calls; `main` is the trainer
alone behind nnTrainer.py (`torchrun --nproc_per_node=N nnTrainer.py --config ...`).
- AdamW (or Adam), warm-up / cosine / cool-down LR per step, or ReduceLROnPlateau per epoch; balanced
  batches.
- The checkpoint is chosen on the validation split (never the test split) by `modelSelectionMetric`.
- `<modelFname>.pt` keeps the earlier pipeline's keys (model_state_dict, config, epoch,
  optimizer_state_dict, val_loss, val_accuracy, sensitivity, far, conv_dropout, dense_dropout ...).
- `<modelFname>_resume.pt` is written atomically after every epoch; a killed run started again resumes
  from it and ends with the same result, because every epoch's sampling and dropout are seeded from
  (randomSeed, epoch) rather than from whatever ran before.
- Under torchrun the model is wrapped in DistributedDataParallel (gloo on CPU, nccl on GPU); every rank
  takes its share of each batch. Validation runs on rank 0 and its figures are broadcast, so the LR
  plateau steps, checkpoint choice and early stopping are the same on every rank; only rank 0 writes.
"""
from osdkit.training import cpuSettings  # isort: skip  (first: sets OpenMP's waiting before torch loads)
import contextlib
import json
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from osdkit.io import fileUtils
from osdkit.model import checkpoints, deepEpiCnn
from osdkit.reports import plots
from osdkit.training import distUtils, nnTester

RESUME_SUFFIX = "_resume.pt"


@dataclass
class TrainedModel:
    """The chosen checkpoint, read once: the eager model (eval mode, CPU) and its saved facts."""
    model: torch.nn.Module
    input_shape: tuple
    info: dict  # the checkpoint's other keys: epoch, sensitivity, far, config, ...
    best_path: Path


# ---------------------------------------------------------------- schedule and sampling
def lr_lambda(cfg, total_steps):
    """Multiplier of lrPeak per step: linear warm-up from lrStart, cosine to lrMainEnd, linear to 0."""
    peak, start, end = cfg.lrPeak, cfg.lrStart, cfg.lrMainEnd
    warm, cool = cfg.warmupSteps, cfg.cooldownSteps
    main = cfg.mainSteps or max(total_steps - warm - cool, 1)

    def factor(step):
        if step < warm:
            return (start + (peak - start) * step / warm) / peak
        if step < warm + main:
            t = (step - warm) / main
            return (end + 0.5 * (peak - end) * (1 + math.cos(math.pi * t))) / peak
        t = min((step - warm - main) / max(cool, 1), 1.0)
        return end * (1 - t) / peak
    return factor


def epoch_batches(labels, batch_size, balanced, seed, epoch, rank=0, world=1):
    """This rank's batches of window indices for one epoch, reproducible from (seed, epoch)."""
    gen = torch.Generator().manual_seed(seed * 1000 + epoch)
    n = len(labels)
    if balanced:
        counts = np.bincount(labels, minlength=2).astype(np.float64)
        weights = torch.as_tensor(1.0 / counts[labels])
        order = torch.multinomial(weights, n, replacement=True, generator=gen).numpy()
    else:
        order = torch.randperm(n, generator=gen).numpy()
    n_batches = n // batch_size
    batches = order[:n_batches * batch_size].reshape(n_batches, batch_size)
    return [b[rank::world] for b in batches]


class BatchDataset(torch.utils.data.Dataset):
    """Index -> one whole batch (x, y), so DataLoader workers assemble batches beside training."""

    def __init__(self, windows, batches):
        self.windows, self.batches = windows, batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, i):
        idx = self.batches[i]
        return torch.from_numpy(self.windows.batch(idx)), torch.from_numpy(self.windows.labels[idx])


MODEL_CLASS = "deepEpiCnn.DeepEpiCnn"


def unused_key_notes(run):
    """Notes for config keys that would do nothing in this run: earlyStoppingPatience with the default
    LR schedule (early stopping runs with the plateau schedule only) and a modelClass other than
    DeepEpiCnn (the only model trained). classWeights is reported by configUtils (ignored)."""
    given, notes = run.raw.get("modelConfig") or {}, []
    if "earlyStoppingPatience" in given and run.model.useLrSchedule:
        notes.append(f"{run.source}: modelConfig.earlyStoppingPatience is not used with useLrSchedule true "
                     "(early stopping runs with the plateau schedule, useLrSchedule false)")
    if given.get("modelClass", MODEL_CLASS).split(".")[-1] != MODEL_CLASS.split(".")[-1]:
        notes.append(f"{run.source}: modelConfig.modelClass {given['modelClass']!r} is not used: this toolkit "
                     f"trains {MODEL_CLASS}")
    return notes


def build_model(cfg):
    return deepEpiCnn.DeepEpiCnn(cfg.sampleFreq * cfg.bufferSeconds, 2, cfg.convDropout, cfg.denseDropout,
                                 cfg.inputNormalisation)


def build_optimizer(cfg, model):
    opt_cls = torch.optim.AdamW if cfg.useAdamW else torch.optim.Adam
    return opt_cls(model.parameters(), lr=cfg.lrPeak, weight_decay=cfg.weightDecay,
                   betas=(cfg.adamwBeta1, cfg.adamwBeta2))


def build_scheduler(cfg, optimizer, total_steps):
    if cfg.useLrSchedule:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))
    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lrFactor, patience=cfg.lrPatience,
                                                      min_lr=cfg.lrMin)


# ---------------------------------------------------------------- one epoch, one validation
def train_one_epoch(model, optimizer, step_scheduler, loader, device, desc, show_progress):
    """One pass over this rank's batches; {"loss", "accuracy"} over the windows of every rank."""
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(loader, desc=desc, disable=not show_progress, leave=False)
    for x, y in bar:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    loss_sum, correct, seen = distUtils.reduce_sum([loss_sum, correct, seen])
    return {"loss": loss_sum / max(seen, 1), "accuracy": correct / max(seen, 1)}


def evaluate(model, windows, device):
    """Validation figures at p(seizure) >= 0.5: val_loss, val_accuracy, sensitivity, far."""
    p = nnTester.predict_windows(nnTester.eager_predict_fn(model, device), windows)
    y = windows.labels
    eps = 1e-7
    loss = float(-np.mean(np.where(y == 1, np.log(p + eps), np.log(1 - p + eps))))
    pred = p >= 0.5
    tp, fn = int(np.sum(pred & (y == 1))), int(np.sum(~pred & (y == 1)))
    fp, tn = int(np.sum(pred & (y == 0))), int(np.sum(~pred & (y == 0)))
    return {"val_loss": loss, "val_accuracy": float(np.mean(pred == (y == 1))),
            "sensitivity": tp / max(tp + fn, 1), "far": fp / max(fp + tn, 1)}


def evaluate_on_main(model, windows, device):
    """`evaluate` on rank 0, broadcast: every rank takes the same decisions from the same figures."""
    return distUtils.broadcast_from_main(evaluate(model, windows, device) if distUtils.is_main_process() else None)


def selection_score(metrics, cfg):
    """Higher is better; None when the checkpoint breaks the saveBest limits."""
    tpr, fpr = metrics["sensitivity"], metrics["far"]
    if tpr < cfg.saveBestMinSensitivity or (cfg.saveBestMaxFpr is not None and fpr > cfg.saveBestMaxFpr):
        return None
    metric = cfg.modelSelectionMetric
    if metric == "val_loss":
        return -metrics["val_loss"]
    if metric == "min_fpr":
        return -fpr + 1e-3 * tpr
    if metric in ("f1", "f_beta"):
        beta = 1.0 if metric == "f1" else cfg.fBeta
        spec = 1 - fpr
        return (1 + beta ** 2) * spec * tpr / max(beta ** 2 * spec + tpr, 1e-9)
    return tpr - fpr  # youden


# ---------------------------------------------------------------- the epoch loop
def checkpoint_paths(cfg, out_dir):
    """(best, resume) checkpoint paths in `out_dir`."""
    return Path(out_dir) / f"{cfg.modelFname}.pt", Path(out_dir) / f"{cfg.modelFname}{RESUME_SUFFIX}"


def best_checkpoint(model, optimizer, run, state, metrics, machine):
    """The `.pt` in the earlier pipeline's layout, plus `training_machine`: the CPU, threads and kernels
    that trained it (`machine`, from `training_machine`), and `training_machines`: every machine that
    trained an epoch of it, in order (more than one when the run was resumed elsewhere)."""
    return {"epoch": state["epoch"], "global_step": state["global_step"],
            "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer_state_dict": optimizer.state_dict(), "val_loss": metrics.get("val_loss"),
            "val_accuracy": metrics.get("val_accuracy"), "sensitivity": metrics.get("sensitivity"),
            "far": metrics.get("far"), "conv_dropout": run.model.convDropout,
            "dense_dropout": run.model.denseDropout, "config": run.raw, "training_machine": machine,
            "training_machines": list(state["machines"])}


def read_resume(resume_path):
    """Rank 0's `_resume.pt` contents (or None), on every rank: the ranks resume from the same state
    even without a shared disk."""
    saved = None
    if distUtils.is_main_process() and Path(resume_path).exists():
        saved = torch.load(resume_path, map_location="cpu", weights_only=True)
    return distUtils.broadcast_from_main(saved)


def epoch_line(epoch, metrics, improved, stopped_cfg):
    """The one line an epoch leaves in the console and the run log."""
    line = f"epoch {epoch + 1}: loss {metrics['loss']:.4f}"
    if "val_loss" in metrics:
        line += (f" val_loss {metrics['val_loss']:.4f} val TPR {metrics['sensitivity']:.3f} "
                 f"FPR {metrics['far']:.4f}{'  (best so far)' if improved else ''}")
    if stopped_cfg:
        line += f"; stopped: {stopped_cfg.earlyStoppingPatience} epochs without improvement"
    return line


@contextlib.contextmanager
def denormals_flushed():
    """Flush denormal floats to zero inside (denormal activations made CPU steps ~4x slower here), and
    give the caller's setting back after: it is process-wide, and other code needs subnormal floats."""
    was_flushing = torch.tensor([1e-40]).item() == 0.0  # torch has no getter; a subnormal reads as 0
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(was_flushing)


def cpu_name():
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def training_machine(device, world):
    """What sets a training run's floating-point rounding, kept in its checkpoint: the same config and seed
    give the same weights only where all of it is the same (README, "Reproducing a run elsewhere")."""
    return {"cpu": cpu_name(), "device": str(device), "processes": world, "torch": str(torch.__version__),
            "aten_kernels": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "kernel_caps": {name: os.environ.get(name, "not set") for name in cpuSettings.KERNEL_VARIABLES}}


@denormals_flushed()
def fit(run, train_windows, val_windows, out_dir, show_progress=True):
    """Train (or resume) and write the checkpoints; return the training state (the same on every rank).
    An early stop is kept in the resume state, so a rerun does not train on. With no validation windows
    every epoch replaces the checkpoint (the last one is kept)."""
    cfg, seed = run.model, run.randomSeed
    rank, world, device = distUtils.init_distributed_mode()
    best_path, resume_path = checkpoint_paths(cfg, out_dir)
    per_epoch = len(train_windows) // cfg.batchSize
    if per_epoch < 1:
        raise ValueError(f"only {len(train_windows)} training windows for batchSize {cfg.batchSize}")
    total = cfg.totalTrainingSteps or cfg.epochs * per_epoch
    epochs = math.ceil(total / per_epoch)
    torch.manual_seed(seed)
    model = build_model(cfg).to(device)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, total)
    state = {"epoch": 0, "global_step": 0, "history": {}, "best_score": None, "best_epoch": None,
             "stale_epochs": 0}
    saved = read_resume(resume_path)
    if saved is not None:
        model.load_state_dict(saved["model_state_dict"])
        optimizer.load_state_dict(saved["optimizer_state_dict"])
        scheduler.load_state_dict(saved["scheduler_state_dict"])
        state = json.loads(saved["train_state"])
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    machine = training_machine(device, world)
    if state.setdefault("machines", [])[-1:] != [machine]:  # a run resumed elsewhere keeps where each part ran
        state["machines"].append(machine)
    while state["epoch"] < epochs and state["global_step"] < total and not state.get("stopped"):
        epoch = state["epoch"]
        torch.manual_seed(seed * 1000 + epoch)  # dropout of this epoch, the same after a resume
        batches = epoch_batches(train_windows.labels, cfg.batchSize, cfg.useBalancedBatches,
                                seed, epoch, rank, world)[:total - state["global_step"]]
        loader = torch.utils.data.DataLoader(BatchDataset(train_windows, batches), batch_size=None,
                                             num_workers=cfg.numWorkers)
        figures = train_one_epoch(ddp_model, optimizer, scheduler if cfg.useLrSchedule else None, loader,
                                  device, f"epoch {epoch + 1}/{epochs}", show_progress and rank == 0)
        state["global_step"] += len(batches)
        metrics = evaluate_on_main(model, val_windows, device) if len(val_windows) else {}
        if not cfg.useLrSchedule:
            scheduler.step(metrics.get("val_loss", figures["loss"]))
        metrics.update(figures, lr=optimizer.param_groups[0]["lr"])
        for key, value in metrics.items():
            state["history"].setdefault(key, []).append(value)
        # without a validation split (a retrain on a whole training set) the last epoch is kept
        score = selection_score(metrics, cfg) if len(val_windows) else float(epoch + 1)
        improved = score is not None and (state["best_score"] is None or score > state["best_score"])
        state["epoch"] = epoch + 1
        state["stale_epochs"] = 0 if improved else state["stale_epochs"] + 1
        if improved:
            state["best_score"], state["best_epoch"] = score, epoch + 1
        state["stopped"] = not cfg.useLrSchedule and state["stale_epochs"] >= cfg.earlyStoppingPatience
        if improved or not best_path.exists():
            distUtils.save_on_master(best_checkpoint(model, optimizer, run, state, metrics, machine), best_path)
        distUtils.save_on_master({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                                  "scheduler_state_dict": scheduler.state_dict(), "train_state": json.dumps(state)},
                                 resume_path)
        if rank == 0:
            tqdm.write(epoch_line(epoch, metrics, improved and len(val_windows), state["stopped"] and cfg))
    distUtils.barrier()
    return state


def load_trained(run, out_dir):
    """The run's chosen checkpoint in `out_dir`, read once."""
    best_path = checkpoint_paths(run.model, out_dir)[0]
    model, shape, info = checkpoints.model_from_checkpoint(best_path)
    return TrainedModel(model.eval(), shape, info, best_path)


def train(run, train_windows, val_windows, out_dir, show_progress=True):
    """`fit`, then on rank 0 the history (JSON and plot) and the chosen checkpoint; None on other ranks."""
    state = fit(run, train_windows, val_windows, out_dir, show_progress)
    if not distUtils.is_main_process():
        return None
    out_dir = Path(out_dir)
    fileUtils.write_json_atomic(out_dir / "training_history.json", state["history"])
    plots.plot_training_history(state["history"], out_dir / f"{run.model.modelFname}_training.png")
    return load_trained(run, out_dir)
