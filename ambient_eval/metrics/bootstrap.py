"""Bootstrap intervals from replicates: the one place the percentile and basic intervals are formed.

Each audit draws its replicates its own (seeded) way: reproducibility draws Binomial counts of 0/1
outcomes, memorization resamples samples in chunks for several statistics at once, the demo
resamples both feature sets of a Frechet distance. They all turn replicates into an interval here.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def _tails(level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    alpha = (1.0 - level) / 2.0
    return alpha, 1.0 - alpha


def percentile_interval(replicates: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """[q_(alpha/2), q_(1-alpha/2)] of the bootstrap replicates."""
    lo, hi = np.quantile(np.asarray(replicates, dtype=np.float64), _tails(level))
    return float(lo), float(hi)


def basic_interval(estimate: float, replicates: Sequence[float] | np.ndarray,
                   level: float = 0.95) -> tuple[float, float]:
    """Basic (pivotal) interval [2 est - q_(1-alpha/2), 2 est - q_(alpha/2)] (Davison & Hinkley, Eq. 5.6)."""
    q_lo, q_hi = percentile_interval(replicates, level)
    return float(2 * estimate - q_hi), float(2 * estimate - q_lo)
