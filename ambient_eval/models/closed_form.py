"""Closed-form reference denoisers: the memorizer and the generalizer of a training set.

    closed-form:empirical:DATA   exact MMSE denoiser of DATA's empirical distribution (copies DATA)
    closed-form:gaussian:DATA    exact MMSE denoiser of the Gaussian with DATA's mean and covariance

Both implement the Denoiser interface (EDM convention) so `sample`, `fid --model`,
`memorization --model` and `reproducibility` use them like any checkpoint, through the same
Heun sampler and per-seed noise. DATA is any image source the toolkit reads (folder, zip, npz,
builtin:NAME, ...); images enter as uint8 RGB NCHW and live in model space [-1, 1].
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models.base import Denoiser, sigma_column

PREFIX = "closed-form:"
KINDS = ("empirical", "gaussian")


@dataclass(frozen=True)
class ClosedFormDefaults:
    block: int = 4096                 # training images per block of the empirical softmax
    read_batch: int = 1024            # images per read when loading DATA
    sigma_floor: float = 1e-6         # sigma below this is treated as this (sigma = 0 is a hard argmax)


DEFAULTS = ClosedFormDefaults()


def is_closed_form(spec) -> bool:
    """True for a 'closed-form:KIND:DATA' model spec (a string or a Path the CLI made of it)."""
    return isinstance(spec, (str, os.PathLike)) and str(spec).startswith(PREFIX)


def parse_spec(spec: str) -> tuple[str, str]:
    """'closed-form:empirical:builtin:digits' => ('empirical', 'builtin:digits')."""
    kind, _, data = spec[len(PREFIX):].partition(":")
    if kind not in KINDS or not data:
        raise AmbientError(f"Invalid closed-form model '{spec}'. Use closed-form:empirical:DATA or "
                           "closed-form:gaussian:DATA, where DATA is an image source (folder, zip, npz, "
                           "builtin:NAME), e.g. closed-form:empirical:data/train.zip.")
    return kind, data


def load_rows(source) -> np.ndarray:
    """ImageSource => (N, d) float32 rows in model space [-1, 1] (uint8 RGB NCHW flattened)."""
    chunks = [(x.to(torch.float32) / 127.5 - 1).reshape(x.shape[0], -1).numpy()
              for _, x in source.iter_batches(DEFAULTS.read_batch)]
    if not chunks:
        raise AmbientError(f"{source.description} contains no images; a closed-form model needs at least one.")
    return np.concatenate(chunks)


class _ClosedForm(Denoiser):
    """Shared plumbing: (N, d) rows of the training set, image shape, fingerprint."""

    kind = ""

    def __init__(self, y: np.ndarray, resolution: int, channels: int = 3, *, data: str = "<array>") -> None:
        super().__init__(img_resolution=resolution, img_channels=channels)
        if y.ndim != 2 or y.shape[1] != channels * resolution * resolution:
            raise AmbientError(f"Closed-form model: rows of shape {y.shape} do not match "
                               f"{channels}x{resolution}x{resolution} images.")
        self.data = data
        self.n_train = int(y.shape[0])
        self.weights_sha256 = hashlib.sha256(
            f"closed-form:{self.kind}:v1".encode() + np.ascontiguousarray(y, dtype=np.float32).tobytes()
        ).hexdigest()
        self.checkpoint_format = "closed-form"
        self.checkpoint_path = f"{PREFIX}{self.kind}:{data}"

    def forward(self, x, sigma, class_labels=None):  # NCHW float32, (N,)|scalar => NCHW float32
        s = sigma_column(sigma, x).reshape(-1).to(torch.float64).clamp_min(DEFAULTS.sigma_floor)
        flat = x.reshape(x.shape[0], -1).to(torch.float64)
        return self.denoise(flat, s).to(torch.float32).reshape(x.shape)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:  # (B, d), (B,) float64
        raise NotImplementedError


class EmpiricalDenoiser(_ClosedForm):
    """D(x; s) = sum_i softmax_i(-|x - y_i|^2 / 2 s^2) y_i (the MMSE denoiser of the training set)."""

    kind = "empirical"

    def __init__(self, y: np.ndarray, resolution: int, channels: int = 3, *, data: str = "<array>",
                 block: int = DEFAULTS.block) -> None:
        super().__init__(y, resolution, channels, data=data)
        # float64 once (not per call): 8 bytes per pixel, 1.2 GB for 50k CIFAR images.
        self.register_buffer("y", torch.as_tensor(np.asarray(y, dtype=np.float32).astype(np.float64)),
                             persistent=False)
        self.register_buffer("y2", (self.y * self.y).sum(1), persistent=False)   # |y_i|^2
        self.block = int(block)

    def denoise(self, x, sigma):
        # Karras et al. 2022, Eq. 57 (optimal denoiser of a finite data set), as a streaming
        # log-sum-exp over blocks of training images: logits l_i = (2 x.y_i - |y_i|^2) / 2 s^2
        # (the |x|^2 term is constant per row). Numerical risk: at s = 0.002, 1/2s^2 = 1.25e5
        # multiplies |y|^2 ~ d; float32 would leave errors of O(10) in the logits, float64 ~1e-7.
        inv = 1.0 / (2.0 * sigma ** 2)                                  # (B,)
        m = torch.full_like(sigma, -torch.inf)                          # running max logit
        z = torch.zeros_like(sigma)                                     # running sum exp(l - m)
        acc = torch.zeros_like(x)                                       # running sum exp(l - m) y
        for i0 in range(0, self.y.shape[0], self.block):
            yb, y2 = self.y[i0:i0 + self.block], self.y2[i0:i0 + self.block]
            logits = (2.0 * x @ yb.T - y2[None, :]) * inv[:, None]
            m_new = torch.maximum(m, logits.max(1).values)
            scale = torch.exp(m - m_new)
            w = torch.exp(logits - m_new[:, None])
            z = z * scale + w.sum(1)
            acc = acc * scale[:, None] + w @ yb
            m = m_new
        return acc / z[:, None]


class GaussianDenoiser(_ClosedForm):
    """D(x; s) = mu + S (S + s^2 I)^-1 (x - mu), S = U diag(lam) U^T (the MMSE denoiser of N(mu, S))."""

    kind = "gaussian"

    def __init__(self, y: np.ndarray, resolution: int, channels: int = 3, *, data: str = "<array>") -> None:
        super().__init__(y, resolution, channels, data=data)
        y64 = np.asarray(y, dtype=np.float64)
        mu = y64.mean(0)
        # Covariance with 1/N (not N-1): the Gaussian then shares mean AND covariance with the
        # empirical distribution, so the two references differ only in their shape.
        yc = y64 - mu
        n, d = yc.shape
        if n < d:  # rank <= n: eigenvectors of S from the n x n Gram matrix (same nonzero spectrum)
            lam, V = np.linalg.eigh(yc @ yc.T / n)                      # once, float64
            keep = lam > lam.max() * 1e-12 if lam.max() > 0 else np.zeros_like(lam, dtype=bool)
            lam, V = lam[keep], V[:, keep]
            U = yc.T @ V / np.sqrt(n * lam)                             # (d, r) orthonormal columns
        else:
            lam, U = np.linalg.eigh(yc.T @ yc / n)                      # once, float64
        lam = np.clip(lam, 0.0, None)                                   # round-off can give -1e-17
        # Directions outside span(U) have eigenvalue 0: the Wiener gain there is 0 (x -> mu).
        self.register_buffer("mu", torch.as_tensor(mu), persistent=False)
        self.register_buffer("U", torch.as_tensor(U), persistent=False)
        self.register_buffer("lam", torch.as_tensor(lam), persistent=False)

    def denoise(self, x, sigma):
        # Wiener filter in the eigenbasis: S (S + s^2 I)^-1 = U diag(lam / (lam + s^2)) U^T.
        U = self.U.to(x.device)
        c = (x - self.mu.to(x.device)) @ U                              # (B, d) coordinates
        gain = self.lam.to(x.device)[None, :] / (self.lam.to(x.device)[None, :] + sigma[:, None] ** 2)
        return self.mu.to(x.device) + (c * gain) @ U.T


def closed_form_model(kind: str, source, *, data: str | None = None) -> Denoiser:
    """kind ('empirical' | 'gaussian') + ImageSource => Denoiser over its images."""
    if kind not in KINDS:
        raise AmbientError(f"Unknown closed-form model '{kind}'. Use one of: {', '.join(KINDS)}.")
    h, w = source.resolution
    if h != w:
        raise AmbientError(f"Closed-form models need square images; {source.description} is {h}x{w}.")
    y = load_rows(source)
    cls = EmpiricalDenoiser if kind == "empirical" else GaussianDenoiser
    return cls(y, int(h), 3, data=data or source.description)


def load_closed_form(spec: str, device) -> Denoiser:
    """'closed-form:KIND:DATA' => Denoiser on `device` (DATA read now)."""
    from ambient_eval.data import open_source

    kind, data = parse_spec(spec)
    return closed_form_model(kind, open_source(data), data=data).to(device).eval()
