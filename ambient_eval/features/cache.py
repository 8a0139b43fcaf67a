"""Content-addressed on-disk feature cache, shared by every command, and a small store of values
computed from cached content (the Frechet distance of two statistics: `get_value` / `put_value`).

Key = sha256 of how the features were made: source fingerprint, extractor name, preprocessing
mode, weights SHA-256, output names and dims, and the ambient-eval version. Files are written
atomically; an unreadable file is a cache miss (and gets rewritten), never a crash.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ambient_eval.features.base import FeatureExtractor

log = logging.getLogger(__name__)

CACHE_ENV = "AMBIENT_EVAL_CACHE"
CACHE_FORMAT = 1  # bump when the file layout or the meaning of a key changes


def default_cache_root() -> Path:
    """$AMBIENT_EVAL_CACHE, else ~/.cache/ambient-eval/features."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ambient-eval" / "features"


class FeatureCache:
    """Features on disk under `root/<key[:2]>/<key>.npz`, one file per (source, extractor) pair."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.hits = 0      # lookups answered from disk (tests and benchmarks read these)
        self.misses = 0    # lookups that needed extraction

    def key(self, source_fingerprint: str, extractor: FeatureExtractor) -> str:
        """The content address of `extractor`'s features of the source with this fingerprint."""
        from ambient_eval import __version__
        from ambient_eval.files.hashing import sha256_json

        return sha256_json({
            "format": CACHE_FORMAT,
            "source": source_fingerprint,
            "extractor": extractor.name,
            "mode": extractor.mode,
            "weights_sha256": extractor.weights_sha256,
            "outputs": dict(extractor.outputs),
            "version": __version__,
        })

    def path(self, key: str) -> Path:
        """File holding the features for `key`."""
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str, outputs: dict[str, int]) -> dict[str, np.ndarray] | None:
        """Cached {name: NC float32} or None (absent, unreadable, or not the expected shape)."""
        p = self.path(key)
        if not p.is_file():
            self.misses += 1
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                feats = {name: np.asarray(z[name], dtype=np.float32) for name in outputs}
            n = {f.shape[0] for f in feats.values()}
            ok = len(n) == 1 and all(f.ndim == 2 and f.shape[1] == outputs[k] for k, f in feats.items())
            if not ok:
                raise ValueError(f"shapes {[f.shape for f in feats.values()]} do not match {outputs}")
        except Exception as e:  # corrupt / truncated / foreign file: recompute and overwrite
            log.warning("Ignoring unreadable feature cache file %s (%s); recomputing.", p, e)
            self.misses += 1
            return None
        self.hits += 1
        return feats

    def put(self, key: str, feats: dict[str, np.ndarray]) -> None:
        """Store features atomically; a cache that cannot be written only costs time later."""
        from ambient_eval.files import atomic
        from ambient_eval.errors import AmbientError

        try:
            atomic.save_npz(self.path(key), **{k: np.asarray(v, np.float32) for k, v in feats.items()})
        except (OSError, AmbientError) as e:
            log.warning("Could not write feature cache %s: %s", self.path(key), e)

    # ---- computed values -------------------------------------------------------------------
    # A deterministic result of content-addressed inputs, worth keeping when it is expensive: the
    # Frechet distance of two statistics needs a 2048 x 2048 general eigensolve (torch-fidelity's
    # arithmetic) that takes 2-10 s on a CPU when N <= 2048, longer than the rest of a warm run.

    def value_path(self, key: str) -> Path:
        """File holding the computed value for `key`."""
        return self.root / "values" / key[:2] / f"{key}.json"

    def get_value(self, key: str) -> float | None:
        """A stored finite float, or None (absent or unreadable: recomputed, never a crash)."""
        import json
        import math

        p = self.value_path(key)
        if not p.is_file():
            return None
        try:
            value = json.loads(p.read_text())["value"]
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"not a finite number: {value!r}")
        except Exception as e:  # corrupt / foreign file: recompute and overwrite
            log.warning("Ignoring unreadable value cache file %s (%s); recomputing.", p, e)
            return None
        return float(value)

    def put_value(self, key: str, value: float, **about) -> None:
        """Store a value atomically (with a description); failure to write only costs time later."""
        from ambient_eval.files import atomic
        from ambient_eval.errors import AmbientError

        try:
            atomic.write_json(self.value_path(key), {"value": float(value), **about})
        except (OSError, AmbientError) as e:
            log.warning("Could not write value cache %s: %s", self.value_path(key), e)


def feature_cache(cache: Any, cache_dir: str | os.PathLike | None) -> "FeatureCache | None":
    """The cache an API call uses: None for cache=False/None, a FeatureCache (in `cache_dir`) for True,
    else the object given."""
    if cache is False or cache is None:
        return None
    if cache is True:
        return FeatureCache(Path(cache_dir) if cache_dir else None)
    return cache
