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


@dataclass(frozen=True)
class DCDefaults:
    k: int = 5               # neighbourhood size (Naeem et al. recommend k = 5)
    block_rows: int = 2048   # rows per pairwise-distance block (memory: block_rows x M float64)


DC = DCDefaults()


def _kth_nn_distance(x, k: int, block_rows: int):
    """Distance of each row of x to its k-th nearest other row. # NC float64 => N float64"""
    import torch

    out = []
    for i in range(0, len(x), block_rows):
        d = torch.cdist(x[i:i + block_rows], x)
        # The smallest distance of a row is to itself (0), so the (k+1)-th smallest is NND_k.
        out.append(torch.kthvalue(d, k + 1, dim=1).values)
    return torch.cat(out)


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = DC.k) -> tuple[float, float]:
    """(density, coverage). # NC float (real), MC float (generated) => 2 floats"""
    import torch

    n, m = len(real), len(fake)
    if n <= k or m < 1:
        raise AmbientError(f"Density/coverage with k={k} needs more than {k} reference images and at least "
                           f"one generated image; got {n} reference and {m} generated. Use more images.")
    # float64 distances: ties at the ball radius are decided on exact arithmetic as far as possible.
    x = torch.from_numpy(np.asarray(real, np.float64))
    y = torch.from_numpy(np.asarray(fake, np.float64))
    radius = _kth_nn_distance(x, k, DC.block_rows)  # N
    inside_count = torch.zeros(m, dtype=torch.float64)   # sum_i 1[Y_j in B_i], per generated j
    covered = torch.zeros(n, dtype=torch.bool)            # exists j: Y_j in B_i, per real i
    for i in range(0, n, DC.block_rows):
        d = torch.cdist(x[i:i + DC.block_rows], y)           # rows: real block, cols: generated
        inside = d < radius[i:i + DC.block_rows, None]       # strict <
        inside_count += inside.sum(dim=0, dtype=torch.float64)
        covered[i:i + DC.block_rows] = inside.any(dim=1)
    density = float(inside_count.sum() / (k * m))
    coverage = float(covered.double().mean())
    return density, coverage
