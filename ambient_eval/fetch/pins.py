"""The SHA-256 lock file (`sha256-pins.json` in the download cache): for a file whose publisher gives
no hash, the hash seen on its first download is pinned here and every later use is checked against it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

PINS_FILE = "sha256-pins.json"


def _path(root: Path) -> Path:
    return root / PINS_FILE


def read_pins(root: Path) -> dict[str, dict]:
    """{key: {"sha256", "url", "pinned"}}; an unreadable lock file reads as empty (nothing pinned)."""
    try:
        data = json.loads(_path(root).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pinned_sha256(root: Path, key: str) -> str | None:
    """The pinned hash of `key` (None: never pinned)."""
    entry = read_pins(root).get(key)
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    return sha if isinstance(sha, str) and len(sha) == 64 else None


def pin(root: Path, key: str, sha256: str, url: str) -> None:
    """Record the first hash seen of `key` (atomic rewrite under a file lock)."""
    from filelock import FileLock

    from ambient_eval.files import atomic
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(_path(root)) + ".lock"):
        table = read_pins(root)
        if key in table:          # another process pinned it first: keep the first hash
            return
        table[key] = {"sha256": sha256, "url": url, "pinned": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        atomic.write_json(_path(root), table)
