"""Lazy networks: an extractor builds its network only when the feature cache misses."""
from __future__ import annotations

import warnings

import numpy as np

from ambient_eval.features import FeatureCache, FeatureExtractor, WeightsWarning, extract_features, get_extractor
from tests.conftest import random_images
from tests.features.conftest import array_source


def _inception(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        return get_extractor("inception", weights=str(path), device="cpu")


def test_cache_hit_builds_no_network(tmp_path, inception_weights):
    src = array_source(random_images(2, size=32, seed=5))
    cache = FeatureCache(tmp_path / "cache")
    before = FeatureExtractor.network_builds
    first = _inception(inception_weights)
    assert first.net is None and FeatureExtractor.network_builds == before   # constructing builds nothing
    cold = extract_features(src, first, cache=cache)
    assert FeatureExtractor.network_builds == before + 1 and first.net is not None
    extract_features(src, first, cache=None)                                 # built once, reused
    assert FeatureExtractor.network_builds == before + 1
    second = _inception(inception_weights)                                   # a new run, warm cache
    warm = extract_features(src, second, cache=cache)
    assert FeatureExtractor.network_builds == before + 1 and second.net is None and cache.hits == 1
    for k in cold:
        np.testing.assert_array_equal(cold[k], warm[k])
    # the cache key needs no network: it equals the one of the built extractor
    assert cache.key(src.fingerprint(), first) == cache.key(src.fingerprint(), second)


def test_vgg16_is_lazy_too(vgg16_weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        ex = get_extractor("vgg16", weights=str(vgg16_weights), device="cpu")
    assert ex.net is None and ex.outputs == {"fc2_relu": 4096, "fc2": 4096}
