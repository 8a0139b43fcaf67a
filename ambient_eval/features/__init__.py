"""Feature extractors (by name), offline weights, batch extraction and the on-disk feature cache.

    get_extractor("inception") -> FeatureExtractor    # NCHW uint8 => {name: NC float32}
    extract_features(source, extractor, cache=FeatureCache())  -> {name: np.ndarray}
"""
from __future__ import annotations

from ambient_eval.features.base import (EMBEDDING, FC2, FC2_RELU, LOGITS, MIXED6_CONV7, POOL3,  # noqa: F401
                                        FeatureExtractor)
from ambient_eval.features.cache import FeatureCache, default_cache_root  # noqa: F401
from ambient_eval.features.extract import extract_features  # noqa: F401
from ambient_eval.features.registry import extractor_names, get_extractor, register_extractor  # noqa: F401
from ambient_eval.features.weights import WeightsWarning  # noqa: F401

__all__ = ["POOL3", "LOGITS", "MIXED6_CONV7", "FC2", "FC2_RELU", "EMBEDDING", "FeatureExtractor", "FeatureCache",
           "default_cache_root", "extract_features", "extractor_names", "get_extractor",
           "register_extractor", "WeightsWarning"]
