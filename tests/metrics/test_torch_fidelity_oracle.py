"""Our numpy metrics against torch-fidelity's own metric functions on identical features.

The metrics are computed here without torch (a warm-cache run imports none); torch-fidelity's public
`*_features_to_metric` / `fid_statistics_to_metric` functions are the oracle. No networks: fast.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

import ambient_eval.metrics.distances as distances
import ambient_eval.metrics.fid as fid_mod
import ambient_eval.metrics.kid as kid_mod
from ambient_eval.metrics import (SmallSampleWarning, fid_from_stats, inception_score, kid_from_features,
                                  precision_recall)
from ambient_eval.metrics.stats import mean_cov
from tests.conftest import kid_float32_bound


def _features(n, d, seed, shift=0.0):
    """Non-negative, correlated, Inception-like features (float32)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(rng.normal(size=(n, d)) @ mix + 0.3 + shift, 0).astype(np.float32)


def _tf_fid(f1, f2):
    (m1, s1), (m2, s2) = mean_cov(f1), mean_cov(f2)
    return fid_statistics_to_metric({"mu": m1, "sigma": s1}, {"mu": m2, "sigma": s2}, verbose=False)[
        "frechet_inception_distance"], (m1, s1, m2, s2)


@pytest.mark.parametrize("n", [40, 256])
def test_fid_eig_is_bit_identical_to_torch_fidelity_when_singular(n):
    # N <= dim: the covariances are singular; only the general eigensolver gives torch-fidelity's number.
    f1, f2 = _features(n, 256, 0), _features(n, 256, 1, shift=0.05)
    want, (m1, s1, m2, s2) = _tf_fid(f1, f2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        assert fid_from_stats(m1, s1, m2, s2, method="eig", n1=n, n2=n) == want
        assert fid_from_stats(m1, s1, m2, s2, method="eig") == want          # N unknown (stats file)


def test_fid_eig_full_rank_uses_the_symmetric_solver_and_equals_torch_fidelity(monkeypatch):
    f1, f2 = _features(600, 128, 2), _features(500, 128, 3, shift=0.1)
    want, (m1, s1, m2, s2) = _tf_fid(f1, f2)
    general = []
    monkeypatch.setattr(fid_mod, "trace_sqrt_product_eig",
                        lambda a, b: general.append(1) or fid_mod.np.nan)   # must not be reached
    got = fid_from_stats(m1, s1, m2, s2, method="eig", n1=600, n2=500)
    assert got == pytest.approx(want, rel=1e-12) and not general
    # A covariance that is not positive definite (a constant feature) falls back to the general solver.
    monkeypatch.undo()
    f1[:, 5] = 1.0
    want, (m1, s1, m2, s2) = _tf_fid(f1, f2)
    assert fid_from_stats(m1, s1, m2, s2, method="eig", n1=600, n2=500) == want


@pytest.mark.parametrize("gram", [True, False])
@pytest.mark.parametrize("n1,n2,m", [(120, 90, 50), (64, 64, 64)])
def test_kid_equals_torch_fidelity(monkeypatch, gram, n1, n2, m):
    if not gram:  # force the per-subset path (the one used when whole-set kernels would not fit)
        monkeypatch.setattr(kid_mod, "GRAM_MAX_ELEMENTS", 0)
    f1, f2 = _features(n1, 64, 4), _features(n2, 64, 5, shift=0.02)
    mean, std = kid_from_features(f1, f2, subsets=30, subset_size=m)
    # Same arithmetic: torch-fidelity on the same features as float64 tensors (independent of the CPU).
    want64 = _tf_kid(f1.astype(np.float64), f2.astype(np.float64), m)
    assert mean == pytest.approx(want64["kernel_inception_distance_mean"], rel=1e-9)
    assert std == pytest.approx(want64["kernel_inception_distance_std"], rel=1e-9, abs=1e-15)
    # What torch-fidelity users get (float32 kernels): within float32 rounding of the kernel sums.
    want32, bound = _tf_kid(f1, f2, m), kid_float32_bound(f1, f2)
    assert abs(mean - want32["kernel_inception_distance_mean"]) <= bound
    assert abs(std - want32["kernel_inception_distance_std"]) <= bound


@pytest.mark.parametrize("coretype", ["Haswell", "Zen", "Sandybridge", "Prescott"])
def test_kid_is_the_same_number_under_every_blas_kernel(coretype):
    # Issue 24: a float32 Gram path gave 3.1e-6 relative off torch-fidelity on an AMD EPYC. In float64
    # the result must not depend on which OpenBLAS kernel runs (numpy reads OPENBLAS_CORETYPE at import).
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]);"
            "from tests.metrics.test_torch_fidelity_oracle import _features;"
            "from ambient_eval.metrics import kid_from_features;"
            "print(repr(kid_from_features(_features(64, 64, 4), _features(64, 64, 5, shift=0.02),"
            " subsets=30, subset_size=64)))")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
    out = subprocess.run([sys.executable, "-c", code, root], env=env, capture_output=True, text=True, check=True)
    here = kid_from_features(_features(64, 64, 4), _features(64, 64, 5, shift=0.02), subsets=30, subset_size=64)
    assert eval(out.stdout) == pytest.approx(here, rel=1e-12)


def _tf_kid(f1, f2, m):
    """torch-fidelity's KID of two feature arrays (its arithmetic in their dtype)."""
    return kid_features_to_metric(torch.from_numpy(f1), torch.from_numpy(f2), kid_subsets=30, kid_subset_size=m,
                                  rng_seed=2020, kid_kernel="poly", kid_kernel_poly_degree=3,
                                  kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, verbose=False)


@pytest.mark.parametrize("n_real,n_fake,d", [(150, 120, 16), (400, 300, 256)])
def test_precision_recall_equal_torch_fidelity(monkeypatch, n_real, n_fake, d):
    real, fake = _features(n_real, d, 6), _features(n_fake, d, 7, shift=0.08)
    want = prc_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=3,
                                  prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    got = precision_recall(real, fake, k=3)
    assert got == pytest.approx((want["precision"], want["recall"]), abs=1e-6)
    assert 0 < got[0] < 1 and 0 < got[1] < 1            # not a trivial all-in / all-out case
    monkeypatch.setattr(distances, "BLOCK_BYTES", 8 * 37 * n_real)  # 37-row blocks: same decisions
    assert precision_recall(real, fake, k=3) == got


def test_inception_score_equals_torch_fidelity():
    logits = np.random.default_rng(8).normal(size=(230, 1008)).astype(np.float32) * 4
    want = isc_features_to_metric(torch.from_numpy(logits), splits=10, shuffle=True, rng_seed=2020)
    got = inception_score(logits, splits=10)
    assert got == pytest.approx((want["inception_score_mean"], want["inception_score_std"]), rel=1e-10)
