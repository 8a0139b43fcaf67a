"""Helpers for feature tests: small image sources and an extractor that counts its calls."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ambient_eval.features.base import EMBEDDING, FeatureExtractor
from tests.conftest import random_images

# A tiny open_clip ViT (2 layers, width 64): the `clip` extractor's code path in seconds (tests, gpu_check).
TINY_CLIP_CONFIG = {"embed_dim": 32, "quick_gelu": True,
                    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "patch_size": 32, "head_width": 32},
                    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def array_source(images: np.ndarray, description: str = "test array"):
    """ImageSource over NHWC uint8 images (the data area's ArraySource)."""
    from ambient_eval.data import ArraySource

    return ArraySource(images, description=description)


class CountingExtractor(FeatureExtractor):
    """Wraps an extractor and counts images it was asked to process (cache tests)."""

    def __init__(self, inner: FeatureExtractor) -> None:
        self.inner = inner
        self.device = inner.device
        self.name, self.mode, self.outputs = inner.name, inner.mode, inner.outputs
        self.weights_sha256, self.weights_official = inner.weights_sha256, inner.weights_official
        self.calls = 0
        self.images = 0

    def _extract(self, images):
        self.calls += 1
        self.images += images.shape[0]
        return self.inner._extract(images)


class NaNExtractor(FeatureExtractor):
    """Produces NaN for image index 1 of every batch (error-path tests)."""

    name, mode, outputs = "nan-test", "none", {EMBEDDING: 2}

    def __init__(self) -> None:
        super().__init__("cpu")

    def _extract(self, images):
        out = torch.zeros(images.shape[0], 2)
        if images.shape[0] > 1:
            out[1, 0] = float("nan")
        return {EMBEDDING: out}


@pytest.fixture
def small_images() -> np.ndarray:
    """6 seeded 32x32 RGB uint8 images, NHWC."""
    return random_images(6, size=32, seed=3)
