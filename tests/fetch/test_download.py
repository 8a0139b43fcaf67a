"""Fetch on first use against a real HTTP server on 127.0.0.1 (no mock of the HTTP client)."""
from __future__ import annotations

import hashlib
import os
import socket
import threading

import pytest

from ambient_eval.errors import AmbientError
from ambient_eval.fetch import RemoteFile, cached_path, ensure
from ambient_eval.fetch.pins import PINS_FILE, pinned_sha256

BODY = os.urandom(200_000)
SHA = hashlib.sha256(BODY).hexdigest()
FAST = dict(backoff_s=0.01)


def remote(url: str, sha: str | None = SHA, name: str = "w.bin", prefix: str | None = None) -> RemoteFile:
    return RemoteFile(url=url, file_name=name, subdir="weights", sha256=sha, sha256_prefix=prefix,
                      what="test file")


def test_first_use_downloads_then_reuses(server, online):
    url = server.add("/w.bin", BODY)
    path = ensure(remote(url), **FAST)
    assert path == cached_path(remote(url), online) and path.read_bytes() == BODY
    assert ensure(remote(url), **FAST) == path
    assert server.requests["/w.bin"] == 1                      # the second use is served from the cache
    assert not path.with_name("w.bin.part").exists()


def test_interrupted_download_resumes_with_range(server, online):
    half = len(BODY) // 2
    url = server.add("/w.bin", BODY, faults=[("cut", half)])
    with pytest.raises(AmbientError, match=r"connection closed after 100000 of 200000 bytes.*resumes"):
        ensure(remote(url), retries=0, **FAST)                  # the first run is interrupted at 50%
    dest = cached_path(remote(url), online)
    assert not dest.exists() and dest.with_name("w.bin.part").stat().st_size == half
    before = server.served["/w.bin"]
    assert ensure(remote(url), retries=0, **FAST).read_bytes() == BODY   # byte-identical
    assert server.served["/w.bin"] - before == len(BODY) - half          # only the missing half again
    assert server.ranges[-1] == f"bytes={half}-"


def test_stale_partial_file_is_downloaded_again(server, online):
    url = server.add("/w.bin", BODY)
    part = cached_path(remote(url), online).with_name("w.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"an older version of the file")         # resumed from, then refused by the hash
    assert ensure(remote(url), **FAST).read_bytes() == BODY
    assert server.requests["/w.bin"] == 2


def test_file_changed_upstream_between_runs_is_not_spliced(server, online):
    old = os.urandom(len(BODY))
    url = server.add("/w.bin", old, faults=[("cut", 50_000)])
    r = remote(url, sha=None)
    with pytest.raises(AmbientError):
        ensure(r, retries=0, **FAST)                             # 50 kB of the old file kept in .part
    server.add("/w.bin", BODY)                                   # the publisher replaces the file
    assert ensure(r, **FAST).read_bytes() == BODY                # If-Range: the whole new file, no splice
    assert server.served["/w.bin"] == 50_000 + len(BODY)
    assert pinned_sha256(online, r.key) == SHA


def test_cut_connection_is_retried_within_one_run(server, online):
    url = server.add("/w.bin", BODY, faults=[("cut", 5000), ("cut", 70_000)])
    assert ensure(remote(url), retries=3, **FAST).read_bytes() == BODY
    assert server.served["/w.bin"] == len(BODY)                 # every byte sent once


def test_wrong_hash_refused_and_no_file_left(server, online):
    url = server.add("/w.bin", BODY)
    bad = remote(url, sha="0" * 64)
    with pytest.raises(AmbientError, match=rf"refused.*SHA-256 {SHA}.*published SHA-256 is 0{{64}}"):
        ensure(bad, **FAST)
    dest = cached_path(bad, online)
    assert not dest.exists() and not dest.with_name("w.bin.part").exists()


def test_404_names_url_and_manual_steps_without_retry(server, online):
    url = server.url("/missing.bin")
    with pytest.raises(AmbientError) as e:
        ensure(remote(url, name="missing.bin"), retries=3, **FAST)
    msg = str(e.value)
    assert "HTTP 404" in msg and url in msg and "curl -L -o missing.bin" in msg
    assert str(cached_path(remote(url, name="missing.bin"), online)) in msg
    assert server.requests["/missing.bin"] == 1                 # no retry on a 4xx


def test_503_then_200_succeeds_after_a_retry(server, online):
    url = server.add("/w.bin", BODY, faults=[("status", 503)])
    assert ensure(remote(url), retries=2, **FAST).read_bytes() == BODY
    assert server.requests["/w.bin"] == 2


def test_503_every_time_gives_up_with_the_count(server, online):
    url = server.add("/w.bin", BODY, faults=[("status", 503)] * 5)
    with pytest.raises(AmbientError, match=r"failed after 3 tries: HTTP 503"):
        ensure(remote(url), retries=2, **FAST)


def test_stalling_server_times_out(server, online):
    url = server.add("/w.bin", BODY, faults=[("stall", 3.0)])
    with pytest.raises(AmbientError, match=r"no data for 0.3 s after 10 bytes.*AMBIENT_EVAL_DOWNLOAD_TIMEOUT"):
        ensure(remote(url), timeout=0.3, retries=0, **FAST)


def test_concurrent_fetches_download_once(server, online):
    url = server.add("/w.bin", BODY)
    server.delay_s = 0.02                                      # keep the first download in flight
    results, errors = [], []

    def worker():
        try:
            results.append(ensure(remote(url), **FAST).read_bytes())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and results == [BODY] * 3
    assert server.requests["/w.bin"] == 1


def _fetch_in_child(url: str, q) -> None:
    q.put(ensure(remote(url), **FAST).read_bytes() == BODY)


def test_two_processes_download_once(server, online):
    import multiprocessing as mp

    url = server.add("/w.bin", BODY)
    server.delay_s = 0.02                                      # the first download is still running...
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(url, q)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [q.get(timeout=5) for _ in procs] == [True, True]     # ...when the second process wants it
    assert server.requests["/w.bin"] == 1


def test_unpublished_hash_is_pinned_and_a_changed_file_refused(server, online):
    url = server.add("/w.bin", BODY)
    r = remote(url, sha=None)
    path = ensure(r, **FAST)
    assert pinned_sha256(online, r.key) == SHA and (online / PINS_FILE).is_file()
    path.write_bytes(BODY[::-1])                               # the cached file changes afterwards
    with pytest.raises(AmbientError, match=rf"SHA-256 {hashlib.sha256(BODY[::-1]).hexdigest()}.*pinned.*{SHA}"):
        ensure(r, **FAST)


def test_torch_hub_prefix_checked(server, online):
    url = server.add("/w.bin", BODY)
    with pytest.raises(AmbientError, match="prefix"):
        ensure(remote(url, sha=None, prefix="ffffffff"), **FAST)
    assert ensure(remote(url, sha=None, prefix=SHA[:8]), **FAST).read_bytes() == BODY


def test_mirror_maps_every_url(server, online, monkeypatch):
    server.add("/mirror/files.example.org/models/w.bin", BODY)
    monkeypatch.setenv("AMBIENT_EVAL_MIRROR", server.url("/mirror/"))
    assert ensure(remote("https://files.example.org/models/w.bin"), **FAST).read_bytes() == BODY


@pytest.fixture
def no_sockets(monkeypatch):
    """Any attempt to open a connection fails the test."""
    calls = []

    def refuse(self, *a, **k):
        calls.append(a)
        raise AssertionError(f"network used: connect{a}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return calls


@pytest.mark.parametrize("env, reason", [({"AMBIENT_EVAL_OFFLINE": "1"}, "offline mode"),
                                         ({"CI": "true"}, "CI never downloads unless AMBIENT_EVAL_ALLOW_DOWNLOAD=1")])
def test_offline_and_ci_never_open_a_socket(online, monkeypatch, no_sockets, env, reason):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    url = "http://127.0.0.1:9/w.bin"
    with pytest.raises(AmbientError) as e:
        ensure(remote(url))
    msg = str(e.value)
    assert reason in msg and url in msg and SHA in msg and str(cached_path(remote(url), online)) in msg
    assert no_sockets == []


def test_ci_downloads_when_allowed(server, online, monkeypatch):
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("AMBIENT_EVAL_ALLOW_DOWNLOAD", "1")
    assert ensure(remote(server.add("/w.bin", BODY)), **FAST).read_bytes() == BODY
