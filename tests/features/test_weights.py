"""Offline weights: resolution order, missing-file message, hash check + warning, safe loading."""
from __future__ import annotations

import os
import warnings

import pytest
import torch

from ambient_eval.errors import AmbientError
from ambient_eval.features import WeightsWarning, get_extractor
from ambient_eval.features import weights as W
from ambient_eval.files.hashing import sha256_file

SPEC = W.WeightsFile(file_name="net-official.pth", url="https://example.org/net-official.pth",
                     sha256="ab" * 32, cache_globs=lambda: [])


def _tiny(path, value=1.0):
    torch.save({"w": torch.full((3,), value)}, path)
    return path


def test_missing_weights_message(monkeypatch, cli, tmp_path):
    monkeypatch.delenv("AMBIENT_EVAL_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))          # empty library cache
    with pytest.raises(AmbientError) as e:
        get_extractor("inception", device="cpu")
    msg = str(e.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in msg
    assert "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2" in msg
    assert "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" in msg
    assert "--weights" in msg and "AMBIENT_EVAL_WEIGHTS" in msg and "Nothing was downloaded: offline mode" in msg
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in msg
    with pytest.raises(AmbientError, match=r"vgg16-397923af\.pth.*397923af\.\.\..*download\.pytorch\.org"):
        get_extractor("vgg16", device="cpu")
    with pytest.raises(AmbientError, match=r"dinov2_vitl14_pretrain\.pth' \(SHA-256 unknown\)"):
        get_extractor("dinov2", device="cpu")


def test_explicit_path_missing():
    with pytest.raises(AmbientError, match="does not exist"):
        get_extractor("inception", weights="/nonexistent/w.pth", device="cpu")


def test_resolution_order(monkeypatch, tmp_path):
    explicit = _tiny(tmp_path / "explicit.pth", 1)
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    _tiny(env_dir / SPEC.file_name, 2)
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    _tiny(cache_dir / SPEC.file_name, 3)
    spec = W.WeightsFile(SPEC.file_name, SPEC.url, SPEC.sha256, cache_globs=lambda: [str(cache_dir)])
    monkeypatch.setenv("AMBIENT_EVAL_WEIGHTS", str(env_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightsWarning)
        assert W.resolve_weights("t", [spec], explicit).path == explicit
        assert W.resolve_weights("t", [spec], None).path == env_dir / SPEC.file_name
        monkeypatch.delenv("AMBIENT_EVAL_WEIGHTS")
        assert W.resolve_weights("t", [spec], None).path == cache_dir / SPEC.file_name


def test_non_official_hash_warns_and_is_recorded(tmp_path):
    path = _tiny(tmp_path / "mine.pth")
    with pytest.warns(WeightsWarning, match="NOT comparable with published numbers"):
        r = W.resolve_weights("t", [SPEC], path)
    assert r.sha256 == sha256_file(path) and not r.official


def test_official_hash_no_warning(tmp_path):
    path = _tiny(tmp_path / "mine.pth")
    spec = W.WeightsFile("x.pth", "u", sha256_file(path))
    prefix = W.WeightsFile("x.pth", "u", None, sha256_prefix=sha256_file(path)[:8])
    with warnings.catch_warnings():
        warnings.simplefilter("error", WeightsWarning)
        assert W.resolve_weights("t", [spec], path).official
        assert W.resolve_weights("t", [prefix], path).official


def test_unknown_official_hash_cannot_be_verified(tmp_path):
    path = _tiny(tmp_path / "mine.pth")
    with pytest.warns(WeightsWarning, match="cannot be verified"):
        r = W.resolve_weights("t", [W.WeightsFile("x.pth", "u", None)], path)
    assert not r.official


def test_extractor_records_hash(inception_weights):
    with pytest.warns(WeightsWarning):
        e = get_extractor("inception", weights=str(inception_weights), device="cpu")
    assert e.weights_sha256 == sha256_file(inception_weights) and e.weights_official is False
    assert e.info()["weights_sha256"] == e.weights_sha256


def test_hash_cached_by_path_size_mtime(monkeypatch, tmp_path):
    import ambient_eval.files.hashing as hashing

    path = _tiny(tmp_path / "w.pth")
    calls = []
    real = hashing.sha256_file

    def counting(p, *a, **k):
        calls.append(p)
        return real(p, *a, **k)

    monkeypatch.setattr(hashing, "sha256_file", counting)
    h1 = hashing.cached_sha256(path, tmp_path / "c")
    h2 = hashing.cached_sha256(path, tmp_path / "c")
    assert h1 == h2 and len(calls) == 1
    _tiny(path, 5.0)                                              # new content, new mtime
    os.utime(path, ns=(1, 1))
    assert hashing.cached_sha256(path, tmp_path / "c") != h1 and len(calls) == 2
    (tmp_path / "c" / "weights-sha256.json").write_text("{broken")
    assert hashing.cached_sha256(path, tmp_path / "c") == sha256_file(path)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"w": Evil()}, path)
    with pytest.raises(AmbientError, match="pickled models with code are refused"):
        W.load_state_dict(path, "t")


def test_garbage_and_wrong_network(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(AmbientError, match="Cannot read weights file"):
        W.load_state_dict(bad, "t")
    wrong = _tiny(tmp_path / "wrong.pth")
    with pytest.warns(WeightsWarning), pytest.raises(AmbientError, match="does not fit"):
        # networks are lazy: a file of the wrong network fails when the network is first needed
        get_extractor("inception", weights=str(wrong), device="cpu").ensure_built()


def test_cli_missing_weights_exit_2(cli, monkeypatch, tmp_path):
    """Through the CLI (fid command, owned by the metrics area): exit 2, no traceback."""
    from tests.conftest import random_images, write_images

    write_images(tmp_path / "a", random_images(3, seed=1))
    write_images(tmp_path / "b", random_images(3, seed=2))
    monkeypatch.delenv("AMBIENT_EVAL_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    r = cli(["fid", tmp_path / "a", tmp_path / "b", "--metrics", "fid", "--out", tmp_path / "out"])
    assert r.exit_code == 2, r.output
    assert "weights-inception" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr and not (tmp_path / "out" / "results.json").exists()
