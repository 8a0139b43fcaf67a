"""`pixel` features: exact raw pixels at native size; antialiased resize otherwise."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ambient_eval.features import extract_features, get_extractor
from tests.features.conftest import array_source


def test_native_size_is_exact(small_images):
    e = get_extractor("pixel", device="cpu")                 # 32x32 images, pixel = pixel-32: no resize
    feats = extract_features(array_source(small_images), e, batch_size=4)["embedding"]
    expected = (small_images.transpose(0, 3, 1, 2).reshape(len(small_images), -1).astype(np.float64) - 127.5) / 127.5
    assert feats.dtype == np.float32
    np.testing.assert_array_equal(feats, expected.astype(np.float32))
    assert feats.min() >= -1 and feats.max() <= 1


def test_resized_matches_antialiased_bilinear(small_images):
    e = get_extractor("pixel-8", device="cpu")
    feats = extract_features(array_source(small_images), e, batch_size=6)["embedding"]
    x = torch.from_numpy(small_images).permute(0, 3, 1, 2).double()
    ref = F.interpolate(x, size=(8, 8), mode="bilinear", antialias=True, align_corners=False) / 127.5 - 1
    np.testing.assert_allclose(feats, ref.reshape(6, -1).numpy(), atol=1e-5)
    # a constant image stays exactly constant whatever the resize
    flat = np.full((1, 32, 32, 3), 200, np.uint8)
    out = extract_features(array_source(flat), e)["embedding"]
    np.testing.assert_allclose(out, 200 / 127.5 - 1, atol=1e-6)
