"""Content fingerprints used in cache keys, result provenance and the checks of downloaded files."""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """SHA-256 of a canonical JSON encoding (sorted keys) of `obj`."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def official_hash_text(spec: Any) -> str:
    """A published file's SHA-256 as shown to users: the full hash, a prefix, or 'unknown'.

    `spec` has `sha256` and `sha256_prefix` (features.weights.WeightsFile, fetch.remote.RemoteFile).
    """
    if spec.sha256:
        return spec.sha256
    if getattr(spec, "sha256_prefix", None):
        return f"{spec.sha256_prefix}... (only this prefix is published)"
    return "unknown"


def cached_sha256(path: Path, cache_dir: Path) -> str:
    """SHA-256 of `path`, remembered by (absolute path, size, mtime, inode, ctime) in `cache_dir`.

    ctime and inode are what `touch -r` cannot forge: a file rewritten in place with the same size and
    a restored mtime gets a new ctime, a file replaced by another gets a new inode (issue 24, defect 4).
    """
    from ambient_eval.errors import AmbientError
    from ambient_eval.files import atomic

    path = Path(path)
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"
    index = Path(cache_dir) / "weights-sha256.json"
    table: dict[str, str] = {}
    try:
        table = json.loads(index.read_text())
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if isinstance(table.get(key), str) and len(table[key]) == 64:
        return table[key]
    sha = sha256_file(path)
    table[key] = sha
    try:
        atomic.write_json(index, table)
    except (OSError, AmbientError) as e:  # a read-only cache only costs a re-hash next time
        log.debug("could not record weights hash in %s: %s", index, e)
    return sha
