"""The `stats` command as API functions: `stats(...)` -> StatsResult (metrics/fid_result.py) and
`compute_stats(...)` -> FeatureStats, the reference statistics later `fid` runs compare against."""
from __future__ import annotations

import os
from typing import Any

from ambient_eval.data.inputs import open_input
from ambient_eval.errors import AmbientError
from ambient_eval.features.cache import feature_cache
from ambient_eval.metrics import compute as fid_compute
from ambient_eval.metrics.fid_result import StatsResult
from ambient_eval.metrics.fid_run import DEFAULTS
from ambient_eval.metrics.selection import output_for


def compute_stats(source: Any, *, features: str = "inception", output: str | None = None,
                  weights: str | None = None, batch_size: int = DEFAULTS.batch_size, device: str = "auto",
                  cache: Any = True, cache_dir: str | os.PathLike | None = None, max_images: int | None = None,
                  subset_seed: int = 0, skip_bad: bool = False):
    """Mean/covariance (float64) of SOURCE's features with provenance -> ambient_eval.metrics.stats.FeatureStats."""
    from ambient_eval.features import get_extractor
    from ambient_eval.metrics.stats import FeatureStats, stats_from_features

    src = open_input(source, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad, what="source")
    if isinstance(src, FeatureStats):
        raise AmbientError(f"'{source}' is already a statistics file; pass images to `stats`.")
    if len(src) < 2:
        raise AmbientError(f"'{source}' has {len(src)} image(s); statistics need at least 2.")
    ex = get_extractor(features, weights=weights, device=device)
    out = output or output_for("fid", ex)
    if out not in ex.outputs:
        raise AmbientError(f"Extractor '{ex.name}' has no output '{out}'; it has {list(ex.outputs)}.")
    from ambient_eval.metrics.fid import warn_small_n

    warn_small_n(len(src), ex.outputs[out], "source")
    feats = fid_compute.features_of(src, ex, feature_cache(cache, cache_dir), batch_size)[out]
    return stats_from_features(feats, extractor=ex.name, mode=ex.mode, feature=out,
                               weights_sha256=ex.weights_sha256, source_fingerprint=src.fingerprint())


def stats(source: Any, *, features: str = "inception", output: str | None = None, weights: str | None = None,
          batch_size: int = DEFAULTS.batch_size, device: str = "auto", cache: Any = True,
          cache_dir: str | os.PathLike | None = None, max_images: int | None = None, subset_seed: int = 0,
          skip_bad: bool = False) -> StatsResult:
    """Reference statistics of SOURCE for later `fid` runs (`ambient-eval stats`).

    Args:
        source: Folder, zip, .npz/.npy, builtin:NAME, CIFAR/MNIST files, or an ImageSource.
        features: Extractor name (inception, inception-clean, vgg16, dinov2, clip, pixel, ...).
        output: Extractor output to summarise (default pool3 / fc2_relu / the first).
        weights: Weights file of the extractor.
        batch_size: Images per batch.
        device: auto, cpu, cuda or cuda:N.
        cache: Use the feature cache.
        cache_dir: Feature cache folder.
        max_images: Seeded random subset of at most N images.
        subset_seed: Seed of that subset.
        skip_bad: Skip unreadable images instead of stopping.

    Returns:
        A [StatsResult][ambient_eval.metrics.fid_result.StatsResult]; `.save("ref.npz")` writes the file.

    Examples:
        >>> import ambient_eval as ae
        >>> ae.stats("data/train.zip").save("reference_stats/train.npz")   # doctest: +SKIP
    """
    return StatsResult(compute_stats(source, features=features, output=output, weights=weights,
                                     batch_size=batch_size, device=device, cache=cache, cache_dir=cache_dir,
                                     max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad))
