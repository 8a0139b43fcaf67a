"""The ADM evaluator's sFID, precision/recall and IS arithmetic against the oracle in adm_oracle.py."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.metrics import adm_inception_score, adm_precision_recall, fid_from_stats
from ambient_eval.metrics.adm import manifold_radii, squared_distances_fp16
from tests.metrics import adm_oracle


def _features(n1, n2, dim, scale, seed=0):
    rng = np.random.default_rng(seed)
    ref = (np.abs(rng.standard_normal((n1, dim))) * scale).astype(np.float32)
    smp = (np.abs(rng.standard_normal((n2, dim))) * scale * 1.1 + 0.05 * scale).astype(np.float32)
    return ref, smp


@pytest.mark.parametrize("scale, batch", [(0.5, 10_000), (0.5, 37), (40.0, 50), (0.01, 10_000)])
def test_adm_precision_recall_equals_oracle(scale, batch):
    # scale 40: |u|^2 ~ 1e5 overflows float16, so those blocks take the float32 fallback, whose last bit
    # depends on the summation order (TensorFlow's too): equal within float32 rounding there, else exactly
    ref, smp = _features(120, 100, 64, scale)
    ours, want = manifold_radii(ref, 3, batch, batch), adm_oracle.radii(ref, 3, batch)
    np.testing.assert_allclose(ours, want, rtol=1e-6 if scale > 10 else 0, atol=0)
    got = adm_precision_recall(ref, smp, row_batch=batch, col_batch=batch)
    assert got == adm_oracle.precision_recall(ref, smp, 3, batch)
    assert 0 < got[0] < 1 and 0 < got[1] < 1


def test_fp16_distances_fall_back_per_block():
    u = np.full((2, 8), 100.0, np.float32)              # |u|^2 = 80000 > float16 max
    d = squared_distances_fp16(u, u * 0.5)
    assert d.dtype == np.float32 and np.isfinite(d).all()
    np.testing.assert_allclose(d, np.full((2, 2), 8 * 50.0 ** 2), rtol=1e-6)
    small = squared_distances_fp16(u / 100, u / 200)
    assert np.all(small == np.float16(8 * 0.25))         # float16-rounded values


def test_adm_pr_is_not_torch_fidelity_pr():
    # the conventions differ (float16 squared distances): both are offered, under different names
    from ambient_eval.metrics import precision_recall

    ref, smp = _features(300, 300, 16, 0.5, seed=3)
    assert adm_precision_recall(ref, smp) == adm_oracle.precision_recall(ref, smp)
    assert abs(precision_recall(ref, smp)[0] - adm_precision_recall(ref, smp)[0]) < 0.1


@pytest.mark.parametrize("n, split", [(12, 5), (30, 5000), (23, 7)])
def test_adm_inception_score_equals_oracle(n, split):
    logits = np.random.default_rng(n).standard_normal((n, 1008)) * 4
    mean, std = adm_inception_score(logits, split_size=split)
    assert mean == pytest.approx(adm_oracle.inception_score(logits, split), rel=1e-12)
    assert std >= 0 and (std == 0) == (n <= split)


def test_adm_is_differs_from_shuffled_is():
    from ambient_eval.metrics import inception_score

    logits = np.random.default_rng(1).standard_normal((40, 1008)) * 4
    logits[:20] *= 3                                     # order matters for consecutive splits
    assert adm_inception_score(logits, 20)[0] != pytest.approx(inception_score(logits, 2)[0], rel=1e-6)


@pytest.mark.parametrize("n", [3000, 30])                # 30 < dim: singular, the eps retry path
def test_sfid_arithmetic_equals_adm_frechet_distance(n):
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal((n, 40)), rng.standard_normal((n, 40)) * 1.1 + 0.2
    (mu1, s1), (mu2, s2) = adm_oracle.statistics(a), adm_oracle.statistics(b)
    want = adm_oracle.frechet_distance(mu1, s1, mu2, s2)
    assert fid_from_stats(mu1, s1, mu2, s2, method="sqrtm") == pytest.approx(want, rel=1e-9)


def test_adm_pr_refuses_tiny_sets():
    with pytest.raises(AmbientError, match="more than 3 images"):
        adm_precision_recall(np.zeros((3, 4)), np.zeros((10, 4)))
