"""Built-in image sets that need no download (scikit-learn's bundled digits)."""
from __future__ import annotations

import functools

import numpy as np

from ambient_eval.errors import AmbientError

DIGITS_TRAIN = 1500            # builtin:digits:train = first 1500 of the 1797 digits; :test = the rest
DIGITS_SIZES = {"digits": 32, "digits-16": 16}   # spec name => side in pixels

BUILTIN_SPECS = tuple(f"builtin:{n}{s}" for n in DIGITS_SIZES for s in ("", ":train", ":test"))


def load_builtin(spec: str) -> tuple[np.ndarray, np.ndarray, str]:
    """'builtin:digits[-16][:train|:test]' => (NHW uint8 gray images, int64 labels, description).

    sklearn.datasets.load_digits: 1797 8x8 images with values 0..16 (bundled with scikit-learn),
    scaled to 0..255 (round(v * 255 / 16)) and upsampled with PIL bicubic; deterministic.
    """
    parts = spec.split(":")
    name = parts[1] if len(parts) > 1 else ""
    split = parts[2] if len(parts) > 2 else "all"
    if parts[0] != "builtin" or name not in DIGITS_SIZES or split not in ("all", "train", "test") \
            or len(parts) > 3:
        raise AmbientError(f"Unknown built-in image set '{spec}'. Available: {', '.join(BUILTIN_SPECS)}.")
    images, labels = _digits(DIGITS_SIZES[name])
    if split == "train":
        images, labels = images[:DIGITS_TRAIN], labels[:DIGITS_TRAIN]
    elif split == "test":
        images, labels = images[DIGITS_TRAIN:], labels[DIGITS_TRAIN:]
    return images, labels, spec


@functools.lru_cache(maxsize=2)
def _digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits at size x size: (N,size,size uint8 read-only, int64 labels read-only)."""
    from PIL import Image

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        from ambient_eval.errors import AmbientError

        raise AmbientError("builtin:digits needs scikit-learn, which is not installed. Install it with "
                           "`pip install scikit-learn`, or pass your own images instead.") from None

    digits = load_digits()
    raw = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)   # N,8,8 uint8
    images = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC))
                       for im in raw])                                            # N,size,size uint8
    labels = digits.target.astype(np.int64)
    images.flags.writeable = False               # cached: callers must not modify it
    labels.flags.writeable = False
    return images, labels
