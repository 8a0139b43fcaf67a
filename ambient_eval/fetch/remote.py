"""A file fetched on first use: found in our download cache (and checked), or downloaded once, under a
file lock, into `<name>.part`, verified, then renamed into place. Nothing is ever half-written.

Verification: the publisher's SHA-256 (or the hash prefix torch hub puts in file names) when there is
one; otherwise the hash seen first is pinned in the lock file (pins.py) and every later use is checked.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ambient_eval.errors import AmbientError
from ambient_eval.fetch import pins, policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteFile:
    """One file that can be fetched on first use."""

    url: str                          # official URL (AMBIENT_EVAL_MIRROR may redirect it)
    file_name: str                    # name in the cache (the official file name)
    subdir: str                       # cache subfolder: "weights" or "refs"
    sha256: str | None = None         # published SHA-256 (None: not published; pinned on first download)
    sha256_prefix: str | None = None  # published leading hex digits (torch hub file names)
    what: str = "file"                # what it is, for messages ("weights of extractor 'inception'")
    alternatives: str = ""            # other places the user may put it instead (a sentence)

    @property
    def key(self) -> str:
        """Its key in the lock file."""
        return f"{self.subdir}/{self.file_name}"

    def expected_text(self) -> str:
        """The hash to check, as shown to the user (the weights table's wording)."""
        from ambient_eval.files.hashing import official_hash_text

        text = official_hash_text(self)
        return "not published (pinned on first download)" if text == "unknown" else text


def cached_path(remote: RemoteFile, root: Path | None = None) -> Path:
    """Where `remote` lives in the download cache (present or not)."""
    return (root or policy.downloads_root()) / remote.subdir / remote.file_name


def manual_steps(remote: RemoteFile, dest: Path) -> str:
    """The sentence telling a user how to place the file by hand."""
    sha = remote.sha256 or ""
    alt = f" {remote.alternatives}" if remote.alternatives else ""
    check = f" and check that its SHA-256 is {sha}" if sha else ""
    return (f"To place it by hand: on a machine with internet access download {remote.url} (e.g. "
            f"`curl -L -o {remote.file_name} {remote.url}`){check}, then copy it to '{dest}'.{alt}")


def _mismatch(remote: RemoteFile, path: Path, got: str, expected: str, how: str) -> AmbientError:
    return AmbientError(
        f"'{path}' ({remote.what}) has SHA-256 {got}, but {how} SHA-256 is {expected}: the file changed or "
        f"is not the official one, so it is refused. Delete it and run again to download it anew "
        f"({remote.url}), or put the official file there.")


def verify_file(remote: RemoteFile, path: Path, root: Path | None = None, *, fresh: bool = False) -> str:
    """SHA-256 of `path` checked against the published hash or the pinned one (AmbientError on mismatch).

    `fresh`: hash the bytes again instead of using the (path, size, mtime) memo.
    """
    from ambient_eval.files.hashing import cached_sha256

    root = root or policy.downloads_root()
    if fresh:
        from ambient_eval.files.hashing import sha256_file

        got = sha256_file(path)
    else:
        got = cached_sha256(path, root)
    if remote.sha256:
        if got != remote.sha256:
            raise _mismatch(remote, path, got, remote.sha256, "the published")
        return got
    if remote.sha256_prefix and not got.startswith(remote.sha256_prefix):
        raise _mismatch(remote, path, got, remote.sha256_prefix + "...", "the published (prefix of the)")
    pinned = pins.pinned_sha256(root, remote.key)
    if pinned is None:
        pins.pin(root, remote.key, got, remote.url)
    elif got != pinned:
        raise _mismatch(remote, path, got, pinned, f"the pinned ({root / pins.PINS_FILE})")
    return got


def blocked_message(remote: RemoteFile, reason: str, dest: Path) -> str:
    """Offline / CI: which file, its URL, its hash and where to put it."""
    return (f"'{remote.file_name}' ({remote.what}) is needed but not downloaded, and {reason}. URL "
            f"{remote.url}; SHA-256 {remote.expected_text()}. " + manual_steps(remote, dest) +
            " Or fetch it with `ambient-eval refs fetch` / any ambient-eval command on a connected machine "
            f"and copy the folder '{dest.parent.parent}' here (set {policy.DOWNLOADS_ENV} to where it lies).")


def ensure(remote: RemoteFile, *, root: Path | None = None, timeout: float | None = None,
           retries: int | None = None, backoff_s: float = policy.DEFAULTS.backoff_s):
    """Path of `remote` in the cache, downloading it first when absent and allowed (see module doc)."""
    from filelock import FileLock, Timeout

    from ambient_eval.fetch.http import DownloadError, download, validator_path

    root = root or policy.downloads_root()
    dest = cached_path(remote, root)
    if dest.is_file():
        verify_file(remote, dest, root)
        return dest
    reason = policy.blocked_reason()
    if reason is not None:
        raise AmbientError(blocked_message(remote, reason, dest))
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise AmbientError(f"Cannot create the download cache folder '{dest.parent}': {e.strerror or e}. "
                           f"Set {policy.DOWNLOADS_ENV} to a folder you can write to.") from e
    lock = FileLock(str(dest) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:                    # another process (or torchrun rank) is downloading it: wait
        log.warning("waiting for another process to finish downloading %s", dest.name)
        lock.acquire()
    try:
        if dest.is_file():             # the other process finished it
            verify_file(remote, dest, root)
            return dest
        part = dest.with_name(dest.name + ".part")
        url = policy.mirrored(remote.url)
        for attempt in range(2):   # a second, fresh try when a resumed .part turns out to be stale
            try:
                stats = download(url, part, timeout=policy.timeout_s() if timeout is None else timeout,
                                 retries=policy.retries() if retries is None else retries, backoff_s=backoff_s,
                                 chunk=policy.DEFAULTS.chunk_bytes, desc=f"download {remote.file_name}")
            except DownloadError as e:
                raise AmbientError(f"{e} {manual_steps(remote, dest)}") from None
            try:
                verify_file(remote, part, root, fresh=True)
                break
            except AmbientError as e:
                part.unlink(missing_ok=True)   # a wrong file is never kept, nor resumed from
                if attempt == 0 and stats.resumed_from:
                    log.warning("%s: the resumed partial file was stale; downloading it again", remote.file_name)
                    continue
                raise AmbientError(f"Downloaded {url}, but it is refused: {e}") from None
        os.replace(part, dest)
        validator_path(part).unlink(missing_ok=True)
        return dest
    finally:
        lock.release()
