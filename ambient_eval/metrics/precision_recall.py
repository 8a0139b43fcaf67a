"""Improved precision and recall (Kynkaanniemi et al. 2019, Sec. 3, Eq. 1-2).

The manifold of a set is the union of balls around each point with radius = distance to its k-th
nearest neighbour in the same set (self excluded); membership uses <=. Precision = fraction of
generated points inside the real manifold; recall = fraction of real points inside the generated one.
Computed by torch-fidelity's `prc_features_to_metric` (default feature space there: VGG16 fc2).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class PRDefaults:
    k: int = 3                      # neighbourhood size (torch-fidelity prc_neighborhood)
    batch_size: int = 10_000        # rows per cdist block (torch-fidelity prc_batch_size)
    full_matrix_max: int = 10**8    # above N*M pairwise distances, use the memory-saving path


PR = PRDefaults()


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = PR.k) -> tuple[float, float]:
    """(precision, recall). # MC float (real), NC float (generated) => 2 floats"""
    import torch
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    if min(len(real), len(fake)) <= k:
        raise AmbientError(f"Precision/recall with k={k} needs more than {k} images per set; got "
                           f"{len(fake)} generated and {len(real)} reference. Use more images.")
    save_ram = len(real) * len(fake) > PR.full_matrix_max
    # torch-fidelity convention: features_1 = generated, features_2 = real.
    out = prc_features_to_metric(torch.from_numpy(np.ascontiguousarray(fake)),
                                 torch.from_numpy(np.ascontiguousarray(real)),
                                 prc_neighborhood=k, prc_batch_size=PR.batch_size, save_cpu_ram=save_ram,
                                 verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])
