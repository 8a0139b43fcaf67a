"""Synthetic corruptions for ambient-training experiments, each deterministic given a seed.

Kinds (SPEC "Corruptions"; Ambient-Omni, Daras et al. 2025, Sec. 5; Chen et al. 2024):
  blur         Gaussian blur, level = sigma_B in pixels, as scipy.ndimage.gaussian_filter defaults (the
               official Ambient-Omni corruption): radius int(4 sigma_B + 0.5), half-sample symmetric
               border (d c b a | a b c d), computed in float64 and rounded to uint8
  jpeg         JPEG re-encoding (Pillow, 4:2:0), level = quality q in 1..95
  motion-blur  linear motion blur, level = kernel length in pixels; angle in degrees or per-sample
               random (drawn from the sample's generator)
  noise        additive Gaussian noise, level = sigma_n in MODEL-SPACE units ([-1, 1] range, so
               sigma_n = 0.1 is 12.75 grey levels); returns float32 observations (no rounding)
  label-flip   level = rate: that fraction of samples gets a label drawn uniformly from the OTHER
               classes

Randomness: which samples are corrupted is a seeded permutation (`select_corrupted`); the noise
/ angle / new label of sample i comes from a generator seeded by (seed, i, kind) only, so the result
of sample i never depends on batch size, order or the other samples.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ambient_eval.errors import AmbientError

KINDS = ("blur", "jpeg", "motion-blur", "noise", "label-flip")
IMAGE_KINDS = ("blur", "jpeg", "motion-blur", "noise")
_KIND_TAG = {k: i + 1 for i, k in enumerate(KINDS)}  # stream id mixed into per-sample seeds


@dataclass(frozen=True)
class CorruptionDefaults:
    """Default settings of the `corrupt` command."""

    fraction: float = 0.9  # fraction of samples corrupted (image kinds); Ambient-Omni uses 90%
    seed: int = 0  # selects the corrupted subset and every per-sample random draw
    motion_angle: float | None = None  # motion-blur angle in degrees; None = uniform per sample


DEFAULTS = CorruptionDefaults()


def sample_rng(seed: int, index: int, kind: str) -> np.random.Generator:
    """Per-sample generator = f(seed, index, kind): independent of batching and order."""
    return np.random.default_rng([int(seed), int(index), _KIND_TAG[kind]])


def validate(kind: str, level: float, fraction: float = 1.0) -> None:
    """AmbientError unless (kind, level, fraction) is a valid corruption."""
    if kind not in KINDS:
        raise AmbientError(f"Unknown corruption kind '{kind}'. Use one of: {', '.join(KINDS)}.")
    ok = {"blur": level > 0, "jpeg": 1 <= level <= 100 and float(level).is_integer(),
          "motion-blur": level >= 1, "noise": level > 0, "label-flip": 0 <= level <= 1}[kind]
    if not (math.isfinite(level) and ok):
        need = {"blur": "sigma_B > 0 (pixels)", "jpeg": "an integer quality 1..100",
                "motion-blur": "a kernel length >= 1 (pixels)", "noise": "sigma_n > 0 (model-space units)",
                "label-flip": "a rate in [0, 1]"}[kind]
        raise AmbientError(f"Corruption level {level} is invalid for --kind {kind}: need {need}.")
    if not (0.0 <= fraction <= 1.0):
        raise AmbientError(f"--fraction {fraction} is outside [0, 1]. Give the fraction of samples to corrupt.")


def select_corrupted(n: int, fraction: float, seed: int) -> np.ndarray:
    """bool (n,): round(fraction * n) samples chosen by a seeded permutation."""
    k = int(round(fraction * n))
    perm = np.random.default_rng([int(seed), 0xC0]).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[:k]] = True
    return mask


BLUR_TRUNCATE = 4.0  # kernel radius = int(BLUR_TRUNCATE * sigma_B + 0.5) (scipy.ndimage default)


def gaussian_kernel1d(sigma_B: float) -> torch.Tensor:
    """Normalised 1-D Gaussian taps exp(-t^2 / (2 sigma_B^2)), |t| <= int(4 sigma_B + 0.5); float64."""
    r = int(BLUR_TRUNCATE * float(sigma_B) + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma_B) ** 2)
    return k / k.sum()


def motion_kernel(length: float, angle_deg: float) -> torch.Tensor:
    """Line kernel of `length` pixels at `angle_deg`, bilinearly splatted, sums to 1; float64 KxK."""
    size = int(math.ceil(length)) | 1  # odd
    c = size // 2
    k = torch.zeros(size, size, dtype=torch.float64)
    n_pts = max(2, int(math.ceil(length)) * 4)
    a = math.radians(angle_deg)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, n_pts):
        x, y = c + t * math.cos(a), c - t * math.sin(a)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < size and 0 <= y0 + dy < size:
                k[y0 + dy, x0 + dx] += w
    return k / k.sum()


def _conv_reflect(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    # NCHW float64, kernel (kh, kw) => NCHW float64 (depthwise, reflect padding; replicate if too small)
    kh, kw = kernel.shape
    c = x.shape[1]
    pad = (kw // 2, kw // 2, kh // 2, kh // 2)
    mode = "reflect" if min(x.shape[-2:]) > max(kh, kw) // 2 else "replicate"
    xp = torch.nn.functional.pad(x, pad, mode=mode)
    w = kernel.to(x.dtype)[None, None].expand(c, 1, kh, kw)
    return torch.nn.functional.conv2d(xp, w, groups=c)


def symmetric_index(n: int, r: int) -> torch.Tensor:
    """Source positions of a length-n axis padded by r on both sides with half-sample symmetry
    (d c b a | a b c d | d c b a), repeating for r > n => int64 (n + 2r,)."""
    j = torch.arange(-r, n + r) % (2 * n)
    return torch.where(j >= n, 2 * n - 1 - j, j)


def _blur_axis(x: torch.Tensor, k: torch.Tensor, dim: int) -> torch.Tensor:
    # x NCHW float64, k (2r+1,) taps, dim 2 (rows) or 3 (columns): symmetric pad + valid correlation
    r = (len(k) - 1) // 2
    xp = x.index_select(dim, symmetric_index(x.shape[dim], r))
    c = x.shape[1]
    w = k.to(x.dtype).reshape((1, 1, -1, 1) if dim == 2 else (1, 1, 1, -1)).expand(c, 1, *(
        (len(k), 1) if dim == 2 else (1, len(k))))
    return torch.nn.functional.conv2d(xp, w, groups=c)


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def gaussian_blur(images: torch.Tensor, sigma_B: float) -> torch.Tensor:
    """Gaussian blur. NCHW uint8 => NCHW uint8 (separable, float64, symmetric border, rounded)."""
    return _to_uint8(gaussian_blur_float(images.to(torch.float64), sigma_B))


def gaussian_blur_float(x: torch.Tensor, sigma_B: float) -> torch.Tensor:
    """The same blur on float NCHW (no rounding); rows then columns."""
    k = gaussian_kernel1d(sigma_B)
    return _blur_axis(_blur_axis(x, k, 2), k, 3)


def motion_blur(images: torch.Tensor, length: float, angles_deg: Sequence[float]) -> torch.Tensor:
    """Per-sample linear motion blur. NCHW uint8, angles (N,) => NCHW uint8."""
    out = [_to_uint8(_conv_reflect(img[None].to(torch.float64), motion_kernel(length, a)))[0]
           for img, a in zip(images, angles_deg)]
    return torch.stack(out) if out else images.clone()


def jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip with Pillow at `quality`. NCHW uint8 (3 ch) => NCHW uint8."""
    from PIL import Image

    out = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        arr = np.asarray(Image.open(buf).convert("RGB"))
        out.append(torch.from_numpy(arr.copy()).permute(2, 0, 1))
    return torch.stack(out) if out else images.clone()


def to_model_space(images: torch.Tensor) -> torch.Tensor:
    """NCHW uint8 => NCHW float32 in [-1, 1] (EDM convention x = u8 / 127.5 - 1)."""
    return images.to(torch.float32) / 127.5 - 1.0


def add_noise(images: torch.Tensor, sigma_n: float, indices: Sequence[int], seed: int) -> torch.Tensor:
    """y = x + sigma_n * z in model space. NCHW uint8 => NCHW float32 (not rounded: no information lost)."""
    x = to_model_space(images)
    z = np.stack([sample_rng(seed, i, "noise").standard_normal(x.shape[1:]) for i in indices]) \
        if len(indices) else np.zeros((0, *x.shape[1:]))
    return x + float(sigma_n) * torch.from_numpy(z).to(torch.float32)


def corrupt_batch(images: torch.Tensor, indices: Sequence[int], kind: str, level: float, seed: int,
                  angle: float | None = None) -> tuple[torch.Tensor, list[dict]]:
    """Corrupt every image of the batch. NCHW uint8 => (NCHW uint8, or float32 model space for
    `noise`), plus one parameter dict per sample (what was applied)."""
    validate(kind, level)
    if kind == "blur":
        return gaussian_blur(images, level), [{"sigma_B": float(level)} for _ in indices]
    if kind == "jpeg":
        return jpeg(images, int(level)), [{"quality": int(level)} for _ in indices]
    if kind == "motion-blur":
        angles = [float(angle) if angle is not None else float(sample_rng(seed, i, kind).uniform(0.0, 180.0))
                  for i in indices]
        return motion_blur(images, level, angles), [{"length": float(level), "angle": a} for a in angles]
    if kind == "noise":
        return add_noise(images, level, indices, seed), [{"sigma_n": float(level), "unit": "model space [-1,1]"}
                                                         for _ in indices]
    raise AmbientError(f"Corruption kind '{kind}' does not act on images. Use flip_labels for label-flip.")


def flip_labels(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip round(rate * N) labels (seeded subset) to a uniformly drawn DIFFERENT class.

    int64 (N,) => (int64 (N,) new labels, bool (N,) flipped mask)."""
    validate("label-flip", rate)
    labels = np.asarray(labels, dtype=np.int64)
    if num_classes < 2:
        raise AmbientError(f"Label flipping needs at least 2 classes; the data has {num_classes}.")
    mask = select_corrupted(len(labels), rate, seed)
    out = labels.copy()
    for i in np.flatnonzero(mask):
        shift = int(sample_rng(seed, int(i), "label-flip").integers(1, num_classes))
        out[i] = (labels[i] + shift) % num_classes  # uniform over the other num_classes-1 classes
    return out, mask
