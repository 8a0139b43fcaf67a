"""Extractors by name. The registry validates what it registers (no duplicates, callables only)."""
from __future__ import annotations

import importlib
import re
from typing import Callable

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import FeatureExtractor

# factory(weights=str | None, device=str) -> FeatureExtractor
Factory = Callable[..., FeatureExtractor]

_REGISTRY: dict[str, Factory] = {}
_PIXEL_SIZED = re.compile(r"^pixel-(\d+)$")   # pixel-16, pixel-64, ...: raw pixels at another size


def register_extractor(name: str, factory: Factory) -> None:
    """Add an extractor factory under `name`; duplicates and wrong types are programming errors."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        raise TypeError(f"Extractor name must be a lowercase string, got {name!r}")
    if not callable(factory) or isinstance(factory, FeatureExtractor):
        raise TypeError(f"Extractor factory for {name!r} must be callable returning a FeatureExtractor, "
                        f"got {type(factory).__name__}")
    if name in _REGISTRY or _PIXEL_SIZED.match(name):
        raise ValueError(f"Extractor {name!r} is already registered")
    _REGISTRY[name] = factory


def extractor_names() -> list[str]:
    """Registered names (plus the `pixel-N` family, written as pixel-N in messages)."""
    return list(_REGISTRY)


def is_extractor_name(name: str) -> bool:
    """Whether `name` names an extractor (registered, or pixel-N)."""
    return name in _REGISTRY or bool(_PIXEL_SIZED.match(name))


def get_extractor(name: str, *, weights: str | None = None, device: str = "auto") -> FeatureExtractor:
    """Build the extractor `name` on `device`, with weights resolved offline (see weights.py)."""
    sized = _PIXEL_SIZED.match(name) if isinstance(name, str) else None
    if sized:
        from ambient_eval.features.pixel import build_pixel

        extractor = build_pixel(size=int(sized.group(1)), weights=weights, device=device)
    elif name in _REGISTRY:
        extractor = _REGISTRY[name](weights=weights, device=device)
    else:
        valid = ", ".join(extractor_names() + ["pixel-N (N = size in pixels)"])
        raise AmbientError(f"Unknown feature extractor '{name}'. Valid names: {valid}.")
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError(f"Factory for {name!r} returned {type(extractor).__name__}, not a FeatureExtractor")
    return extractor


def _lazy(module: str, attr: str) -> Factory:
    # Import the extractor module only when it is used (torch, timm, open_clip are heavy).
    def factory(**kwargs) -> FeatureExtractor:
        return getattr(importlib.import_module(f"ambient_eval.features.{module}"), attr)(**kwargs)

    factory.__name__ = f"{module}.{attr}"
    return factory


for _name, _module, _attr in [
    ("inception", "inception", "build_inception"),
    ("inception-clean", "inception", "build_inception_clean"),
    ("vgg16", "vgg16", "build_vgg16"),
    ("dinov2", "dinov2", "build_dinov2"),
    ("dinov2-ambient", "dinov2", "build_dinov2_ambient"),
    ("clip", "clip", "build_clip"),
    ("sscd", "sscd", "build_sscd"),
    ("sscd-320", "sscd", "build_sscd_320"),
    ("pixel", "pixel", "build_pixel"),
]:
    register_extractor(_name, _lazy(_module, _attr))
