"""Weights: find the file, hash it once, warn when it is not the official one.

Resolution order (SPEC "Weights and reference statistics"):
  1. an explicit path (`--weights PATH` / `weights=`),
  2. `$AMBIENT_EVAL_WEIGHTS/<official file name>`,
  3. the libraries' own caches (torch hub checkpoints, clean-fid's /tmp copy, open_clip / CLIP caches),
  4. our download cache, fetched there on first use (weights_fetch.py; never offline or in CI).
"""
from __future__ import annotations

import glob
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ambient_eval.errors import AmbientError
from ambient_eval.files.hashing import cached_sha256, official_hash_text

log = logging.getLogger(__name__)

WEIGHTS_ENV = "AMBIENT_EVAL_WEIGHTS"


class WeightsWarning(UserWarning):
    """A weights file is not the official one: numbers are not comparable with published ones."""


@dataclass(frozen=True)
class WeightsFile:
    """One official weights file an extractor can use."""

    file_name: str                          # official file name (looked up under $AMBIENT_EVAL_WEIGHTS)
    url: str                                # official download URL (fetched on first use when allowed)
    sha256: str | None                      # official SHA-256 (None: not published / unknown)
    sha256_prefix: str | None = None        # leading hex digits published in the file name (torch hub)
    cache_globs: Callable[[], list[str]] = lambda: []   # library cache locations (glob patterns)


@dataclass(frozen=True)
class ResolvedWeights:
    """The weights file that will be used, with its hash and whether it is the official one."""

    path: Path                              # file actually used
    sha256: str                             # its SHA-256
    official: bool                          # sha256 equals a known official SHA-256
    spec: WeightsFile | None                # the official file it was found as (None: explicit path)


def torch_hub_checkpoints() -> list[str]:
    """torch hub's checkpoint dir (torch-fidelity, torchvision and torch.hub downloads land here)."""
    try:
        import torch

        hub = torch.hub.get_dir()
    except Exception:  # pragma: no cover - torch always present in practice
        hub = os.path.join(os.path.expanduser(os.getenv("TORCH_HOME", "~/.cache/torch")), "hub")
    return [os.path.join(hub, "checkpoints")]


def resolve_weights(extractor: str, files: Sequence[WeightsFile], explicit: str | os.PathLike | None,
                    *, hash_cache_dir: Path | None = None) -> ResolvedWeights:
    """Find the weights for `extractor` (see module docstring); AmbientError when none is found."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise AmbientError(
                f"Weights file '{path}' for extractor '{extractor}' does not exist or is not a file. "
                f"Pass the path of {_describe(files)}.")
        return _finish(extractor, path, None, files, hash_cache_dir)
    env_dir = os.environ.get(WEIGHTS_ENV)
    for spec in files:
        if env_dir and (Path(env_dir) / spec.file_name).is_file():
            return _finish(extractor, Path(env_dir) / spec.file_name, spec, files, hash_cache_dir)
    for spec in files:
        for pattern in spec.cache_globs():
            for hit in sorted(glob.glob(os.path.join(pattern, spec.file_name))):
                if Path(hit).is_file():
                    return _finish(extractor, Path(hit), spec, files, hash_cache_dir)
    from ambient_eval.features.weights_fetch import fetch_weights

    path, spec = fetch_weights(extractor, files, lambda reason, dest: missing_message(
        extractor, files, env_dir, reason=reason, download_path=dest))
    return _finish(extractor, path, spec, files, hash_cache_dir)


def missing_message(extractor: str, files: Sequence[WeightsFile], env_dir: str | None, *,
                    reason: str = "", download_path: Path | None = None) -> str:
    """One paragraph: which file, its SHA-256, the official URL, why nothing was downloaded, where to put it."""
    first = files[0]
    where = (f"put it in ${WEIGHTS_ENV} (currently '{env_dir}')" if env_dir
             else f"put it in a folder and set ${WEIGHTS_ENV} to that folder")
    caches = [p for spec in files for p in spec.cache_globs()]
    alt = "".join(f" Also accepted: '{s.file_name}' (SHA-256 {official_hash_text(s)}, {s.url})."
                  for s in files[1:])
    return (f"Weights for extractor '{extractor}' were not found: need '{first.file_name}' "
            f"(SHA-256 {official_hash_text(first)}), official URL {first.url}. Nothing was downloaded: "
            f"{reason or 'downloading is off'}. Fetch the file on a machine with internet access, then pass "
            f"it with --weights PATH, or {where}, or place it at '{download_path}', or in a library cache "
            f"({', '.join(caches) or 'none'}).{alt}")


def _describe(files: Sequence[WeightsFile]) -> str:
    return " or ".join(f"'{s.file_name}' ({s.url})" for s in files)


def _finish(extractor: str, path: Path, spec: WeightsFile | None, files: Sequence[WeightsFile],
            hash_cache_dir: Path | None) -> ResolvedWeights:
    from ambient_eval.features.cache import default_cache_root

    sha = cached_sha256(path, hash_cache_dir or default_cache_root())
    match = [s for s in files if _is_official(sha, s)]
    official = bool(match)
    if official:
        spec = match[0]
    else:
        known = ", ".join(f"{s.file_name}: {official_hash_text(s)}" for s in files)
        if not any(s.sha256 or s.sha256_prefix for s in files):
            msg = (f"Weights '{path}' for extractor '{extractor}' (SHA-256 {sha}) cannot be verified: no "
                   f"official SHA-256 of {known.replace(': unknown', '')} is known to ambient-eval. The hash "
                   f"is recorded; compare it with your source before comparing results with published numbers.")
            warnings.warn(msg, WeightsWarning, stacklevel=3)
            return ResolvedWeights(path=path, sha256=sha, official=False, spec=spec)
        msg = (f"Weights '{path}' for extractor '{extractor}' have SHA-256 {sha}, which is not the "
               f"official file ({known}); results are NOT comparable with published numbers.")
        warnings.warn(msg, WeightsWarning, stacklevel=3)
    return ResolvedWeights(path=path, sha256=sha, official=official, spec=spec)


def _is_official(sha: str, spec: WeightsFile) -> bool:
    # Full hash when published; otherwise torch hub's file-name prefix (what torch hub itself checks).
    if spec.sha256:
        return sha == spec.sha256
    return bool(spec.sha256_prefix) and sha.startswith(spec.sha256_prefix)


def load_state_dict(path: Path, extractor: str) -> dict[str, Any]:
    """Tensors from a safetensors file or a torch.save'd state dict (weights_only: never unpickles code)."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path), device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise AmbientError(
            f"Cannot read weights file '{path}' for extractor '{extractor}': {str(e).splitlines()[0]}. "
            "It must be a state dict saved with torch.save or a .safetensors file (pickled models "
            "with code are refused).") from e
    for wrapper in ("state_dict", "model"):  # common checkpoint containers
        if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
            sd = sd[wrapper]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise AmbientError(f"Weights file '{path}' for extractor '{extractor}' does not hold a state dict "
                           "of tensors. Pass the official weights file.")
    return sd


def load_into(module: Any, state_dict: dict[str, Any], path: Path, extractor: str, strict: bool = True) -> None:
    """module.load_state_dict with an AmbientError naming missing / unexpected keys."""
    try:
        module.load_state_dict(state_dict, strict=strict)
    except RuntimeError as e:
        raise AmbientError(
            f"Weights file '{path}' does not fit the '{extractor}' network: "
            f"{' '.join(str(e).split())[:400]}. Pass the official weights file for this extractor.") from e
