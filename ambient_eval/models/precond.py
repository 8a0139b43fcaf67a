"""Preconditioning wrappers that turn a raw network F into a denoiser D in EDM convention.

Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models",
Table 1 and Eq. 7:  D(x; sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x; c_noise(sigma)).
Written from the paper's formulas (no code copied).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ambient_eval.models.base import Denoiser, sigma_column


class EDMPrecond(Denoiser):
    """EDM preconditioning (Table 1, "Ours"); `net(x_in, c_noise, class_labels, **kw) -> F_x`."""

    def __init__(self, net: torch.nn.Module, *, img_resolution: int, img_channels: int,
                 label_dim: int = 0,
                 sigma_min: float = 0.0,           # supported noise range (EDM: 0 .. inf)
                 sigma_max: float = float("inf"),
                 sigma_data: float = 0.5) -> None:  # std of the data in model space (EDM: 0.5)
        super().__init__(img_resolution=img_resolution, img_channels=img_channels,
                         label_dim=label_dim, sigma_min=sigma_min, sigma_max=sigma_max)
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x, sigma, class_labels=None, **net_kwargs):
        # NCHW float32 (noisy), (N,)|scalar, NC one-hot|None => NCHW float32 x0_hat.
        # net_kwargs go to the network (e.g. label_emb= for CEP-perturbed condition embeddings).
        x = x.to(torch.float32)
        sigma = sigma_column(sigma, x)
        sd = self.sigma_data
        c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)                 # Table 1: c_skip
        c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()        # Table 1: c_out
        c_in = 1 / (sd ** 2 + sigma ** 2).sqrt()                  # Table 1: c_in
        c_noise = sigma.log() / 4                                 # Table 1: c_noise = ln(sigma)/4
        F_x = self.net(c_in * x, c_noise.flatten(), class_labels, **net_kwargs)
        return c_skip * x + c_out * F_x.to(torch.float32)        # Eq. 7


class VEPrecond(Denoiser):
    """Variance-exploding preconditioning (Table 1, "VE"; Song et al. 2021 NCSN++)."""

    def __init__(self, net: torch.nn.Module, *, img_resolution: int, img_channels: int,
                 label_dim: int = 0,
                 sigma_min: float = 0.02,           # VE training range lower end
                 sigma_max: float = 100.0) -> None:  # VE training range upper end
        super().__init__(img_resolution=img_resolution, img_channels=img_channels,
                         label_dim=label_dim, sigma_min=sigma_min, sigma_max=sigma_max)
        self.net = net

    def forward(self, x, sigma, class_labels=None, **net_kwargs):
        x = x.to(torch.float32)
        sigma = sigma_column(sigma, x)
        c_noise = (0.5 * sigma).log()                             # Table 1: c_noise = ln(sigma/2)
        F_x = self.net(x, c_noise.flatten(), class_labels, **net_kwargs)  # c_in = 1
        return x + sigma * F_x.to(torch.float32)                  # c_skip = 1, c_out = sigma


def ddpm_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 1e-4,
                        beta_end: float = 0.02, beta_schedule: str = "linear") -> np.ndarray:
    """alpha_bar_t of a discrete DDPM schedule (Ho et al. 2020 linear; Nichol & Dhariwal cosine)."""
    T = int(num_train_timesteps)
    if beta_schedule == "linear":
        betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    elif beta_schedule == "scaled_linear":          # Stable-Diffusion style
        betas = np.linspace(beta_start ** 0.5, beta_end ** 0.5, T, dtype=np.float64) ** 2
    elif beta_schedule == "squaredcos_cap_v2":      # Nichol & Dhariwal 2021, Eq. 17
        f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
        betas = np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)])
    else:
        raise ValueError(f"unsupported beta_schedule {beta_schedule!r}")
    return np.cumprod(1.0 - betas)


class VPPrecond(Denoiser):
    """Discrete-time VP (DDPM) model, as diffusers models are, wrapped into EDM convention.

    DDPM (Ho et al. 2020): x_t = sqrt(abar_t) y + sqrt(1 - abar_t) n. Dividing by sqrt(abar_t)
    gives EDM's x = y + sigma n with sigma_t = sqrt((1 - abar_t) / abar_t) (Karras et al. 2022,
    Sec. 2 / Table 1 "VP": s = 1/sqrt(1 + sigma^2), c_in = 1/sqrt(1 + sigma^2)). Predictions:
      epsilon:  D = x - sigma eps_hat                                   (Table 1 VP: c_out = -sigma)
      v (Salimans & Ho 2022, v = sqrt(abar) n - sqrt(1-abar) y):
                D = x / (1 + sigma^2) - sigma / sqrt(1 + sigma^2) v_hat
      sample:   D = F
    A continuous sigma is mapped to a (fractional) timestep by interpolating t linearly in
    ln(sigma) between grid points ("continuous", default), or rounded to the nearest grid sigma
    ("nearest"). `net(x_in, t, class_labels) -> F_x` with t of shape (N,) float32.
    """

    def __init__(self, net: torch.nn.Module, alphas_cumprod, *, img_resolution: int,
                 img_channels: int, label_dim: int = 0, prediction_type: str = "epsilon",
                 timestep_mode: str = "continuous") -> None:
        abar = np.asarray(alphas_cumprod, dtype=np.float64)
        sigmas = np.sqrt((1 - abar) / abar)                       # increasing in t
        super().__init__(img_resolution=img_resolution, img_channels=img_channels,
                         label_dim=label_dim, sigma_min=float(sigmas[0]),
                         sigma_max=float(sigmas[-1]))
        if prediction_type not in ("epsilon", "v_prediction", "sample"):
            raise ValueError(f"unsupported prediction_type {prediction_type!r}")
        if timestep_mode not in ("continuous", "nearest"):
            raise ValueError(f"unsupported timestep_mode {timestep_mode!r}")
        self.net = net
        self.prediction_type = prediction_type
        self.timestep_mode = timestep_mode
        self.register_buffer("sigmas", torch.as_tensor(sigmas), persistent=False)  # float64 (T,)
        self.register_buffer("log_sigmas", torch.as_tensor(np.log(sigmas)), persistent=False)

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """(N,) sigma => (N,) float timestep in [0, T-1] (float64 math, clamped to the grid)."""
        log_s = sigma.to(torch.float64).log().to(self.log_sigmas.device)
        ls = self.log_sigmas
        if self.timestep_mode == "nearest":
            return (log_s[:, None] - ls[None]).abs().argmin(dim=1).to(torch.float64)
        log_s = log_s.clamp(ls[0], ls[-1])
        hi = torch.searchsorted(ls, log_s).clamp(1, len(ls) - 1)
        lo = hi - 1
        w = (log_s - ls[lo]) / (ls[hi] - ls[lo])
        return lo.to(torch.float64) + w

    def round_sigma(self, sigma):
        s = torch.as_tensor(sigma, dtype=torch.float64)
        if self.timestep_mode == "continuous":
            return s
        idx = self.sigma_to_t(s.reshape(-1)).long().cpu()
        return self.sigmas.cpu()[idx].reshape(s.shape)

    def forward(self, x, sigma, class_labels=None):
        x = x.to(torch.float32)
        sigma = sigma_column(sigma, x)
        t = self.sigma_to_t(sigma.flatten()).to(torch.float32).to(x.device)
        c_in = 1 / (1 + sigma ** 2).sqrt()
        F_x = self.net(c_in * x, t, class_labels).to(torch.float32)
        if self.prediction_type == "epsilon":
            return x - sigma * F_x
        if self.prediction_type == "v_prediction":
            return x / (1 + sigma ** 2) - sigma * c_in * F_x
        return F_x
