"""Files from the Hugging Face Hub (the latent VAE) fetched on first use by huggingface_hub itself (its
cache, HF_ENDPOINT, HF_HOME, proxies, its own checks), under our rules: never offline or in CI, and the
hash of each file pinned in our lock file on first use and checked ever after."""
from __future__ import annotations

import os
from pathlib import Path

from ambient_eval.errors import AmbientError
from ambient_eval.fetch.policy import blocked_reason
from ambient_eval.fetch.remote import RemoteFile, verify_file

DEFAULT_ENDPOINT = "https://huggingface.co"


def hub_url(repo_id: str, filename: str) -> str:
    """The file's resolve URL on $HF_ENDPOINT (default huggingface.co)."""
    endpoint = os.environ.get("HF_ENDPOINT", "").rstrip("/") or DEFAULT_ENDPOINT
    return f"{endpoint}/{repo_id}/resolve/main/{filename}"


def fetch_hub_files(repo_id: str, filenames: list[str], blocked_message) -> Path:
    """Folder holding `filenames` of `repo_id` (huggingface_hub's snapshot folder), downloaded when allowed.

    `blocked_message(reason)`: the one-paragraph error for offline / CI (names files, URL and where to put them).
    """
    reason = blocked_reason()
    if reason is not None:
        raise AmbientError(blocked_message(reason))
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise AmbientError(f"Downloading '{repo_id}' needs the 'huggingface-hub' package: pip install "
                           "'ambient-eval[diffusers]'.") from e
    endpoint = os.environ.get("HF_ENDPOINT") or None
    paths = []
    for filename in filenames:
        try:
            paths.append(Path(hf_hub_download(repo_id, filename, endpoint=endpoint)))
        except Exception as e:  # noqa: BLE001 - huggingface_hub raises many types; all mean "not fetched"
            raise AmbientError(f"Could not download {hub_url(repo_id, filename)}: {type(e).__name__}: "
                               f"{' '.join(str(e).split())[:300]}. {blocked_message('the download failed')}") from None
    for filename, path in zip(filenames, paths):
        remote = RemoteFile(url=hub_url(repo_id, filename), file_name=f"{repo_id}/{filename}", subdir="hf",
                            what=f"Hugging Face file of '{repo_id}'")
        verify_file(remote, path)            # pinned on first use, checked ever after
    return paths[0].parent
