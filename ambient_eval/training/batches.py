"""Batch sampling of the official Ambient-Omni trainer: the noise level first, then an image allowed at it.

Rule (Daras et al. 2025; giannisdaras/ambient-omni `InfiniteSampler`): each slot of a batch draws
sigma_t from the EDM log-normal, then an image uniformly among those ELIGIBLE at sigma_t:

    eligible_i(sigma_t) = sigma_t > sigma_tn_i * sqrt(s_max / (s_max - 1))   (high-noise branch)
                          or sigma_t < sigma_max_i                          (locality branch)

Clean images (sigma_tn = 0) are eligible at every sigma_t > 0. sigma_max_i = 0 (the default)
disables the locality branch; with sigma_max_i > 0 the image is used AS CLEAN below sigma_max_i
(Ambient-Omni Sec. 4, "crops"). Every batch is full: at low noise it is made of clean images (and
images inside their locality range), so the model sees as many clean examples per step as a
clean-only run instead of a batch mostly zeroed out by the threshold ("mask" policy).

How this differs from the official sampler (`--batch-order walk`, training/walk.py): the official
InfiniteSampler walks a persistent shuffled order with window swaps, holding each sigma_t until the
cursor reaches an image eligible at it, so an image is yielded at most twice per pass and which eligible
image serves a sigma_t depends on the cursor. Here each slot is an independent draw, exactly uniform over
the eligible set, WITH replacement (an image can fill several slots of one batch), by rejection sampling
with the step's generator, so a run is bit-reproducible given (seed, step, rank) without any state. The
per-image and per-noise-level frequencies agree when the clean set is not tiny (1000 images / 100 clean);
with 5 clean images of 100, independent draws give clean images a 1-3 points larger share of the slots
at mid noise (tests/training/test_walk.py). A sigma_t at which no image is eligible (possible only
without clean images) is redrawn.
"""
from __future__ import annotations

import math

import torch

from ambient_eval.training.sigma import DEFAULTS, sample_sigma, threshold

MAX_ROUNDS = 10_000  # rejection rounds before giving up (reached only if almost nothing is ever eligible)


def eligible(sigma_t: torch.Tensor, thr: torch.Tensor, sigma_max: torch.Tensor) -> torch.Tensor:
    """bool: image i may be drawn at noise level sigma_t (the three tensors broadcast together).

    thr = threshold(sigma_tn, s_max); all float32."""
    return (sigma_t > thr) | (sigma_t < sigma_max)


def draw_images(sigma_t: torch.Tensor, thr: torch.Tensor, sigma_max: torch.Tensor,
                generator: torch.Generator, chunk: int = 16) -> torch.Tensor:
    """For each sigma_t (n,), an index uniform over the images eligible at it => int64 (n,).

    Raises ValueError if some sigma_t has no eligible image (callers redraw sigma_t first)."""
    n, N = int(sigma_t.shape[0]), int(thr.shape[0])
    out = torch.full((n,), -1, dtype=torch.int64)
    todo = torch.arange(n)
    for _ in range(MAX_ROUNDS):
        if len(todo) == 0:
            return out
        cand = torch.randint(N, (len(todo), chunk), generator=generator)    # proposals, uniform over all
        ok = eligible(sigma_t[todo][:, None], thr[cand], sigma_max[cand])   # (m, chunk)
        hit = ok.any(1)
        first = ok.to(torch.int8).argmax(1)                                 # first accepted proposal
        out[todo[hit]] = cand[hit, first[hit]]
        todo = todo[~hit]
    raise ValueError(f"{len(todo)} noise levels found no eligible image in {MAX_ROUNDS * chunk} proposals")


def sample_batch(n: int, sigma_tn: torch.Tensor, generator: torch.Generator, *,
                 sigma_max: torch.Tensor | None = None, P_mean: float = DEFAULTS.P_mean,
                 P_std: float = DEFAULTS.P_std, s_max: float = DEFAULTS.s_max) -> tuple[torch.Tensor, torch.Tensor]:
    """A full batch by the sigma-first rule => (indices int64 (n,), sigma_t float32 (n,)).

    sigma_tn (N,) float32 per image (0 = clean); sigma_max (N,) float32 or None (no locality)."""
    sigma_tn = sigma_tn.to(torch.float32)
    thr = threshold(sigma_tn, s_max)
    smax = torch.zeros_like(sigma_tn) if sigma_max is None else sigma_max.to(torch.float32)
    sigma = sample_sigma(n, generator, P_mean, P_std)
    lo, hi = float(thr.min()), float(smax.max())
    for _ in range(MAX_ROUNDS):  # redraw levels at which nothing is eligible (no clean image, low sigma)
        empty = ~((sigma > lo) | (sigma < hi))
        if not bool(empty.any()):
            break
        sigma[empty] = sample_sigma(int(empty.sum()), generator, P_mean, P_std)
    else:
        raise ValueError("no image is eligible at almost any noise level; check the annotations")
    return draw_images(sigma, thr, smax, generator), sigma


def effective_sigma_tn(sigma_t: torch.Tensor, sigma_tn: torch.Tensor, sigma_max: torch.Tensor | None) -> torch.Tensor:
    """sigma_tn used in the loss: 0 where the locality branch applies (sigma_t < sigma_max), else sigma_tn."""
    if sigma_max is None:
        return sigma_tn
    return torch.where(sigma_t < sigma_max, torch.zeros_like(sigma_tn), sigma_tn)


def draw_probability(sigma_t: float, sigma_tn: torch.Tensor, sigma_max: torch.Tensor | None = None,
                     s_max: float = DEFAULTS.s_max) -> torch.Tensor:
    """The rule in closed form: P(image i | sigma_t) = 1{eligible_i} / #eligible => float64 (N,)."""
    thr = threshold(sigma_tn.to(torch.float32), s_max)
    smax = torch.zeros_like(thr) if sigma_max is None else sigma_max.to(torch.float32)
    e = eligible(torch.tensor(sigma_t, dtype=torch.float32), thr, smax).double()
    return e / e.sum() if e.sum() > 0 else torch.full_like(e, math.nan)
