"""Combine results of repeated evaluations (disjoint seed ranges, as EDM's min over 3 ranges)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def summarize_repeats(runs: Sequence, seed_ranges: Sequence[str]):
    """Results of R runs => first run's envelope with mean metrics, per-repeat values and a 95% interval.

    Interval: mean +- t_{0.975, R-1} s / sqrt(R) (Student t, s = sample std with ddof=1).
    """
    from scipy import stats as sps

    res = runs[0]
    R = len(runs)
    summary = {}
    for k in res.metrics:
        v = np.array([r.metrics[k] for r in runs], np.float64)
        std = float(v.std(ddof=1)) if R > 1 else 0.0
        half = float(sps.t.ppf(0.975, R - 1) * std / np.sqrt(R)) if R > 1 else 0.0
        res.metrics[k] = float(v.mean())
        res.repeats[k] = v.tolist()
        res.ci[k] = [float(v.mean()) - half, float(v.mean()) + half]
        summary[k] = {"mean": float(v.mean()), "std": std, "min": float(v.min()), "max": float(v.max())}
    res.settings["repeats"] = R
    res.extra["repeat_summary"] = summary
    res.extra["repeat_seeds"] = list(seed_ranges)
    res.extra["warnings"] = list(dict.fromkeys(w for r in runs for w in r.extra.get("warnings", [])))
    return res
