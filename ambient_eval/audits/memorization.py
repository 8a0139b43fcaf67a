"""Memorization scoring: per-sample nearest-neighbour table, copy flags, summary with bootstrap CIs.

Pure numpy/pandas on search results (D, I); no I/O. `memorization_run.py` does the I/O.

Definitions (SPEC "Memorization"): each generated sample's top-1 cosine similarity to the
training set in an L2-normalized embedding; a sample is flagged at threshold t when top-1 > t.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class MemorizationDefaults:
    k: int = 5                        # neighbours kept per sample
    top_n: int = 32                   # closest pairs shown in the report gallery (per model)
    quantiles: tuple[float, ...] = (0.50, 0.75, 0.90, 0.95, 0.99)  # of the top-1 similarity
    n_boot: int = 1000                # bootstrap resamples of the samples for CIs
    ci_level: float = 0.95            # two-sided percentile interval
    seed: int = 0                     # bootstrap seed
    carlini_alpha: float = 0.5        # Carlini et al. 2023, Sec. 5: alpha
    carlini_n: int = 50               # Carlini et al. 2023: size of the neighbourhood S_x
    carlini_delta: float = 1 / 3      # flagged when l < delta (SPEC: delta unconfirmed)


DEFAULTS = MemorizationDefaults()

# Default thresholds per embedding family (a sample is flagged when top-1 cosine > t).
DEFAULT_THRESHOLDS: dict[str, tuple[float, ...]] = {
    "sscd": (0.5, 0.6),               # Somepalli et al. 2023 (0.5); Zhang et al. 2023 (0.6)
    "dinov2": (0.90, 0.95, 0.99),     # Ambient papers (Daras et al. 2024); choice unconfirmed
    "pixel": (0.95, 0.98, 0.99),      # ours: Pearson correlation of pixels; JPEG-75 / noise copies
                                      # stay above 0.95, unrelated images rarely pass 0.9
    "clip": (0.90, 0.95, 0.98),       # ours, not published: near-duplicates in CLIP space
    "inception": (0.95, 0.98, 0.99),  # ours, not published: pool3 is non-negative, so cosines run high
}
PUBLISHED = {"sscd", "dinov2"}        # families whose thresholds come from papers

# Metric keys (results.json): the gate addresses them as memorization.<key>.
N = "n"
TOP1_MEAN = "top1_mean"
FRAC_CARLINI = "frac_carlini"


def frac_above_key(t: float) -> str:
    """'frac_above_0.95' (shortest round-trip repr: 0.90 -> 'frac_above_0.9')."""
    return f"frac_above_{float(t)!r}"


def quantile_key(q: float) -> str:
    """'top1_q95' for q = 0.95, 'top1_q50' for q = 0.5."""
    return f"top1_q{round(q * 100):d}"


def default_thresholds(family: str) -> tuple[float, ...]:
    """Thresholds for an embedding family; AmbientError names the families we know."""
    if family not in DEFAULT_THRESHOLDS:
        raise AmbientError(f"No default thresholds for embedding '{family}'. Pass --threshold T "
                           f"(repeatable), or use one of: {', '.join(DEFAULT_THRESHOLDS)}.")
    return DEFAULT_THRESHOLDS[family]


# The one threshold a single-threshold score uses (reproducibility RP / memorization / GL), per family;
# always one of DEFAULT_THRESHOLDS[family], so memorization and reproducibility agree.
COPY_THRESHOLD: dict[str, float] = {"sscd": 0.6, "dinov2": 0.95, "pixel": 0.95, "clip": 0.95, "inception": 0.95}


def copy_threshold(family: str) -> float:
    """Default single cosine threshold of an embedding family (sscd 0.6, Zhang et al. 2023)."""
    default_thresholds(family)  # unknown family: the same error as memorization's
    return COPY_THRESHOLD[family]


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Sorted unique thresholds in [-1, 1] (cosine similarities)."""
    bad = [t for t in thresholds if not -1.0 <= float(t) <= 1.0]
    if bad or not thresholds:
        raise AmbientError(f"Thresholds must be cosine similarities in [-1, 1]; got {list(thresholds)}. "
                           "Pass e.g. --threshold 0.95 --threshold 0.99.")
    return tuple(sorted({float(t) for t in thresholds}))


def l2_from_cosine(D: np.ndarray) -> np.ndarray:
    """l2 distance between unit vectors from their cosine: ||a - b|| = sqrt(2 - 2 cos)."""
    # clip: rounding can push cos slightly above 1 for identical vectors
    return np.sqrt(np.clip(2.0 - 2.0 * D.astype(np.float64), 0.0, None))


def carlini_score(D: np.ndarray, *, alpha: float = DEFAULTS.carlini_alpha,
                  n: int = DEFAULTS.carlini_n) -> np.ndarray:
    """Carlini et al. 2023 (Sec. 5.1): l(x, S) = l2(x, x_1) / (alpha * mean_{y in S_x} l2(x, y)).

    D: (nq, >= n) cosine similarities to the nearest training embeddings, sorted descending;
    S_x = the n nearest. l2 is computed from the L2-normalized embeddings (sqrt(2 - 2 cos)),
    not from raw pixels as in the paper. Returns l (nq,) float64; 0 when x equals its neighbours.
    """
    if D.shape[1] < n:
        raise AmbientError(f"The Carlini criterion needs the {n} nearest training images, but only "
                           f"{D.shape[1]} were searched (training set too small?). Use a training set "
                           f"of at least {n} images, or drop --carlini.")
    dist = l2_from_cosine(D[:, :n])
    num, den = dist[:, 0], alpha * dist.mean(axis=1)
    # 0/0 when all n neighbours coincide with x: an exact copy, score 0.
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def score_table(D: np.ndarray, I: np.ndarray, thresholds: Sequence[float], *,
                sample_names: Sequence[str], train_names: Sequence[str], model: str, k: int,
                carlini: np.ndarray | None = None, carlini_delta: float = DEFAULTS.carlini_delta):
    """Per-sample table: top-k sims / indices / names, top-1 match, a flag column per threshold.

    Rows in sample order; columns: model, sample, sample_index, top1_sim, top1_index, top1_name,
    sim_1..sim_k, index_1..index_k, name_1..name_k, above_<t>..., [carlini_l, carlini_flag].
    """
    import pandas as pd

    # D, I: (nq, >= k) float32 / int64 sorted by similarity => DataFrame with nq rows
    nq = D.shape[0]
    if len(sample_names) != nq:
        raise ValueError(f"{len(sample_names)} sample names for {nq} rows")
    names = np.asarray(train_names, dtype=object)
    cols: dict[str, object] = {
        "model": [model] * nq,
        "sample": list(sample_names),
        "sample_index": np.arange(nq, dtype=np.int64),
        "top1_sim": D[:, 0].astype(np.float64),
        "top1_index": I[:, 0].astype(np.int64),
        "top1_name": names[I[:, 0]],
    }
    for j in range(k):
        cols[f"sim_{j + 1}"] = D[:, j].astype(np.float64)
    for j in range(k):
        cols[f"index_{j + 1}"] = I[:, j].astype(np.int64)
    for j in range(k):
        cols[f"name_{j + 1}"] = names[I[:, j]]
    for t in thresholds:
        cols[f"above_{float(t)!r}"] = D[:, 0] > t
    if carlini is not None:
        cols["carlini_l"] = carlini
        cols["carlini_flag"] = carlini < carlini_delta
    return pd.DataFrame(cols)


def summary_metrics(top1: np.ndarray, thresholds: Sequence[float], *,
                    quantiles: Sequence[float] = DEFAULTS.quantiles,
                    carlini_flag: np.ndarray | None = None) -> dict[str, float]:
    """n, top1_mean, top1_q50..q99, frac_above_<t> (and frac_carlini) of one model's samples."""
    top1 = np.asarray(top1, dtype=np.float64)
    out: dict[str, float] = {N: float(len(top1)), TOP1_MEAN: float(top1.mean())}
    qs = np.quantile(top1, quantiles)  # numpy default: linear interpolation
    out.update({quantile_key(q): float(v) for q, v in zip(quantiles, qs)})
    out.update({frac_above_key(t): float((top1 > t).mean()) for t in thresholds})
    if carlini_flag is not None:
        out[FRAC_CARLINI] = float(np.asarray(carlini_flag).mean())
    return out


def bootstrap_ci(top1: np.ndarray, thresholds: Sequence[float], *,
                 quantiles: Sequence[float] = DEFAULTS.quantiles, carlini_flag: np.ndarray | None = None,
                 n_boot: int = DEFAULTS.n_boot, level: float = DEFAULTS.ci_level,
                 seed: int = DEFAULTS.seed, chunk: int = 50) -> dict[str, list[float]]:
    """Percentile bootstrap CIs (resampling samples with replacement, seeded) of every metric but n.

    Resamples are drawn `chunk` at a time so memory stays at chunk x n floats.
    """
    top1 = np.asarray(top1, dtype=np.float64)
    n = len(top1)
    if n_boot < 1 or n == 0:
        return {}
    rng = np.random.default_rng(seed)
    stats: dict[str, list[np.ndarray]] = {}
    flags = None if carlini_flag is None else np.asarray(carlini_flag, dtype=np.float64)
    for b0 in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - b0), n))
        x = top1[idx]
        parts = {TOP1_MEAN: x.mean(axis=1)}
        for q, v in zip(quantiles, np.quantile(x, quantiles, axis=1)):
            parts[quantile_key(q)] = v
        for t in thresholds:
            parts[frac_above_key(t)] = (x > t).mean(axis=1)
        if flags is not None:
            parts[FRAC_CARLINI] = flags[idx].mean(axis=1)
        for key, v in parts.items():
            stats.setdefault(key, []).append(v)
    from ambient_eval.metrics.bootstrap import percentile_interval

    return {key: list(percentile_interval(np.concatenate(v), level)) for key, v in stats.items()}


def closest_pairs(table, top_n: int = DEFAULTS.top_n):
    """The top_n rows with the highest top-1 similarity (ties: sample order), for the gallery."""
    return table.sort_values(["top1_sim", "sample_index"], ascending=[False, True], kind="stable").head(top_n)
