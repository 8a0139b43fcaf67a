"""Randomly initialised weights files of the exact extractor architectures (tests, benchmarks, demos).

No machine of this project can download the official weights; these files let every code path run
offline. Features from them are NOT comparable with published numbers (the loader warns).
"""
from __future__ import annotations

import math
import os
from unittest import mock


def random_inception_state_dict(seed: int = 0) -> dict:
    """torch-fidelity FeatureExtractorInceptionV3 keys; He-scaled convs so features stay O(1)."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    # Build the module without its weights download / load (we only need its keys and shapes).
    with mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda *a, **k: None):
        net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in net.state_dict().items():
        if k.endswith("conv.weight"):
            v = torch.randn(v.shape, generator=g) * math.sqrt(2 / v[0].numel())
        elif k.endswith("bn.weight") or k.endswith("running_var"):
            v = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith("bn.bias") or k.endswith("running_mean") or k == "fc.bias":
            v = 0.1 * torch.randn(v.shape, generator=g)
        elif k == "fc.weight":
            v = torch.randn(v.shape, generator=g) / math.sqrt(v.shape[1])
        out[k] = v.clone()
    return out


def random_vgg16_state_dict(seed: int = 0) -> dict:
    """torchvision vgg16 keys (what torch-fidelity's VGG16 extractor loads), torchvision's init."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.vgg16(weights=None).state_dict()


def save_state_dict(state_dict: dict, path: str | os.PathLike, half: bool = False) -> None:
    """torch.save a state dict atomically (half=True stores floats as float16: half the disk)."""
    import torch

    from ambient_eval.files.atomic import atomic_path

    if half:
        state_dict = {k: v.half() if v.is_floating_point() else v for k, v in state_dict.items()}
    with atomic_path(path) as tmp:
        torch.save(state_dict, tmp)


def random_dinov2_state_dict(arch: str = "vit_small_patch14_dinov2", seed: int = 0) -> dict:
    """A random DINOv2 checkpoint in the official layout (518 px => 37x37 pos_embed, mask_token).

    ViT-L (`vit_large_patch14_dinov2`, the FD-DINOv2 network) is 1.2 GB; tests use ViT-S/14, whose
    checkpoint the same loader accepts (the architecture is read from the embedding dim).
    """
    import timm
    import torch

    torch.manual_seed(seed)
    net = timm.create_model(arch, pretrained=False, num_classes=0, img_size=518)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["pos_embed"] = torch.randn_like(sd["pos_embed"]) * 0.02   # timm inits it tiny; make it matter
    sd["mask_token"] = torch.zeros(1, net.embed_dim)             # present in the official files
    return sd
