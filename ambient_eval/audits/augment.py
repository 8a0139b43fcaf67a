"""Planted copies for threshold calibration: seeded augmentations of training images.

Each augmentation maps NHWC uint8 images to NHWC uint8 images of the same size; image i of a
call uses its own generator np.random.default_rng([seed, AUG_ID, i]), so a planted copy does
not depend on batch composition.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class AugmentDefaults:
    shift_px: tuple[int, int] = (2, 4)          # shift magnitude per axis, pixels (at 32 px; scaled by side/32)
    crop_scale: tuple[float, float] = (0.8, 0.9)  # side of the crop / side of the image, then resized back
    jpeg_quality: tuple[int, int] = (50, 75)    # PIL JPEG quality
    noise_std: tuple[float, float] = (4.0, 12.0)  # additive Gaussian noise std, uint8 levels
    jitter: float = 0.1                          # brightness / contrast / saturation factors in 1 +- jitter


DEFAULTS = AugmentDefaults()


def _pil(img: np.ndarray):
    from PIL import Image

    return Image.fromarray(img)


def _exact(img, rng):
    return img


def _flip(img, rng):
    return img[:, ::-1]


def _shift(img, rng):
    # Translate by (dy, dx), |dy|, |dx| in shift_px (scaled to the image side), edges replicated.
    h, w = img.shape[:2]
    lo, hi = (max(1, round(v * min(h, w) / 32)) for v in DEFAULTS.shift_px)
    dy, dx = (int(rng.integers(lo, hi + 1)) * int(rng.choice([-1, 1])) for _ in range(2))
    p = max(abs(dy), abs(dx))
    padded = np.pad(img, ((p, p), (p, p), (0, 0)), mode="edge")
    return padded[p - dy:p - dy + h, p - dx:p - dx + w]


def _crop(img, rng):
    from PIL import Image

    h, w = img.shape[:2]
    s = rng.uniform(*DEFAULTS.crop_scale)
    ch, cw = max(1, round(h * s)), max(1, round(w * s))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.asarray(_pil(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw])).resize((w, h), Image.BICUBIC))


def _jpeg(img, rng):
    from PIL import Image

    buf = io.BytesIO()
    _pil(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=int(rng.integers(DEFAULTS.jpeg_quality[0],
                                                                                     DEFAULTS.jpeg_quality[1] + 1)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _noise(img, rng):
    std = rng.uniform(*DEFAULTS.noise_std)
    return np.clip(np.rint(img + std * rng.standard_normal(img.shape)), 0, 255).astype(np.uint8)


def _jitter(img, rng):
    # brightness (scale), contrast (around the image mean), saturation (around the pixel's gray)
    b, c, s = (rng.uniform(1 - DEFAULTS.jitter, 1 + DEFAULTS.jitter) for _ in range(3))
    x = img.astype(np.float64) * b
    x = (x - x.mean()) * c + x.mean()
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * s + gray
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


AUGMENTATIONS: dict[str, Callable] = {
    "exact": _exact, "flip": _flip, "shift": _shift, "crop": _crop,
    "jpeg": _jpeg, "noise": _noise, "jitter": _jitter,
}


def augment(images: np.ndarray, name: str, seed: int = 0) -> np.ndarray:
    """NHWC uint8 => NHWC uint8: augmentation `name` applied to every image, seeded per image."""
    fn = AUGMENTATIONS[name]
    aug_id = list(AUGMENTATIONS).index(name)
    out = [np.ascontiguousarray(fn(img, np.random.default_rng([seed, aug_id, i]))) for i, img in enumerate(images)]
    return np.stack(out).astype(np.uint8) if out else images.copy()
