"""EDM2's sampling convention (Karras et al. 2024, generate_images.py), for EDM2 networks.

EDM2 runs the same Heun / Algorithm 2 sampler as EDM, but differently enough that the same seed
gives a different image unless it is followed exactly (checked against EDM2's own code, see
docs/verification-edm.md):
  * the noise levels and the sampler state are float32 (EDM: float64), with no round_sigma;
  * the churn noise is drawn only on steps that churn (S_churn > 0 and S_min <= t_cur <= S_max),
    in float32 (EDM draws float64 noise on every step when S_churn > 0).
The per-seed order of draws is otherwise EDM's: latents, then (conditional models) the class.
"""
from __future__ import annotations

import math

import torch

EDM2 = "edm2"


def convention(denoiser) -> str:
    """'edm2' for networks loaded from EDM2 snapshots, else 'edm'."""
    return getattr(denoiser, "sampler_convention", "edm")


def edm2_sigmas(cfg) -> torch.Tensor:
    """EDM2's float32 time steps: Eq. 5 evaluated in float32 (no round_sigma), t_N = 0 appended."""
    N, rho = cfg.steps, cfg.rho
    i = torch.arange(N, dtype=torch.float32)
    s_max, s_min = cfg.sigma_max ** (1 / rho), cfg.sigma_min ** (1 / rho)   # Python floats, as EDM2
    t = (s_max + i / max(N - 1, 1) * (s_min - s_max)) ** rho
    return torch.cat([t, torch.zeros_like(t[:1])])


def sample_edm2(D, latents: torch.Tensor, labels, cfg, noise, sigmas: torch.Tensor) -> torch.Tensor:
    """latents NCHW float32 N(0, I) => x0 NCHW float32 (model space), EDM2's float32 Heun/Euler."""
    t_steps = sigmas.to(device=latents.device, dtype=torch.float32)
    N = len(t_steps) - 1
    second_order = cfg.sampler == "heun"

    def d_dx(x, t):
        return (x - D(x, t.expand(x.shape[0]), labels).to(torch.float32)) / t

    x_next = latents.to(torch.float32) * t_steps[0]
    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        if cfg.S_churn > 0 and cfg.S_min <= t_cur <= cfg.S_max:   # churn: only here is noise drawn
            gamma = min(cfg.S_churn / N, math.sqrt(2) - 1)
            t_hat = t_cur + gamma * t_cur
            x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * cfg.S_noise * noise.randn_like(x_cur)
        else:
            t_hat, x_hat = t_cur, x_cur
        d_cur = d_dx(x_hat, t_hat)
        x_next = x_hat + (t_next - t_hat) * d_cur
        if second_order and i < N - 1:
            d_prime = d_dx(x_next, t_next)
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next
