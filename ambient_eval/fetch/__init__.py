"""Fetch on first use: weights and reference statistics downloaded into our cache, verified.

policy.py  when the network may be used (--offline, AMBIENT_EVAL_OFFLINE, CI), where files go, mirrors
http.py    one resumable HTTP download (Range, retries with backoff, timeouts, progress in bytes)
pins.py    the SHA-256 lock file: the first hash seen of a file without a published one
remote.py  RemoteFile and ensure(): cached file checked, else locked download, verified, renamed
"""
from __future__ import annotations

from ambient_eval.fetch.remote import RemoteFile, cached_path, ensure, verify_file  # noqa: F401
