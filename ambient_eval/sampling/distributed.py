"""torchrun support: seeds are sharded by rank; gloo on CPU, nccl on GPU. Single process otherwise."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (0, 1, 0 when absent)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


@contextlib.contextmanager
def process_group(device) -> Iterator[tuple[int, int]]:
    """Join the torchrun process group for the duration (no-op for one process)."""
    import torch
    import torch.distributed as dist

    rank, size, _ = world()
    created = False
    if size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    try:
        yield rank, size
    finally:
        if created:
            dist.destroy_process_group()


def barrier() -> None:
    """Wait for all ranks (no-op for one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def device_for_rank(name: str):
    """--device auto under torchrun on GPUs => cuda:LOCAL_RANK; otherwise resolve_device(name)."""
    import torch

    from ambient_eval.device import resolve_device

    dev = resolve_device(name)
    if dev.type == "cuda" and dev.index is None and world()[1] > 1:
        dev = torch.device("cuda", world()[2])
    return dev
