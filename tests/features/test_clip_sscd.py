"""`clip` (open_clip image tower) and `sscd` (user-supplied TorchScript) with tiny random networks."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ambient_eval.errors import AmbientError
from ambient_eval.features import EMBEDDING, WeightsWarning, extract_features, get_extractor
from ambient_eval.features.dinov2 import IMAGENET_MEAN, IMAGENET_STD
from tests.conftest import random_images
from tests.features.conftest import TINY_CLIP_CONFIG, array_source

TINY_CLIP = "ViT-tiny-ambient-test"


@pytest.fixture(scope="module")
def tiny_clip_weights(tmp_path_factory):
    """A tiny open_clip ViT config (registered with open_clip) and its random weights as safetensors."""
    import open_clip
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("clip")
    cfg = TINY_CLIP_CONFIG
    (d / f"{TINY_CLIP}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY_CLIP}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_CLIP, pretrained=None, force_quick_gelu=True, pretrained_text=False)
    path = d / "tiny-clip.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path, model.eval()


def test_clip_equals_open_clip(tiny_clip_weights):
    import open_clip
    from PIL import Image

    from ambient_eval.features.clip import ClipExtractor

    path, ref_model = tiny_clip_weights
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        ours = ClipExtractor(weights=str(path), device="cpu", model_name=TINY_CLIP)
    assert ours.outputs == {EMBEDDING: 32} and ours.name == "clip"
    images = random_images(2, size=40, seed=9)
    feats = extract_features(array_source(images), ours, batch_size=2)[EMBEDDING]
    _, _, preprocess = open_clip.create_model_and_transforms(TINY_CLIP, pretrained=None, force_quick_gelu=True,
                                                             pretrained_text=False)
    x = torch.stack([preprocess(Image.fromarray(img)) for img in images])
    with torch.no_grad():
        ref = ref_model.encode_image(x)
    np.testing.assert_allclose(feats, ref.numpy(), rtol=1e-5, atol=1e-5)
    assert feats.std() > 1e-3


def test_clip_default_architecture_is_vit_b_32():
    import open_clip

    from ambient_eval.features.clip import DEFAULT_MODEL

    cfg = open_clip.get_model_config(DEFAULT_MODEL)
    with torch.device("meta"):
        model = open_clip.model.CLIP(**cfg, quick_gelu=True)
    assert model.visual.output_dim == 512 and model.visual.image_size == (224, 224)
    assert sum(p.numel() for p in model.visual.parameters()) == 87_849_216   # ViT-B/32 image tower


class TinyDescriptor(torch.nn.Module):
    """Stands in for an SSCD TorchScript model: NCHW float => N x 24, L2-normalized."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 24, 7, stride=4)

    def forward(self, x):
        return F.normalize(self.conv(x).mean(dim=(2, 3)), dim=1)


@pytest.fixture(scope="module")
def tiny_sscd(tmp_path_factory):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)             # torch.jit.script is deprecated
        module = torch.jit.script(TinyDescriptor().eval())
    path = tmp_path_factory.mktemp("sscd") / "tiny.torchscript.pt"
    module.save(str(path))
    return path, module


@pytest.mark.parametrize("name,size", [("sscd", (288, 432)), ("sscd-320", (320, 320))])
def test_sscd_preprocessing_and_dim(tiny_sscd, name, size):
    path, module = tiny_sscd
    with pytest.warns(WeightsWarning, match="cannot be verified"):
        e = get_extractor(name, weights=str(path), device="cpu")
    assert e.outputs == {EMBEDDING: 24}                              # read from the model
    x = torch.from_numpy(random_images(2, size=32, seed=1)[:, :, :, :]).permute(0, 3, 1, 2)
    x = F.interpolate(x.float(), size=(32, 48)).to(torch.uint8)    # 2:3 aspect ratio
    pre = e.preprocess(x)
    assert tuple(pre.shape[-2:]) == size
    r = F.interpolate(x.float(), size=size, mode="bilinear", antialias=True) / 255
    ref = (r - torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    torch.testing.assert_close(pre, ref)
    with torch.no_grad():
        torch.testing.assert_close(e(x)[EMBEDDING], module(ref))


def test_sscd_rejects_non_torchscript(inception_weights):
    with pytest.warns(WeightsWarning), pytest.raises(AmbientError, match="SSCD TorchScript"):
        get_extractor("sscd", weights=str(inception_weights), device="cpu")
