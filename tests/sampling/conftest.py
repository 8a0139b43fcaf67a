"""Fixtures for sampling tests: tiny native checkpoints and closed-form denoisers."""
from __future__ import annotations

import pytest
import torch

from ambient_eval.models.base import Denoiser


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A class-conditional (3 classes) tiny U-Net at 8 px, saved natively; random weights."""
    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(123)
    cfg = native_config(UNetConfig.tiny(8, label_dim=3))
    model = build_native_model(cfg)
    # Random init leaves F_x small next to c_skip x; scale the output layer so pixels vary.
    with torch.no_grad():
        model.net.conv_out.weight.mul_(4.0)
    return save_native(model, tmp_path_factory.mktemp("ckpt") / "tiny", cfg, {"test": True})


class GaussianDenoiser(Denoiser):
    """Exact denoiser for y ~ N(mu, s^2 I): E[y | x] = mu + s^2 / (s^2 + sigma^2) (x - mu)."""

    def __init__(self, mu: float, s: float, res: int = 4, channels: int = 1) -> None:
        super().__init__(img_resolution=res, img_channels=channels)
        self.mu, self.s = mu, s

    def forward(self, x, sigma, class_labels=None):
        sig = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1, 1)
        x = x.to(torch.float64)
        return (self.mu + self.s ** 2 / (self.s ** 2 + sig ** 2) * (x - self.mu)).to(torch.float32)


class EmpiricalDenoiser(Denoiser):
    """Optimal denoiser of the empirical distribution of K points (Karras et al. 2022, Eq. 57):
    D(x; sigma) = sum_k softmax_k(-||x - y_k||^2 / (2 sigma^2)) y_k."""

    def __init__(self, points: torch.Tensor) -> None:  # K,C,H,W float in [-1, 1]
        super().__init__(img_resolution=points.shape[-1], img_channels=points.shape[1])
        self.points = points.to(torch.float64)

    def forward(self, x, sigma, class_labels=None):
        sig = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)
        xf = x.to(torch.float64).flatten(1)
        yf = self.points.flatten(1)
        d2 = torch.cdist(xf, yf) ** 2                                   # (N, K)
        w = torch.softmax(-d2 / (2 * sig ** 2), dim=1)
        return (w @ yf).reshape(x.shape).to(torch.float32)
