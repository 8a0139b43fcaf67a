"""Metric formulas against closed forms, brute force and numpy (no networks, fast)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg

from ambient_eval.errors import AmbientError
from ambient_eval.metrics import (SmallSampleWarning, density_coverage, fid_from_features, fid_from_stats,
                                  inception_score, kid_from_features, precision_recall)
from ambient_eval.metrics.stats import StreamingMeanCov, mean_cov


def _spd(rng, d, scale):
    a = rng.normal(size=(d, d))
    return a @ a.T / d * scale + np.eye(d) * 0.1


def _frechet_analytic(mu1, s1, mu2, s2):
    """Closed form with an independent matrix square root: Tr sqrt(S1^1/2 S2 S1^1/2) (symmetric PSD)."""
    r1 = scipy.linalg.sqrtm(s1).real
    inner = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


@pytest.mark.parametrize("method", ["eig", "sqrtm"])
def test_fid_from_stats_closed_form_diagonal(method):
    # Diagonal covariances commute: FD = ||mu1-mu2||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2 exactly.
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 3, 32), rng.uniform(0.5, 3, 32)
    mu1, mu2 = rng.normal(size=32), rng.normal(size=32)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = fid_from_stats(mu1, np.diag(a), mu2, np.diag(b), method=method)
    assert got == pytest.approx(want, rel=1e-10)


def test_fid_of_gaussian_samples_matches_analytic():
    # N = 200k samples per set in d = 16. The estimator's spread is dominated by the mean term,
    # std ~ 2 sqrt(diff^T (S1 + S2) diff / N) ~ 0.02 here (FD ~ 13), and its bias by the
    # covariance terms, O(d * tr(S) / N) ~ 1e-3: a 1% relative tolerance is > 5 standard deviations.
    rng = np.random.default_rng(0)
    d, n = 16, 200_000
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = _spd(rng, d, 1.0), _spd(rng, d, 2.0)
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    want = _frechet_analytic(mu1, s1, mu2, s2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        for method in ("eig", "sqrtm"):
            assert fid_from_features(x, y, method=method) == pytest.approx(want, rel=0.01)


def test_fid_trace_conventions_agree_on_well_conditioned_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 64)) @ rng.normal(size=(64, 64)) * 0.3
    y = rng.normal(size=(3000, 64)) @ rng.normal(size=(64, 64)) * 0.3 + 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        eig, sq = fid_from_features(x, y, method="eig"), fid_from_features(x, y, method="sqrtm")
    assert eig == pytest.approx(sq, rel=1e-6)
    assert eig > 1


def test_identical_sets_give_zero_fid_and_perfect_pr():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 16)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        assert abs(fid_from_features(x, x, method="eig")) < 1e-8
        assert abs(fid_from_features(x, x, method="sqrtm")) < 1e-8
    assert precision_recall(x, x) == (1.0, 1.0)


def test_singular_covariance_warns_and_does_not_crash():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20, 64)), rng.normal(size=(20, 64)) + 0.2  # N <= dim: rank-deficient
    for method in ("eig", "sqrtm"):
        with pytest.warns(SmallSampleWarning, match="singular"):
            v = fid_from_features(x, y, method=method)
        assert np.isfinite(v) and v > 0
    # Exactly zero covariances (constant features) too.
    z = np.zeros((5, 8))
    with pytest.warns(SmallSampleWarning):
        assert fid_from_features(z, z + 1, method="sqrtm") == pytest.approx(8.0)


def test_small_n_warning_below_10k():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(100, 4))
    with pytest.warns(SmallSampleWarning, match="10000"):
        fid_from_features(x, x + 1)


def test_nan_statistics_are_an_error():
    mu, s = np.zeros(3), np.eye(3)
    with pytest.raises(AmbientError, match="NaN"):
        fid_from_stats(mu, s, mu + np.nan, s)
    with pytest.raises(AmbientError, match="shapes"):
        fid_from_stats(mu, s, np.zeros(4), np.eye(4))


@pytest.mark.parametrize("batch", [1, 7, 100, 999, 5000])
def test_streaming_stats_equal_numpy_whatever_the_batch_size(batch):
    rng = np.random.default_rng(6)
    # A large common offset is where the naive sum(x x^T) - n m m^T formula loses all its digits.
    x = (rng.normal(size=(999, 24)) * 3 + 1e4).astype(np.float32)
    acc = StreamingMeanCov()
    for i in range(0, len(x), batch):
        acc.update(x[i:i + batch])
    want_mu, want_cov = np.mean(x.astype(np.float64), axis=0), np.cov(x.astype(np.float64), rowvar=False)
    assert acc.n == len(x)
    np.testing.assert_allclose(acc.mean, want_mu, rtol=1e-13)
    np.testing.assert_allclose(acc.cov(), want_cov, rtol=1e-9, atol=1e-9 * np.abs(want_cov).max())
    assert acc.mean.dtype == np.float64 and acc.cov().dtype == np.float64


def test_mean_cov_streaming_path_equals_in_memory(monkeypatch):
    import ambient_eval.metrics.stats as st

    rng = np.random.default_rng(7)
    x = rng.normal(size=(1000, 10)).astype(np.float32)
    mu_a, cov_a = mean_cov(x)
    monkeypatch.setattr(st, "IN_MEMORY_COV_MAX_ELEMENTS", 0)
    mu_b, cov_b = st.mean_cov(x, chunk_rows=64)
    np.testing.assert_allclose(mu_b, mu_a, rtol=1e-12)
    np.testing.assert_allclose(cov_b, cov_a, rtol=1e-10, atol=1e-14)


def _pairwise(a, b):
    return np.sqrt(((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1))


def _dc_brute(real, fake, k):
    d_rr = _pairwise(real, real)
    radius = np.array([np.sort(row)[k] for row in d_rr])  # sorted row: [0 (self), 1st NN, ..., k-th NN]
    d_rf = _pairwise(real, fake)
    density = sum(1 for j in range(len(fake)) for i in range(len(real)) if d_rf[i, j] < radius[i]) / (k * len(fake))
    coverage = np.mean([any(d_rf[i, j] < radius[i] for j in range(len(fake))) for i in range(len(real))])
    return density, coverage


def _pr_brute(real, fake, k):
    def inside(points, support):
        d_ss = _pairwise(support, support)
        radius = np.sort(d_ss, axis=1)[:, k]
        return np.mean([(_pairwise(p[None], support)[0] <= radius).any() for p in points])
    return inside(fake, real), inside(real, fake)


@pytest.mark.parametrize("shift", [0.0, 0.7])
def test_density_coverage_equal_brute_force(shift, monkeypatch):
    import importlib

    dc = importlib.import_module("ambient_eval.metrics.density_coverage")  # the package re-exports the function under the same name

    rng = np.random.default_rng(8)
    real = rng.normal(size=(120, 6)).astype(np.float32)
    fake = (rng.normal(size=(90, 6)) * 1.3 + shift).astype(np.float32)
    want = _dc_brute(real, fake, 5)
    assert density_coverage(real, fake, k=5) == pytest.approx(want, abs=1e-12)
    # Blocked path (several row blocks of 17) gives the same numbers.
    import ambient_eval.metrics.distances as distances

    monkeypatch.setattr(distances, "BLOCK_BYTES", 8 * 17 * len(real))
    assert dc.density_coverage(real, fake, k=5) == pytest.approx(want, abs=1e-12)
    if shift == 0.0:
        assert 0.5 < want[0] < 1.5 and want[1] > 0.8


def test_density_uses_strict_inequality():
    # Real points on a line at 0..6; the 5-NN radius of point 0 is exactly 5. A fake point at distance
    # exactly 5 from point 0 only (x = -5) is NOT inside its ball (strict <).
    real = np.arange(7, dtype=np.float64)[:, None]
    fake = np.array([[-5.0]])
    assert density_coverage(real, fake, k=5) == (0.0, 0.0)


def test_precision_recall_equal_brute_force_and_mode_collapse():
    rng = np.random.default_rng(9)
    real = rng.normal(size=(150, 5)).astype(np.float32)
    fake = (rng.normal(size=(110, 5)) * 0.8 + 0.3).astype(np.float32)
    # torch-fidelity averages in float32 (rounding ~1e-8); one sample changes a fraction by >= 1/150.
    assert precision_recall(real, fake, k=3) == pytest.approx(_pr_brute(real, fake, 3), abs=1e-6)
    # Mode collapse: all generated samples near one real point -> high precision, tiny recall.
    collapsed = real[:1] + rng.normal(size=(110, 5)).astype(np.float32) * 1e-3
    p, r = precision_recall(real, collapsed, k=3)
    assert p == 1.0 and r < 0.05


def test_kid_equals_brute_force_unbiased_mmd():
    rng = np.random.default_rng(10)
    f1 = rng.normal(size=(60, 8)).astype(np.float32)
    f2 = (rng.normal(size=(50, 8)) + 0.3).astype(np.float32)
    got_mean, got_std = kid_from_features(f1, f2, subsets=7, subset_size=20, seed=2020)
    rs = np.random.RandomState(2020)
    vals = []
    for _ in range(7):
        x = f1[rs.choice(60, 20, replace=False)].astype(np.float64)
        y = f2[rs.choice(50, 20, replace=False)].astype(np.float64)
        k = lambda a, b: (a @ b.T / 8 + 1) ** 3  # noqa: E731
        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        m = 20
        vals.append((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m**2)
    assert got_mean == pytest.approx(np.mean(vals), rel=1e-5)
    assert got_std == pytest.approx(np.std(vals), rel=1e-4)


def test_kid_refuses_n_smaller_than_subset():
    x = np.zeros((50, 4), np.float32)
    with pytest.raises(AmbientError, match="--kid-subset-size") as e:
        kid_from_features(x, x, subset_size=1000)
    assert "generated has 50" in str(e.value)


def test_inception_score_equals_brute_force():
    rng = np.random.default_rng(11)
    logits = rng.normal(size=(100, 1008)).astype(np.float32) * 3
    got = inception_score(logits, splits=10)
    p = logits[np.random.RandomState(2020).permutation(100)].astype(np.float64)
    p = np.exp(p - p.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    scores = []
    for i in range(10):
        c = p[i * 10:(i + 1) * 10]
        q = c.mean(0, keepdims=True)
        scores.append(np.exp((c * (np.log(c) - np.log(q))).sum(1).mean()))
    assert got == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-9)
    # One class per image, all classes distinct -> IS = number of images per split.
    onehot = np.full((100, 1008), -40.0, np.float32)  # p ~ 4e-18 off-class (exactly 0 gives 0*log 0)
    onehot[np.arange(100), np.arange(100)] = 0
    assert inception_score(onehot, splits=10)[0] == pytest.approx(10.0, rel=1e-9)
