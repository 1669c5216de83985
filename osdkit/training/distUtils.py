"""Distributed helpers (torchrun), in the style of torchvision's references/classification/utils.py.

Without torchrun every helper is a no-op for one process: rank 0 of a world of 1. The process group's
timeout is process_group_timeout() (env OSD_DIST_TIMEOUT_MIN, minutes): other ranks wait in the next
collective while rank 0 exports, tests and runs the phone check, which can take far longer than NCCL's
default 10 minutes.
"""
import os
from datetime import timedelta

import torch
import torch.distributed as dist

from osdkit.io.fileUtils import atomic_output

DEFAULT_TIMEOUT_MIN = 120


def process_group_timeout():
    """The collectives' timeout: OSD_DIST_TIMEOUT_MIN minutes (default 120)."""
    return timedelta(minutes=float(os.environ.get("OSD_DIST_TIMEOUT_MIN", DEFAULT_TIMEOUT_MIN)))


def init_distributed_mode():
    """(rank, world_size, device); starts the process group (nccl on GPU, gloo on CPU) under torchrun,
    with process_group_timeout()."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", timeout=process_group_timeout())
    rank = dist.get_rank() if dist.is_initialized() else 0
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def is_distributed():
    return dist.is_initialized() and dist.get_world_size() > 1


def is_main_process():
    return not dist.is_initialized() or dist.get_rank() == 0


def broadcast_from_main(value):
    """Rank 0's `value` on every rank (any picklable object); also a barrier."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def run_on_main(fn):
    """fn() on rank 0, its result on every rank; when it raises, every rank raises the same error (so no
    rank waits for rank 0 in a collective until the timeout)."""
    if not dist.is_initialized():
        return fn()
    outcome = None
    if is_main_process():
        try:
            outcome = (True, fn())
        except Exception as err:  # re-raised below on every rank
            outcome = (False, err)
    ok, value = broadcast_from_main(outcome)
    if not ok:
        raise value
    return value


def gather_from_all(value):
    """[value of rank 0, value of rank 1, ...] on every rank (any picklable object)."""
    if not dist.is_initialized():
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


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
