"""Shared noise: everything random about a sample is a function of its seed alone.

One CPU torch.Generator per seed (moved to the device after drawing), so a seed's initial
noise and per-step churn noise are identical whatever the batch size, batch composition,
device or number of processes (Karras et al. 2022 generate.py does the same per-seed, on the
device). Draw order per seed: initial latents, then one image-shaped draw per churn step.
Class labels come from a separate stream, np.random.default_rng([LABEL_STREAM, seed]), so a
seed's noise does not depend on whether the model is class-conditional.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

LABEL_STREAM = 1    # SeedSequence entropy prefix for the per-seed class-label stream


class SeedNoise:
    """Per-seed generators for one batch: .randn(shape) stacks one draw per seed."""

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu") -> None:
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """=> (N, *shape) float32 standard normal on self.device; row i from seed i's stream."""
        draws = [torch.randn(list(shape), generator=g, dtype=torch.float32) for g in self.generators]
        return torch.stack(draws).to(self.device)


def seed_labels(seeds: Sequence[int], label_dim: int) -> np.ndarray:
    """Seed-determined class index per seed => int64 (N,)."""
    return np.array([np.random.default_rng([LABEL_STREAM, int(s)]).integers(label_dim)
                     for s in seeds], dtype=np.int64)
