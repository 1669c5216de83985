"""Distributed helpers (torchrun), in the style of torchvision's references/classification/utils.py.

Without torchrun every helper is a no-op for one process: rank 0 of a world of 1.
"""
import os

import torch
import torch.distributed as dist

from osdkit.io.fileUtils import atomic_output


def init_distributed_mode():
    """(rank, world_size, device); starts the process group (nccl on GPU, gloo on CPU) under torchrun."""
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


def broadcast_from_main(value):
    """Rank 0's `value` on every rank (any picklable object); also a barrier."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def reduce_sum(values):
    """Element-wise sum of a list of numbers over all ranks (a plain list back)."""
    if not dist.is_initialized():
        return list(values)
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def barrier():
    if dist.is_initialized():
        dist.barrier()


def save_on_master(obj, path):
    """torch.save `obj` to `path` atomically, on rank 0 only."""
    if is_main_process():
        with atomic_output(path) as tmp:
            torch.save(obj, tmp)
