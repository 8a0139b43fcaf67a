"""Shared noise: everything random about a sample is a function of its seed alone.

One CPU torch.Generator per seed, seeded with the seed itself (moved to the device after
drawing), so a seed's noise is identical whatever the batch size, batch composition, device or
number of processes. The draw order per seed is that of EDM's generate.py (Karras et al. 2022,
StackedRandomGenerator), so on CPU a seed gets EDM's exact random numbers:
  1. initial latents: randn(C, H, W), float32;
  2. conditional models only: the class, randint(label_dim) (drawn even when --class is given);
  3. stochastic sampling (S_churn > 0) only: one randn(C, H, W) in float64 per step, on EVERY
     step, also where gamma = 0 (outside [S_min, S_max]) — EDM's randn_like(x_cur).
EDM seeds its generators with seed % 2^32; seeds below 2^32 are therefore identical to EDM's.
EDM draws on the GPU when it samples there; our CPU draws keep images device-independent.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

NOISE_SCHEME = ("per-seed CPU torch.Generator(seed); EDM generate.py order: latents float32, "
                "class randint(label_dim), churn randn float64 every step")


class SeedNoise:
    """Per-seed generators for one batch: each draw stacks one draw per seed."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """=> (N, *shape) standard normal of `dtype` on self.device; row i from seed i's stream."""
        draws = [torch.randn(list(shape), generator=g, dtype=dtype) for g in self.generators]
        return torch.stack(draws).to(self.device)

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        """EDM's randn_like: one draw per seed with x's per-image shape and dtype, on x's device."""
        return self.randn(x.shape[1:], dtype=x.dtype).to(x.device)

    def randint(self, high: int) -> np.ndarray:
        """=> int64 (N,) uniform in [0, high); one scalar draw per seed's stream."""
        return np.array([int(torch.randint(int(high), size=[], generator=g)) for g in self.generators],
                        dtype=np.int64)


def seed_labels(seeds: Sequence[int], label_dim: int, shape: Sequence[int]) -> np.ndarray:
    """Seed-determined class per seed (int64 (N,)): EDM's draw right after the `shape` latents."""
    out = np.empty(len(seeds), dtype=np.int64)
    for i, s in enumerate(seeds):
        noise = SeedNoise([s])
        noise.randn(shape)
        out[i] = noise.randint(label_dim)[0]
    return out
