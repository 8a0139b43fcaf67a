"""Fixtures of the download tests: a loopback server and an online, isolated download cache."""
from __future__ import annotations

import pytest

from tests.fetch.loopback import LoopbackServer


@pytest.fixture
def server():
    s = LoopbackServer()
    yield s
    s.close()


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Downloads allowed (not offline, not CI), into tmp_path/downloads, short timeouts; returns the root."""
    monkeypatch.delenv("AMBIENT_EVAL_OFFLINE", raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AMBIENT_EVAL_MIRROR", raising=False)
    for proxy in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("AMBIENT_EVAL_DOWNLOAD_TIMEOUT", "2")
    monkeypatch.setenv("AMBIENT_EVAL_DOWNLOAD_RETRIES", "2")
    root = tmp_path / "downloads"
    monkeypatch.setenv("AMBIENT_EVAL_DOWNLOADS", str(root))
    return root
