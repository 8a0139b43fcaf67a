"""Reproducibility across models: seed alignment, per-seed pair cosine, RP matrix, memorization/GL.

Zhang et al. 2023, "The Emergence of Reproducibility and Generalizability in Diffusion Models"
(arXiv 2310.05264). Two models sampled from the same initial noise with a deterministic sampler
are compared seed by seed in a copy-detection embedding (SSCD in the paper):

    RP(A, B)  = (1/N) sum_i 1[ cos(z_A(seed_i), z_B(seed_i)) > tau ],            tau = 0.6
    MS(A)     = (1/N) sum_i 1[ max_j cos(z_A(seed_i), z_train(j)) > tau ]   (memorization score)
    GL(A)     = 1 - MS(A)                                                 (generalization score)

Everything here is pure numpy on embeddings (no I/O); `reproducibility_run.py` does the I/O.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import PurePath
from typing import Mapping, Sequence

import numpy as np

from ambient_eval.audits.embed import l2_normalize
from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class ReproDefaults:
    """Defaults of the reproducibility audit (Zhang et al. 2023 unless noted)."""

    threshold: float = 0.6        # cosine above which two images count as the same (paper: SSCD, 0.6)
    embed: str = "sscd"           # embedding of the paper; weights are user-supplied (see docs)
    n_boot: int = 1000            # bootstrap resamples for confidence intervals
    boot_seed: int = 0            # seed of the bootstrap generator (results are reproducible)
    ci_level: float = 0.95        # two-sided confidence level of the percentile bootstrap


DEFAULTS = ReproDefaults()

_SEED_NAME = re.compile(r"^(\d+)$")


def rp_key(a: str, b: str) -> str:
    """Metric key of one pair's RP score, e.g. 'rp[A|B]' (results.json)."""
    return f"rp[{a}|{b}]"


def memorization_key(a: str) -> str:
    """Metric key of a model's memorization score, e.g. 'memorization[A]'."""
    return f"memorization[{a}]"


def gl_key(a: str) -> str:
    """Metric key of a model's generalization score, e.g. 'gl[A]'."""
    return f"gl[{a}]"


def check_threshold(threshold: float) -> float:
    """A cosine threshold must lie in [-1, 1]."""
    if not np.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
        raise AmbientError(f"Threshold {threshold} is outside [-1, 1]; it is a cosine similarity. "
                           f"Use e.g. --threshold {DEFAULTS.threshold} (Zhang et al. 2023).")
    return float(threshold)


def seed_from_name(name: str) -> int | None:
    """Seed encoded in a sample file name ('000123.png', '000000/000123.png' -> 123), else None."""
    m = _SEED_NAME.match(PurePath(name).stem)
    return int(m.group(1)) if m else None


def seeds_from_names(names: Sequence[str], where: str) -> np.ndarray:
    """Seeds of sample files named {seed:06d}.<ext> (any folder, any order) => int64 (N,)."""
    seeds = np.empty(len(names), dtype=np.int64)
    for i, n in enumerate(names):
        s = seed_from_name(n)
        if s is None:
            raise AmbientError(f"Sample file '{n}' in {where} is not named by its seed (expected e.g. "
                               "'000123.png' as written by `ambient-eval sample`). Rename the files "
                               "{seed:06d}.png or pass the checkpoint instead.")
        seeds[i] = s
    return seeds


def align_seeds(present: Sequence[int] | np.ndarray, requested: Sequence[int], model: str) -> np.ndarray:
    """Index into `present` of every requested seed, in requested order => int64 (len(requested),).

    Order of `present` does not matter; a requested seed that is missing (or present twice) is an
    AmbientError naming the seed and the model.
    """
    present = np.asarray(present, dtype=np.int64)
    uniq, counts = np.unique(present, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        raise AmbientError(f"Seed {dup} appears {int(counts[counts > 1][0])} times in {model}. "
                           "Each seed must have exactly one sample; remove the duplicates.")
    where = {int(s): i for i, s in enumerate(present.tolist())}
    missing = [s for s in requested if s not in where]
    if missing:
        shown = ", ".join(str(s) for s in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise AmbientError(f"Seed {missing[0]} is missing from {model} ({len(missing)} of "
                           f"{len(requested)} requested seeds missing: {shown}). Sample those seeds "
                           "(`ambient-eval sample MODEL --seeds ...`) or pass --seeds matching the "
                           "samples you have.")
    return np.fromiter((where[s] for s in requested), dtype=np.int64, count=len(requested))


def pair_cosine(z_a: np.ndarray, z_b: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of z_a with row i of z_b (same seed) # NC, NC => N float64."""
    if z_a.shape != z_b.shape:
        raise AmbientError(f"Embeddings of the two models have shapes {z_a.shape} and {z_b.shape}; "
                           "they must be embedded with the same extractor and the same seeds.")
    # Numerical risk: rounding can give 1 + 2e-16 for identical rows; clip to the cosine range.
    za, zb = (l2_normalize(z, dtype=np.float64) for z in (z_a, z_b))
    return np.clip(np.einsum("nc,nc->n", za, zb), -1.0, 1.0)


def fraction_above(sim: np.ndarray, threshold: float) -> float:
    """Fraction of similarities strictly above `threshold` (Zhang et al.: cosine > 0.6)."""
    sim = np.asarray(sim, dtype=np.float64)
    if sim.size == 0:
        raise AmbientError("No seeds to score. Pass at least one seed with --seeds.")
    return float(np.mean(sim > threshold))


def bootstrap_ci(hits: np.ndarray, *, n_boot: int = DEFAULTS.n_boot, seed: int = DEFAULTS.boot_seed,
                 level: float = DEFAULTS.ci_level) -> tuple[float, float]:
    """Percentile-bootstrap CI of the mean of 0/1 outcomes (resampling seeds with replacement).

    The number of ones in a resample of N Bernoulli outcomes with empirical rate p is exactly
    Binomial(N, p), so we draw that instead of N*n_boot indices (same distribution, O(n_boot)).
    """
    hits = np.asarray(hits, dtype=bool)
    n = hits.size
    rng = np.random.default_rng(seed)
    means = rng.binomial(n, hits.mean(), size=n_boot) / n
    from ambient_eval.metrics.bootstrap import percentile_interval

    return percentile_interval(means, level)


@dataclass
class RPResult:
    """Pairwise reproducibility of M models over the same N seeds."""

    names: list[str]                          # model labels, matrix order
    seeds: np.ndarray                         # int64 (N,)
    threshold: float                          # cosine threshold
    cosine: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (a, b) a<b: N float64
    rp: np.ndarray | None = None              # (M, M) RP scores, diagonal 1
    ci_lo: np.ndarray | None = None           # (M, M) lower CI bounds
    ci_hi: np.ndarray | None = None           # (M, M) upper CI bounds

    def pairs(self) -> list[tuple[str, str]]:
        """Unordered pairs (a, b) in matrix order."""
        return list(self.cosine)

    def rp_mean(self) -> float:
        """Mean RP over all unordered pairs (the headline `rp` metric)."""
        idx = {n: i for i, n in enumerate(self.names)}
        return float(np.mean([self.rp[idx[a], idx[b]] for a, b in self.pairs()]))


def rp_matrix(embeddings: Mapping[str, np.ndarray], seeds: Sequence[int], threshold: float = DEFAULTS.threshold,
              *, n_boot: int = DEFAULTS.n_boot, boot_seed: int = DEFAULTS.boot_seed,
              level: float = DEFAULTS.ci_level) -> RPResult:
    """RP score of every pair of models with bootstrap CIs.

    embeddings: model label -> NC array, row i = the sample of seeds[i] (already aligned).
    """
    names = list(embeddings)
    if len(names) < 2:
        raise AmbientError(f"Reproducibility compares models, but {len(names)} model was given. "
                           "Pass at least two models (checkpoints or sample folders).")
    check_threshold(threshold)
    m = len(names)
    res = RPResult(names=names, seeds=np.asarray(seeds, dtype=np.int64), threshold=threshold,
                   rp=np.eye(m), ci_lo=np.eye(m), ci_hi=np.eye(m))
    for (i, a), (j, b) in combinations(enumerate(names), 2):
        cos = pair_cosine(embeddings[a], embeddings[b])
        res.cosine[(a, b)] = cos
        hits = cos > threshold
        # One bootstrap stream per pair, derived from boot_seed and the pair's position.
        lo, hi = bootstrap_ci(hits, n_boot=n_boot, seed=boot_seed * 1_000_003 + i * m + j, level=level)
        res.rp[i, j] = res.rp[j, i] = float(hits.mean())
        res.ci_lo[i, j] = res.ci_lo[j, i] = lo
        res.ci_hi[i, j] = res.ci_hi[j, i] = hi
    return res


@dataclass(frozen=True)
class MemorizationScore:
    """Memorization / generalization score of one model against its training set."""

    memorization: float                 # fraction of samples whose top-1 train cosine > threshold
    gl: float                           # 1 - memorization
    ci: tuple[float, float]             # bootstrap CI of memorization
    n: int                              # number of samples


def memorization_score(top1: np.ndarray, threshold: float = DEFAULTS.threshold, *,
                       n_boot: int = DEFAULTS.n_boot, boot_seed: int = DEFAULTS.boot_seed,
                       level: float = DEFAULTS.ci_level) -> MemorizationScore:
    """Zhang et al. 2023: MS = fraction of samples with max cosine to the training set > tau; GL = 1 - MS.

    top1: (N,) the largest cosine of each sample to any training image.
    """
    check_threshold(threshold)
    hits = np.asarray(top1, dtype=np.float64) > threshold
    ms = fraction_above(top1, threshold)
    return MemorizationScore(memorization=ms, gl=1.0 - ms,
                             ci=bootstrap_ci(hits, n_boot=n_boot, seed=boot_seed, level=level),
                             n=int(hits.size))
