"""`fid --resize R`: every image center-cropped to a square and PIL-bicubic resized to R x R (uint8)
before any feature extractor sees it, for generated and reference images alike.

Text-to-image FID (COCO-30k, as GigaGAN's evaluation) compares at a fixed evaluation size: the
reference photos (non-square) are center-cropped on the long edge and resized with PIL bicubic,
the generations resized the same way, then Inception resizes to 299 itself (clean-fid's float
bicubic with `--features inception-clean`). Path inputs are opened with `open_source(resize=R,
crop=True)`; sources already opened (model samples, Python ImageSource objects) are wrapped by
`ResizedSource`. The resize is part of every source fingerprint, so cached features never mix sizes.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np

from ambient_eval.data.base import ImageSource, nhwc_to_tensor, resize_hwc
from ambient_eval.data.wrapped import WrappedSource
from ambient_eval.errors import AmbientError

RESIZE_KEY = "resize"   # results.json settings key
RESIZE_METHOD = "center crop to a square (short side), PIL bicubic to RxR, uint8"


def check_resize(resize: Any) -> int | None:
    """--resize value => positive int or None; AmbientError otherwise."""
    if resize is None:
        return None
    if isinstance(resize, bool) or int(resize) != resize or int(resize) < 8:
        raise AmbientError(f"--resize must be an integer of at least 8 (pixels), got {resize}. The COCO-30k "
                           "protocol uses --resize 256 or --resize 512.")
    return int(resize)


def resize_setting(resize: int | None) -> dict | None:
    """What results.json records under settings['resize']."""
    return None if resize is None else {"size": resize, "method": RESIZE_METHOD}


class ResizedSource(WrappedSource):
    """`base` with every image center-cropped and resized to size x size; uint8 NCHW out.

    Attributes of `base` that describe its pixels (seeds, sampling settings) stay reachable;
    precomputed statistics (ADM batches) do not: they were computed at the native size.
    """

    precomputed_stats: dict = {}

    def __init__(self, base: ImageSource, size: int) -> None:
        super().__init__(base)
        self.size = int(size)
        self.description = f"{base.description} (resized to {size}x{size})"
        self.skipped = base.skipped
        self.prefetch_ok = getattr(base, "prefetch_ok", True)
        for name in ("seeds", "settings"):   # model samples: prompt pairing and provenance
            if hasattr(base, name):
                setattr(self, name, getattr(base, name))

    @property
    def resolution(self) -> tuple[int, int]:
        return (self.size, self.size)

    def _resize(self, images) -> "Any":
        # NCHW uint8 (any size) => NCHW uint8 size x size
        hwc = images.permute(0, 2, 3, 1).numpy()
        out = np.empty((len(hwc), self.size, self.size, 3), np.uint8)
        for k, img in enumerate(hwc):
            out[k] = resize_hwc(np.ascontiguousarray(img), self.size, crop=True)
        return nhwc_to_tensor(out)

    def read(self, indices: Sequence[int]):
        return self._resize(self.base.read(indices))

    def iter_batches(self, batch_size: int):
        for idx, images in self.base.iter_batches(batch_size):
            yield idx, self._resize(images)

    def _read_hwc(self, i: int) -> np.ndarray:
        return self.read([i])[0].permute(1, 2, 0).numpy()

    def _content_chunks(self) -> Iterable[bytes]:
        return iter(())

    def fingerprint(self) -> str:
        """sha256(base fingerprint + resize recipe): never reads the base's pixels."""
        if self._fingerprint is None:
            blob = f"resized-v1|{self.base.fingerprint()}|{self.size}|{RESIZE_METHOD}"
            self._fingerprint = hashlib.sha256(blob.encode()).hexdigest()
        return self._fingerprint


def resized(source: Any, size: int | None, what: str) -> Any:
    """An opened input at `size` (unchanged when size is None); statistics files are refused."""
    if size is None:
        return source
    from ambient_eval.metrics.stats import FeatureStats

    if isinstance(source, FeatureStats):
        raise AmbientError(f"--resize {size} cannot apply to the {what} input: it is a statistics file (mean and "
                           "covariance of features computed at its own image size). Pass its images instead, "
                           "or drop --resize.")
    if getattr(source, "_resize", None) == size and getattr(source, "_crop", False):
        return source                         # opened at this size already (path inputs)
    return ResizedSource(source, size)
