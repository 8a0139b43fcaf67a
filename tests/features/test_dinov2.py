"""DINOv2 extractors: official checkpoint layout, position-embedding resampling, both preprocessings."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ambient_eval.errors import AmbientError
from ambient_eval.features import EMBEDDING, WeightsWarning, get_extractor
from ambient_eval.features.dinov2 import IMAGENET_MEAN, IMAGENET_STD, resample_pos_embed
from ambient_eval.features.random_weights import random_dinov2_state_dict, save_state_dict
from tests.conftest import random_images


@pytest.fixture(scope="module")
def dinov2_small_weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("dino") / "dinov2_vits14_random.pth"
    save_state_dict(random_dinov2_state_dict(), path)
    return path


def _get(name, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        return get_extractor(name, weights=str(path), device="cpu")


def test_official_vitl14_layout_builds():
    # The FD-DINOv2 network: timm's ViT-L/14 DINOv2 must hold exactly the official checkpoint's keys and
    # shapes (24 blocks, dim 1024, MLP 4096, LayerScale, 37x37 position grid at 518 px) minus mask_token.
    import timm

    with torch.device("meta"):
        net = timm.create_model("vit_large_patch14_dinov2", pretrained=False, num_classes=0, img_size=518)
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    expected = {"cls_token": (1, 1, 1024), "pos_embed": (1, 1 + 37 * 37, 1024), "norm.weight": (1024,),
                "patch_embed.proj.weight": (1024, 3, 14, 14), "patch_embed.proj.bias": (1024,), "norm.bias": (1024,)}
    for i in range(24):
        b = f"blocks.{i}."
        expected.update({b + "norm1.weight": (1024,), b + "norm1.bias": (1024,), b + "attn.qkv.weight": (3072, 1024),
                         b + "attn.qkv.bias": (3072,), b + "attn.proj.weight": (1024, 1024), b + "attn.proj.bias": (1024,),
                         b + "ls1.gamma": (1024,), b + "norm2.weight": (1024,), b + "norm2.bias": (1024,),
                         b + "mlp.fc1.weight": (4096, 1024), b + "mlp.fc1.bias": (4096,),
                         b + "mlp.fc2.weight": (1024, 4096), b + "mlp.fc2.bias": (1024,), b + "ls2.gamma": (1024,)})
    assert shapes == expected


def test_pos_embed_resampling_matches_official_formula():
    # Official interpolate_pos_encoding for 224 px: grid 16, scale (16 + 0.1) / 37, bicubic, no antialias.
    pos = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    out = resample_pos_embed(pos, 16)
    assert out.shape == (1, 257, 8)
    torch.testing.assert_close(out[:, 0], pos[:, 0])
    # brute force: bicubic (a = -0.75, PyTorch's kernel) at source coords (i + 0.5) / s - 0.5, clamped border
    grid = pos[0, 1:].reshape(37, 37, 8).double()
    s = 16.1 / 37

    def w(t):
        t = abs(t)
        a = -0.75
        return (a + 2) * t**3 - (a + 3) * t**2 + 1 if t <= 1 else (a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a if t < 2 else 0)

    for i, j in [(0, 0), (7, 3), (15, 15)]:
        y, x = (i + 0.5) / s - 0.5, (j + 0.5) / s - 0.5
        y0, x0 = math.floor(y), math.floor(x)
        val = sum(w(y - (y0 + dy)) * w(x - (x0 + dx)) * grid[min(max(y0 + dy, 0), 36), min(max(x0 + dx, 0), 36)]
                  for dy in range(-1, 3) for dx in range(-1, 3))
        torch.testing.assert_close(out[0, 1 + i * 16 + j].double(), val, atol=1e-5, rtol=1e-5)


def test_dinov2_and_ambient_preprocessing(dinov2_small_weights):
    fd = _get("dinov2", dinov2_small_weights)
    amb = _get("dinov2-ambient", dinov2_small_weights)
    assert fd.outputs == {EMBEDDING: 384} and fd.mode != amb.mode and amb.name == "dinov2-ambient"
    x = torch.from_numpy(random_images(1, size=32, seed=2)).permute(0, 3, 1, 2).contiguous()
    r = F.interpolate(x.float(), size=(224, 224), mode="bicubic", antialias=True) / 255
    norm = (r - torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    torch.testing.assert_close(fd.preprocess(x), norm)
    torch.testing.assert_close(amb.preprocess(x), r)
    out = fd(x)[EMBEDDING]
    with torch.no_grad():
        ref = fd.ensure_built().net.forward_features(norm)[:, 0]                   # CLS token after the final norm
    torch.testing.assert_close(out, ref)
    assert np.isfinite(out.numpy()).all() and out.std() > 0.1


def test_not_a_dinov2_file(inception_weights):
    with pytest.raises(AmbientError, match="not a DINOv2 checkpoint"):
        _get("dinov2", inception_weights)
