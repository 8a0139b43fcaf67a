"""Weights fetched on first use: the last step of resolve_weights (after --weights, $AMBIENT_EVAL_WEIGHTS
and the libraries' caches), through ambient_eval.fetch (download cache, verified, resumable, locked)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ambient_eval.fetch import RemoteFile, cached_path, ensure, verify_file
from ambient_eval.fetch.policy import blocked_reason


def remote_for(extractor: str, spec) -> RemoteFile:
    """The RemoteFile of one official weights file (a features.weights.WeightsFile)."""
    return RemoteFile(url=spec.url, file_name=spec.file_name, subdir="weights", sha256=spec.sha256,
                      sha256_prefix=spec.sha256_prefix, what=f"weights of extractor '{extractor}'",
                      alternatives="Or pass it with --weights PATH, or put it in $AMBIENT_EVAL_WEIGHTS.")


def find_downloaded(extractor: str, files: Sequence) -> tuple[Path, object] | None:
    """(path, spec) of an official file already in the download cache (checked), else None."""
    for spec in files:
        remote = remote_for(extractor, spec)
        path = cached_path(remote)
        if path.is_file():
            verify_file(remote, path)
            return path, spec
    return None


def fetch_weights(extractor: str, files: Sequence, missing_message) -> tuple[Path, object]:
    """(path, spec): the cached download, else the first official file downloaded now.

    Offline / CI: AmbientError(missing_message(reason, destination)): which file, hash, URL, where to put it.
    """
    hit = find_downloaded(extractor, files)
    if hit is not None:
        return hit
    reason = blocked_reason()
    if reason is not None:
        from ambient_eval.errors import AmbientError

        raise AmbientError(missing_message(reason, cached_path(remote_for(extractor, files[0]))))
    return ensure(remote_for(extractor, files[0])), files[0]
