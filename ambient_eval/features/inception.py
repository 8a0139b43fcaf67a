"""Inception-v3 (the 2015-12-05 TF graph) for FID / KID / IS / P/R, in two resize modes.

- `inception` (mode "tf-compat"): torch-fidelity's `inception-v3-compat` network
  (FeatureExtractorInceptionV3), uint8 in, TF1-style bilinear resize to 299 inside the network.
- `inception-clean` (mode "clean", clean-fid): PIL bicubic resize to 299 per channel in float
  with no re-quantization (clean-fid's own `make_resizer("PIL", False, "bicubic", (299, 299))`),
  then the same network from its 299x299 input on. With NVIDIA's TorchScript file
  (`inception-2015-12-05.pt`, what clean-fid itself runs) the TorchScript network is used instead.
"""
from __future__ import annotations

import warnings

from pathlib import Path
from unittest import mock

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import LOGITS, MIXED6_CONV7, POOL3, FeatureExtractor
from ambient_eval.features.weights import (WeightsFile, load_state_dict, resolve_weights,
                                           torch_hub_checkpoints)

# torch-fidelity's port of the TF Inception graph (torch hub stores it under torch.hub.get_dir()/checkpoints).
TORCH_FIDELITY_INCEPTION = WeightsFile(
    file_name="weights-inception-2015-12-05-6726825d.pth",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    cache_globs=torch_hub_checkpoints,
)
# NVIDIA's TorchScript port used by clean-fid, StyleGAN2-ADA and EDM (clean-fid caches it in /tmp).
NVIDIA_INCEPTION = WeightsFile(
    file_name="inception-2015-12-05.pt",
    url="https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt",
    sha256="f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4",
    cache_globs=lambda: ["/tmp"],
)
INPUT_SIZE = 299  # Inception-v3 input side, pixels
# sFID's "spatial features" (Nash et al. 2021; the ADM evaluator's FID_SPATIAL_NAME "mixed_6/conv:0"):
# in the TF graph `mixed_6` is the fourth 17x17 block and `mixed_6/conv` its 1x1 branch after
# batchnorm + ReLU; torch-fidelity's converter maps mixed_6/conv/{conv2d_params,batchnorm} to
# Mixed_6d.branch1x1.{conv,bn}, so it is the output of BasicConv2d Mixed_6d.branch1x1 (N x 192 x 17 x 17).
# The evaluator keeps channels [..., :7] of the NHWC tensor and reshapes to N x 2023, i.e. H, W, C order.
SPATIAL_MODULE = "Mixed_6d.branch1x1"
SPATIAL_CHANNELS = 7

# Modules of FeatureExtractorInceptionV3 from the 299x299 normalized input to pool3, in graph order.
_TRUNK = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
          "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
          "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool"]


def build_torch_fidelity_inception(path: Path, extractor: str):
    """torch-fidelity's FeatureExtractorInceptionV3 with our safely loaded state dict.

    torch-fidelity would torch.load(weights_only=False) a path, or download when given none; we load
    the tensors ourselves (weights_only=True) and hand them over in place of its download call.
    """
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    state_dict = load_state_dict(path, extractor)
    try:
        with mock.patch.object(tfi, "load_state_dict_from_url", lambda *a, **k: state_dict):
            return tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048", LOGITS])
    except RuntimeError as e:
        raise AmbientError(
            f"Weights file '{path}' does not fit torch-fidelity's Inception-v3 network "
            f"({' '.join(str(e).split())[:300]}). Pass '{TORCH_FIDELITY_INCEPTION.file_name}'.") from e


def _is_torchscript(path: Path) -> bool:
    # TorchScript archives are zip files holding code/ and constants.pkl; state dicts hold data.pkl only.
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("constants.pkl") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class InceptionExtractor(FeatureExtractor):
    """`inception`: torch-fidelity inception-v3-compat, TF1 bilinear resize inside the network."""

    def __init__(self, weights: str | None = None, device: str = "auto") -> None:
        super().__init__(device)
        w = resolve_weights("inception", [TORCH_FIDELITY_INCEPTION], weights)
        self.name, self.mode = "inception", "tf-compat"
        self.outputs = {POOL3: 2048, LOGITS: 1008, MIXED6_CONV7: SPATIAL_CHANNELS * 17 * 17}
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        self.net, self._built = None, False   # built on the first extraction (lazy: cache hits skip it)
        self._spatial = None                  # last Mixed_6d.branch1x1 output (forward hook)

    def _build(self) -> None:
        self.net = build_torch_fidelity_inception(Path(self.weights_path), self.name).to(self.device)
        self.net.get_submodule(SPATIAL_MODULE).register_forward_hook(self._keep_spatial)

    def _keep_spatial(self, _module, _inputs, output) -> None:
        self._spatial = output

    def _extract(self, images):
        # NCHW uint8 (any size) => pool3 N x 2048, logits_unbiased N x 1008, mixed6_conv7 N x 2023
        pool3, logits = self.net(images)
        spatial, self._spatial = self._spatial, None
        # N x 192 x 17 x 17 => N x 17 x 17 x 7 (TF's NHWC) => N x 2023
        spatial = spatial[:, :SPATIAL_CHANNELS].permute(0, 2, 3, 1).reshape(images.shape[0], -1)
        return {POOL3: pool3, LOGITS: logits, MIXED6_CONV7: spatial}


class InceptionCleanExtractor(FeatureExtractor):
    """`inception-clean`: clean-fid's PIL bicubic float resize, then the Inception network."""

    def __init__(self, weights: str | None = None, device: str = "auto") -> None:
        super().__init__(device)
        import torch
        from cleanfid.resize import make_resizer

        w = resolve_weights("inception-clean", [TORCH_FIDELITY_INCEPTION, NVIDIA_INCEPTION], weights)
        self.name, self.mode = "inception-clean", "clean"
        self.outputs = {POOL3: 2048}
        self.weights_sha256, self.weights_official, self.weights_path = w.sha256, w.official, str(w.path)
        # clean-fid's own resize: PIL bicubic per channel in float, clipped to [0, 255], not quantized
        self.resize = make_resizer("PIL", False, "bicubic", (INPUT_SIZE, INPUT_SIZE))
        self.net = self.script = None
        self._built = False   # the network is built on the first extraction (lazy: cache hits skip it)

    def _build(self) -> None:
        import torch

        path = Path(self.weights_path)
        if _is_torchscript(path):  # NVIDIA's TorchScript (not pickle; the user supplied this file)
            try:
                with warnings.catch_warnings():  # torch.jit.load is deprecated, but it is NVIDIA's format
                    warnings.simplefilter("ignore", FutureWarning)
                    self.script = torch.jit.load(str(path), map_location="cpu").eval().to(self.device)
            except Exception as e:
                raise AmbientError(f"Cannot load TorchScript Inception '{path}': {e}. Pass "
                                   f"'{NVIDIA_INCEPTION.file_name}' or '{TORCH_FIDELITY_INCEPTION.file_name}'.") from e
        else:
            self.net = build_torch_fidelity_inception(path, self.name).to(self.device)

    def preprocess(self, images):
        # NCHW uint8 (CPU or device) => NCHW float32 in [0, 255], 299x299, on self.device
        import numpy as np
        import torch

        hwc = images.permute(0, 2, 3, 1).cpu().numpy()
        out = np.stack([self.resize(img) for img in hwc])           # NHWC float32
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().to(self.device)

    def network(self, x):
        # NCHW float in [0, 255] at 299x299 => pool3 N x 2048 (the graph's own (x - 128) / 128)
        import torch

        self.ensure_built()
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"expected 299x299 input, got {tuple(x.shape)}")
        x = (x - 128) / 128
        if self.script is not None:
            return self.script.layers.forward(x).view(x.shape[0], 2048)
        for name in _TRUNK:
            x = getattr(self.net, name)(x)
        return torch.flatten(x, 1)

    def cleanfid_feat_model(self):
        """A callable for cleanfid.fid.compute_fid(custom_feat_extractor=...): the same network."""
        import torch

        self.ensure_built()

        def model_fn(batch):
            # NCHW float [0, 255] 299x299 (clean-fid already resized it) => N x 2048
            with torch.no_grad():
                return self.network(batch.to(self.device, torch.float32))

        return model_fn

    def _extract(self, images):
        return {POOL3: self.network(self.preprocess(images))}


def build_inception(*, weights: str | None = None, device: str = "auto") -> InceptionExtractor:
    """Factory for `inception` (tf-compat)."""
    return InceptionExtractor(weights=weights, device=device)


def build_inception_clean(*, weights: str | None = None, device: str = "auto") -> InceptionCleanExtractor:
    """Factory for `inception-clean` (clean-fid's resize)."""
    return InceptionCleanExtractor(weights=weights, device=device)
