"""`sscd` / `sscd-320`: SSCD copy-detection descriptors (Pizzi et al. 2022) from the official
TorchScript files (`sscd_disc_mixup.torchscript.pt`, 512-d; `sscd_disc_large.torchscript.pt`, 1024-d).

TorchScript is loaded with torch.jit.load: it runs no pickled Python code, but it is a program, so it
must be a file the user chose (--weights or $AMBIENT_EVAL_WEIGHTS). Preprocessing per the SSCD README:
`sscd` resizes the short edge to 288 (aspect kept), `sscd-320` resizes to 320x320; both /255 and
ImageNet mean/std. The output dim is read from the model. SSCD descriptors come L2-normalized.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import EMBEDDING, FeatureExtractor
from ambient_eval.features.dinov2 import IMAGENET_MEAN, IMAGENET_STD
from ambient_eval.features.weights import WeightsFile, resolve_weights

_BASE = "https://dl.fbaipublicfiles.com/sscd-copy-detection/"
SSCD_MIXUP = WeightsFile("sscd_disc_mixup.torchscript.pt", _BASE + "sscd_disc_mixup.torchscript.pt", None)
SSCD_LARGE = WeightsFile("sscd_disc_large.torchscript.pt", _BASE + "sscd_disc_large.torchscript.pt", None)


@dataclass(frozen=True)
class SSCDDefaults:
    short_edge: int = 288     # `sscd`: resize so the short edge is 288 px (SSCD README "small_288")
    square: int = 320         # `sscd-320`: resize to 320x320 (SSCD README "skew_320")


DEFAULTS = SSCDDefaults()


class SSCDExtractor(FeatureExtractor):
    """SSCD TorchScript descriptor of antialiased-bilinear resized, ImageNet-normalized images."""

    def __init__(self, weights: str | None = None, device: str = "auto", square: bool = False) -> None:
        super().__init__(device)
        import torch

        self.name = "sscd-320" if square else "sscd"
        self.square = square
        self.mode = f"resize-{DEFAULTS.square}x{DEFAULTS.square}" if square else f"short-edge-{DEFAULTS.short_edge}"
        w = resolve_weights(self.name, [SSCD_MIXUP, SSCD_LARGE], weights)
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        try:
            with warnings.catch_warnings():  # torch 2.9+: "torch.jit.load is deprecated" (still the format SSCD ships)
                warnings.simplefilter("ignore", FutureWarning)
                self.model = torch.jit.load(str(w.path), map_location="cpu").eval().to(self.device)
            with torch.inference_mode():
                probe = self.model(torch.zeros(1, 3, 64, 64, device=self.device))
        except Exception as e:
            raise AmbientError(f"Cannot use '{w.path}' as an SSCD TorchScript model: {str(e).splitlines()[0]}. "
                               f"Pass '{SSCD_MIXUP.file_name}' or '{SSCD_LARGE.file_name}' ({_BASE}).") from e
        if probe.ndim != 2 or probe.shape[0] != 1:
            raise AmbientError(f"SSCD model '{w.path}' returned shape {tuple(probe.shape)} for one image; "
                               "expected (1, dim). Pass an official SSCD TorchScript file.")
        self.outputs = {EMBEDDING: int(probe.shape[1])}

    def preprocess(self, images):
        # NCHW uint8 => NCHW float32, resized (antialiased bilinear), ImageNet-normalized
        import torch
        import torch.nn.functional as F

        h, w = images.shape[-2:]
        if self.square:
            size = (DEFAULTS.square, DEFAULTS.square)
        else:   # torchvision Resize(288): short edge to 288, long edge int(288 * long / short)
            s = DEFAULTS.short_edge
            size = (s, int(s * w / h)) if h <= w else (int(s * h / w), s)
        x = F.interpolate(images.float(), size=size, mode="bilinear", antialias=True, align_corners=False) / 255
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).reshape(1, -1, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).reshape(1, -1, 1, 1)
        return (x - mean) / std

    def _extract(self, images):
        # NCHW uint8 => N x dim
        return {EMBEDDING: self.model(self.preprocess(images))}


def build_sscd(*, weights: str | None = None, device: str = "auto") -> SSCDExtractor:
    """Factory for `sscd` (short edge 288)."""
    return SSCDExtractor(weights=weights, device=device, square=False)


def build_sscd_320(*, weights: str | None = None, device: str = "auto") -> SSCDExtractor:
    """Factory for `sscd-320` (320x320)."""
    return SSCDExtractor(weights=weights, device=device, square=True)
