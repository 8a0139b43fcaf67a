"""Keep the images a run scored, so its report shows exactly those pixels (no second sampling pass).

`KeptImages(model_source)` delegates to the wrapped source and keeps every image it reads (uint8,
N x C x H x W in memory: 50k CIFAR-10 samples are 150 MB). The memorization gallery then reads the
kept pixels instead of running the sampler again.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ambient_eval.data.base import ImageSource
from ambient_eval.data.wrapped import WrappedSource


class KeptImages(WrappedSource):
    """An ImageSource that remembers what it has read (same names, labels, fingerprint as `base`)."""

    def __init__(self, base: ImageSource) -> None:
        super().__init__(base)
        self.description = base.description
        self._kept: np.ndarray | None = None          # uint8 NCHW, allocated on the first read
        self._have = np.zeros(len(base), dtype=bool)

    def fingerprint(self) -> str:
        return self.base.fingerprint()

    def __getattr__(self, name):  # provenance attributes of the wrapped source (denoiser, seeds, ...)
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        idx = self._check_indices(indices)
        missing = idx[~self._have[idx]]
        if missing.size:
            fresh = self.base.read(np.unique(missing)).numpy()
            if self._kept is None:
                self._kept = np.empty((len(self), *fresh.shape[1:]), dtype=np.uint8)
            self._kept[np.unique(missing)] = fresh
            self._have[np.unique(missing)] = True
        return torch.from_numpy(self._kept[idx].copy())

    def _read_hwc(self, i: int) -> np.ndarray:
        return self.read([i])[0].permute(1, 2, 0).numpy()
