"""Exponential moving average of weights with EDM's half-life parameterisation.

Karras et al. 2022 (EDM training loop): half-life ema_halflife_kimg thousand images, limited to
ema_rampup * (images seen) early in training; beta = 0.5 ** (batch / half_life_images).
"""
from __future__ import annotations

import torch


def ema_beta(cur_nimg: int, batch: int, halflife_kimg: float, rampup: float | None) -> float:
    """Decay for one step of `batch` images after `cur_nimg` images have been seen."""
    ema_nimg = halflife_kimg * 1000.0
    if rampup is not None and rampup > 0:
        ema_nimg = min(ema_nimg, cur_nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * model (parameters); buffers copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
