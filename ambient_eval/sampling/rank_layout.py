"""torchrun on GPUs: which CUDA device a rank uses, and the process-group timeout.

Pure functions (no torch), unit-tested with fake device counts (tests/sampling/test_rank_layout.py).
"""
from __future__ import annotations

import datetime as _dt
import os

from ambient_eval.errors import AmbientError

TIMEOUT_ENV = "AMBIENT_EVAL_DIST_TIMEOUT"  # seconds a collective may wait (rank 0 alone may train IVF)
DEFAULT_TIMEOUT_S = 3600                   # 1 h: above NCCL's 10-minute default, for rank-0-only work


def group_timeout(env: dict | None = None) -> _dt.timedelta:
    """Process-group timeout from $AMBIENT_EVAL_DIST_TIMEOUT (seconds), default 1 hour."""
    raw = (os.environ if env is None else env).get(TIMEOUT_ENV)
    if raw in (None, ""):
        return _dt.timedelta(seconds=DEFAULT_TIMEOUT_S)
    try:
        secs = float(raw)
    except ValueError:
        secs = -1.0
    if not secs > 0:
        raise AmbientError(f"{TIMEOUT_ENV}={raw!r} is not a positive number of seconds. Set e.g. "
                           f"{TIMEOUT_ENV}=7200 (how long a rank waits for the others), or unset it "
                           f"(default {DEFAULT_TIMEOUT_S} s).")
    return _dt.timedelta(seconds=secs)


def rank_gpu(requested: int | None, local_rank: int, local_world: int, n_visible: int,
             visible_env: str | None) -> int:
    """CUDA ordinal (among the devices this process sees) for one torchrun rank, or AmbientError.

    requested: N of --device cuda:N (None for cuda / auto). n_visible: torch.cuda.device_count() in
    this process. visible_env: $CUDA_VISIBLE_DEVICES. Layouts:
      * every rank sees all node GPUs (plain torchrun): rank -> GPU LOCAL_RANK;
      * every rank sees exactly one GPU (SLURM --gpus-per-task=1, per-rank CUDA_VISIBLE_DEVICES): GPU 0.
    """
    layout = (f"torchrun started {local_world} process(es) on this node; this one (LOCAL_RANK "
              f"{local_rank}) sees {n_visible} GPU(s) (CUDA_VISIBLE_DEVICES={visible_env or 'unset'}).")
    fix = ("NCCL needs one GPU per process: start at most as many processes per node as GPUs "
           "(--nproc_per_node), give each process its own GPU (e.g. SLURM --gpus-per-task=1), or run "
           "the ranks on CPU with --device cpu (gloo).")
    if n_visible < 1:
        raise AmbientError(f"{layout} There is no GPU for it. {fix}")
    if requested is not None:
        if local_world > 1 and n_visible > 1:
            raise AmbientError(f"--device cuda:{requested} under torchrun would put every process on "
                               f"GPU {requested}. {layout} Use --device cuda (or auto): process LOCAL_RANK "
                               "then uses GPU LOCAL_RANK.")
        if requested >= n_visible:
            raise AmbientError(f"--device cuda:{requested} does not exist: {layout} Use --device cuda.")
        return requested
    if n_visible == 1:
        if local_world > 1 and visible_env is None:
            raise AmbientError(f"{layout} All {local_world} processes would share that one GPU. {fix}")
        return 0  # per-rank visible devices: each process's own GPU is its device 0
    if local_rank >= n_visible:
        raise AmbientError(f"{layout} There is no GPU {local_rank} for it. {fix}")
    return local_rank
