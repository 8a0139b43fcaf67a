"""The denoiser interface every model family is wrapped into (EDM convention, Karras et al. 2022).

D(x; sigma, class_labels) returns the denoised estimate x0_hat of a noisy image x = y + sigma * n,
with y in model space [-1, 1]. Samplers only ever talk to this interface.
"""
from __future__ import annotations

import torch


class Denoiser(torch.nn.Module):
    """Base class: subclasses implement forward(x, sigma, class_labels=None) -> x0_hat.

    Attributes every denoiser carries (samplers and loaders rely on them):
      img_resolution  image height = width in pixels
      img_channels    channels of model space (3 for RGB, 1 for grayscale)
      label_dim       number of classes (0 = unconditional)
      sigma_min       smallest noise level the model supports (samplers clamp to it)
      sigma_max       largest noise level the model supports (samplers clamp to it)
      weights_sha256  set by load_model: fingerprint of the checkpoint's weights (or None)
    """

    def __init__(self, *, img_resolution: int, img_channels: int, label_dim: int = 0,
                 sigma_min: float = 0.0, sigma_max: float = float("inf")) -> None:
        super().__init__()
        self.img_resolution = int(img_resolution)
        self.img_channels = int(img_channels)
        self.label_dim = int(label_dim)
        self.sigma_min = float(sigma_min)
        self.sigma_max = float(sigma_max)
        self.weights_sha256: str | None = None

    def forward(self, x: torch.Tensor, sigma, class_labels: torch.Tensor | None = None
                ) -> torch.Tensor:  # NCHW float32 (noisy), (N,)|scalar, NC one-hot|None => NCHW float32
        raise NotImplementedError

    def round_sigma(self, sigma):
        """Noise level the model actually evaluates (identity for continuous-sigma models)."""
        return torch.as_tensor(sigma)


def sigma_column(sigma, x: torch.Tensor) -> torch.Tensor:
    """Broadcast sigma (scalar or (N,)) to an (N, 1, 1, 1) float32 column on x's device."""
    s = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    return s.reshape(-1, 1, 1, 1)


def one_hot(labels, label_dim: int, device=None) -> torch.Tensor | None:
    """int class indices (N,) => NC float32 one-hot (None when the model is unconditional)."""
    if label_dim == 0 or labels is None:
        return None
    idx = torch.as_tensor(labels, dtype=torch.int64, device=device)
    return torch.nn.functional.one_hot(idx, label_dim).to(torch.float32)
