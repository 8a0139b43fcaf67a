"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 4):
IS = exp(E_x KL(p(y|x) || p(y))), on the softmax of Inception's 1008-way logits without bias,
averaged over 10 splits after a seeded shuffle; computed by torch-fidelity's `isc_features_to_metric`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class ISDefaults:
    splits: int = 10      # number of splits the score is averaged over
    shuffle: bool = True  # shuffle samples before splitting (torch-fidelity samples_shuffle)
    seed: int = 2020      # numpy RandomState seed of the shuffle (torch-fidelity rng_seed)


IS_DEFAULTS = ISDefaults()


def inception_score(logits: np.ndarray, splits: int = IS_DEFAULTS.splits,
                    seed: int = IS_DEFAULTS.seed) -> tuple[float, float]:
    """(mean, std) over splits. # NC float logits (logits_unbiased, 1008) => 2 floats"""
    import torch
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    if len(logits) < splits:
        raise AmbientError(f"Inception Score needs at least {splits} images (one per split); got "
                           f"{len(logits)}. Use more images.")
    out = isc_features_to_metric(torch.from_numpy(np.ascontiguousarray(logits)), splits=splits,
                                 shuffle=IS_DEFAULTS.shuffle, rng_seed=seed)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])
