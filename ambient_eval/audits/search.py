"""Nearest-neighbour search of L2-normalized embeddings with FAISS (cosine = inner product).

Conventions (as in faiss.contrib): `xq` queries (nq, d), `xb` database (nb, d), `k` neighbours,
`D` similarities (nq, k) float32 sorted descending, `I` database indices (nq, k) int64.
All vectors are float32 and L2-normalized by the caller (see `embed.l2_normalize`), so the inner
product is the cosine similarity.

Public API (reused by the reproducibility audit):
- `iter_blocks(xb, bs)`: a database as an iterator of float32 blocks (bounded memory).
- `knn_blocks(xq, blocks, k)`: exact top-k over a database given as blocks (no index kept).
- `build_index(blocks, d, kind=...)`: an index filled chunk by chunk (flat | ivf | ivfpq | hnsw).
- `search(index, xq, k)`: batched top-k search on an index.
- `recall_at_1(index, xq, xb)`: recall@1 of an (approximate) index vs exact search.
Saved indexes (`save_index` / `load_index` with their key check) live in `index_files.py`.
"""
from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.runtime.oom import oom_guard

log = logging.getLogger(__name__)

INDEX_KINDS = ("flat", "ivf", "ivfpq", "hnsw")


@dataclass(frozen=True)
class SearchDefaults:
    k: int = 5                    # neighbours returned per query
    add_chunk: int = 65536        # database rows converted and added to an index at a time
    query_batch: int = 16384      # queries searched at a time
    nlist_per_sqrt: float = 4.0   # IVF cells = nlist_per_sqrt * sqrt(nb) (faiss guideline 4-16)
    min_train_per_cell: int = 39  # faiss warns below 39 training points per IVF cell
    max_train: int = 262144       # rows (seeded random subset) used to train IVF / PQ
    nprobe_min: int = 16          # IVF cells visited: max(nprobe_min, nlist // nprobe_div)
    nprobe_div: int = 16
    pq_bytes_per_dim: float = 0.5   # IVF-PQ code size: m = d / 2 sub-quantizers of 8 bits
    refine_k_factor: int = 16     # IVF-PQ shortlist re-ranked exactly: k * refine_k_factor
    hnsw_m: int = 32              # HNSW graph degree
    hnsw_ef_construction: int = 64   # HNSW build-time beam width (faiss default 40)
    hnsw_ef_search: int = 128     # HNSW search-time beam width
    recall_queries: int = 1000    # seeded sample of queries for recall@1 vs exact
    seed: int = 0                 # seed of the IVF training subset and the recall sample
    blas_database_bs: int = 8192  # faiss exact-search GEMM tile: database rows (faiss default 1024);
                                  # 4096 queries x 8192 rows = 128 MiB of scores per tile


def tune_faiss() -> None:
    """Larger faiss BLAS tiles for exact inner-product search: fewer, bigger GEMMs (bench_search.py)."""
    import faiss

    if faiss.cvar.distance_compute_blas_database_bs == 1024:   # leave a user's own setting alone
        faiss.cvar.distance_compute_blas_database_bs = SearchDefaults.blas_database_bs


DEFAULTS = SearchDefaults()


def iter_blocks(xb: np.ndarray, bs: int = DEFAULTS.add_chunk) -> Iterator[np.ndarray]:
    """Yield contiguous float32 blocks of `xb` (a memmap stays on disk until its block is read)."""
    # (nb, d) any float => blocks (<=bs, d) float32
    for i0 in range(0, xb.shape[0], bs):
        yield np.ascontiguousarray(xb[i0:i0 + bs], dtype=np.float32)


def _merge_topk(D: np.ndarray, I: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the k largest similarities per row of (D, I), sorted descending (stable on index)."""
    if D.shape[1] > k:
        part = np.argpartition(-D, k - 1, axis=1)[:, :k]
        D, I = np.take_along_axis(D, part, 1), np.take_along_axis(I, part, 1)
    order = np.lexsort((I, -D), axis=-1)  # similarity descending, then lower index first
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


def knn_blocks(xq: np.ndarray, blocks: Iterable[np.ndarray], k: int = DEFAULTS.k
               ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner-product search over a database given as an iterator of blocks.

    Only one block (plus nq x 2k results) is in memory at a time, so the database can exceed RAM
    (same idea as faiss.contrib.exhaustive_search.knn_ground_truth; our own heap-free merge).
    """
    import faiss

    tune_faiss()
    # (nq, d) float32, blocks of (nb_i, d) float32 => D (nq, k) float32, I (nq, k) int64
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    nq, d = xq.shape
    D = np.full((nq, k), -np.inf, dtype=np.float32)
    I = np.full((nq, k), -1, dtype=np.int64)
    i0 = 0
    for xb in blocks:
        if xb.shape[1] != d:
            raise AmbientError(f"Database block has dimension {xb.shape[1]} but the queries have {d}. "
                               "Embed both with the same extractor.")
        index = faiss.IndexFlatIP(d)
        index.add(np.ascontiguousarray(xb, dtype=np.float32))
        Db, Ib = index.search(xq, min(k, xb.shape[0]))
        D, I = _merge_topk(np.hstack([D, Db]), np.hstack([I, Ib + i0]), k)
        i0 += xb.shape[0]
    if i0 < k:
        raise AmbientError(f"The training set has {i0} embeddings, fewer than k = {k} neighbours. "
                           "Lower --k or use a larger training set.")
    return D, I


def default_nlist(nb: int, defaults: SearchDefaults = DEFAULTS) -> int:
    """IVF cells for nb vectors: ~4 sqrt(nb), and at least 39 training points per cell."""
    nlist = int(defaults.nlist_per_sqrt * math.sqrt(nb))
    return max(1, min(nlist, nb // defaults.min_train_per_cell))


def _pq_m(d: int, defaults: SearchDefaults = DEFAULTS) -> int:
    """Largest divisor of d not above d * pq_bytes_per_dim (faiss PQ needs d % m == 0)."""
    target = max(1, int(d * defaults.pq_bytes_per_dim))
    return max(m for m in range(1, target + 1) if d % m == 0)


def new_index(kind: str, d: int, nb: int, defaults: SearchDefaults = DEFAULTS) -> Any:
    """An empty inner-product index of the given kind, sized for nb database vectors."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(d)
    if kind in ("ivf", "ivfpq"):
        nlist = default_nlist(nb, defaults)
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            # 8-bit codes need 256 * 39 training points; fewer bits for small databases.
            nbits = int(max(1, min(8, math.floor(math.log2(max(2, min(nb, defaults.max_train))
                                                          / defaults.min_train_per_cell)))))
            index = faiss.IndexIVFPQ(quantizer, d, nlist, _pq_m(d, defaults), nbits,
                                     faiss.METRIC_INNER_PRODUCT)
        index.nprobe = min(nlist, max(defaults.nprobe_min, nlist // defaults.nprobe_div))
        if kind == "ivfpq":
            # PQ similarities are approximate, and thresholds need exact ones: re-rank a shortlist
            # of k * refine_k_factor PQ candidates with the full vectors (IndexRefineFlat).
            index = faiss.IndexRefineFlat(index)
            index.k_factor = defaults.refine_k_factor
        return index
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, defaults.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = defaults.hnsw_ef_construction
        index.hnsw.efSearch = defaults.hnsw_ef_search
        return index
    raise AmbientError(f"Unknown index kind '{kind}'. Use one of: {', '.join(INDEX_KINDS)}.")


def index_params(index: Any) -> dict[str, Any]:
    """Kind-specific parameters of an index (nlist, nprobe, efSearch, k_factor) for provenance."""
    import faiss

    from ambient_eval.audits.faiss_gpu import sub_indexes

    out: dict[str, Any] = {}
    index = (sub_indexes(index) or [index])[0]   # sharded / replicated over GPUs: same parameters
    if hasattr(index, "k_factor"):
        out["k_factor"] = int(index.k_factor)
        index = faiss.downcast_index(index.base_index)
    for attr in ("nlist", "nprobe"):
        if hasattr(index, attr):
            out[attr] = int(getattr(index, attr))
    if hasattr(index, "hnsw"):
        out["efSearch"] = int(index.hnsw.efSearch)
    return out


def to_gpu(index: Any, use_gpu: bool | None = None) -> Any:
    """Move an index to the GPU(s) (faiss_gpu.to_gpu: per-rank GPU under torchrun, else sharded)."""
    from ambient_eval.audits.faiss_gpu import to_gpu as _to_gpu

    return _to_gpu(index, use_gpu)


def to_cpu(index: Any) -> Any:
    """A CPU copy of a (possibly GPU, sharded or replicated) index, for saving."""
    from ambient_eval.audits.faiss_gpu import to_cpu as _to_cpu

    return _to_cpu(index)


def build_index(blocks: Iterable[np.ndarray], d: int, kind: str = "flat", *, nb: int,
                train_x: np.ndarray | None = None, use_gpu: bool | None = None,
                defaults: SearchDefaults = DEFAULTS, progress_desc: str = "index") -> Any:
    """Fill an index of `kind` from database blocks, adding one block at a time.

    nb: total database size (sizes IVF). train_x: vectors used to train IVF / PQ (a seeded random
    sample of the database, see `train_sample`); the first blocks are used when it is None.
    """
    from ambient_eval.runtime.progress import progress

    # blocks of (nb_i, d) float32 L2-normalized => faiss index with ntotal == nb
    if nb < 1:
        raise AmbientError("The training set is empty (0 embeddings): nothing to search. "
                           "Pass a --train source with at least one image.")
    index = new_index(kind, d, nb, defaults)
    blocks = iter(blocks)
    pending: list[np.ndarray] = []
    if not index.is_trained:
        if train_x is None:  # stream: train on the first rows (up to max_train), then add them
            n = 0
            for xb in blocks:
                pending.append(xb)
                n += xb.shape[0]
                if n >= defaults.max_train:
                    break
            train_x = np.concatenate(pending)[: defaults.max_train]
        index.train(np.ascontiguousarray(train_x, dtype=np.float32))
    index = to_gpu(index, use_gpu) if kind != "hnsw" else index
    added = 0
    bar = progress(total=nb, desc=progress_desc, unit="emb")
    for block in itertools.chain(pending, blocks):  # rows consumed for training, then the rest
        if block.shape[1] != d:
            raise AmbientError(f"Training embeddings have dimension {block.shape[1]} but the index "
                               f"expects {d}. Embed the training set with the same extractor.")
        with oom_guard(f"adding embeddings {added}-{added + block.shape[0]} of {nb} (d={d}) to the "
                       f"{type(index).__name__} index", "Use --index ivfpq (compressed) or --shards DIR "
                       "for large training sets, or keep faiss on CPU with --device cpu."):
            index.add(np.ascontiguousarray(block, dtype=np.float32))
        added += block.shape[0]
        bar.update(block.shape[0])
    bar.close()
    if added != nb:
        raise AmbientError(f"Expected {nb} training embeddings but received {added}. The training set "
                           "changed while it was read; run again.")
    return index


def train_sample(xb: np.ndarray, defaults: SearchDefaults = DEFAULTS) -> np.ndarray | None:
    """Seeded random rows of xb for training IVF / PQ (None when xb already fits max_train)."""
    if xb.shape[0] <= defaults.max_train:
        return np.ascontiguousarray(xb, dtype=np.float32)
    rng = np.random.default_rng(defaults.seed)
    rows = np.sort(rng.choice(xb.shape[0], defaults.max_train, replace=False))
    return np.ascontiguousarray(xb[rows], dtype=np.float32)


def search(index: Any, xq: np.ndarray, k: int = DEFAULTS.k, *, batch: int = DEFAULTS.query_batch,
           progress_desc: str = "search") -> tuple[np.ndarray, np.ndarray]:
    """Top-k inner-product search, queries in batches; D sorted descending, ties by lower index."""
    from ambient_eval.runtime.progress import progress

    tune_faiss()
    # (nq, d) float32 L2-normalized => D (nq, k) float32, I (nq, k) int64
    xq = np.ascontiguousarray(xq, dtype=np.float32)
    if xq.ndim != 2 or xq.shape[1] != index.d:
        raise AmbientError(f"Query embeddings have dimension {xq.shape[-1]} but the index has {index.d}. "
                           "The index was built with another extractor or resolution; rebuild it "
                           "(delete the --index-path file) or use the same extractor.")
    from ambient_eval.audits.faiss_gpu import check_gpu_limits, split_search

    check_gpu_limits(index, k)
    if index.ntotal < k:
        raise AmbientError(f"The training set has {index.ntotal} embeddings, fewer than k = {k} "
                           "neighbours. Lower --k or use a larger training set.")

    def run(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = np.empty((q.shape[0], k), dtype=np.float32)
        I = np.empty((q.shape[0], k), dtype=np.int64)
        bar = progress(total=q.shape[0], desc=progress_desc, unit="query")
        for i0 in range(0, q.shape[0], batch):
            with oom_guard(f"searching {min(batch, q.shape[0] - i0)} queries for k={k} in an index of "
                           f"{index.ntotal} vectors", "Lower --k, or keep faiss on CPU with --device cpu."):
                Db, Ib = index.search(q[i0:i0 + batch], k)
            D[i0:i0 + batch], I[i0:i0 + batch] = _merge_topk(Db, Ib, k)
            bar.update(Db.shape[0])
        bar.close()
        return D, I

    return split_search(index, xq, run)   # torchrun + one GPU index per rank: queries split over ranks


def recall_at_1(index: Any, xq: np.ndarray, xb: np.ndarray, *, n: int = DEFAULTS.recall_queries,
                seed: int = DEFAULTS.seed, tol: float = 1e-6) -> dict[str, float]:
    """Recall@1 of `index` against exact search on a seeded sample of n queries.

    A hit is the same top-1 index, or (ties) a top-1 whose exact similarity equals the exact
    maximum within `tol`. Returns {"recall_at_1", "n_queries", "seed"}.
    """
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(xq.shape[0], min(n, xq.shape[0]), replace=False))
    q = np.ascontiguousarray(xq[rows], dtype=np.float32)
    D_gt, I_gt = knn_blocks(q, iter_blocks(xb), 1)
    _, I = index.search(q, 1)
    ok = I[:, 0] >= 0
    sim = np.full(len(q), -np.inf, dtype=np.float32)
    sim[ok] = np.einsum("ij,ij->i", q[ok], np.asarray(xb[I[ok, 0]], dtype=np.float32))
    hit = (I[:, 0] == I_gt[:, 0]) | (sim >= D_gt[:, 0] - tol)
    return {"recall_at_1": float(hit.mean()), "n_queries": int(len(q)), "seed": int(seed)}
