"""When ambient-eval may download, where downloads go, and how URLs map onto a mirror.

Environment (documented in docs/weights.md, "Weights and reference statistics on first use"):
  AMBIENT_EVAL_OFFLINE=1            never touch the network (the root option --offline sets it)
  CI=<anything but 0/false>         no download unless AMBIENT_EVAL_ALLOW_DOWNLOAD=1
  AMBIENT_EVAL_DOWNLOADS=DIR        download cache (default $XDG_CACHE_HOME/ambient-eval/downloads,
                                    else ~/.cache/ambient-eval/downloads)
  AMBIENT_EVAL_MIRROR=URL           https://host/path is fetched from URL/host/path instead
  AMBIENT_EVAL_DOWNLOAD_TIMEOUT=S   seconds without data before a try is abandoned (default 30)
  AMBIENT_EVAL_DOWNLOAD_RETRIES=N   extra tries after a timeout, a cut connection or a 5xx (default 4)
Proxies come from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), as urllib reads them.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

OFFLINE_ENV = "AMBIENT_EVAL_OFFLINE"
ALLOW_ENV = "AMBIENT_EVAL_ALLOW_DOWNLOAD"
DOWNLOADS_ENV = "AMBIENT_EVAL_DOWNLOADS"
MIRROR_ENV = "AMBIENT_EVAL_MIRROR"
TIMEOUT_ENV = "AMBIENT_EVAL_DOWNLOAD_TIMEOUT"
RETRIES_ENV = "AMBIENT_EVAL_DOWNLOAD_RETRIES"


@dataclass(frozen=True)
class FetchDefaults:
    timeout_s: float = 30.0      # socket timeout (connect and each read), seconds
    retries: int = 4             # extra tries after a timeout, a cut connection or an HTTP 5xx
    backoff_s: float = 1.0       # wait before the first retry, seconds; doubles after each retry
    chunk_bytes: int = 1 << 20   # bytes read per call


DEFAULTS = FetchDefaults()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


_LOCAL_ONLY: list[str] = []   # reasons of active `local_only()` blocks (innermost last)


@contextlib.contextmanager
def local_only(reason: str) -> Iterator[None]:
    """Within the block nothing is downloaded: lookups see only files already on this machine."""
    _LOCAL_ONLY.append(reason)
    try:
        yield
    finally:
        _LOCAL_ONLY.pop()


def blocked_reason() -> str | None:
    """Why downloading is not allowed now (None: allowed)."""
    if _LOCAL_ONLY:
        return _LOCAL_ONLY[-1]
    if _truthy(os.environ.get(OFFLINE_ENV)):
        return f"offline mode (`ambient-eval --offline` or {OFFLINE_ENV}=1) never touches the network"
    if _truthy(os.environ.get("CI")) and os.environ.get(ALLOW_ENV, "").strip() != "1":
        return f"CI is set, and CI never downloads unless {ALLOW_ENV}=1"
    return None


def downloads_root() -> Path:
    """$AMBIENT_EVAL_DOWNLOADS, else $XDG_CACHE_HOME/ambient-eval/downloads, else ~/.cache/..."""
    env = os.environ.get(DOWNLOADS_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ambient-eval" / "downloads"


def mirrored(url: str) -> str:
    """`url` on $AMBIENT_EVAL_MIRROR (MIRROR/host/path), or `url` itself when no mirror is set."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return url
    parts = urlsplit(url)
    tail = parts.netloc + parts.path + (f"?{parts.query}" if parts.query else "")
    return mirror.rstrip("/") + "/" + tail


def _env_number(name: str, default: float, cast=float):
    try:
        return cast(os.environ[name])
    except (KeyError, ValueError):
        return default


def timeout_s() -> float:
    """Socket timeout in seconds ($AMBIENT_EVAL_DOWNLOAD_TIMEOUT, default 30)."""
    return max(0.01, _env_number(TIMEOUT_ENV, DEFAULTS.timeout_s))


def retries() -> int:
    """Extra tries after a transient failure ($AMBIENT_EVAL_DOWNLOAD_RETRIES, default 4)."""
    return max(0, _env_number(RETRIES_ENV, DEFAULTS.retries, int))
