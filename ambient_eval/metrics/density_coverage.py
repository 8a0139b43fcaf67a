"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative
Models", Eq. 3 and 4). torch-fidelity has no implementation, so this one is ours.

With real points X_i (i = 1..N), generated Y_j (j = 1..M), NND_k(X_i) the distance from X_i to its k-th
nearest real neighbour (self excluded) and B(x, r) the open ball (strict <):
    density  = 1/(kM) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
    coverage = 1/N    sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.metrics.distances import (centred_pair, distances, kth_neighbour_distance, row_blocks,
                                            squared_norms)


@dataclass(frozen=True)
class DCDefaults:
    k: int = 5               # neighbourhood size (Naeem et al. recommend k = 5)


DC = DCDefaults()


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = DC.k) -> tuple[float, float]:
    """(density, coverage). # NC float (real), MC float (generated) => 2 floats"""
    n, m = len(real), len(fake)
    if n <= k or m < 1:
        raise AmbientError(f"Density/coverage with k={k} needs more than {k} reference images and at least "
                           f"one generated image; got {n} reference and {m} generated. Use more images.")
    # float64 distances (metrics/distances.py): ties at the ball radius are decided on nearly exact numbers.
    x, y = centred_pair(real, fake)
    x_sq, y_sq = squared_norms(x), squared_norms(y)
    radius = kth_neighbour_distance(x, k, x_sq)         # N
    inside_count = np.zeros(m, dtype=np.int64)          # sum_i 1[Y_j in B_i], per generated j
    covered = np.zeros(n, dtype=bool)                   # exists j: Y_j in B_i, per real i
    for rows in row_blocks(n, m):
        inside = distances(x[rows], y, x_sq[rows], y_sq) < radius[rows, None]   # strict <
        inside_count += inside.sum(axis=0)
        covered[rows] = inside.any(axis=1)
    return float(inside_count.sum() / (k * m)), float(covered.mean())
