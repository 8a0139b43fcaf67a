"""ODE/SDE samplers over a Denoiser in EDM convention (x = y + sigma n, dx/dsigma = (x - D)/sigma).

Heun: Karras et al. 2022, Algorithm 1 (deterministic) / Algorithm 2 (stochastic "churn").
Euler: the same without the 2nd-order correction. DDIM (Song et al. 2021, eta = 0) is Euler on
the same ODE in x / sqrt(abar) over the VP model's own timestep grid (Karras et al. 2022, Table 1).
The sampler state is float64 (as EDM does); the network runs in float32 (or autocast).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ambient_eval.errors import AmbientError
from ambient_eval.sampling.noise import SeedNoise

SAMPLERS = ("heun", "euler", "ddim")


@dataclass(frozen=True)
class SamplerConfig:
    sampler: str = "heun"           # heun | euler | ddim
    steps: int = 18                 # N, number of noise levels (Heun NFE = 2N - 1 = 35)
    sigma_min: float = 0.002        # lowest noise level of the schedule (clamped to the model's)
    sigma_max: float = 80.0         # highest noise level (clamped to the model's)
    rho: float = 7.0                # schedule curvature (Karras et al. 2022, Eq. 5)
    S_churn: float = 0.0            # total stochasticity; 0 = deterministic (Algorithm 1)
    S_min: float = 0.0              # churn only for sigma in [S_min, S_max]
    S_max: float = float("inf")
    S_noise: float = 1.0            # std inflation of churn noise

    def to_dict(self) -> dict:
        d = self.__dict__.copy()
        d["S_max"] = "inf" if math.isinf(self.S_max) else self.S_max
        return d

    def validate(self) -> "SamplerConfig":
        if self.sampler not in SAMPLERS:
            raise AmbientError(f"Unknown sampler '{self.sampler}'. Use one of: {', '.join(SAMPLERS)}.")
        if self.steps < 1 or (self.sampler == "heun" and self.steps < 2):
            raise AmbientError(f"--steps {self.steps} is too small; use at least 2 (Heun) or 1.")
        if not 0 < self.sigma_min < self.sigma_max:
            raise AmbientError(f"Need 0 < sigma_min < sigma_max, got {self.sigma_min} and {self.sigma_max}.")
        if self.S_churn < 0 or self.S_noise <= 0:
            raise AmbientError(f"S_churn must be >= 0 and S_noise > 0 (got {self.S_churn}, {self.S_noise}).")
        return self


def edm_sigmas(cfg: SamplerConfig, denoiser) -> torch.Tensor:
    """Karras et al. 2022 Eq. 5 in float64, clamped to the model's range, t_N = 0 appended."""
    s_min = max(cfg.sigma_min, denoiser.sigma_min)
    s_max = min(cfg.sigma_max, denoiser.sigma_max)
    N = cfg.steps
    i = torch.arange(N, dtype=torch.float64)
    t = (s_max ** (1 / cfg.rho) + i / max(N - 1, 1) * (s_min ** (1 / cfg.rho) - s_max ** (1 / cfg.rho))) ** cfg.rho
    t = torch.as_tensor(denoiser.round_sigma(t), dtype=torch.float64)
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)])


def ddim_sigmas(cfg: SamplerConfig, denoiser) -> torch.Tensor:
    """VP grid sigmas at diffusers' "leading" DDIM timesteps (t_i = (N-1-i) * (T // N)), then 0."""
    grid = getattr(denoiser, "sigmas", None)
    if grid is None:
        raise AmbientError("The ddim sampler needs a discrete-time VP model (e.g. a diffusers "
                           "checkpoint). Use --sampler heun or euler for this model.")
    if getattr(denoiser, "ddim_thresholding", False):
        raise AmbientError("This checkpoint's scheduler sets thresholding (dynamic thresholding of the x0 "
                           "estimate), which ambient-eval's ddim does not implement, so its images would "
                           "differ from diffusers' DDIMPipeline. Use --sampler heun or euler, or save the "
                           "scheduler config with \"thresholding\": false.")
    T = len(grid)
    if cfg.steps > T:
        raise AmbientError(f"--steps {cfg.steps} exceeds the model's {T} training timesteps.")
    ratio = T // cfg.steps
    t = torch.arange(cfg.steps - 1, -1, -1) * ratio
    return torch.cat([grid.detach().cpu().to(torch.float64)[t], torch.zeros(1, dtype=torch.float64)])


def sample(D: Callable, latents: torch.Tensor, labels, cfg: SamplerConfig, noise: SeedNoise,
           sigmas: torch.Tensor) -> torch.Tensor:
    """latents NCHW float32 N(0, I) => x0 NCHW float64 (model space).

    D(x float32, sigma (N,) float32, labels) -> x0_hat; sigmas float64 (steps + 1,) with 0 last.
    """
    dev = latents.device
    t_steps = sigmas.to(dev)
    if cfg.sampler == "ddim":  # DDIM starts from x_T ~ N(0, I) in VP space: x = x_T sqrt(1 + sigma^2)
        x_next = latents.to(torch.float64) * (1 + t_steps[0] ** 2).sqrt()
    else:
        x_next = latents.to(torch.float64) * t_steps[0]          # Algorithm 1, line 2
    N = len(t_steps) - 1
    second_order = cfg.sampler == "heun"
    # diffusers' clip_sample (DDIMScheduler.step, step 4): the x0 estimate is clipped, epsilon is not.
    clip = getattr(getattr(D, "denoiser", D), "ddim_clip_x0", None) if cfg.sampler == "ddim" else None

    def d_dx(x, t):  # dx/dt = (x - D(x; t)) / t   (Algorithm 1, line 4)
        s = t.to(torch.float32).expand(x.shape[0])
        return (x - D(x.to(torch.float32), s, labels).to(torch.float64)) / t

    for i, (t_cur, t_next) in enumerate(zip(t_steps[:-1], t_steps[1:])):
        x_cur = x_next
        # Algorithm 2, lines 4-6: temporarily raise the noise level (churn), off by default.
        # As EDM's generate.py, a stochastic run draws float64 noise on EVERY step (gamma = 0
        # included), so a seed's later draws do not depend on S_min / S_max. With gamma = 0 the
        # draw is multiplied by 0 and x is unchanged, so only the draw itself is kept.
        gamma = min(cfg.S_churn / N, math.sqrt(2) - 1) if cfg.S_min <= t_cur <= cfg.S_max else 0.0
        eps = noise.randn_like(x_cur) if cfg.S_churn > 0 else None
        if gamma > 0:
            t_hat = torch.as_tensor(_round(D, t_cur + gamma * t_cur), dtype=torch.float64, device=dev)
            x_hat = x_cur + (t_hat ** 2 - t_cur ** 2).sqrt() * cfg.S_noise * eps
        else:
            t_hat, x_hat = t_cur, x_cur
        d_cur = d_dx(x_hat, t_hat)
        x_next = x_hat + (t_next - t_hat) * d_cur                   # Euler step (line 5 / 8)
        if clip is not None:   # DDIM (Song et al. 2021, Eq. 12, eta = 0): x_next = clip(x0_hat) + t_next eps_hat
            x_next = (x_hat - t_hat * d_cur).clamp(-clip, clip) + t_next * d_cur
        if second_order and i < N - 1:                              # 2nd-order correction (lines 6-7)
            d_prime = d_dx(x_next, t_next)
            x_next = x_hat + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


def _round(D, sigma):
    rs = getattr(D, "round_sigma", None)
    return rs(sigma) if rs is not None else sigma


def nfe(cfg: SamplerConfig) -> int:
    """Network evaluations per image: Heun 2N - 1, Euler/DDIM N."""
    return 2 * cfg.steps - 1 if cfg.sampler == "heun" else cfg.steps


def with_overrides(cfg: SamplerConfig, **kw) -> SamplerConfig:
    return replace(cfg, **{k: v for k, v in kw.items() if v is not None}).validate()
