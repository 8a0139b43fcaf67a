"""faiss on several GPUs, the logic testable on CPU: CPU copies of sharded/replicated indexes,
nprobe on every member, faiss-gpu limits before search, the query split, the recorded gpu flag."""
from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from ambient_eval.audits import faiss_gpu as FG  # noqa: E402
from ambient_eval.audits import search as S  # noqa: E402
from ambient_eval.errors import AmbientError  # noqa: E402


def _data(n=600, d=16, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _ivf(xb, nlist=8):
    idx = faiss.IndexIVFFlat(faiss.IndexFlatIP(xb.shape[1]), xb.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    idx.train(xb)
    return idx


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_to_cpu_merges_shards_in_id_order(kind):
    # What index_cpu_to_all_gpus(shard=True) builds, with CPU members standing in for GpuIndex*.
    xb = _data()
    shards = faiss.IndexShards(xb.shape[1], False, True)     # successive ids, as the GPU cloner makes
    members = []
    for part in np.array_split(xb, 3):
        m = faiss.IndexFlatIP(xb.shape[1]) if kind == "flat" else _ivf(xb)
        m.add(part)
        members.append(m)
        shards.add_shard(m)
    if kind == "ivf":
        FG.set_nprobe(shards, 8)                              # every member gets it
        assert all(faiss.extract_index_ivf(m).nprobe == 8 for m in members)
    cpu = FG.to_cpu(shards)
    assert type(cpu) is not faiss.IndexShards and cpu.ntotal == len(xb)
    ref = faiss.IndexFlatIP(xb.shape[1])
    ref.add(xb)
    if kind == "ivf":
        faiss.extract_index_ivf(cpu).nprobe = 8               # exhaustive: equals exact search
    (_, I), (_, Iref) = cpu.search(xb[:50], 3), ref.search(xb[:50], 3)
    assert np.array_equal(I, Iref)


def test_to_cpu_of_replicas_is_one_member():
    xb = _data()
    rep = faiss.IndexReplicas(xb.shape[1])
    members = [faiss.IndexFlatIP(xb.shape[1]) for _ in range(2)]
    for m in members:
        m.add(xb)
        rep.addIndex(m)
    assert FG.to_cpu(rep).ntotal == len(xb)
    assert FG.sub_indexes(rep) is not None and not FG.is_gpu_index(rep)


def test_limits_are_checked_before_search_on_gpu_indexes(monkeypatch):
    xb = _data()
    idx = S.build_index(S.iter_blocks(xb), xb.shape[1], "flat", nb=len(xb), use_gpu=False)
    FG.check_gpu_limits(idx, 5000)                            # CPU: no limit
    monkeypatch.setattr(FG, "is_gpu_index", lambda index: True)
    with pytest.raises(AmbientError, match="--k 2049 .* limit of 2048"):
        S.search(idx, xb[:3], 2049)
    with pytest.raises(AmbientError, match="nprobe 4096 .* limit of 2048"):
        FG.check_gpu_limits(idx, 10, 4096)
    assert FG.gpu_nprobe(4096, True) == 2048 and FG.gpu_nprobe(4096, False) == 4096


@pytest.mark.parametrize("nq,world", [(10, 3), (2, 4), (0, 2), (1000, 8)])
def test_query_split_covers_every_query_once(nq, world):
    ranges = [FG.query_range(nq, r, world) for r in range(world)]
    assert ranges[0][0] == 0 and ranges[-1][1] == nq
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [b - a for a, b in ranges]
    assert max(sizes) - min(sizes) <= 1


def test_gpu_type_names_are_recognised():
    class GpuIndexFlatIP:  # stands in for faiss's GPU class (same name)
        pass

    assert FG.is_gpu_index(GpuIndexFlatIP()) and not FG.is_gpu_index(faiss.IndexFlatIP(4))


def test_gpu_oom_while_adding_names_the_index_size():
    import torch

    class Full:
        d, is_trained, ntotal = 16, True, 0

        def add(self, x):
            raise RuntimeError("Error in void* faiss::gpu::StandardGpuResourcesImpl::allocMemory: "
                               "Error: 'err == cudaSuccess' failed: StandardGpuResources: alloc fail "
                               "type IVFLists dev 0 space Device stream 0x0 size 268435456 bytes "
                               "(cudaMalloc error out of memory [2])")

    xb = _data(100)
    import ambient_eval.audits.search as mod

    orig = mod.new_index
    mod.new_index = lambda *a, **k: Full()
    try:
        with pytest.raises(AmbientError, match=r"GPU memory while adding embeddings 0-100 of 100 \(d=16\)"):
            S.build_index(S.iter_blocks(xb), 16, "flat", nb=100, use_gpu=False)
    finally:
        mod.new_index = orig
    assert torch is not None
