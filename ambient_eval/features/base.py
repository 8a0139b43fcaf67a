"""Feature extractor protocol: uint8 images in, named float32 feature matrices out.

Every extractor records how its features were made (name, preprocessing mode, weights hash), so
stats files, cache keys and results can refuse to mix conventions (SPEC "Resize modes").
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ambient_eval.errors import AmbientError

if TYPE_CHECKING:  # torch is imported lazily so `import ambient_eval.features` stays fast
    import torch

# Output names (result keys are constants, as in torch-fidelity).
POOL3 = "pool3"                      # Inception-v3 pool3, 2048-d (FID, KID, P/R on Inception)
LOGITS = "logits_unbiased"           # Inception-v3 1008-way logits without bias (IS)
FC2 = "fc2"                          # VGG16 fc2 before ReLU, 4096-d
FC2_RELU = "fc2_relu"                # VGG16 fc2 after ReLU, 4096-d (torch-fidelity's P/R default)
EMBEDDING = "embedding"              # generic embedding (DINOv2 CLS, CLIP image, SSCD, pixels)
MIXED6_CONV7 = "mixed6_conv7"        # Inception mixed_6/conv, first 7 channels, 17x17x7 = 2023-d HWC (sFID)


class FeatureExtractor:
    """Base class: subclasses set the attributes below and implement `_extract`.

    Call contract: `extractor(images)` with NCHW uint8 (3 ch, any device)
    => {output name: NC float32 on CPU}, one row per image, in input order.
    """

    name: str = ""                          # registry name (inception, pixel-32, ...)
    mode: str = ""                          # preprocessing mode ("tf-compat", "clean", ...)
    outputs: dict[str, int] = {}            # output name -> dim; the first one is the default
    weights_sha256: str | None = None       # sha256 of the weights file actually used (None: no weights)
    weights_official: bool = True           # False => results not comparable with published numbers
    weights_path: str | None = None         # where the weights came from (provenance only)
    network_builds: int = 0                 # class-wide count of networks built (tests, benchmarks)

    # Lazy networks: an extractor with a network sets `self._built = False` in __init__ (after resolving
    # and hashing its weights, which the cache key needs) and builds it in `_build`, which runs once,
    # on the first extraction. A warm feature cache therefore never builds a network.
    _built: bool = True

    def __init__(self, device: Any = "auto") -> None:
        # "auto" and "cpu" are resolved on first use: resolving imports torch (~2.5 s), which a
        # warm-cache run never needs. Any other name is checked now (a missing GPU fails early).
        self._device_spec = device
        self._device = None
        if device not in (None, "", "auto", "cpu"):
            self._device = self._resolve(device)

    @staticmethod
    def _resolve(device: Any):
        from ambient_eval.runtime.device import resolve_device, with_policy

        return resolve_device(device) if isinstance(device, (str, type(None))) else with_policy(device)

    @property
    def device(self):
        """The torch.device features are computed on (resolved on first access)."""
        if self._device is None:
            self._device = self._resolve(self._device_spec)
        return self._device

    @device.setter
    def device(self, value: Any) -> None:
        self._device_spec, self._device = value, self._resolve(value)

    def ensure_built(self) -> "FeatureExtractor":
        """Build the network now if it is not built yet (first extraction does this implicitly)."""
        if not self._built:
            self._build()
            self._built = True
            FeatureExtractor.network_builds += 1
        return self

    def _build(self) -> None:
        # Construct the network on self.device (subclasses with a network override this).
        pass

    @property
    def default_output(self) -> str:
        """The output used when a caller does not name one (first in `outputs`)."""
        return next(iter(self.outputs))

    def info(self) -> dict[str, Any]:
        """Provenance for stats files and results.json (what must match to compare numbers)."""
        return {
            "extractor": self.name,
            "mode": self.mode,
            "outputs": dict(self.outputs),
            "weights_sha256": self.weights_sha256,
            "weights_official": self.weights_official,
        }

    def __call__(self, images: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        # NCHW uint8 (3 ch, any device) => {name: NC float32 on CPU}
        import torch

        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4 \
                or images.shape[1] != 3:
            desc = (f"{type(images).__name__} {getattr(images, 'dtype', '')} "
                    f"{tuple(getattr(images, 'shape', ()))}")
            raise AmbientError(f"Extractor '{self.name}' expects NCHW uint8 RGB images, got {desc}. "
                               "Open images through ambient_eval.data, which converts them.")
        self.ensure_built()
        with torch.inference_mode():
            out = self._extract(images.to(self.device, non_blocking=True))
        result = {}
        for key, dim in self.outputs.items():
            feat = out[key].detach().to("cpu", torch.float32).reshape(images.shape[0], -1)
            if feat.shape[1] != dim:  # a programming error in an extractor, not user input
                raise RuntimeError(f"{self.name}:{key} produced dim {feat.shape[1]}, declared {dim}")
            result[key] = feat
        return result

    def _extract(self, images: "torch.Tensor") -> dict[str, "torch.Tensor"]:
        # NCHW uint8 on self.device => {name: N x dim float}
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, mode={self.mode!r}, "
                f"outputs={self.outputs}, weights_sha256={self.weights_sha256!r})")
