"""Feature extraction under torchrun: each rank extracts a contiguous run of whole batches.

    torchrun --nproc_per_node 2 -m ambient_eval fid gen/ ref/ --device cpu     # gloo on CPU
    torchrun --nproc_per_node 8 -m ambient_eval memorization gen/ --train t/    # nccl, one GPU a rank

Every rank runs the same command on the same inputs; `extract_features` is then collective: rank r
extracts batches [r * B / W, (r + 1) * B / W) of the B batches a single process would make (the
same images in the same batches, so features are bit-identical to one process on the same device),
and the rows are gathered in the original order on every rank. Rank 0 alone writes the feature
cache and every output file (commands return early on other ranks after the last collective).
The process group is the sampler's (ambient_eval.sampling.distributed): gloo on CPU, nccl on GPU.
"""
from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:
    from ambient_eval.data.base import ImageSource


def active() -> bool:
    """True inside an initialized process group with more than one rank."""
    import sys

    if "torch" not in sys.modules:  # no group without torch: a warm-cache run never imports it
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_world() -> tuple[int, int]:
    """(rank, world size) of the active group, (0, 1) otherwise."""
    import torch.distributed as dist

    return (dist.get_rank(), dist.get_world_size()) if active() else (0, 1)


def is_main() -> bool:
    """Whether this process writes files: rank 0, or the only process."""
    if active():
        return rank_world()[0] == 0
    return int(os.environ.get("RANK", 0)) == 0


@contextlib.contextmanager
def feature_group(device: str = "auto") -> Iterator[tuple[int, int]]:
    """Join the torchrun group (if launched by torchrun) for the duration; yields (rank, world).

    Under torchrun on GPUs, each rank uses cuda:LOCAL_RANK (so --device auto/cuda means its own GPU).
    """
    from ambient_eval.sampling.distributed import world

    if world()[1] <= 1:  # one process: nothing to join (and no torch import)
        yield 0, 1
        return
    import torch

    from ambient_eval.sampling.distributed import device_for_rank, process_group
    dev = device_for_rank(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    with process_group(dev) as (rank, size):
        yield rank, size


def batch_range(n: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [start, stop) of rank `rank`: a contiguous run of whole batches (batch-aligned)."""
    n_batches = -(-n // batch_size)
    b0, b1 = n_batches * rank // world, n_batches * (rank + 1) // world
    return min(n, b0 * batch_size), min(n, b1 * batch_size)


def iter_range(source: "ImageSource", start: int, stop: int, batch_size: int):
    """(indices, images) of rows [start, stop), batch by batch (same batches as iter_batches)."""
    for b in range(start, stop, batch_size):
        idx = np.arange(b, min(b + batch_size, stop), dtype=np.int64)
        yield idx, source.read(idx)


def all_agree(flag: bool) -> bool:
    """True when `flag` is true on every rank (e.g. a feature-cache hit everywhere)."""
    if not active():
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_comm_device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def _comm_device():
    import torch
    import torch.distributed as dist

    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


def gather_rows(part: np.ndarray, n: int) -> np.ndarray:
    """Concatenate every rank's rows (rank order = original order) on every rank: (n, d) float32."""
    import torch
    import torch.distributed as dist

    # part (n_r, d) float32 on rank r => (sum n_r == n, d) float32, identical on all ranks
    if not active():
        return part
    dev = _comm_device()
    _, world = rank_world()
    sizes = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([part.shape[0]], dtype=torch.int64, device=dev))
    counts = [int(s.item()) for s in sizes]
    if sum(counts) != n:
        raise RuntimeError(f"ranks extracted {counts} rows, expected {n} in total")
    width = max(counts)
    buf = torch.zeros((width, part.shape[1]), dtype=torch.float32, device=dev)
    buf[: part.shape[0]] = torch.from_numpy(np.ascontiguousarray(part, np.float32)).to(dev)
    bufs = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(bufs, buf)
    return np.concatenate([b[:c].cpu().numpy() for b, c in zip(bufs, counts)])


def broadcast_error(message: str | None) -> str | None:
    """The first rank's error message, seen by all ranks (so every rank stops, none hangs)."""
    import torch.distributed as dist

    if not active():
        return message
    msgs: list[str | None] = [None] * rank_world()[1]
    dist.all_gather_object(msgs, message)
    return next((m for m in msgs if m), None)
