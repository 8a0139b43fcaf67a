"""Rule statistics: bounds at their edges, the Welch test against its formula, CI overlap, and
significant vs non-significant differences told apart on synthetic repeats."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ambient_eval.errors import AmbientError
from ambient_eval.gate.catalog import HIGHER, LOWER, parse_address
from ambient_eval.gate.config import Rule
from ambient_eval.gate.parse import parse_bound
from ambient_eval.gate.rules import Sample, check_bounds, check_significant, welch_one_sided


def bounds_rule(metric="fid", lo=None, hi=None) -> Rule:
    return Rule(1, "r", parse_address(metric), min=parse_bound(lo, "t", "min") if lo is not None else None,
                max=parse_bound(hi, "t", "max") if hi is not None else None)


def sig_rule(direction=LOWER, alpha=0.05, margin=0.0, method="auto") -> Rule:
    return Rule(1, "r", parse_address("fid"), significant=True, direction=direction, alpha=alpha,
                margin=margin, method=method)


@pytest.mark.parametrize("lo, hi, base, cur, ok", [
    (None, 12.0, None, 12.0, True),              # inclusive
    (None, 12.0, None, 12.0001, False),
    (None, "baseline + 0.5", 10.0, 10.5, True),
    (None, "baseline + 0.5", 10.0, 10.51, False),
    ("baseline - 0.02", None, 0.60, 0.58, True),
    ("baseline - 0.02", None, 0.60, 0.579, False),
    (None, "baseline * 1.05", 10.0, 10.49, True),
    (None, "baseline * 1.05", 10.0, 10.51, False),
    (None, "baseline", 10.0, 10.0, True),
    (None, "baseline", 10.0, 10.01, False),
    (0.0, 1.0, None, -0.1, False),               # both sides
    (0.0, 1.0, None, 0.5, True),
])
def test_bounds(lo, hi, base, cur, ok):
    v = check_bounds(bounds_rule(lo=lo, hi=hi), cur, base)
    assert v.passed is ok, v


def test_welch_matches_formula():
    rng = np.random.default_rng(0)
    cur, base = rng.normal(11, 0.4, 5), rng.normal(10, 0.2, 7)
    t, df, p = welch_one_sided(tuple(cur), tuple(base), LOWER, margin=0.3)
    # Welch (1947): t = (d - margin) / se, Welch-Satterthwaite df, one-sided p = P(T >= t).
    a, b = cur.var(ddof=1) / 5, base.var(ddof=1) / 7
    t_ref = (cur.mean() - base.mean() - 0.3) / math.sqrt(a + b)
    df_ref = (a + b) ** 2 / (a ** 2 / 4 + b ** 2 / 6)
    assert t == pytest.approx(t_ref, rel=1e-12)
    assert df == pytest.approx(df_ref, rel=1e-12)
    assert p == pytest.approx(stats.t.sf(t_ref, df_ref), rel=1e-9)
    # higher-is-better mirrors the test: the same numbers negated give the same p.
    _, _, p2 = welch_one_sided(tuple(-cur), tuple(-base), HIGHER, margin=0.3)
    assert p2 == pytest.approx(p, rel=1e-12)


def _repeats(shift_in_std: float, seed: int, n: int = 5, std: float = 0.3):
    rng = np.random.default_rng(seed)
    base = 10.0 + std * rng.standard_normal(n)
    cur = 10.0 + shift_in_std * std + std * rng.standard_normal(n)
    return (Sample(float(cur.mean()), tuple(cur)), Sample(float(base.mean()), tuple(base)))


def test_significant_vs_not_on_synthetic_repeats():
    # 5 repeats each (disjoint seed ranges), FID std 0.3: a shift of 3 std is a regression,
    # 0.2 std is noise.
    cur, base = _repeats(3.0, seed=1)
    big = check_significant(sig_rule(), cur, base)
    assert not big.passed and big.method == "welch" and big.p_value < 0.01, big
    cur, base = _repeats(0.2, seed=1)
    small = check_significant(sig_rule(), cur, base)
    assert small.passed and small.p_value > 0.05, small
    # The bounds rule "baseline + 0" fails on the same noise; the noise-aware rule does not.
    assert not check_bounds(bounds_rule(hi="baseline"), cur.value, base.value).passed


def test_welch_rejection_rates():
    # Calibration over 250 seeded trials: false alarms near alpha under no shift, few at 0.2
    # std, and power close to 1 at 3 std (Welch, n = 5 vs 5).
    def rate(shift):
        return np.mean([not check_significant(sig_rule(), *_repeats(shift, seed=s)).passed
                        for s in range(250)])
    assert 0.02 <= rate(0.0) <= 0.09
    assert rate(0.2) <= 0.15
    assert rate(3.0) >= 0.97


def test_direction_and_margin():
    cur, base = _repeats(3.0, seed=2)                  # current is larger
    assert not check_significant(sig_rule(LOWER), cur, base).passed
    assert check_significant(sig_rule(HIGHER), cur, base).passed   # larger is better: no regression
    # A margin bigger than the shift (0.9) makes it pass again.
    assert check_significant(sig_rule(LOWER, margin=2.0), cur, base).passed


def test_zero_variance_repeats():
    same = Sample(1.0, (1.0, 1.0, 1.0))
    worse = Sample(2.0, (2.0, 2.0, 2.0))
    assert check_significant(sig_rule(), same, same).passed
    assert not check_significant(sig_rule(), worse, same).passed


@pytest.mark.parametrize("cur_ci, base_ci, direction, ok", [
    ((12.0, 13.0), (10.0, 11.5), LOWER, False),   # disjoint, current higher: regression
    ((11.0, 13.0), (10.0, 11.5), LOWER, True),    # overlap
    ((9.0, 9.5), (10.0, 11.5), LOWER, True),      # disjoint but better
    ((0.5, 0.6), (0.7, 0.8), HIGHER, False),      # recall dropped, disjoint
    ((0.65, 0.75), (0.7, 0.8), HIGHER, True),
])
def test_ci_overlap(cur_ci, base_ci, direction, ok):
    cur, base = Sample(sum(cur_ci) / 2, ci=cur_ci), Sample(sum(base_ci) / 2, ci=base_ci)
    v = check_significant(sig_rule(direction), cur, base)
    assert v.passed is ok and v.method == "ci"


def test_ci_margin():
    cur, base = Sample(12.5, ci=(12.0, 13.0)), Sample(11, ci=(10.0, 11.5))
    assert check_significant(sig_rule(margin=0.6), cur, base).passed


def test_missing_noise_information_is_an_error():
    with pytest.raises(AmbientError, match="needs at least 2 repeats on both sides"):
        check_significant(sig_rule(), Sample(1.0, (1.0, 2.0)), Sample(1.0))
    with pytest.raises(AmbientError, match="confidence intervals on both sides"):
        check_significant(sig_rule(method="ci"), Sample(1.0, (1.0, 2.0)), Sample(1.0, (1.0, 2.0)))
