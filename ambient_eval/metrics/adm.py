"""The ADM evaluator's precision/recall and Inception Score (Dhariwal & Nichol 2021,
openai/guided-diffusion `evaluations/evaluator.py`), as its numpy + TensorFlow arithmetic does them.

Precision / recall: Kynkaanniemi et al. 2019 (Sec. 3) with the evaluator's conventions, which differ
from torch-fidelity's (metrics/precision_recall.py) in three ways that change the numbers:
  - distances are SQUARED Euclidean distances ||u||^2 - 2 u.v + ||v||^2 computed in float16 (inputs
    cast to float16, float32 accumulation, each result rounded to float16), clipped at 0; a block of
    `row_batch` x `col_batch` distances with any non-finite value is recomputed in float32;
  - the radius of a point is the (k+1)-th smallest distance of its row INCLUDING itself (its own
    distance is whatever the float16 formula gives, not exactly 0);
  - membership is distance <= radius on those float16-rounded squared distances.
Blocks follow the evaluator (10000 x 10000), because the float32 fallback is decided per block.
The evaluator uses every image of its reference batch (10k for ImageNet); `fid_compute` caps the
reference at ADM_PR.max_reference with a seeded subset and records it.

Inception Score: softmax of the 1008-way logits without bias (the evaluator multiplies pool_3 by
the weights of `softmax/logits/MatMul`: torch-fidelity's `logits_unbiased`), consecutive splits of
5000 images in input order (no shuffle; the last split may be shorter), IS = mean over splits of
exp(mean_x KL(p(y|x) || p_split(y))). Computed in float64 with log-softmax (the evaluator: float32
softmax, then np.log), so values agree to ~1e-6 relative.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class AdmPRDefaults:
    k: int = 3                    # neighbourhood size (evaluator nhood_sizes=(3,))
    row_batch: int = 10_000       # rows per distance block (evaluator row_batch_size)
    col_batch: int = 10_000       # columns per distance block (evaluator col_batch_size)
    max_reference: int = 10_000   # reference images used (the evaluator's batches hold 10k)


@dataclass(frozen=True)
class AdmISDefaults:
    split_size: int = 5_000       # images per split, consecutive (evaluator split_size)


ADM_PR = AdmPRDefaults()
ADM_IS = AdmISDefaults()


def squared_distances_fp16(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """One block of the evaluator's DistanceBlock. # NC, MC float => N x M float32 squared distances

    float16 arithmetic (float32 accumulation, result of each operation rounded to float16); when any
    value of the block is not finite (float16 overflows at 65504) the block is redone in float32.
    """
    with np.errstate(over="ignore", invalid="ignore"):     # float16 overflow => inf => the float32 path
        u16, v16 = np.asarray(u).astype(np.float16), np.asarray(v).astype(np.float16)
        nu = np.square(u16).sum(axis=1, dtype=np.float32).astype(np.float16)     # ||u||^2, float16
        nv = np.square(v16).sum(axis=1, dtype=np.float32).astype(np.float16)
        uv = (u16.astype(np.float32) @ v16.astype(np.float32).T).astype(np.float16)
        d = np.maximum((nu[:, None] - np.float16(2) * uv) + nv[None, :], np.float16(0))
    if np.isfinite(d).all():
        return d.astype(np.float32)
    u32, v32 = np.asarray(u, np.float32), np.asarray(v, np.float32)
    nu32 = np.square(u32).sum(axis=1, dtype=np.float32)
    nv32 = np.square(v32).sum(axis=1, dtype=np.float32)
    return np.maximum(nu32[:, None] - np.float32(2) * (u32 @ v32.T) + nv32[None, :], np.float32(0))


def _blocks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def manifold_radii(x: np.ndarray, k: int = ADM_PR.k, row_batch: int = ADM_PR.row_batch,
                   col_batch: int = ADM_PR.col_batch) -> np.ndarray:
    """Squared radius of each point: (k+1)-th smallest squared distance of its row, self included.

    # NC float => N float32
    """
    out = np.empty(len(x), np.float32)
    for rows in _blocks(len(x), row_batch):
        d = np.concatenate([squared_distances_fp16(x[rows], x[cols]) for cols in _blocks(len(x), col_batch)], axis=1)
        out[rows] = np.partition(d, k, axis=1)[:, k]
    return out


def adm_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = ADM_PR.k, row_batch: int = ADM_PR.row_batch,
                         col_batch: int = ADM_PR.col_batch) -> tuple[float, float]:
    """(precision, recall) as the ADM evaluator computes them. # MC float (ref), NC float (samples) => 2 floats"""
    if min(len(real), len(fake)) <= k:
        raise AmbientError(f"ADM precision/recall with k={k} needs more than {k} images per set; got "
                           f"{len(fake)} generated and {len(real)} reference. Use more images.")
    r_real = manifold_radii(real, k, row_batch, col_batch)
    r_fake = manifold_radii(fake, k, row_batch, col_batch)
    real_inside = np.zeros(len(real), bool)     # reference point in some sample ball (recall)
    fake_inside = np.zeros(len(fake), bool)     # sample in some reference ball (precision)
    for rows in _blocks(len(real), row_batch):
        for cols in _blocks(len(fake), col_batch):
            d = squared_distances_fp16(real[rows], fake[cols])
            real_inside[rows] |= (d <= r_fake[None, cols]).any(axis=1)
            fake_inside[cols] |= (d <= r_real[rows, None]).any(axis=0)
    return float(fake_inside.mean()), float(real_inside.mean())


def adm_inception_score(logits: np.ndarray, split_size: int = ADM_IS.split_size) -> tuple[float, float]:
    """(mean, std) of the score over consecutive splits of `split_size`. # NC float logits => 2 floats

    The evaluator prints the mean only; the std over its splits is reported beside it.
    """
    x = np.asarray(logits, np.float64)
    if len(x) < 1:
        raise AmbientError("The ADM Inception Score needs at least one generated image.")
    scores = []
    for start in range(0, len(x), split_size):
        part = x[start:start + split_size]
        shifted = part - part.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))     # log softmax
        p = np.exp(log_p)
        log_q = np.log(p.mean(axis=0, keepdims=True))                            # log marginal of the split
        scores.append(float(np.exp((p * (log_p - log_q)).sum(axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))
