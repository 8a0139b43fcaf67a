"""`clip`: open_clip image tower (default ViT-B-32 with OpenAI's weights), projected 512-d embedding.

Built offline: `open_clip.create_model(name, pretrained=None)` and our own weights loading, or, for
OpenAI's TorchScript archive `ViT-B-32.pt`, open_clip's `build_model_from_openai_state_dict` on the
archive's tensors. Preprocessing is open_clip's eval transform (bicubic resize of the short side to
224, center crop, OpenAI mean/std) applied per image through PIL.
"""
from __future__ import annotations

import warnings

import os
from pathlib import Path

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import EMBEDDING, FeatureExtractor
from ambient_eval.features.weights import WeightsFile, load_into, load_state_dict, resolve_weights

DEFAULT_MODEL = "ViT-B-32"   # open_clip architecture name; OpenAI weights use QuickGELU

OPENAI_VIT_B_32 = WeightsFile(
    file_name="ViT-B-32.pt",
    url="https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",  # OpenAI put it in the URL
    cache_globs=lambda: [os.path.expanduser("~/.cache/clip")],                 # open_clip / clip download dir
)
HF_VIT_B_32 = WeightsFile(
    file_name="open_clip_model.safetensors",
    url="https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/open_clip_model.safetensors",
    sha256=None,
    cache_globs=lambda: [os.path.join(os.path.expanduser(os.getenv("HF_HOME", "~/.cache/huggingface")), "hub",
                                      "models--timm--vit_base_patch32_clip_224.openai", "snapshots", "*")],
)


def _is_torchscript(path: Path) -> bool:
    from ambient_eval.features.inception import _is_torchscript as check

    return check(path)


def build_clip_model(path: Path, model_name: str, extractor: str):
    """An open_clip CLIP model in eval mode holding the weights in `path` (never downloads)."""
    import open_clip
    import torch

    if _is_torchscript(path):   # OpenAI's JIT archive: TorchScript, not pickle; the user supplied it
        try:
            with warnings.catch_warnings():  # torch.jit.load is deprecated, but it is OpenAI's format
                warnings.simplefilter("ignore", FutureWarning)
                sd = torch.jit.load(str(path), map_location="cpu").state_dict()
            model = open_clip.model.build_model_from_openai_state_dict(sd)
        except Exception as e:
            raise AmbientError(f"Cannot build CLIP from TorchScript archive '{path}': {e}. "
                               f"Pass OpenAI's '{OPENAI_VIT_B_32.file_name}' or an open_clip state dict.") from e
        return model.float().eval().requires_grad_(False)
    sd = load_state_dict(path, extractor)
    model = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=True, pretrained_text=False,
                                   pretrained_image=False)
    if all(k.startswith("visual.") for k in sd):          # image-tower-only file
        load_into(model.visual, {k[len("visual."):]: v for k, v in sd.items()}, path, extractor)
    else:
        load_into(model, sd, path, extractor)
    return model.float().eval().requires_grad_(False)


class ClipExtractor(FeatureExtractor):
    """open_clip image embedding (`encode_image`, not L2-normalized; audits normalize)."""

    def __init__(self, weights: str | None = None, device: str = "auto", model_name: str = DEFAULT_MODEL) -> None:
        super().__init__(device)
        import open_clip

        w = resolve_weights("clip", [OPENAI_VIT_B_32, HF_VIT_B_32], weights)
        self.name, self.mode = "clip", f"open_clip-{model_name}-eval-transform"
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        self.model_name = model_name
        cfg = open_clip.get_model_config(model_name) or {}
        size = cfg.get("vision_cfg", {}).get("image_size", 224)
        self.image_size = size if isinstance(size, int) else size[0]
        self.transform = open_clip.image_transform(self.image_size, is_train=False)
        self.outputs = {EMBEDDING: int(cfg.get("embed_dim", 512))}
        self.model, self._built = None, False   # built on the first extraction (lazy: cache hits skip it)

    def _build(self) -> None:
        model = build_clip_model(Path(self.weights_path), self.model_name, self.name)
        size = model.visual.image_size
        dim = int(model.visual.output_dim)
        if dim != self.outputs[EMBEDDING] or (size if isinstance(size, int) else size[0]) != self.image_size:
            raise AmbientError(f"CLIP weights '{self.weights_path}' are not a {self.model_name} model "
                               f"(embedding dim {dim}, image size {size}). Pass OpenAI's "
                               f"'{OPENAI_VIT_B_32.file_name}' or an open_clip {self.model_name} state dict.")
        self.model = model.to(self.device)

    def preprocess(self, images):
        # NCHW uint8 => NCHW float32 (open_clip eval transform, via PIL as open_clip does)
        import torch
        from PIL import Image

        hwc = images.permute(0, 2, 3, 1).cpu().numpy()
        return torch.stack([self.transform(Image.fromarray(img)) for img in hwc]).to(self.device)

    def _extract(self, images):
        # NCHW uint8 => N x embed_dim
        return {EMBEDDING: self.model.encode_image(self.preprocess(images))}


def build_clip(*, weights: str | None = None, device: str = "auto") -> ClipExtractor:
    """Factory for `clip` (open_clip ViT-B-32)."""
    return ClipExtractor(weights=weights, device=device)
