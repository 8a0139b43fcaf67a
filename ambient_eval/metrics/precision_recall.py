"""Improved precision and recall (Kynkaanniemi et al. 2019, Sec. 3, Eq. 1-2).

The manifold of a set is the union of balls around each point with radius = distance to its k-th
nearest neighbour in the same set (self excluded); membership uses <=. Precision = fraction of
generated points inside the real manifold; recall = fraction of real points inside the generated one.
Same definition and conventions as torch-fidelity's `prc_features_to_metric` (k = 3, <=), which the
tests use as the oracle; computed here with numpy in float64 (metrics/distances.py says why).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.metrics.distances import (centred_pair, distances, kth_neighbour_distance, row_blocks,
                                            squared_norms)


@dataclass(frozen=True)
class PRDefaults:
    k: int = 3                      # neighbourhood size (torch-fidelity prc_neighborhood)


PR = PRDefaults()


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR.k) -> tuple[float, float]:
    """(precision, recall). # MC float (real), NC float (generated) => 2 floats"""
    if min(len(real), len(fake)) <= k:
        raise AmbientError(f"Precision/recall with k={k} needs more than {k} images per set; got "
                           f"{len(fake)} generated and {len(real)} reference. Use more images.")
    real, fake = centred_pair(real, fake)
    real_sq, fake_sq = squared_norms(real), squared_norms(fake)
    r_real = kth_neighbour_distance(real, k, real_sq)     # radius of each real point's ball
    r_fake = kth_neighbour_distance(fake, k, fake_sq)     # radius of each generated point's ball
    fake_inside = np.zeros(len(fake), dtype=bool)         # generated j inside some real ball
    real_inside = np.zeros(len(real), dtype=bool)         # real i inside some generated ball
    for rows in row_blocks(len(fake), len(real)):         # one pass over the cross distances
        d = distances(fake[rows], real, fake_sq[rows], real_sq)
        fake_inside[rows] = (d <= r_real[None, :]).any(axis=1)
        real_inside |= (d <= r_fake[rows, None]).any(axis=0)
    return float(fake_inside.mean()), float(real_inside.mean())
