"""DINOv2 ViT/14 CLS embeddings: `dinov2` (FD-DINOv2, EDM2) and `dinov2-ambient` (memorization).

The network is timm's DINOv2 ViT (built offline, pretrained=False) holding the official
`dinov2_vitl14_pretrain.pth` tensors. The official model resamples its 37x37 position embedding to
the input's patch grid at every forward pass (bicubic, scale factor (16 + 0.1) / 37, no antialias:
`interpolate_pos_encoding` in facebookresearch/dinov2); we do the same resampling once at load time
for the fixed 224x224 input, so the CLS token is the official model's `x_norm_clstoken`.

- `dinov2` (EDM2 FD-DINOv2, resize_mode="torch"): bicubic antialiased resize of the uint8 values to
  224x224, /255, ImageNet mean/std normalization; 1024-d CLS.
- `dinov2-ambient` (Ambient papers' memorization; unconfirmed details): same resize, images in
  [0, 1], no mean/std normalization.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import EMBEDDING, FeatureExtractor
from ambient_eval.features.weights import (WeightsFile, load_into, load_state_dict, resolve_weights,
                                           torch_hub_checkpoints)

DINOV2_VITL14 = WeightsFile(
    file_name="dinov2_vitl14_pretrain.pth",
    url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
    sha256=None,
    cache_globs=torch_hub_checkpoints,      # torch.hub.load('facebookresearch/dinov2', ...) stores it here
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)   # RGB, [0, 1] scale
IMAGENET_STD = (0.229, 0.224, 0.225)    # RGB, [0, 1] scale


@dataclass(frozen=True)
class DinoDefaults:
    input_size: int = 224           # resize target, pixels (EDM2)
    patch_size: int = 14            # ViT/14
    interpolate_offset: float = 0.1  # official DINOv2 position-embedding resampling offset


DEFAULTS = DinoDefaults()
# embed dim of the checkpoint => timm architecture (official files exist for S, B, L, G)
_ARCH = {384: "vit_small_patch14_dinov2", 768: "vit_base_patch14_dinov2",
         1024: "vit_large_patch14_dinov2", 1536: "vit_giant_patch14_dinov2"}


def resample_pos_embed(pos_embed, grid: int):
    """Official DINOv2 interpolate_pos_encoding for a square grid: (1, 1+M*M, D) => (1, 1+grid^2, D)."""
    import torch
    import torch.nn.functional as F

    n = pos_embed.shape[1] - 1
    m = math.isqrt(n)
    if m * m != n:
        raise ValueError(f"position embedding with {n} patches is not square")
    if m == grid:
        return pos_embed
    cls, patches = pos_embed[:, :1].float(), pos_embed[:, 1:].float()
    scale = (grid + DEFAULTS.interpolate_offset) / m
    patches = F.interpolate(patches.reshape(1, m, m, -1).permute(0, 3, 1, 2), scale_factor=(scale, scale),
                            mode="bicubic", antialias=False)
    if tuple(patches.shape[-2:]) != (grid, grid):
        raise ValueError(f"resampled grid {tuple(patches.shape[-2:])} != {grid}")
    patches = patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)
    return torch.cat([cls, patches], dim=1).to(pos_embed.dtype)


def build_dinov2_network(path: Path, extractor: str):
    """timm DINOv2 ViT for 224x224 inputs, holding the official checkpoint's tensors."""
    import timm

    sd = load_state_dict(path, extractor)
    if "pos_embed" not in sd or "patch_embed.proj.weight" not in sd:
        raise AmbientError(f"Weights file '{path}' is not a DINOv2 checkpoint (no pos_embed / patch_embed). "
                           f"Pass '{DINOV2_VITL14.file_name}' ({DINOV2_VITL14.url}).")
    dim = sd["pos_embed"].shape[-1]
    if dim not in _ARCH:
        raise AmbientError(f"Weights file '{path}' has embedding dim {dim}; DINOv2 ViT/14 has 384, 768, "
                           f"1024 (ViT-L, FD-DINOv2) or 1536. Pass '{DINOV2_VITL14.file_name}'.")
    grid = DEFAULTS.input_size // DEFAULTS.patch_size
    sd = {k: v for k, v in sd.items() if k != "mask_token"}        # used only in DINOv2 training
    sd["pos_embed"] = resample_pos_embed(sd["pos_embed"], grid)
    net = timm.create_model(_ARCH[dim], pretrained=False, num_classes=0, img_size=DEFAULTS.input_size)
    load_into(net, sd, path, extractor)
    return net.eval().requires_grad_(False)


def peek_embed_dim(path: Path, extractor: str) -> int:
    """Embedding dim of a DINOv2 checkpoint without building the network (memory-mapped read)."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                shape = f.get_slice("pos_embed").get_shape() if "pos_embed" in f.keys() else None
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            for wrapper in ("state_dict", "model"):
                if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
                    sd = sd[wrapper]
            shape = tuple(sd["pos_embed"].shape) if isinstance(sd, dict) and "pos_embed" in sd else None
    except Exception:  # not mmap-able (old format) or unreadable: the full loader gives the error
        sd = load_state_dict(path, extractor)
        shape = tuple(sd["pos_embed"].shape) if "pos_embed" in sd else None
    if shape is None:
        raise AmbientError(f"Weights file '{path}' is not a DINOv2 checkpoint (no pos_embed). "
                           f"Pass '{DINOV2_VITL14.file_name}' ({DINOV2_VITL14.url}).")
    dim = int(shape[-1])
    if dim not in _ARCH:
        raise AmbientError(f"Weights file '{path}' has embedding dim {dim}; DINOv2 ViT/14 has 384, 768, "
                           f"1024 (ViT-L, FD-DINOv2) or 1536. Pass '{DINOV2_VITL14.file_name}'.")
    return dim


class DinoV2Extractor(FeatureExtractor):
    """CLS token of DINOv2 ViT/14 at 224x224 (see module docstring for the two modes)."""

    def __init__(self, weights: str | None = None, device: str = "auto", normalize: bool = True) -> None:
        super().__init__(device)
        self.name = "dinov2" if normalize else "dinov2-ambient"
        w = resolve_weights(self.name, [DINOV2_VITL14], weights)
        self.normalize = normalize
        self.mode = "edm2-bicubic-aa-224-imagenet" if normalize else "ambient-bicubic-aa-224-unit"
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        self.outputs = {EMBEDDING: peek_embed_dim(w.path, self.name)}
        self.net, self._built = None, False   # built on the first extraction (lazy: cache hits skip it)

    def _build(self) -> None:
        self.net = build_dinov2_network(Path(self.weights_path), self.name).to(self.device)
        if self.net.embed_dim != self.outputs[EMBEDDING]:  # the file changed since __init__ peeked at it
            raise AmbientError(f"Weights file '{self.weights_path}' changed while in use (embedding dim "
                               f"{self.net.embed_dim}, expected {self.outputs[EMBEDDING]}). Run again.")

    def preprocess(self, images):
        # NCHW uint8 => NCHW float32 224x224 (ImageNet-normalized, or in [0, 1] for dinov2-ambient)
        import torch
        import torch.nn.functional as F

        s = DEFAULTS.input_size
        x = F.interpolate(images.float(), size=(s, s), mode="bicubic", antialias=True)  # EDM2 "torch" mode
        x = x / 255
        if self.normalize:
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).reshape(1, -1, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device).reshape(1, -1, 1, 1)
            x = (x - mean) / std
        return x

    def _extract(self, images):
        # NCHW uint8 => CLS N x embed_dim
        return {EMBEDDING: self.net(self.preprocess(images))}


def build_dinov2(*, weights: str | None = None, device: str = "auto") -> DinoV2Extractor:
    """Factory for `dinov2` (FD-DINOv2)."""
    return DinoV2Extractor(weights=weights, device=device, normalize=True)


def build_dinov2_ambient(*, weights: str | None = None, device: str = "auto") -> DinoV2Extractor:
    """Factory for `dinov2-ambient` (memorization preprocessing)."""
    return DinoV2Extractor(weights=weights, device=device, normalize=False)
