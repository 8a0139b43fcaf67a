"""Are two results comparable? Checked per METRIC: each metric's own feature space.

A fid results.json records, for every metric, the extractor, mode, feature and weights it was
computed with (settings.per_metric); KID on pixel-8 and KID on pixel-4 are different numbers even
when both FIDs used Inception. Results without per_metric (memorization, reproducibility, older
files) fall back to their top-level extractor settings. Used by the gate, the repeats combiner,
the history report and `fid --compare`.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping

from ambient_eval.errors import AmbientError

# Settings every metric of a result shares (what was evaluated against what).
SHARED_KEYS = ("n_generated", "reference_fingerprint")
# What defines a metric's feature space.
SPACE_KEYS = ("extractor", "mode", "feature", "weights_sha256")
# results.metrics key -> settings.per_metric key (the metric that produced it).
_GROUP = {"fid": "fid", "kid": "kid", "kid_std": "kid", "is": "is", "is_std": "is", "precision": "pr",
          "recall": "pr", "density": "dc", "coverage": "dc", "adm_is": "adm-is", "adm_is_std": "adm-is",
          "adm_precision": "adm-pr", "adm_recall": "adm-pr", "clipscore_std": "clipscore",
          "leakage_corrected": "leakage"}


def metric_group(name: str) -> str:
    """per_metric key of a results.metrics key: 'recall' -> 'pr', 'fd_dinov2' -> 'fid'."""
    return "fid" if name.startswith("fd_") else _GROUP.get(name, name)


def feature_space(settings: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """The feature space `metric` was computed in (per_metric entry, else the top-level settings)."""
    per = settings.get("per_metric")
    entry = per.get(metric_group(metric)) if isinstance(per, Mapping) else None
    src = entry if isinstance(entry, Mapping) else settings
    return {k: src.get(k) for k in SPACE_KEYS if k in src}


def describe(space: Mapping[str, Any]) -> str:
    """'pixel-4 (mode pixel, feature pixel, weights abc123456789)'."""
    rest = [f"mode {space['mode']}" if space.get("mode") is not None else None,
            f"feature {space['feature']}" if space.get("feature") is not None else None,
            f"weights {str(space['weights_sha256'])[:12]}" if space.get("weights_sha256") else None]
    rest = [r for r in rest if r]
    return f"{space.get('extractor')}" + (f" ({', '.join(rest)})" if rest else "")


def _differs(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The first SPACE_KEYS setting that differs, or None."""
    for k in SPACE_KEYS:
        va, vb = a.get(k), b.get(k)
        if va is None or vb is None:
            continue  # unknown on one side (an older or foreign file): cannot check
        if va != vb:
            return k
    return None


def problem(a: Mapping[str, Any], b: Mapping[str, Any], metrics: Iterable[str], *, label_a: str = "first",
            label_b: str = "second", shared: bool = True) -> str | None:
    """Why settings `a` and `b` cannot be compared on `metrics` (one sentence), or None."""
    if shared:
        for key in SHARED_KEYS:
            va, vb = a.get(key), b.get(key)
            if va != vb:
                return (f"setting '{key}' is {va if va is not None else '(missing)'!r} in {label_a} but "
                        f"{vb if vb is not None else '(missing)'!r} in {label_b}; evaluate both with the same "
                        f"{key}")
    for m in metrics:
        sa, sb = feature_space(a, m), feature_space(b, m)
        key = _differs(sa, sb)
        if key is not None:
            return (f"metric '{m}' was computed in feature space {describe(sa)} in {label_a} but in "
                    f"{describe(sb)} in {label_b} (setting '{key}' is {sa.get(key)!r} vs {sb.get(key)!r}); "
                    f"evaluate both with the same --features for {m}")
    return None


def check_comparable(a: Mapping[str, Any], b: Mapping[str, Any], metrics: Iterable[str], *,
                     label_a: str = "first", label_b: str = "second", what: str = "Results",
                     shared: bool = True) -> None:
    """AmbientError naming the metric and both feature spaces (or the shared setting) that differ."""
    why = problem(a, b, metrics, label_a=label_a, label_b=label_b, shared=shared)
    if why is not None:
        raise AmbientError(f"{what} are not comparable: {why}.")


def signature(settings: Mapping[str, Any], metric: str) -> str:
    """Short hash of what must match for two values of `metric` to share one trend line."""
    key = json.dumps([[settings.get(k) for k in SHARED_KEYS], feature_space(settings, metric)],
                     sort_keys=True, default=str)
    return hashlib.sha256(key.encode()).hexdigest()[:6]
