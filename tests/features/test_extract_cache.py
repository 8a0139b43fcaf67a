"""extract_features + FeatureCache: hits do no extraction, changes invalidate, corrupt files recover."""
from __future__ import annotations

import numpy as np
import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.features import FeatureCache, extract_features, get_extractor
from tests.features.conftest import CountingExtractor, NaNExtractor, array_source


def test_second_run_does_no_extraction(tmp_path, small_images):
    cache = FeatureCache(tmp_path)
    e = CountingExtractor(get_extractor("pixel-8", device="cpu"))
    first = extract_features(array_source(small_images), e, batch_size=4, cache=cache)
    assert (e.calls, e.images, cache.misses, cache.hits) == (2, 6, 1, 0)
    second = extract_features(array_source(small_images), e, batch_size=4, cache=cache)
    assert (e.calls, cache.hits) == (2, 1)                     # no new extractor call
    np.testing.assert_array_equal(first["embedding"], second["embedding"])
    assert len(list(tmp_path.rglob("*.npz"))) == 1


def test_changing_one_image_invalidates(tmp_path, small_images):
    cache = FeatureCache(tmp_path)
    e = CountingExtractor(get_extractor("pixel-8", device="cpu"))
    extract_features(array_source(small_images), e, cache=cache)
    changed = small_images.copy()
    changed[4, 0, 0, 0] ^= 1                                   # one bit of one pixel of one image
    out = extract_features(array_source(changed), e, cache=cache)
    assert e.calls == 2 and cache.hits == 0
    fresh = extract_features(array_source(changed), get_extractor("pixel-8", device="cpu"))
    np.testing.assert_array_equal(out["embedding"], fresh["embedding"])


def test_key_spells_out_how_features_were_made(tmp_path, small_images):
    cache = FeatureCache(tmp_path)
    src = array_source(small_images)
    a, b = get_extractor("pixel-8", device="cpu"), get_extractor("pixel-16", device="cpu")
    fp = src.fingerprint()
    assert cache.key(fp, a) != cache.key(fp, b)
    c = get_extractor("pixel-8", device="cpu")
    assert cache.key(fp, a) == cache.key(fp, c)
    c.weights_sha256 = "0" * 64                                # other weights => other key
    assert cache.key(fp, a) != cache.key(fp, c)
    c = get_extractor("pixel-8", device="cpu")
    c.mode = "other-resize"
    assert cache.key(fp, a) != cache.key(fp, c)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong-shape"])
def test_corrupt_cache_file_is_a_miss_and_rewritten(tmp_path, small_images, damage):
    cache = FeatureCache(tmp_path)
    e = CountingExtractor(get_extractor("pixel-8", device="cpu"))
    ref = extract_features(array_source(small_images), e, cache=cache)["embedding"]
    (path,) = list(tmp_path.rglob("*.npz"))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not an npz at all")
    else:
        np.savez(path, embedding=np.zeros((6, 5), np.float32))
    out = extract_features(array_source(small_images), e, cache=cache)["embedding"]
    assert e.calls == 2                                        # recomputed
    np.testing.assert_array_equal(out, ref)
    extract_features(array_source(small_images), e, cache=cache)
    assert e.calls == 2 and cache.hits == 1                    # rewritten file is good again


def test_default_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AMBIENT_EVAL_CACHE", str(tmp_path / "c"))
    assert FeatureCache().root == tmp_path / "c"
    monkeypatch.delenv("AMBIENT_EVAL_CACHE")
    assert FeatureCache().root.parts[-3:] == (".cache", "ambient-eval", "features")


@pytest.mark.parametrize("batch_size", [1, 4, 6, 64])
def test_batch_size_independence_pixel(small_images, batch_size):
    e = get_extractor("pixel-8", device="cpu")
    ref = extract_features(array_source(small_images), e, batch_size=6)["embedding"]
    out = extract_features(array_source(small_images), e, batch_size=batch_size)["embedding"]
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_nan_features_name_the_source(small_images):
    with pytest.raises(AmbientError) as e:
        extract_features(array_source(small_images, description="folder /data/x"), NaNExtractor(), batch_size=3)
    msg = str(e.value)
    assert "NaN/Inf" in msg and "folder /data/x" in msg and "nan-test" in msg and "indices [1]" in msg


def test_bad_batch_size(small_images):
    with pytest.raises(AmbientError, match="Batch size"):
        extract_features(array_source(small_images), get_extractor("pixel-8", device="cpu"), batch_size=0)
