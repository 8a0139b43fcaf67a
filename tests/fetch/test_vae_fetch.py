"""The latent VAE fetched on first use by huggingface_hub from $HF_ENDPOINT (a loopback server here),
pinned in our lock file; offline / CI never open a socket."""
from __future__ import annotations

import hashlib
import socket

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.fetch.pins import pinned_sha256

REPO = "example/tiny-vae"
FILES = {"config.json": b'{"_class_name": "AutoencoderKL"}', "diffusion_pytorch_model.safetensors": b"S" * 4096}


@pytest.fixture
def hub(server, online, monkeypatch, tmp_path):
    """A minimal Hub (HEAD with X-Repo-Commit/ETag, GET) on 127.0.0.1 as HF_ENDPOINT."""
    for name, body in FILES.items():
        path = f"/{REPO}/resolve/main/{name}"
        server.add(path, body)
        server.extra_headers[path] = {"X-Repo-Commit": "a" * 40, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
    monkeypatch.setenv("HF_ENDPOINT", server.url("").rstrip("/"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    return server


def test_vae_downloaded_by_huggingface_hub_and_pinned(hub, online, monkeypatch):
    import huggingface_hub.constants as C

    from ambient_eval.fetch.hf import fetch_hub_files

    monkeypatch.setattr(C, "HF_HUB_OFFLINE", False)            # read at import time by huggingface_hub
    monkeypatch.setattr(C, "HF_HUB_CACHE", str(online.parent / "hf"))
    folder = fetch_hub_files(REPO, list(FILES), lambda reason: f"blocked: {reason}")
    assert {n: (folder / n).read_bytes() for n in FILES} == FILES
    assert all(hub.requests[f"/{REPO}/resolve/main/{n}"] >= 1 for n in FILES)   # fetched from the loopback Hub
    sha = hashlib.sha256(FILES["diffusion_pytorch_model.safetensors"]).hexdigest()
    assert pinned_sha256(online, f"hf/{REPO}/diffusion_pytorch_model.safetensors") == sha


@pytest.mark.parametrize("env", [{"AMBIENT_EVAL_OFFLINE": "1"}, {"CI": "1"}])
def test_vae_offline_and_ci_never_open_a_socket(online, monkeypatch, tmp_path, env):
    from ambient_eval.models import latent as L

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv(L.VAE_ENV, raising=False)
    monkeypatch.setattr(L, "_cache_dirs", lambda: [str(tmp_path / "empty-cache")])
    calls = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, *a: calls.append(a))
    with pytest.raises(AmbientError, match=r"nothing was downloaded: .*(offline|CI).*huggingface-cli download "
                                           r"example/tiny-vae config.json"):
        L.find_vae(None, REPO)
    assert calls == []
