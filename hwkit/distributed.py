"""Processes and devices for training: torchrun's environment, each rank's device, and agreement between ranks.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every process is one rank of a process
group, NCCL on GPUs and gloo on CPUs. With one process the helpers here cost
nothing and need no process group, so the training loop has a single code path.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

from hwkit.errors import HwkitError


def init(device: str) -> tuple[int, int, int, bool]:
    """(rank, world size, local rank, whether a process group was created here) from torchrun's variables."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1 or dist.is_initialized():
        return rank, world, local_rank, False
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    return rank, world, local_rank, True


def is_main() -> bool:
    """Whether this process is rank 0 (or the only one): the one that writes files and reports."""
    return int(os.environ.get("RANK", "0")) == 0


def pick_device(name: str, local_rank: int | None) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU (this rank's, under torchrun), else the CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise HwkitError(f"unknown device {name!r} (choose auto, cpu or cuda)")
    if name == "cuda" and not torch.cuda.is_available():
        raise HwkitError("--device cuda: no CUDA device is available (torch sees none)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank or 0)


def any_rank(world: int, device: torch.device, *flags: bool) -> tuple[bool, ...]:
    """Each flag set on any of ``world`` ranks is set on all of them: every rank then takes the same decision.

    A collective: with ``world`` > 1 every rank must call it at the same point.
    """
    if world <= 1:
        return tuple(flags)
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())


def sum_ranks(world: int, device: torch.device, *values: float) -> tuple[float, ...]:
    """The sums of ``values`` over ``world`` ranks (float64, so that counts of points stay exact); a collective."""
    if world <= 1:
        return tuple(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return tuple(t.tolist())


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    """The model under DDP and torch.compile wrappers: what checkpoints hold."""
    while True:
        if isinstance(net, torch.nn.parallel.DistributedDataParallel):
            net = net.module
        elif hasattr(net, "_orig_mod"):  # torch.compile's wrapper
            net = net._orig_mod
        else:
            return net
