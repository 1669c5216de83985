"""Train DeepEpiCnn on WindowSets: AdamW, warm-up/cosine/cool-down LR, balanced batches, resumable.

- The checkpoint is chosen on the validation split (never the test split) by `modelSelectionMetric`.
- `<modelFname>.pt` keeps the earlier pipeline's keys (model_state_dict, config, epoch,
  optimizer_state_dict, val_loss, val_accuracy, sensitivity, far, conv_dropout, dense_dropout ...).
- `<modelFname>_resume.pt` is written atomically after every epoch; a killed run started again resumes
  from it and ends with the same result, because every epoch's sampling and dropout are seeded from
  (randomSeed, epoch) rather than from whatever ran before.
- Under torchrun the model is wrapped in DistributedDataParallel (gloo on CPU, nccl on GPU); every rank
  takes its share of each batch list and only rank 0 writes files.
"""
import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

import configUtils
import deepEpiCnn
import exportUtils

RESUME_SUFFIX = "_resume.pt"


# ---------------------------------------------------------------- distributed helpers
def init_distributed():
    """(rank, world_size, device); starts the process group when run by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def is_main_process():
    return not dist.is_initialized() or dist.get_rank() == 0


def share_from_main(value):
    """Rank 0's `value` on every rank (a no-op without torchrun); also a barrier."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------- schedule and sampling
def lr_lambda(cfg, total_steps):
    """Multiplier of lrPeak per step: linear warm-up from lrStart, cosine to lrMainEnd, linear to 0."""
    peak, start, end = cfg["lrPeak"], cfg["lrStart"], cfg["lrMainEnd"]
    warm, cool = cfg["warmupSteps"], cfg["cooldownSteps"]
    main = cfg["mainSteps"] or max(total_steps - warm - cool, 1)

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


# ---------------------------------------------------------------- evaluation and selection
def predict_proba(model, windows, device, batch_size=1024):
    """p(seizure) for every window of a WindowSet (eval mode, no grad)."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            x = torch.from_numpy(windows.batch(np.arange(start, min(start + batch_size, len(windows)))))
            out.append(torch.softmax(model(x.to(device)), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def validation_metrics(model, windows, device):
    p = predict_proba(model, windows, device)
    y = windows.labels
    eps = 1e-7
    loss = float(-np.mean(np.where(y == 1, np.log(p + eps), np.log(1 - p + eps))))
    pred = p >= 0.5
    tp, fn = int(np.sum(pred & (y == 1))), int(np.sum(~pred & (y == 1)))
    fp, tn = int(np.sum(pred & (y == 0))), int(np.sum(~pred & (y == 0)))
    return {"val_loss": loss, "val_accuracy": float(np.mean(pred == (y == 1))),
            "sensitivity": tp / max(tp + fn, 1), "far": fp / max(fp + tn, 1)}


def selection_score(metrics, cfg):
    """Higher is better; None when the checkpoint breaks the saveBest limits."""
    tpr, fpr = metrics["sensitivity"], metrics["far"]
    if tpr < cfg["saveBestMinSensitivity"] or (cfg["saveBestMaxFpr"] is not None and fpr > cfg["saveBestMaxFpr"]):
        return None
    metric = cfg["modelSelectionMetric"]
    if metric == "val_loss":
        return -metrics["val_loss"]
    if metric == "min_fpr":
        return -fpr + 1e-3 * tpr
    if metric in ("f1", "f_beta"):
        beta = 1.0 if metric == "f1" else cfg["fBeta"]
        spec = 1 - fpr
        return (1 + beta ** 2) * spec * tpr / max(beta ** 2 * spec + tpr, 1e-9)
    return tpr - fpr  # youden, and dual_improvement's single-number stand-in


# ---------------------------------------------------------------- checkpoints
def save_atomic(obj, path):
    with exportUtils.atomic_output(path) as tmp:
        torch.save(obj, tmp)


def train_model(config, train_windows, val_windows, out_dir, show_progress=True):
    """Train (or resume) and write `<modelFname>.pt`; return (best model, history, checkpoint path)."""
    cfg = configUtils.section(config, "modelConfig")
    seed = configUtils.get(config, "randomSeed")
    rank, world, device = init_distributed()
    torch.set_flush_denormal(True)  # denormal activations made CPU steps ~4x slower here
    out_dir = Path(out_dir)
    best_path = out_dir / f"{cfg['modelFname']}.pt"
    resume_path = out_dir / f"{cfg['modelFname']}{RESUME_SUFFIX}"
    torch.manual_seed(seed)
    model = deepEpiCnn.DeepEpiCnn(cfg["sampleFreq"] * cfg["bufferSeconds"], 2, cfg["convDropout"],
                                  cfg["denseDropout"]).to(device)
    opt_cls = torch.optim.AdamW if cfg["useAdamW"] else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg["lrPeak"], weight_decay=cfg["weightDecay"],
                        betas=(cfg["adamwBeta1"], cfg["adamwBeta2"]))
    per_epoch = len(train_windows) // cfg["batchSize"]
    if per_epoch < 1:
        raise ValueError(f"only {len(train_windows)} training windows for batchSize {cfg['batchSize']}")
    total = cfg["totalTrainingSteps"] or cfg["epochs"] * per_epoch
    epochs = math.ceil(total / per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total)) if cfg["useLrSchedule"] \
        else torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg["lrFactor"],
                                                        patience=cfg["lrPatience"], min_lr=cfg["lrMin"])
    state = {"epoch": 0, "global_step": 0, "history": {}, "best_score": None, "best_epoch": None,
             "stale_epochs": 0}
    if resume_path.exists():
        saved = torch.load(resume_path, map_location=device, weights_only=True)
        model.load_state_dict(saved["model_state_dict"])
        optimizer.load_state_dict(saved["optimizer_state_dict"])
        scheduler.load_state_dict(saved["scheduler_state_dict"])
        state = json.loads(saved["train_state"])
    train_model_ = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    loss_fn = torch.nn.CrossEntropyLoss()
    while state["epoch"] < epochs and state["global_step"] < total:
        epoch = state["epoch"]
        torch.manual_seed(seed * 1000 + epoch)  # dropout of this epoch, the same after a resume
        batches = epoch_batches(train_windows.labels, cfg["batchSize"], cfg["useBalancedBatches"],
                                seed, epoch, rank, world)[:total - state["global_step"]]
        loader = torch.utils.data.DataLoader(BatchDataset(train_windows, batches), batch_size=None,
                                             num_workers=cfg["numWorkers"])
        train_model_.train()
        losses, correct, seen = [], 0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not (show_progress and rank == 0),
                   leave=False)
        for x, y in bar:
            x, y = x.to(device), y.to(device)
            logits = train_model_(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if cfg["useLrSchedule"]:
                scheduler.step()
            state["global_step"] += 1
            losses.append(loss.item())
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        metrics = validation_metrics(model, val_windows, device)
        if not cfg["useLrSchedule"]:
            scheduler.step(metrics["val_loss"])
        metrics.update(loss=float(np.mean(losses)), accuracy=correct / max(seen, 1),
                       lr=optimizer.param_groups[0]["lr"])
        for key, value in metrics.items():
            state["history"].setdefault(key, []).append(value)
        score = selection_score(metrics, cfg)
        improved = score is not None and (state["best_score"] is None or score > state["best_score"])
        state["epoch"] = epoch + 1
        state["stale_epochs"] = 0 if improved else state["stale_epochs"] + 1
        if rank == 0:
            if improved or not best_path.exists():
                state["best_score"], state["best_epoch"] = (score, epoch + 1) if improved else \
                    (state["best_score"], state["best_epoch"])
                save_atomic(best_checkpoint(model, optimizer, config, cfg, state, metrics), best_path)
            save_atomic({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict(),
                         "scheduler_state_dict": scheduler.state_dict(), "train_state": json.dumps(state)},
                        resume_path)
            tqdm.write(f"epoch {epoch + 1}: loss {metrics['loss']:.4f} val_loss {metrics['val_loss']:.4f} "
                       f"val TPR {metrics['sensitivity']:.3f} FPR {metrics['far']:.4f}"
                       f"{'  (best so far)' if improved else ''}")
        elif improved:
            state["best_score"], state["best_epoch"] = score, epoch + 1
        if not cfg["useLrSchedule"] and state["stale_epochs"] >= cfg["earlyStoppingPatience"]:
            break
    if dist.is_initialized():
        dist.barrier()
    best = exportUtils.model_from_checkpoint(best_path)[0]
    return best, state["history"], best_path


def best_checkpoint(model, optimizer, config, cfg, state, metrics):
    """The `.pt` in the earlier pipeline's layout."""
    return {"epoch": state["epoch"], "global_step": state["global_step"],
            "model_state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer_state_dict": optimizer.state_dict(), "val_loss": metrics["val_loss"],
            "val_accuracy": metrics["val_accuracy"], "sensitivity": metrics["sensitivity"],
            "far": metrics["far"], "conv_dropout": cfg["convDropout"], "dense_dropout": cfg["denseDropout"],
            "config": config}


def export_formats(config, best_path, calibration=None):
    """Write and verify `.ptl` / `.pte` beside the `.pt` as the config asks; raise on any failure."""
    cfg = configUtils.section(config, "modelConfig")
    model, shape, _ = exportUtils.model_from_checkpoint(best_path)
    reports = {}
    if "ptl" in cfg["exportFormats"]:
        reports["ptl"] = exportUtils.export_ptl(model, shape, best_path.with_suffix(".ptl"))
    if "pte" in cfg["exportFormats"]:
        reports["pte"] = exportUtils.export_pte(model, shape, best_path.with_suffix(".pte"), cfg["pteBackend"])
        if cfg["quantize"] == "int8":
            int8_path = best_path.with_name(best_path.stem + "_int8.pte")
            reports["pte_int8"] = exportUtils.export_pte(model, shape, int8_path, "xnnpack", "int8", calibration)
    return reports


def get_args_parser():
    parser = argparse.ArgumentParser(description="Train DeepEpiCnn alone on prepared window files")
    parser.add_argument("--config", default="nnConfig.json")
    parser.add_argument("--outDir", default="output/trainer")
    return parser


def main(args):
    """Trainer alone (torchrun-able): prepare data as runSequence does, train, export on rank 0."""
    import runSequence
    config, _ = configUtils.load_config(args.config)
    init_distributed()
    if is_main_process():
        Path(args.outDir).mkdir(parents=True, exist_ok=True)
        runSequence.osdb_paths(config)  # writes the simulated database once, before other ranks read it
    share_from_main(None)
    data = runSequence.prepare_data(config, Path(args.outDir))
    _, history, best_path = train_model(config, data["train"], data["val"], args.outDir)
    if is_main_process():
        for report in export_formats(config, best_path).values():
            print(f"{report['path']}: verified, {exportUtils.parity_text(report['parity'])}")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
