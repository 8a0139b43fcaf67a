"""`vgg16` equals torch-fidelity's FeatureExtractorVGG16 with the same weights file."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from ambient_eval.features import FC2, FC2_RELU, WeightsWarning, extract_features, get_extractor
from tests.conftest import random_images
from tests.features.conftest import array_source


@pytest.mark.slow  # VGG16 at 224 + a 264 MB weights file: ~45 s on a loaded 2-core CPU
def test_vgg16_equals_torch_fidelity(vgg16_weights):
    from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        ours = get_extractor("vgg16", weights=str(vgg16_weights), device="cpu")
    assert ours.outputs == {FC2_RELU: 4096, FC2: 4096} and ours.default_output == FC2_RELU
    images = random_images(1, size=32, seed=4)
    feats = extract_features(array_source(images), ours, batch_size=1)
    ref_net = FeatureExtractorVGG16("vgg16", [FC2, FC2_RELU], feature_extractor_weights_path=str(vgg16_weights))
    with torch.no_grad():
        fc2, fc2_relu = ref_net(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    assert np.abs(feats[FC2]).mean() > 1e-3 and (feats[FC2_RELU] == 0).any()  # non-trivial; ReLU applied
    np.testing.assert_allclose(feats[FC2], fc2.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(feats[FC2_RELU], fc2_relu.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(feats[FC2_RELU], np.maximum(feats[FC2], 0))
