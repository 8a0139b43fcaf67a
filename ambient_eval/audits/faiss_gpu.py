"""faiss indexes on GPUs: placement (one index per GPU across torchrun ranks), CPU copies of multi-GPU
types, nprobe on any index type, faiss-gpu limits checked before search, and the query split.

Layout:
  * one process, G GPUs: `index_cpu_to_all_gpus` with sharding (each GPU holds 1/G of the vectors;
    faiss merges the per-shard top-k), so the index needs G times less memory per GPU than replicas;
  * torchrun, one GPU per rank: each rank copies the index to its own GPU only, searches its share of
    the queries (`query_range`), and the results are gathered in query order on every rank.
"""
from __future__ import annotations

import logging
from typing import Any

from ambient_eval.errors import AmbientError
from ambient_eval.runtime.oom import oom_guard

log = logging.getLogger(__name__)

GPU_MAX_K = 2048        # faiss-gpu: k-selection supports k <= 2048 (GPU_MAX_SELECTION_K)
GPU_MAX_NPROBE = 2048   # faiss-gpu IVF: nprobe <= 2048 (same k-selection limit over the lists)


def _faiss():
    import faiss

    return faiss


def sub_indexes(index: Any) -> list[Any] | None:
    """The members of an IndexShards / IndexReplicas (downcast), or None for any other index."""
    faiss = _faiss()
    if not isinstance(index, faiss.Index):
        return None
    idx = faiss.downcast_index(index)
    if isinstance(idx, (faiss.IndexShards, faiss.IndexReplicas)):
        return [faiss.downcast_index(idx.at(i)) for i in range(idx.count())]
    return None


def is_gpu_index(index: Any) -> bool:
    """True for Gpu* indexes and shards/replicas made of them (what results record as "gpu")."""
    subs = sub_indexes(index)
    if subs is not None:
        return bool(subs) and all(is_gpu_index(s) for s in subs)
    return type(index).__name__.startswith("Gpu")


def to_cpu(index: Any) -> Any:
    """A CPU copy of any index: GPU, sharded over GPUs (shards merged in id order), replicated."""
    faiss = _faiss()
    subs = sub_indexes(index)
    if subs is not None:
        if not subs:
            raise AmbientError("The faiss index holds no shards; rebuild it.")
        if isinstance(faiss.downcast_index(index), faiss.IndexReplicas):
            return to_cpu(subs[0])                       # every replica holds all vectors
        out = faiss.clone_index(to_cpu(subs[0]))
        for s in subs[1:]:                               # successive ids: shard i follows shard i-1
            out.merge_from(to_cpu(s), 0 if isinstance(out, faiss.IndexFlatCodes) else out.ntotal)
        return out
    if type(index).__name__.startswith("Gpu"):
        return faiss.index_gpu_to_cpu(index)
    return index


def set_nprobe(index: Any, nprobe: int) -> None:
    """IVF cells visited per query, on a CPU, GPU, sharded or replicated index (all members)."""
    faiss = _faiss()
    subs = sub_indexes(index)
    if subs is not None:
        for s in subs:
            set_nprobe(s, nprobe)
        return
    if type(index).__name__.startswith("Gpu"):
        faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", nprobe)
        return
    ivf = faiss.extract_index_ivf(index)                 # raises for non-IVF indexes
    ivf.nprobe = nprobe


def check_gpu_limits(index: Any, k: int, nprobe: int | None = None) -> None:
    """Refuse k or nprobe above faiss-gpu's limits before any search starts."""
    if not is_gpu_index(index):
        return
    if k > GPU_MAX_K:
        raise AmbientError(f"--k {k} (neighbours searched per sample) exceeds faiss-gpu's limit of "
                           f"{GPU_MAX_K}. Lower --k (or --carlini-n), or search on CPU with --device cpu.")
    if nprobe is not None and nprobe > GPU_MAX_NPROBE:
        raise AmbientError(f"nprobe {nprobe} (IVF cells visited per query) exceeds faiss-gpu's limit of "
                           f"{GPU_MAX_NPROBE}. Pass --nprobe {GPU_MAX_NPROBE} or less (or a smaller "
                           "nlist), or search on CPU with --device cpu.")


def gpu_nprobe(default: int, on_gpu: bool) -> int:
    """The default nprobe, capped at faiss-gpu's limit for GPU indexes (logged when capped)."""
    if on_gpu and default > GPU_MAX_NPROBE:
        log.warning("Default nprobe %d exceeds faiss-gpu's limit; using %d.", default, GPU_MAX_NPROBE)
        return GPU_MAX_NPROBE
    return default


def query_range(nq: int, rank: int, world: int) -> tuple[int, int]:
    """Queries [start, stop) searched by `rank`: contiguous, sizes differ by at most one."""
    return nq * rank // world, nq * (rank + 1) // world


def split_search(index: Any, xq, search_fn):
    """Under torchrun with one GPU index per rank: search this rank's queries, gather all in order.

    search_fn(queries) => (D, I); elsewhere (one process, or a CPU index) it runs on every query.
    """
    import numpy as np

    from ambient_eval.features import distributed as D

    if not (D.active() and is_gpu_index(index)):
        return search_fn(xq)
    import torch.distributed as dist

    rank, world = D.rank_world()
    start, stop = query_range(len(xq), rank, world)
    parts: list = [None] * world
    dist.all_gather_object(parts, search_fn(xq[start:stop]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def to_gpu(index: Any, use_gpu: bool | None = None) -> Any:
    """Move an index to the GPU(s); unchanged on CPU-only faiss, for HNSW, or when use_gpu is False.

    Under torchrun each rank uses its own GPU (torch's current device); a single process shards the
    index over every GPU faiss sees. An out-of-memory error names the index size.
    """
    faiss = _faiss()
    ngpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if use_gpu is False or ngpu == 0 or isinstance(index, faiss.IndexHNSW):
        return index
    from ambient_eval.features import distributed as D

    what = (f"copying a faiss index of {index.ntotal} vectors (d={index.d}, "
            f"{type(index).__name__}) to the GPU")
    try:  # the default nprobe grows with nlist; faiss-gpu refuses more than GPU_MAX_NPROBE at search
        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = gpu_nprobe(int(ivf.nprobe), True)
    except RuntimeError:
        pass  # not an IVF index
    with oom_guard(what, "Use --index ivfpq (compressed) or --shards DIR, or keep faiss on CPU with "
                   "--device cpu."):
        try:
            if D.active():
                import torch

                res = faiss.StandardGpuResources()
                return faiss.index_cpu_to_gpu(res, torch.cuda.current_device(), index)
            co = faiss.GpuMultipleClonerOptions()
            co.shard = ngpu > 1
            return faiss.index_cpu_to_all_gpus(index, co=co)
        except (RuntimeError, AttributeError) as e:  # e.g. IVF-PQ code sizes the GPU does not support
            from ambient_eval.runtime.oom import is_gpu_oom

            if is_gpu_oom(e):
                raise
            log.warning("Keeping the index on CPU: faiss could not move it to the GPU (%s).", e)
            return index
