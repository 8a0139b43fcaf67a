"""Registry: names, validation of what is registered, helpful errors."""
from __future__ import annotations

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.features import FeatureExtractor, extractor_names, get_extractor, register_extractor
from ambient_eval.features import registry


def test_builtin_names():
    # Audit tests register their test networks ("test-...") for the session, maybe in this worker.
    names = [n for n in extractor_names() if not n.startswith("test-")]
    assert names == ["inception", "inception-clean", "vgg16", "dinov2", "dinov2-ambient",
                     "clip", "sscd", "sscd-320", "pixel"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(AmbientError) as e:
        get_extractor("incepton")
    msg = str(e.value)
    assert "'incepton'" in msg
    for name in extractor_names() + ["pixel-N"]:
        assert name in msg


def test_duplicates_and_wrong_types_rejected(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("inception", lambda **kw: None)
    with pytest.raises(ValueError, match="already registered"):
        register_extractor("pixel-8", lambda **kw: None)         # reserved family
    with pytest.raises(TypeError):
        register_extractor("Bad Name", lambda **kw: None)
    with pytest.raises(TypeError):
        register_extractor(3, lambda **kw: None)
    with pytest.raises(TypeError):
        register_extractor("not-callable", "inception")
    register_extractor("returns-junk", lambda **kw: object())
    with pytest.raises(TypeError, match="not a FeatureExtractor"):
        get_extractor("returns-junk")


def test_register_and_get_custom(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class Custom(FeatureExtractor):
        name, mode, outputs = "custom", "none", {"embedding": 1}

    register_extractor("custom", lambda weights=None, device="auto": Custom("cpu"))
    assert isinstance(get_extractor("custom"), Custom)
    assert "custom" in extractor_names()


def test_pixel_family():
    assert get_extractor("pixel", device="cpu").outputs == {"embedding": 3 * 32 * 32}
    e = get_extractor("pixel-16", device="cpu")
    assert (e.name, e.mode, e.outputs) == ("pixel-16", "bilinear-antialias-16", {"embedding": 768})
    assert e.weights_sha256 is None and e.weights_official
    with pytest.raises(AmbientError, match="out of range"):
        get_extractor("pixel-0")
    with pytest.raises(AmbientError, match="uses no weights"):
        get_extractor("pixel", weights="x.pth")


def test_bad_device():
    with pytest.raises(AmbientError, match="Unknown device"):
        get_extractor("pixel", device="tpu-9")


def test_input_contract():
    import torch

    e = get_extractor("pixel-8", device="cpu")
    with pytest.raises(AmbientError, match="NCHW uint8"):
        e(torch.zeros(1, 3, 8, 8))                                # float, not uint8
    with pytest.raises(AmbientError, match="NCHW uint8"):
        e(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))             # 1 channel
