"""Which sigma_tn an Ambient-Omni sample carries into the loss: the two official training loops.

Both loops draw batches the same way (a corrupted image only at sigma_t > sigma_tn sqrt(s_max/(s_max-1)),
training/batches.py, training/walk.py); they differ in the sigma_tn given to the ambient loss:

  pixel-loop    (giannisdaras/ambient-omni pixel-diffusion/training/training_loop.py, the loop behind the
                paper's CIFAR-10 / FFHQ tables): sigma_loss = min(sigma_min, sigma_max), then 0 where it
                exceeds sigma_t. For classifier annotations (sigma_max = 0) sigma_loss = 0: a corrupted
                image is trained with the plain EDM loss ON THE CORRUPTED IMAGE, only above its threshold.
  ambient-loss  (latent-diffusion/training/training_loop.py): sigma_loss = sigma_min, then 0 where
                sigma_t <= sigma_min: x_tn = y + sigma_tn z' and the ambient loss proper.

Here sigma_min is the annotation's sigma_tn and sigma_max the locality level (0 = none). The two rules
agree with each other on clean images and with the locality-only ("crop") annotations. One deliberate
difference from both official loops: an image with sigma_min > 0 AND sigma_max > sigma_min, drawn through
its locality branch at sigma_min < sigma_t <= sigma_min sqrt(s_max/(s_max-1)), gets an ambient factor above
s_max^2 there (unbounded as sigma_t -> sigma_min); training/loss.py gives such a sample loss 0 instead.
"""
from __future__ import annotations

import torch

from ambient_eval.training.batches import effective_sigma_tn

AMBIENT_LOSS = "ambient-loss"
PIXEL_LOOP = "pixel-loop"


def loss_sigma_tn(target: str, sigma_t: torch.Tensor, sigma_tn: torch.Tensor,
                  sigma_max: torch.Tensor | None) -> torch.Tensor:
    """sigma_tn given to the loss for each sample => float32 (n,). All inputs (n,) float32."""
    if target == AMBIENT_LOSS:  # latent-diffusion training_loop.py: 0 where sigma_t <= sigma_tn
        return torch.where(sigma_t <= sigma_tn, torch.zeros_like(sigma_tn), sigma_tn)
    if target != PIXEL_LOOP:
        raise ValueError(f"unknown ambient target {target!r}")
    # pixel-diffusion training_loop.py: sigma_tn = min(sigma_min, sigma_max); 0 where sigma_tn > sigma_t
    smax = torch.zeros_like(sigma_tn) if sigma_max is None else sigma_max.to(sigma_tn.dtype)
    s = torch.minimum(sigma_tn, smax)
    return torch.where(s > sigma_t, torch.zeros_like(s), s)


def loss_inputs(method: str, target: str, y: torch.Tensor, z_tn: torch.Tensor, sigma_t: torch.Tensor,
                sigma_tn: torch.Tensor, sigma_max: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_tn NCHW, sigma_tn of the loss (n,)) for one batch. y NCHW model space; z_tn standard normal like y.

    ambient-omni: sigma by `target`, x_tn = y + sigma z_tn (Ambient-Omni). Other methods: x_tn = y; sigma =
    sigma_tn (0 for clean data; noisy data: sigma_n, already carried by y), 0 in a locality range."""
    if method == "ambient-omni":
        s = loss_sigma_tn(target, sigma_t, sigma_tn, sigma_max)
        return y + s.to(y.device).reshape(-1, 1, 1, 1) * z_tn, s
    return y, effective_sigma_tn(sigma_t, sigma_tn, sigma_max)
