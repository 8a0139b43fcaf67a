"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", Sec. 4):
IS = exp(E_x KL(p(y|x) || p(y))), on the softmax of Inception's 1008-way logits without bias,
averaged over 10 splits after a seeded shuffle: the conventions of torch-fidelity's
`isc_features_to_metric` (RandomState(2020) permutation, splits i*N//S, float64), which the tests use
as the oracle. numpy here, so a warm-cache run needs no torch (metrics/distances.py says why).
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
    if len(logits) < splits:
        raise AmbientError(f"Inception Score needs at least {splits} images (one per split); got "
                           f"{len(logits)}. Use more images.")
    x = np.asarray(logits, np.float64)
    n = len(x)
    if IS_DEFAULTS.shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))   # log softmax
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        rows = slice(i * n // splits, (i + 1) * n // splits)
        q = p[rows].mean(axis=0, keepdims=True)
        scores.append(float(np.exp((p[rows] * (log_p[rows] - np.log(q))).sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))
