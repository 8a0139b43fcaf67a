"""Rule checks: bounds (absolute or relative to a baseline) and noise-aware regression tests.

Noise-aware rules ask "is the current checkpoint worse than the baseline by more than `margin`,
beyond what sampling noise explains?" and fail only when the answer is yes at level alpha.

* method "welch" (both sides have >= 2 repeats, e.g. FID over disjoint seed ranges):
  one-sided Welch t-test (Welch 1947, Biometrika 34(1-2):28-35). With x the per-repeat values
  oriented so that larger is worse (x = value for lower-is-better, x = -value otherwise),
      d  = mean(x_cur) - mean(x_base) - margin
      se = sqrt(s_cur^2 / n_cur + s_base^2 / n_base)        (s^2: sample variance, ddof 1)
      t  = d / se,  nu = se^4 / ((s_cur^2/n_cur)^2/(n_cur-1) + (s_base^2/n_base)^2/(n_base-1))
      p  = P(T_nu >= t)                                       (Welch-Satterthwaite df)
  H0: true regression <= margin. Fails when p < alpha. Computed by
  scipy.stats.ttest_ind(equal_var=False, alternative="greater"). Zero variance on both sides
  (deterministic metric): fails iff d > 0.
* method "ci" (only intervals, e.g. bootstrap CIs): fails when the intervals do not overlap in
  the worse direction, i.e. lower-is-better: ci_cur.lo - margin > ci_base.hi (higher-is-better:
  ci_cur.hi + margin < ci_base.lo). For two independent estimates with equal standard errors,
  non-overlapping 95% intervals correspond to |z| > 1.96 * sqrt(2) = 2.77, a two-sided level of
  about 0.006 (Schenker & Gentleman 2001, The American Statistician 55(3):182-186): the check is
  conservative, and alpha is not used (the intervals' own level is).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ambient_eval.errors import AmbientError
from ambient_eval.gate.catalog import LOWER
from ambient_eval.gate.config import Rule


@dataclass(frozen=True)
class Sample:
    """One side of a comparison: the headline value plus its noise information, if any."""

    value: float                                   # results.metrics[name]
    repeats: tuple[float, ...] = ()                # results.repeats[name]
    ci: tuple[float, float] | None = None          # results.ci[name]

    def describe(self) -> str:
        """'12.3', '12.3 [11.9, 12.8]' (CI) or '12.3 (n=5, sd 0.21)' (repeats)."""
        s = f"{self.value:.6g}"
        if len(self.repeats) >= 2:
            s += f" (n={len(self.repeats)}, sd {_mean_sd(self.repeats)[1]:.2g})"
        elif self.ci is not None:
            s += f" [{self.ci[0]:.4g}, {self.ci[1]:.4g}]"
        return s


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule."""

    passed: bool
    bound: str                    # the requirement, resolved: "<= 12.5 (baseline + 0.5)"
    detail: str = ""              # statistics or notes
    bound_value: float | None = None
    p_value: float | None = None
    method: str = "bounds"


def _mean_sd(xs: tuple[float, ...]) -> tuple[float, float]:
    n = len(xs)
    m = sum(xs) / n
    var = sum((x - m) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return m, math.sqrt(var)


def check_bounds(rule: Rule, current: float, baseline: float | None) -> Verdict:
    """min <= current <= max, with relative bounds resolved against the baseline value."""
    parts, ok, bound_value = [], True, None
    for bound, sign in ((rule.min, ">="), (rule.max, "<=")):
        if bound is None:
            continue
        b = bound.resolve(baseline)
        bound_value = b
        ok &= current >= b if sign == ">=" else current <= b
        parts.append(f"{sign} {b:.6g}" + (f" ({bound.text})" if bound.relative else ""))
    return Verdict(passed=ok, bound=" and ".join(parts), bound_value=bound_value)


def welch_one_sided(cur: tuple[float, ...], base: tuple[float, ...], direction: str,
                    margin: float) -> tuple[float, float, float]:
    """(t, df, p) of H0 'regression <= margin' vs H1 'regression > margin' (Welch 1947)."""
    import numpy as np
    from scipy import stats

    sign = 1.0 if direction == LOWER else -1.0  # orient so that larger x is worse
    x_cur = sign * np.asarray(cur, dtype=np.float64) - margin
    x_base = sign * np.asarray(base, dtype=np.float64)
    v_cur, v_base = x_cur.var(ddof=1) / len(x_cur), x_base.var(ddof=1) / len(x_base)
    d = x_cur.mean() - x_base.mean()
    if v_cur + v_base == 0.0:
        # No noise on either side: the t statistic is undefined; the difference is exact.
        return (math.inf if d > 0 else -math.inf), math.nan, (0.0 if d > 0 else 1.0)
    res = stats.ttest_ind(x_cur, x_base, equal_var=False, alternative="greater")
    df = (v_cur + v_base) ** 2 / (v_cur ** 2 / (len(x_cur) - 1) + v_base ** 2 / (len(x_base) - 1))
    return float(res.statistic), float(df), float(res.pvalue)


def _method(rule: Rule, cur: Sample, base: Sample) -> str:
    has_rep = len(cur.repeats) >= 2 and len(base.repeats) >= 2
    has_ci = cur.ci is not None and base.ci is not None
    method = rule.method
    if method == "auto":
        method = "welch" if has_rep else "ci" if has_ci else ""
    if (method == "welch" and not has_rep) or (method == "ci" and not has_ci) or not method:
        need = "at least 2 repeats on both sides" if method == "welch" else \
            "confidence intervals on both sides" if method == "ci" else \
            "at least 2 repeats on both sides (Welch t-test) or confidence intervals on both sides"
        raise AmbientError(
            f"Rule {rule.index} ({rule.name}) is noise-aware and needs {need}, but the current "
            f"result has {len(cur.repeats)} repeat(s) and {'a' if cur.ci else 'no'} CI, the baseline "
            f"{len(base.repeats)} repeat(s) and {'a' if base.ci else 'no'} CI for "
            f"'{rule.metric.address}'. Evaluate with repeats over disjoint seed ranges or with "
            "bootstrap CIs, or use a bounds rule (max = \"baseline + ...\").")
    return method


def check_significant(rule: Rule, cur: Sample, base: Sample) -> Verdict:
    """Noise-aware rule: fail only on a regression significant at rule.alpha (see module doc)."""
    method = _method(rule, cur, base)
    margin = f" by > {rule.margin:g}" if rule.margin else ""
    if method == "welch":
        t, df, p = welch_one_sided(cur.repeats, base.repeats, rule.direction, rule.margin)
        passed = not p < rule.alpha
        detail = f"Welch t = {t:.3g}, df = {df:.3g}, one-sided p = {p:.3g}"
        return Verdict(passed, f"not worse{margin} at alpha={rule.alpha:g}", detail,
                       p_value=p, method="welch")
    (c_lo, c_hi), (b_lo, b_hi) = cur.ci, base.ci  # type: ignore[misc]
    if rule.direction == LOWER:
        significant = c_lo - rule.margin > b_hi
    else:
        significant = c_hi + rule.margin < b_lo
    detail = "CIs do not overlap: significant" if significant else "CIs overlap: not significant"
    return Verdict(not significant, f"not worse{margin} beyond CI overlap", detail, method="ci")
