"""Training noise levels: EDM log-normal, and the Ambient-Omni threshold on sigma_t per sample."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SigmaDefaults:
    """EDM training noise distribution (Karras et al. 2022, Table 1, "EDM" column)."""

    P_mean: float = -1.2  # mean of ln(sigma)
    P_std: float = 1.2  # std of ln(sigma)
    sigma_data: float = 0.5  # std of the data in model space
    s_max: float = 4.0  # Ambient-Omni: sigma_t > sigma_tn * sqrt(s_max/(s_max-1)); weight factor <= s_max^2


DEFAULTS = SigmaDefaults()


def sample_sigma(n: int, generator: torch.Generator, P_mean: float = DEFAULTS.P_mean,
                 P_std: float = DEFAULTS.P_std) -> torch.Tensor:
    """EDM: ln(sigma) ~ N(P_mean, P_std^2). => (n,) float32 on CPU."""
    return (torch.randn(n, generator=generator) * P_std + P_mean).exp()


def threshold(sigma_tn: torch.Tensor, s_max: float = DEFAULTS.s_max) -> torch.Tensor:
    """Smallest usable sigma_t per sample: sigma_tn * sqrt(s_max / (s_max - 1)) (0 for clean)."""
    return sigma_tn * math.sqrt(s_max / (s_max - 1.0))


def usable(sigma_t: torch.Tensor, sigma_tn: torch.Tensor, s_max: float = DEFAULTS.s_max) -> torch.Tensor:
    """bool: the sample contributes to the loss (clean always; corrupted only above the threshold)."""
    return (sigma_tn <= 0) | (sigma_t > threshold(sigma_tn, s_max))


def sample_sigma_truncated(sigma_tn: torch.Tensor, generator: torch.Generator, P_mean: float = DEFAULTS.P_mean,
                           P_std: float = DEFAULTS.P_std, s_max: float = DEFAULTS.s_max) -> torch.Tensor:
    """EDM log-normal conditioned on sigma_t > threshold(sigma_tn), by inverse CDF. (N,) => (N,).

    Used by the "truncate" policy: every corrupted sample gets a usable sigma_t each step instead
    of being masked out; clean samples (sigma_tn = 0) get the plain log-normal."""
    u = torch.rand(sigma_tn.shape, generator=generator, dtype=torch.float64)
    lo = torch.where(sigma_tn > 0, threshold(sigma_tn.double(), s_max), torch.zeros_like(u))
    # Phi((ln lo - P_mean)/P_std); lo = 0 gives Phi(-inf) = 0.
    a = torch.special.ndtr((torch.log(lo) - P_mean) / P_std)
    # Numerical risk: when a ~ 1 (threshold far in the tail) the interval collapses; nextafter keeps
    # sigma strictly above the threshold.
    q = (a + u * (1 - a)).clamp(max=1 - 1e-12)
    s = torch.exp(torch.special.ndtri(q) * P_std + P_mean)
    s = torch.maximum(s, torch.nextafter(lo, torch.full_like(lo, math.inf)))
    return s.to(torch.float32)
