"""Tweedie consistency loss below a sample's own noise level (Daras, Dimakis, Daskalakis 2024,
"Consistent Diffusion Meets Tweedie"; the consistency property of Daras et al. 2023).

Above sigma_tn the ambient (Tweedie) loss trains D directly; below it there is no supervision.
The optimal denoiser is a martingale along the reverse process: for s < t,

    D*(x_t, t) = E[x_0 | x_t] = E[ E[x_0 | x_s] | x_t ] = E[ D*(x_s, s) | x_t ],

so with t = sigma_tn and x_t = x_tn (the observed sample itself) the model is asked to satisfy
D(x_tn, sigma_tn) = E[D(x_s, s) | x_tn] for s < sigma_tn. x_s | x_t is drawn in one step from the
Brownian-bridge posterior with x_0 replaced by the model's own estimate (detached):

    x_s = (s^2/t^2) x_t + (1 - s^2/t^2) D(x_t, t) + s sqrt(1 - s^2/t^2) z

(its mean E[x_s | x_t] is exact for any data when D = D*; the spread is exact given x_0). The
squared norm of the conditional mean is estimated WITHOUT BIAS from two independent draws:
(a - b1) . (a - b2) with a = D(x_t, t), b_k = D(x_s^(k), s), whose expectation is
||a - E[b | x_t]||^2, which is 0 for the optimal denoiser (exactly, when the data are Gaussian) and
positive otherwise. A single-draw ||a - b||^2 would also count the spread of b.
Weight: 1 / sigma_data^2 (scale-free), times the user's --consistency; summed over pixels.
"""
from __future__ import annotations

import torch

from ambient_eval.training.loss import DenoiserFn
from ambient_eval.training.sigma import DEFAULTS


def posterior_sample(x_t: torch.Tensor, t: torch.Tensor, x0_hat: torch.Tensor, s: torch.Tensor,
                     z: torch.Tensor) -> torch.Tensor:
    """One-step x_s | x_t (s < t, per sample (N,)) with x_0 := x0_hat. NCHW float32 => NCHW float32."""
    r = (s.double() ** 2 / t.double() ** 2).float().reshape(-1, 1, 1, 1)
    return r * x_t + (1 - r) * x0_hat + s.reshape(-1, 1, 1, 1) * (1 - r).sqrt() * z


def sample_sigma_below(sigma_tn: torch.Tensor, generator: torch.Generator, P_mean: float = DEFAULTS.P_mean,
                       P_std: float = DEFAULTS.P_std) -> torch.Tensor:
    """EDM log-normal conditioned on s < sigma_tn (inverse CDF), (N,) => (N,) float32, 0 < s < sigma_tn."""
    u = torch.rand(sigma_tn.shape, generator=generator, dtype=torch.float64)
    b = torch.special.ndtr((torch.log(sigma_tn.double()) - P_mean) / P_std)
    q = (u * b).clamp(min=1e-300)
    s = torch.exp(torch.special.ndtri(q) * P_std + P_mean)
    return torch.minimum(s, sigma_tn.double() * (1 - 1e-6)).clamp(min=1e-6).float()


def consistency_loss(D: DenoiserFn, x_t: torch.Tensor, t: torch.Tensor, s: torch.Tensor, z1: torch.Tensor,
                     z2: torch.Tensor, labels: torch.Tensor | None = None,
                     sigma_data: float = DEFAULTS.sigma_data) -> torch.Tensor:
    """Unbiased estimate of ||D(x_t, t) - E[D(x_s, s) | x_t]||^2 / sigma_data^2 per sample => (N,).

    x_t NCHW at level t (N,) (the observed sample x_tn, t = sigma_tn); s (N,) < t; z1, z2 NCHW normal."""
    a = D(x_t, t, labels).float()
    x0 = a.detach()
    b1 = D(posterior_sample(x_t, t, x0, s, z1), s, labels).float()
    b2 = D(posterior_sample(x_t, t, x0, s, z2), s, labels).float()
    return ((a - b1) * (a - b2)).flatten(1).sum(1) / sigma_data ** 2
