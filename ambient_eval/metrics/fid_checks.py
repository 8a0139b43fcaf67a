"""What `fid` refuses before any feature is extracted: sizes a metric cannot handle, and a statistics file
whose feature space differs from the extractor the other input goes through."""
from __future__ import annotations

from typing import Any, Sequence

from ambient_eval.errors import AmbientError


def check_sizes(metrics: Sequence[str], n_gen: int | None, n_ref: int | None, kid_subset_size: int,
                 is_splits: int, pr_k: int, dc_k: int) -> None:
    """Refuse sizes a metric cannot handle, before any feature is extracted."""
    from ambient_eval.metrics.kid import check_kid_n

    if "kid" in metrics and n_gen is not None and n_ref is not None:
        check_kid_n(n_gen, n_ref, kid_subset_size)
    if "is" in metrics and n_gen is not None and n_gen < is_splits:
        raise AmbientError(f"Inception Score needs at least {is_splits} generated images (one per split); "
                           f"got {n_gen}.")
    for m, k, what in (("pr", pr_k, "precision/recall"), ("dc", dc_k, "density/coverage"),
                       ("adm-pr", 3, "ADM precision/recall")):
        if m in metrics and n_gen is not None and n_ref is not None and min(n_gen, n_ref) <= k:
            raise AmbientError(f"{what} with k={k} needs more than {k} images per set; got {n_gen} generated "
                               f"and {n_ref} reference. Use more images.")
    for what, n in (("generated", n_gen), ("reference", n_ref)):
        if n is not None and n < 2:
            raise AmbientError(f"The {what} input has {n} image(s); metrics need at least 2. Check the input.")


class StatsExtractor:
    """Stands in for an extractor when both inputs are statistics files (provenance only)."""

    def __init__(self, st) -> None:
        self.name, self.mode, self.outputs = st.extractor, st.mode, {st.feature: st.mu.shape[0]}
        self.weights_sha256, self.weights_official = st.weights_sha256, None
        self.default_output = st.feature


def check_stats_vs_extractor(st, ex, output: str, what: str) -> None:
    """check_comparable between a stats file and what `ex` would produce (before extraction)."""
    import numpy as np

    from ambient_eval.metrics.stats import FeatureStats, check_comparable

    would = FeatureStats(mu=np.zeros(ex.outputs[output]), sigma=np.zeros((0, 0)), n=None, extractor=ex.name,
                         mode=ex.mode, feature=output, weights_sha256=ex.weights_sha256)
    other = "reference" if what == "generated" else "generated"
    check_comparable(st, would, what_a=f"{what} stats", what_b=f"{other} features")


def explicit_fid_features(features: Any) -> bool:
    if isinstance(features, str):
        return any("=" not in s or s.strip().startswith("fid=") for s in features.split(",") if s.strip())
    return bool(features) and "fid" in features
