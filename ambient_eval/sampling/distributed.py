"""torchrun support: seeds are sharded by rank; gloo on CPU, nccl on GPU. Single process otherwise.

On GPUs each rank binds its CUDA device (rank_layout.rank_gpu) before the group is created; the group
waits up to $AMBIENT_EVAL_DIST_TIMEOUT seconds (default 1 h) and is destroyed at the end. An error on
any rank is published in the rendezvous store, so the other ranks stop with the same message instead
of waiting for a collective that never comes.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

from ambient_eval.errors import AmbientError

ERROR_KEY = "ambient_eval/error"        # store key: "rank R: message" of the first failing rank
SEEN_KEY = "ambient_eval/error_seen"    # counter: ranks that have read it
ERROR_WAIT_S = 10.0                     # how long a failing rank keeps the store up for the others


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment (0, 1, 0 when absent)."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _store():
    try:
        import torch.distributed.distributed_c10d as c10d

        return c10d._get_default_store()
    except Exception:  # noqa: BLE001 - no store: nothing to share
        return None


def _peer_error(store) -> str | None:
    try:
        if store is not None and store.check([ERROR_KEY]):
            msg = store.get(ERROR_KEY).decode()
            store.add(SEEN_KEY, 1)
            return msg
    except Exception:  # noqa: BLE001 - the store may be gone with the failing rank
        return None
    return None


def _publish(store, rank: int, size: int, exc: BaseException) -> None:
    """Tell the other ranks why this one stops; end the group (their collectives fail) and give them
    a moment to read the message from the store (rank 0's process may host it)."""
    import torch.distributed as dist

    from ambient_eval.runtime.oom import as_oom_error

    user = exc if isinstance(exc, AmbientError) else as_oom_error(exc)
    text = str(user) if user is not None else f"{type(exc).__name__}: {exc}"
    mine = f"rank {rank}: {' '.join(text.split())}"
    try:
        got = store.compare_set(ERROR_KEY, "", mine)
        first = (got.decode() if isinstance(got, bytes) else str(got)) == mine
    except Exception:  # noqa: BLE001 - best effort: the others still time out
        return
    if dist.is_initialized():
        dist.destroy_process_group()
    deadline = time.monotonic() + ERROR_WAIT_S
    while first and time.monotonic() < deadline:
        try:
            if store.add(SEEN_KEY, 0) >= size - 1:
                return
        except Exception:  # noqa: BLE001
            return
        time.sleep(0.05)


@contextlib.contextmanager
def process_group(device) -> Iterator[tuple[int, int]]:
    """Join the torchrun process group for the duration (no-op for one process).

    `device` must already be this rank's device (device_for_rank, which calls set_device).
    """
    import torch.distributed as dist

    from ambient_eval.sampling.rank_layout import group_timeout

    rank, size, _ = world()
    created = False
    if size > 1 and not dist.is_initialized():
        timeout = group_timeout()
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", timeout=timeout)
        created = True
    try:
        yield rank, size
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:
        if type(e).__name__ in ("Exit", "Abort"):  # click/typer control flow (e.g. Exit(0)), not an error
            raise
        store = _store() if size > 1 else None
        peer = None if store is None else _peer_error(store)
        if peer is not None and not peer.startswith(f"rank {rank}:"):
            raise AmbientError(f"Stopped because {peer}") from e   # same message as the failing rank
        if store is not None:
            _publish(store, rank, size, e)
        raise
    finally:
        if created and dist.is_initialized():
            dist.destroy_process_group()


def barrier() -> None:
    """Wait for all ranks (no-op for one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def device_for_rank(name: str):
    """--device under torchrun on GPUs => this rank's GPU (rank_layout.rank_gpu), set as current.

    One process: resolve_device(name). Call before the process group is created (NCCL binds the
    current device).
    """
    import torch

    from ambient_eval.runtime.device import resolve_device
    from ambient_eval.sampling.rank_layout import rank_gpu

    dev = resolve_device(name)
    _, size, local_rank = world()
    if dev.type != "cuda" or size <= 1:
        return dev
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    idx = rank_gpu(dev.index, local_rank, local_world, torch.cuda.device_count(),
                   os.environ.get("CUDA_VISIBLE_DEVICES"))
    dev = torch.device("cuda", idx)
    torch.cuda.set_device(dev)
    return dev
