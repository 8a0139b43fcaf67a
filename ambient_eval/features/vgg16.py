"""`vgg16`: torch-fidelity's VGG16 feature extractor (fc2 / fc2_relu, 4096-d), used for P/R.

torch-fidelity resizes uint8 images to 224 with its TF1-style bilinear resize inside the network,
normalizes with ImageNet mean/std and reads the second fully connected layer. Its P/R default is
`fc2_relu` (get_default_feature_layer_for_metric("prc")), so that output comes first here.
"""
from __future__ import annotations

from pathlib import Path
from unittest import mock

from ambient_eval.features.base import FC2, FC2_RELU, FeatureExtractor
from ambient_eval.features.weights import (WeightsFile, load_into, load_state_dict, resolve_weights,
                                           torch_hub_checkpoints)

# torchvision's ImageNet VGG16 (what torch-fidelity downloads through torchvision); torch hub only
# publishes the first 8 hex digits of its SHA-256 (in the file name), which we check.
TORCHVISION_VGG16 = WeightsFile(
    file_name="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256=None,
    sha256_prefix="397923af",
    cache_globs=torch_hub_checkpoints,
)


def build_torch_fidelity_vgg16(path: Path, extractor: str):
    """torch-fidelity's FeatureExtractorVGG16 around a torchvision vgg16 we load safely.

    torch-fidelity would torch.load(weights_only=False) a path or download through torchvision; we
    hand it a torchvision vgg16 holding our weights_only-loaded tensors instead.
    """
    import torchvision
    import torch_fidelity.feature_extractor_vgg16 as tfv

    vgg = torchvision.models.vgg16(weights=None)
    load_into(vgg, load_state_dict(path, extractor), path, extractor)
    with mock.patch.object(tfv, "torchvision_load_pretrained_vgg16", lambda **kw: vgg):
        return tfv.FeatureExtractorVGG16("vgg16", [FC2, FC2_RELU])


class VGG16Extractor(FeatureExtractor):
    """`vgg16`: uint8 => TF1 bilinear 224 => ImageNet normalization => fc2 (and its ReLU)."""

    def __init__(self, weights: str | None = None, device: str = "auto") -> None:
        super().__init__(device)
        w = resolve_weights("vgg16", [TORCHVISION_VGG16], weights)
        self.name, self.mode = "vgg16", "tf-compat-224"
        self.outputs = {FC2_RELU: 4096, FC2: 4096}
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        self.net, self._built = None, False   # built on the first extraction (lazy: cache hits skip it)

    def _build(self) -> None:
        self.net = build_torch_fidelity_vgg16(Path(self.weights_path), self.name).to(self.device)

    def _extract(self, images):
        # NCHW uint8 => fc2 / fc2_relu N x 4096
        fc2, fc2_relu = self.net(images)
        return {FC2: fc2, FC2_RELU: fc2_relu}


def build_vgg16(*, weights: str | None = None, device: str = "auto") -> VGG16Extractor:
    """Factory for `vgg16`."""
    return VGG16Extractor(weights=weights, device=device)
