"""Training losses: EDM (Karras et al. 2022) and the ambient loss of Ambient-Omni (Daras et al. 2025)
which, with sigma_tn = sigma_n, is the noisy-data (Tweedie) loss of Daras et al. 2024.

Both take any denoiser callable D(x, sigma, labels) -> x0_hat (NCHW float32 in model space) and
return a per-sample loss (N,), SUMMED over pixels like the official EDM / Ambient-Omni code (so a
gradient is C*H*W times the pixel-mean one); callers choose the batch reduction: the trainer takes
the mean over the batch, masked samples included as zeros. Adam is invariant to a constant loss
scale up to its eps (1e-8, far below the gradient sizes here), so learning rates are the same as
with a pixel mean; only the logged loss values are C*H*W times larger.
"""
from __future__ import annotations

from typing import Callable

import torch

from ambient_eval.training.sigma import DEFAULTS, usable

DenoiserFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


def edm_weight(sigma: torch.Tensor, sigma_data: float = DEFAULTS.sigma_data) -> torch.Tensor:
    """EDM loss weight lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2 (Karras et al. Eq. 8 / Table 1)."""
    return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


def edm_loss(D: DenoiserFn, y: torch.Tensor, sigma: torch.Tensor, n: torch.Tensor,
             labels: torch.Tensor | None = None, sigma_data: float = DEFAULTS.sigma_data) -> torch.Tensor:
    """EDM denoising loss lambda(sigma) ||D(y + sigma n; sigma) - y||^2.

    y, n: NCHW float32 (clean data in model space, standard normal noise); sigma: (N,) => (N,), summed over pixels."""
    s = sigma.reshape(-1, 1, 1, 1)
    x0_hat = D(y + s * n, sigma, labels)
    return edm_weight(sigma, sigma_data) * ((x0_hat.float() - y) ** 2).flatten(1).sum(1)


def ambient_loss(D: DenoiserFn, x_tn: torch.Tensor, sigma_tn: torch.Tensor, sigma_t: torch.Tensor,
                 n: torch.Tensor, labels: torch.Tensor | None = None, sigma_data: float = DEFAULTS.sigma_data,
                 s_max: float = DEFAULTS.s_max) -> tuple[torch.Tensor, torch.Tensor]:
    """Ambient-Omni loss (Daras et al. 2025, Sec. 3; SPEC "Training").

    x_tn: NCHW float32, the sample at its own noise level sigma_tn (x_tn = y + sigma_tn z' for a
    corrupted image y; x_tn = y for noisy observations with sigma_tn = sigma_n; x_tn = y, sigma_tn = 0
    for clean data). sigma_tn, sigma_t: (N,). n: NCHW standard normal.
      x_t        = x_tn + sqrt(sigma_t^2 - sigma_tn^2) n
      x_tn_hat   = (sigma_tn^2 / sigma_t^2) x_t + (1 - sigma_tn^2 / sigma_t^2) D(x_t; sigma_t)
      loss       = lambda_EDM(sigma_t) * sigma_t^4 / (sigma_t^2 - sigma_tn^2)^2 * ||x_tn_hat - x_tn||^2
    A sample is used only when sigma_t > sigma_tn sqrt(s_max / (s_max - 1)); that threshold bounds the
    ambient factor sigma_t^4/(sigma_t^2 - sigma_tn^2)^2 = 1/(1 - sigma_tn^2/sigma_t^2)^2 by s_max^2
    (=16), and we also clamp it there explicitly (a no-op above the threshold). Samples below the
    threshold get loss exactly 0 and therefore exactly zero gradient ("mask" policy).
    With sigma_tn = 0 this is exactly the EDM loss. Returns (loss (N,), used (N,) bool)."""
    used = usable(sigma_t, sigma_tn, s_max)
    st2 = sigma_t.double() ** 2
    stn2 = torch.where(used, sigma_tn.double() ** 2, torch.zeros_like(st2))  # masked: finite dummy values
    r = (stn2 / st2).float().reshape(-1, 1, 1, 1)                            # sigma_tn^2 / sigma_t^2 < 1 - 1/s_max
    x_t = x_tn + (st2 - stn2).sqrt().float().reshape(-1, 1, 1, 1) * n
    x0_hat = D(x_t, sigma_t, labels).float()
    x_tn_hat = r * x_t + (1 - r) * x0_hat
    factor = (st2 ** 2 / (st2 - stn2) ** 2).clamp(max=s_max ** 2).float()
    w = torch.where(used, edm_weight(sigma_t, sigma_data) * factor, torch.zeros_like(factor))
    err = ((x_tn_hat - x_tn) ** 2).flatten(1).sum(1)
    return torch.where(used, w * err, torch.zeros_like(err)), used
