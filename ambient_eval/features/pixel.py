"""`pixel` / `pixel-N`: raw pixels as features (no weights; catches exact and near-exact copies)."""
from __future__ import annotations

from dataclasses import dataclass

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import EMBEDDING, FeatureExtractor


@dataclass(frozen=True)
class PixelDefaults:
    size: int = 32            # side of the square image the pixels are taken at (`pixel` = pixel-32)
    min_size: int = 1         # smallest accepted N in pixel-N
    max_size: int = 512       # largest accepted N (3*N*N dims; 512 => 786,432-d)


DEFAULTS = PixelDefaults()


class PixelExtractor(FeatureExtractor):
    """Pixels in model space [-1, 1] ((x - 127.5) / 127.5), CHW order, after an antialiased bilinear
    resize to size x size (skipped when the image already has that size, so features are exact)."""

    def __init__(self, size: int = DEFAULTS.size, device: str = "auto") -> None:
        super().__init__(device)
        if not DEFAULTS.min_size <= size <= DEFAULTS.max_size:
            raise AmbientError(f"Pixel feature size {size} is out of range. Use pixel-N with "
                               f"{DEFAULTS.min_size} <= N <= {DEFAULTS.max_size} (e.g. pixel-16).")
        self.size = size
        self.name = "pixel" if size == DEFAULTS.size else f"pixel-{size}"
        self.mode = f"bilinear-antialias-{size}"
        self.outputs = {EMBEDDING: 3 * size * size}
        self.weights_sha256 = None
        self.weights_official = True

    def _extract(self, images):
        # NCHW uint8 => N x (3*size*size) float32 in [-1, 1]
        import torch.nn.functional as F

        x = images.float()
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=True)
        x = (x - 127.5) / 127.5  # one rounding: the correctly rounded float32 of the exact value
        return {EMBEDDING: x.reshape(x.shape[0], -1)}


def build_pixel(*, size: int = DEFAULTS.size, weights: str | None = None, device: str = "auto") -> PixelExtractor:
    """Factory for the registry; pixels need no weights file."""
    if weights is not None:
        raise AmbientError(f"The pixel extractor uses no weights, but --weights '{weights}' was given. "
                           "Drop --weights or choose another extractor.")
    return PixelExtractor(size=size, device=device)
