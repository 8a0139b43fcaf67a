"""Scoring, summary, bootstrap CIs and the Carlini criterion against closed forms / plain numpy."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.audits import embed as E
from ambient_eval.audits import memorization as M
from ambient_eval.errors import AmbientError


def test_metric_keys():
    assert M.frac_above_key(0.95) == "frac_above_0.95"
    assert M.frac_above_key(0.5) == "frac_above_0.5"
    assert [M.quantile_key(q) for q in M.DEFAULTS.quantiles] == [
        "top1_q50", "top1_q75", "top1_q90", "top1_q95", "top1_q99"]


def test_default_thresholds_follow_spec():
    assert M.default_thresholds("sscd") == (0.5, 0.6)
    assert M.default_thresholds("dinov2") == (0.90, 0.95, 0.99)
    assert E.family("pixel-64") == "pixel" and E.EMBEDS["dinov2"] == "dinov2-ambient"
    with pytest.raises(AmbientError, match="--threshold"):
        M.default_thresholds("test-net")
    with pytest.raises(AmbientError, match=r"\[-1, 1\]"):
        M.check_thresholds([0.5, 1.5])
    assert M.check_thresholds([0.99, 0.9, 0.99]) == (0.9, 0.99)


def test_l2_normalize_and_pixel_centering():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(E.l2_normalize(x), [[0.6, 0.8], [0, 0], [2 ** -0.5, 2 ** -0.5]], atol=1e-7)
    # centred: cosine of two rows = their Pearson correlation
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)
    u = E.l2_normalize(np.stack([a + 5, 0.5 * a + 0.3 * b - 2]), center=True, chunk=1)
    assert float(u[0] @ u[1]) == pytest.approx(np.corrcoef(a + 5, 0.5 * a + 0.3 * b)[0, 1], abs=1e-6)
    assert u.dtype == np.float32 and E.l2_normalize(np.ones((1, 4)), center=True).tolist() == [[0.0] * 4]


def test_summary_metrics_equal_numpy():
    rng = np.random.default_rng(1)
    top1 = rng.uniform(0.5, 1.0, 1001)
    m = M.summary_metrics(top1, (0.9, 0.95))
    assert m["n"] == 1001 and m["top1_mean"] == pytest.approx(top1.mean())
    assert m["top1_q50"] == pytest.approx(np.median(top1))
    assert m["top1_q99"] == pytest.approx(np.sort(top1)[990])  # linear quantile at an exact rank
    assert m["frac_above_0.9"] == pytest.approx((top1 > 0.9).sum() / 1001)
    # strict '>' : a sample exactly at the threshold is not flagged
    assert M.summary_metrics(np.array([0.95, 0.96]), (0.95,))["frac_above_0.95"] == 0.5


def test_bootstrap_ci_is_seeded_and_matches_binomial_width():
    rng = np.random.default_rng(2)
    top1 = np.where(rng.random(4000) < 0.2, 0.99, 0.5)  # 20% copies
    ci = M.bootstrap_ci(top1, (0.95,), n_boot=400, seed=0)
    assert ci == M.bootstrap_ci(top1, (0.95,), n_boot=400, seed=0)
    assert ci != M.bootstrap_ci(top1, (0.95,), n_boot=400, seed=1)
    lo, hi = ci["frac_above_0.95"]
    p = (top1 > 0.95).mean()
    assert lo < p < hi
    # normal approximation of the binomial: width 2 * 1.96 * sqrt(p (1 - p) / n)
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / len(top1)), rel=0.2)
    assert set(ci) == {"top1_mean", "top1_q50", "top1_q75", "top1_q90", "top1_q95", "top1_q99",
                       "frac_above_0.95"}
    assert M.bootstrap_ci(top1, (0.95,), n_boot=0) == {}


def test_carlini_score_closed_form():
    # Carlini et al. 2023: l = l2(x, nn1) / (alpha * mean l2 to the n nearest)
    D = np.array([[1.0, 0.5, 0.5, 0.5],      # exact copy: l = 0
                  [0.875, 0.5, 0.5, 0.5],    # l2 = sqrt(2 - 2 cos): 0.5 and 1.0
                  [0.5, 0.5, 0.5, 0.5]])     # no outlier: l = 1 / alpha = 2
    l = M.carlini_score(D, alpha=0.5, n=4)
    expected_1 = 0.5 / (0.5 * (0.5 + 3 * 1.0) / 4)
    np.testing.assert_allclose(l, [0.0, expected_1, 2.0], rtol=1e-12)
    assert M.carlini_score(np.ones((1, 4)), n=4)[0] == 0.0   # all neighbours identical: 0/0 -> 0
    with pytest.raises(AmbientError, match="50 nearest"):
        M.carlini_score(D, n=50)


def test_score_table_columns_flags_and_names():
    D = np.array([[0.99, 0.5], [0.7, 0.6]], dtype=np.float32)
    I = np.array([[2, 0], [1, 2]])
    t = M.score_table(D, I, (0.9, 0.95), sample_names=["a.png", "b.png"], train_names=["x", "y", "z"],
                      model="base", k=2)
    assert t["top1_name"].tolist() == ["z", "y"] and t["name_2"].tolist() == ["x", "z"]
    assert t["above_0.95"].tolist() == [True, False] and t["model"].tolist() == ["base", "base"]
    assert M.closest_pairs(t, 1)["sample"].tolist() == ["a.png"]
