"""An independent oracle of the ADM evaluator's numpy arithmetic (openai/guided-diffusion
`evaluations/evaluator.py`), written here from its description for the tests: float16 distances with
torch half tensors (as TensorFlow's float16 ops), the k-th neighbour from a full sort, loops per block.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch


def distance_block(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """max(|u|^2 - 2 u.v + |v|^2, 0) in float16 (torch half), float32 when the block is not finite."""
    a, b = torch.from_numpy(np.asarray(u, np.float32)).half(), torch.from_numpy(np.asarray(v, np.float32)).half()
    d = torch.clamp((a * a).sum(1)[:, None] - 2 * (a @ b.T) + (b * b).sum(1)[None, :], min=0)
    if not torch.isfinite(d).all():       # the evaluator redoes the block from the float32 features
        a, b = torch.from_numpy(np.asarray(u, np.float32)), torch.from_numpy(np.asarray(v, np.float32))
        d = torch.clamp((a * a).sum(1)[:, None] - 2 * (a @ b.T) + (b * b).sum(1)[None, :], min=0)
    return d.float().numpy()


def radii(x: np.ndarray, k: int, batch: int) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch):
        row = np.concatenate([distance_block(x[i:i + batch], x[j:j + batch]) for j in range(0, len(x), batch)], 1)
        out.append(np.sort(row, axis=1)[:, k])          # (k+1)-th smallest, the point itself included
    return np.concatenate(out)


def precision_recall(ref: np.ndarray, smp: np.ndarray, k: int = 3, batch: int = 10_000) -> tuple[float, float]:
    r_ref, r_smp = radii(ref, k, batch), radii(smp, k, batch)
    ref_in, smp_in = np.zeros(len(ref), bool), np.zeros(len(smp), bool)
    for i in range(0, len(ref), batch):
        for j in range(0, len(smp), batch):
            d = distance_block(ref[i:i + batch], smp[j:j + batch])
            for a in range(d.shape[0]):
                for b in range(d.shape[1]):
                    ref_in[i + a] |= bool(d[a, b] <= r_smp[j + b])
                    smp_in[j + b] |= bool(d[a, b] <= r_ref[i + a])
    return float(smp_in.mean()), float(ref_in.mean())


def inception_score(logits: np.ndarray, split_size: int = 5000) -> float:
    p = torch.softmax(torch.from_numpy(np.asarray(logits, np.float64)), dim=1).numpy()
    scores = []
    for i in range(0, len(p), split_size):
        part = p[i:i + split_size]
        kl = part * (np.log(part) - np.log(part.mean(axis=0, keepdims=True)))
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores))


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            off = np.eye(len(mu1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + off) @ (sigma2 + off))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def statistics(acts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.mean(acts, axis=0), np.cov(acts, rowvar=False)
