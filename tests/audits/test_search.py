"""FAISS search paths against brute-force numpy; approximate recall; saved indexes and their keys."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.audits import index_files as IF
from ambient_eval.audits import search as S
from ambient_eval.audits.embed import l2_normalize
from ambient_eval.errors import AmbientError


def unit(n: int, d: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, d)))


def brute_force(xq: np.ndarray, xb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full similarity matrix in float64, stable sort."""
    sims = xq.astype(np.float64) @ xb.astype(np.float64).T
    I = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, I, 1), I


def assert_same_knn(D, I, xq, xb, D_ref, tol=1e-5):
    """Same similarities; indices may differ only between tied neighbours."""
    np.testing.assert_allclose(D, D_ref, atol=tol)
    recomputed = np.einsum("qd,qkd->qk", xq.astype(np.float64), xb[I].astype(np.float64))
    np.testing.assert_allclose(recomputed, D_ref, atol=tol)  # each returned index has its similarity
    assert all(len(set(row)) == len(row) for row in I)        # no neighbour returned twice


@pytest.fixture(scope="module")
def data():
    xb = unit(3000, 48, seed=1)
    xb[100:110] = xb[5]               # exact duplicates => ties the search must tolerate
    xq = np.concatenate([unit(200, 48, seed=2), xb[[5, 7, 2999]]])
    return xq, xb


@pytest.mark.parametrize("k", [1, 5, 17])
def test_flat_index_equals_brute_force(data, k):
    xq, xb = data
    index = S.build_index(S.iter_blocks(xb, 512), xb.shape[1], "flat", nb=len(xb))
    D, I = S.search(index, xq, k, batch=64)
    D_ref, I_ref = brute_force(xq, xb, k)
    assert_same_knn(D, I, xq, xb, D_ref)
    assert (I[:, 0] == I_ref[:, 0]).mean() > 0.95  # same top-1 except ties
    assert I[-1, 0] == 2999 and D[-1, 0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(D, axis=1) <= 1e-7)      # sorted descending


def test_knn_blocks_equals_brute_force_with_ragged_blocks(data):
    xq, xb = data
    for xb_part, bs in ((xb[:300], 7), (xb, 1000)):  # blocks smaller than k; uneven last block
        D, I = S.knn_blocks(xq, S.iter_blocks(xb_part, bs), 10)
        D_ref, _ = brute_force(xq, xb_part, 10)
        assert_same_knn(D, I, xq, xb_part, D_ref)


def clustered(nb: int, nq: int, d: int = 32, n_clusters: int = 100, seed: int = 0):
    """Clustered database; queries are perturbed database points (near copies) and new cluster points."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((n_clusters, d)) * 3
    xb = l2_normalize(centers[rng.integers(0, n_clusters, nb)] + rng.standard_normal((nb, d)))
    near = xb[rng.integers(0, nb, nq // 2)] + 0.05 * rng.standard_normal((nq // 2, d))
    new = centers[rng.integers(0, n_clusters, nq - nq // 2)] + rng.standard_normal((nq - nq // 2, d))
    return l2_normalize(np.concatenate([near, new])), xb


@pytest.mark.parametrize("kind", ["ivf", "ivfpq", "hnsw"])
def test_approximate_recall_at_1(kind):
    import faiss

    xq, xb = clustered(4000, 1000, n_clusters=10)  # few broad clusters: many IVF cells per cluster
    index = S.build_index(S.iter_blocks(xb, 1024), xb.shape[1], kind, nb=len(xb), train_x=S.train_sample(xb))
    rec = S.recall_at_1(index, xq, xb, n=500, seed=0)
    assert rec["n_queries"] == 500
    assert rec["recall_at_1"] >= 0.95, rec
    # the same index searched too narrowly loses neighbours, and the measurement shows it
    if kind == "hnsw":
        index.hnsw.efSearch = 1
    else:
        faiss.extract_index_ivf(index).nprobe = 1
    assert S.recall_at_1(index, xq, xb, n=500, seed=0)["recall_at_1"] < 0.9
    # the measurement itself: a flat index has recall exactly 1
    flat = S.build_index(S.iter_blocks(xb), xb.shape[1], "flat", nb=len(xb))
    assert S.recall_at_1(flat, xq, xb, n=200)["recall_at_1"] == 1.0


def test_streamed_build_trains_on_first_blocks_and_adds_everything():
    xq, xb = clustered(6000, 100, seed=3)
    seen = []

    def blocks():  # a one-shot generator, as when embeddings stream from disk
        for b in S.iter_blocks(xb, 1000):
            seen.append(b.shape[0])
            yield b

    index = S.build_index(blocks(), xb.shape[1], "ivf", nb=len(xb))
    assert index.ntotal == len(xb) and sum(seen) == len(xb)
    _, I = S.search(index, xb[:50], 1)
    assert (I[:, 0] == np.arange(50)).mean() >= 0.95


def test_saved_index_roundtrip_and_key_checks(tmp_path, data):
    xq, xb = data
    key = {"train_fingerprint": "abc", "extractor": "pixel", "index": "flat"}
    index = S.build_index(S.iter_blocks(xb), xb.shape[1], "flat", nb=len(xb))
    path = IF.save_index(index, tmp_path / "train.index", key)
    again = IF.load_index(path, key, d=xb.shape[1], use_gpu=False)
    np.testing.assert_array_equal(S.search(again, xq, 5)[1], S.search(index, xq, 5)[1])
    with pytest.raises(AmbientError, match="dimension 48"):
        IF.load_index(path, key, d=64)
    with pytest.raises(AmbientError, match="train_fingerprint"):
        IF.load_index(path, {**key, "train_fingerprint": "other"})
    assert IF.read_index_key(tmp_path / "missing.index") is None


def test_bad_search_inputs(data):
    xq, xb = data
    index = S.build_index(S.iter_blocks(xb[:3]), xb.shape[1], "flat", nb=3)
    with pytest.raises(AmbientError, match="fewer than k = 5"):
        S.search(index, xq, 5)
    with pytest.raises(AmbientError, match="dimension 10"):
        S.search(index, xq[:, :10], 1)
    with pytest.raises(AmbientError, match="empty"):
        S.build_index(iter([]), 48, "flat", nb=0)
    with pytest.raises(AmbientError, match="fewer than k"):
        S.knn_blocks(xq, S.iter_blocks(xb[:2]), 3)
    with pytest.raises(AmbientError, match="Unknown index kind"):
        S.new_index("lsh", 48, 10)
