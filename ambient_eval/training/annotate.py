"""Ambient-Omni sigma_tn annotation (Daras et al. 2025, Sec. 3.2; SPEC "Training").

A noise-conditional classifier c(x + sigma z, sigma) learns (BCE) to tell clean from corrupted
images. High noise washes out the difference, so for a corrupted sample the classifier's
P(corrupted) falls towards 1/2 as sigma grows; sigma_tn is the smallest sigma on a sorted grid
where that probability (averaged over `draws` noise draws per sigma and smoothed along the grid)
falls below chance + epsilon. Clean samples get sigma_tn = 0.

Chance level (`chance`): "calibrated" (default) = the classifier's mean P(corrupted) on the CLEAN
images at the same sigma (same noise draws, same smoothing). Where noise has erased the difference
both classes get the same output, whatever prior the classifier settled on (often not exactly 1/2
after a short training), so an information-free sigma counts as "confused" instead of sending the
sample to the grid maximum. "half" = the fixed 1/2 (the paper's rule, epsilon on top).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ambient_eval.runtime.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnotateConfig:
    """Classifier training and the sigma_tn rule."""

    steps: int = 400  # classifier optimisation steps
    batch: int = 64  # images per step (half clean, half corrupted: balanced despite 10/90 data)
    lr: float = 2e-3  # Adam learning rate
    width: int = 32  # channels of the classifier's first conv
    grid_min: float = 0.01  # smallest sigma on the annotation grid (model-space units)
    grid_max: float = 10.0  # largest sigma on the grid; sigma_tn = grid_max when never below 0.5 + eps
    grid_size: int = 32  # number of log-spaced grid points
    train_sigma: str = "log-uniform"  # classifier training sigma: "log-uniform" over the grid, or "edm" log-normal
    draws: int = 4  # noise draws averaged per (sample, sigma)
    smooth: int = 3  # moving-average window along the grid (odd; 1 = none)
    epsilon: float = 0.05  # SPEC: threshold chance + epsilon
    chance: str = "calibrated"  # "calibrated": chance(sigma) = mean P(corrupted) of clean images | "half": 0.5
    seed: int = 0  # classifier init, batches and noise draws


def sigma_grid(cfg: AnnotateConfig) -> np.ndarray:
    """Sorted log-spaced grid, float64 (G,)."""
    return np.geomspace(cfg.grid_min, cfg.grid_max, cfg.grid_size)


class NoisyClassifier(nn.Module):
    """c(x, sigma): NCHW float32 (model space, noisy), (N,) sigma => (N,) logit of P(corrupted).

    The noise level enters as an extra constant input channel c_noise = ln(sigma) / 4 (EDM's
    c_noise) and as a FiLM scale/shift of the pooled features."""

    def __init__(self, channels: int = 3, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(channels + 1, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1), nn.SiLU(),
        )
        self.film = nn.Linear(1, 4 * w)
        self.head = nn.Linear(2 * w, 1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        c_noise = (sigma.log() / 4).reshape(-1, 1)
        # Normalise the input scale like EDM's c_in so high-sigma inputs do not blow up.
        c_in = (1 / (sigma ** 2 + 0.25).sqrt()).reshape(-1, 1, 1, 1)
        h = self.body(torch.cat([x * c_in, c_noise[:, :, None, None].expand(-1, 1, *x.shape[-2:])], 1))
        h = h.mean((2, 3))
        scale, shift = self.film(c_noise).chunk(2, dim=1)
        return self.head(torch.nn.functional.silu(h * (1 + scale) + shift)).squeeze(1)


def _train_sigma(n: int, cfg: AnnotateConfig, g: torch.Generator) -> torch.Tensor:
    if cfg.train_sigma == "edm":
        return (torch.randn(n, generator=g) * 1.2 - 1.2).exp()
    lo, hi = math.log(cfg.grid_min), math.log(cfg.grid_max)
    return (torch.rand(n, generator=g) * (hi - lo) + lo).exp()


def _float(images_u8: torch.Tensor, device) -> torch.Tensor:
    # NCHW uint8 => NCHW float32 in [-1, 1] on device
    return images_u8.to(device).to(torch.float32) / 127.5 - 1.0


def train_classifier(clean: torch.Tensor, corrupted: torch.Tensor, cfg: AnnotateConfig,
                     device: torch.device | str = "cpu") -> tuple[NoisyClassifier, list[float]]:
    """BCE training on balanced batches. clean, corrupted: NCHW uint8 => (classifier, loss per step)."""
    torch.manual_seed(cfg.seed)
    model = NoisyClassifier(clean.shape[1], cfg.width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(cfg.seed)
    half = max(1, cfg.batch // 2)
    losses = []
    for step in progress(range(cfg.steps), total=cfg.steps, desc="classifier", unit="step"):
        # Cosine LR decay to 0: the final weights settle, so P(corrupted) at high sigma (where the
        # classes cannot be told apart) stays near 1/2 instead of drifting with the last updates.
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        ic = torch.randint(len(clean), (half,), generator=g)
        ib = torch.randint(len(corrupted), (half,), generator=g)
        x = torch.cat([_float(clean[ic], device), _float(corrupted[ib], device)])
        target = torch.cat([torch.zeros(half), torch.ones(half)]).to(device)
        sigma = _train_sigma(2 * half, cfg, g).to(device)
        z = torch.randn(x.shape, generator=g).to(device)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x + sigma.reshape(-1, 1, 1, 1) * z, sigma), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


@torch.no_grad()
def prob_curves(model: NoisyClassifier, images: torch.Tensor, indices, cfg: AnnotateConfig,
                device: torch.device | str = "cpu", batch: int = 256) -> np.ndarray:
    """P(corrupted) per (sample, grid sigma), averaged over `draws` per-sample-seeded noise draws.

    NCHW uint8 (M) + dataset indices (M,) => float64 (M, G) (before smoothing)."""
    grid = torch.tensor(sigma_grid(cfg), dtype=torch.float32)
    G, K = len(grid), cfg.draws
    out = np.zeros((len(images), G))
    for s in progress(range(0, len(images), batch), desc="annotate: P(corrupted) per sigma", unit="batch"):
        x = _float(images[s:s + batch], device)
        # noise of sample i depends only on (seed, dataset index i): independent of batching
        z = torch.stack([torch.randn((G * K, *x.shape[1:]), generator=torch.Generator().manual_seed(
            int(np.random.SeedSequence([cfg.seed, int(i), 7]).generate_state(1)[0]))) for i in indices[s:s + batch]])
        sig = grid.repeat_interleave(K).to(device)                                  # (G*K,)
        xs = x[:, None] + sig.reshape(1, -1, 1, 1, 1) * z.to(device)                # (B, G*K, C, H, W)
        logits = model(xs.flatten(0, 1), sig.repeat(len(x)))
        p = torch.sigmoid(logits).reshape(len(x), G, K).mean(2)
        out[s:s + batch] = p.double().cpu().numpy()
    return out


def smooth_curves(p: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average along the grid axis (edge-replicated). (M, G) => (M, G)."""
    if window <= 1:
        return p
    r = window // 2
    padded = np.pad(p, ((0, 0), (r, r)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack([np.convolve(row, kernel, mode="valid") for row in padded])


def sigma_tn_from_curves(p_smooth: np.ndarray, cfg: AnnotateConfig, chance: np.ndarray | float = 0.5) -> np.ndarray:
    """Smallest grid sigma with P(corrupted) < chance(sigma) + epsilon; grid_max when never.

    (M, G) curves, chance scalar or (G,) => (M,)."""
    grid = sigma_grid(cfg)
    below = p_smooth < np.asarray(chance, dtype=np.float64) + cfg.epsilon
    first = np.where(below.any(1), below.argmax(1), len(grid) - 1)
    return grid[first]


@torch.no_grad()
def accuracy_vs_sigma(model: NoisyClassifier, clean: torch.Tensor, corrupted: torch.Tensor, cfg: AnnotateConfig,
                      device: torch.device | str = "cpu", max_images: int = 512) -> list[dict]:
    """Balanced accuracy of the classifier at each grid sigma (one seeded draw per image)."""
    g = torch.Generator().manual_seed(cfg.seed + 1)
    a = clean[torch.randperm(len(clean), generator=g)[:max_images]]
    b = corrupted[torch.randperm(len(corrupted), generator=g)[:max_images]]
    rows = []
    for sigma in progress(sigma_grid(cfg), desc="annotate: accuracy vs sigma", unit="sigma"):
        accs = []
        for imgs, label in ((a, 0), (b, 1)):
            x = _float(imgs, device)
            s = torch.full((len(x),), float(sigma), device=device)
            pred = model(x + s.reshape(-1, 1, 1, 1) * torch.randn(x.shape, generator=g).to(device), s) > 0
            accs.append(float((pred == bool(label)).float().mean()))
        rows.append({"sigma": float(sigma), "acc_clean": accs[0], "acc_corrupted": accs[1],
                     "balanced_accuracy": (accs[0] + accs[1]) / 2})
    return rows


def annotate(clean: torch.Tensor, corrupted: torch.Tensor, corrupted_indices, cfg: AnnotateConfig,
             device: torch.device | str = "cpu") -> dict:
    """Train the classifier and assign sigma_tn to every corrupted image.

    clean, corrupted: NCHW uint8; corrupted_indices: dataset index of each corrupted image (seeds
    its noise). => {'sigma_tn': (M,), 'curves': (M, G) smoothed, 'grid', 'losses', 'accuracy'}."""
    if cfg.chance not in ("calibrated", "half"):
        raise ValueError(f"chance must be 'calibrated' or 'half', got {cfg.chance!r}")
    model, losses = train_classifier(clean, corrupted, cfg, device)
    curves = smooth_curves(prob_curves(model, corrupted, list(corrupted_indices), cfg, device), cfg.smooth)
    chance = np.full(cfg.grid_size, 0.5)
    if cfg.chance == "calibrated":  # clean images' noise streams: indices past every dataset index
        sub = clean[:512]
        clean_curves = smooth_curves(prob_curves(model, sub, [2 ** 40 + i for i in range(len(sub))], cfg, device),
                                     cfg.smooth)
        chance = clean_curves.mean(0)
    return {"sigma_tn": sigma_tn_from_curves(curves, cfg, chance), "curves": curves, "grid": sigma_grid(cfg),
            "chance": chance, "losses": losses, "accuracy": accuracy_vs_sigma(model, clean, corrupted, cfg, device)}
