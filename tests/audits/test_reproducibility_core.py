"""Pure pieces of the reproducibility audit: seed alignment, pair cosine, RP matrix, CIs, MS/GL."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.audits import reproducibility as rp
from ambient_eval.errors import AmbientError


def test_seed_from_name_reads_edm_layout():
    assert rp.seed_from_name("000123.png") == 123
    assert rp.seed_from_name("000000/000999.png") == 999
    assert rp.seed_from_name("001000/001234.jpg") == 1234
    assert rp.seed_from_name("img_3.png") is None
    with pytest.raises(AmbientError, match="img_3.png"):
        rp.seeds_from_names(["000001.png", "img_3.png"], "folder x")


def test_align_seeds_is_order_independent_and_names_missing_seed():
    present = [5, 3, 9, 0, 7]
    idx = rp.align_seeds(present, [0, 3, 5, 7, 9], "model A")
    assert [present[i] for i in idx] == [0, 3, 5, 7, 9]
    with pytest.raises(AmbientError, match=r"Seed 4 is missing from model B"):
        rp.align_seeds(present, [3, 4, 5], "model B")
    with pytest.raises(AmbientError, match=r"Seed 3 appears 2 times"):
        rp.align_seeds([3, 3, 4], [3], "model C")


def test_pair_cosine_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 7)), rng.normal(size=(50, 7))
    want = [float(x @ y / np.linalg.norm(x) / np.linalg.norm(y)) for x, y in zip(a, b)]
    np.testing.assert_allclose(rp.pair_cosine(a, b), want, rtol=1e-12)
    np.testing.assert_allclose(rp.pair_cosine(a, 3.0 * a), 1.0, rtol=1e-12)
    assert rp.pair_cosine(a, 3.0 * a).max() <= 1.0  # clipped: histograms bin at most 1


def test_rp_matrix_counts_strictly_above_threshold():
    rng = np.random.default_rng(1)
    n, d = 200, 16
    base = rng.normal(size=(n, d))
    other = rng.normal(size=(n, d))
    # B equals A on the first 150 seeds, independent on the rest; C independent everywhere.
    b = np.where(np.arange(n)[:, None] < 150, base, other)
    res = rp.rp_matrix({"A": base, "B": b, "C": rng.normal(size=(n, d))}, np.arange(n), 0.6, n_boot=500)
    cos_ab = res.cosine[("A", "B")]
    assert res.rp[0, 1] == res.rp[1, 0] == pytest.approx(np.mean(cos_ab > 0.6))
    assert 0.74 <= res.rp[0, 1] <= 0.80  # 150 exact + chance hits among 50 independent pairs
    assert res.rp[0, 2] < 0.05 and np.all(np.diag(res.rp) == 1.0)
    assert res.ci_lo[0, 1] <= res.rp[0, 1] <= res.ci_hi[0, 1]
    assert res.rp_mean() == pytest.approx((res.rp[0, 1] + res.rp[0, 2] + res.rp[1, 2]) / 3)
    # Threshold exactly at a similarity: strictly greater-than.
    assert rp.fraction_above(np.array([0.6, 0.61]), 0.6) == 0.5


def test_bootstrap_ci_is_seeded_and_matches_index_resampling():
    hits = np.r_[np.ones(30, bool), np.zeros(70, bool)]
    ci1 = rp.bootstrap_ci(hits, n_boot=4000, seed=3)
    assert ci1 == rp.bootstrap_ci(hits, n_boot=4000, seed=3)
    # Brute force: resample indices with replacement.
    rng = np.random.default_rng(7)
    means = hits[rng.integers(0, hits.size, size=(4000, hits.size))].mean(axis=1)
    brute = np.quantile(means, [0.025, 0.975])
    assert abs(ci1[0] - brute[0]) <= 0.02 and abs(ci1[1] - brute[1]) <= 0.02
    assert rp.bootstrap_ci(np.ones(10, bool)) == (1.0, 1.0)


def test_memorization_and_gl_scores():
    top1 = np.array([0.99, 0.95, 0.2, 0.61, 0.6])
    s = rp.memorization_score(top1, 0.6)
    assert s.memorization == pytest.approx(3 / 5) and s.gl == pytest.approx(2 / 5) and s.n == 5


@pytest.mark.parametrize("bad", [-1.5, 1.01, float("nan")])
def test_threshold_outside_range_is_refused(bad):
    with pytest.raises(AmbientError, match=r"outside \[-1, 1\]"):
        rp.check_threshold(bad)


def test_one_model_is_refused():
    with pytest.raises(AmbientError, match="at least two models"):
        rp.rp_matrix({"A": np.ones((3, 2))}, [0, 1, 2])
