"""The official Ambient-Omni batch walk (`--batch-order walk`): a persistent shuffled order with window swaps.

Rule (giannisdaras/ambient-omni pixel-diffusion/torch_utils/misc.py `InfiniteSampler`, window_size 0.5):
    order = a seeded permutation of the N images; position counter idx = 0; draw sigma ~ EDM log-normal
    repeat:  i = idx mod N; k = order[i]
             if sigma > threshold(sigma_tn_k) or sigma < sigma_max_k:  yield (k, sigma); draw a new sigma
             j = (i - U{0..W-1}) mod N, W = rint(N * window_size); swap order[i], order[j]; idx += 1
The swap moves the visited image backwards, except in the first W positions of a pass where it wraps to
the tail of the order, ahead of the cursor: so an image is visited (and yielded) at most twice per pass
of N positions, and mostly once. Which image serves a sigma depends on where the cursor stands, so draws
are only approximately uniform over the set eligible at that sigma (training/batches.py draws each slot
independently, exactly uniform, with replacement; with 5 clean images of 100 the walk gives clean
images a 1-3 points smaller share at mid noise, tests/training/test_walk.py).

Differences from the official code, none of which changes the rule: the random numbers come from
counter-based streams (window offset of position idx, sigma of yield y: blocks of numpy generators seeded
by (seed, stream, block)), so the walk's whole state is (order, idx, y) and is saved with the training
state (bit-identical resume); a sigma at which no image is eligible is skipped instead of hanging; with
several processes the global batch is walked once and each rank takes its slice (so no image repeats
within a pass across ranks either).
"""
from __future__ import annotations

import numpy as np
import torch

BLOCK = 4096  # random numbers per counter block
WINDOW_SIZE = 0.5  # official InfiniteSampler default: swap window = rint(N * 0.5)
_SHUFFLE, _SWAP, _SIGMA = 0, 1, 2  # stream ids


class BatchWalk:
    """The walk over N images; `next_batch` yields (indices, sigma_t) like batches.sample_batch."""

    def __init__(self, N: int, seed: int, P_mean: float, P_std: float, window_size: float = WINDOW_SIZE) -> None:
        self.N, self.seed, self.P_mean, self.P_std = int(N), int(seed), float(P_mean), float(P_std)
        self.window = int(np.rint(self.N * window_size))
        self.order = np.random.default_rng([self.seed, _SHUFFLE]).permutation(self.N).astype(np.int64)
        self.idx = 0  # positions visited so far
        self.y = 0  # sigmas drawn so far
        self._blocks: dict[tuple[int, int], list] = {}

    def _stream(self, stream: int, n: int):
        """n-th number of a stream: window offset (int) or EDM sigma (float32 value as a Python float)."""
        b, r = divmod(n, BLOCK)
        key = (stream, b)
        if key not in self._blocks:
            if len(self._blocks) > 8:
                self._blocks.clear()
            g = np.random.default_rng([self.seed, stream, b])
            if stream == _SWAP:
                self._blocks[key] = g.integers(max(self.window, 1), size=BLOCK).tolist()
            else:  # EDM: ln sigma ~ N(P_mean, P_std^2), rounded to float32 like the rest of the trainer
                self._blocks[key] = np.exp(g.standard_normal(BLOCK) * self.P_std + self.P_mean).astype(np.float32).tolist()
        return self._blocks[key][r]

    def next_batch(self, n: int, thr: torch.Tensor, sigma_max: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """n (image, sigma_t) pairs => (int64 (n,), float32 (n,)). thr, sigma_max: (N,) float32."""
        thr_l, smax_l = thr.tolist(), sigma_max.tolist()
        lo, hi = min(thr_l), max(smax_l)
        order, N, out, sig = self.order, self.N, [], []
        sigma = self._stream(_SIGMA, self.y)
        while len(out) < n:
            if not (sigma > lo or sigma < hi):  # nothing is eligible at this sigma: skip it
                self.y += 1
                sigma = self._stream(_SIGMA, self.y)
                continue
            i = self.idx % N
            k = int(order[i])
            if sigma > thr_l[k] or sigma < smax_l[k]:
                out.append(k)
                sig.append(sigma)
                self.y += 1
                sigma = self._stream(_SIGMA, self.y)
            if self.window >= 2:
                j = (i - self._stream(_SWAP, self.idx)) % N
                order[i], order[j] = order[j], order[i]
            self.idx += 1
        return torch.tensor(out, dtype=torch.int64), torch.tensor(sig, dtype=torch.float32)

    def state(self) -> tuple[torch.Tensor, dict]:
        """(order tensor, JSON-able counters) for the training state file."""
        return torch.from_numpy(self.order.copy()), {"idx": self.idx, "y": self.y, "N": self.N}

    def load(self, order: torch.Tensor, info: dict) -> None:
        """Restore what `state` returned."""
        if int(info["N"]) != self.N or order.shape != (self.N,):
            raise ValueError(f"walk state is for {info['N']} images, not {self.N}")
        self.order = order.numpy().astype(np.int64).copy()
        self.idx, self.y = int(info["idx"]), int(info["y"])
