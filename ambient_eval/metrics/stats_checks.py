"""Validity checks for Gaussian feature statistics and the distances computed from them.

A covariance matrix is symmetric positive semidefinite. A stats file whose `sigma` is not (edited,
corrupted, written by another tool with a bug) gives impossible Frechet distances: negative, or
NaN. We refuse such inputs when they are loaded, and check every distance before it is reported.
"""
from __future__ import annotations

import math

import numpy as np

from ambient_eval.errors import AmbientError

# Largest asymmetry tolerated: max |S - S^T| <= SYMMETRY_RTOL * max |S| (round-off of float32 storage).
SYMMETRY_RTOL = 1e-5
# Most negative eigenvalue tolerated: lambda_min >= -PSD_RTOL * max |lambda| (round-off of N <= D covariances).
PSD_RTOL = 1e-4
# A negative distance down to -DISTANCE_RTOL * scale is round-off and is reported as 0.0;
# scale = ||mu1 - mu2||^2 + Tr S1 + Tr S2 (the largest the distance could be).
DISTANCE_RTOL = 1e-5

RECOMPUTE = "Recompute it with `ambient-eval stats SOURCE -o FILE.npz`."


def check_mean_cov(mu: np.ndarray, sigma: np.ndarray, where: str) -> None:
    """AmbientError naming `where` unless mu is (D,) and sigma a finite symmetric PSD (D, D) matrix."""
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise AmbientError(f"{where}: mu has shape {mu.shape} and sigma {sigma.shape}; expected (D,) and "
                           f"(D, D) with the same D. {RECOMPUTE}")
    if mu.shape[0] == 0:
        raise AmbientError(f"{where}: mu and sigma are empty (dimension 0). {RECOMPUTE}")
    for name, a in (("mu", mu), ("sigma", sigma)):
        if not np.issubdtype(a.dtype, np.floating):
            raise AmbientError(f"{where}: {name} has dtype {a.dtype}; it must be floating point. {RECOMPUTE}")
        bad = int(np.size(a) - np.isfinite(a).sum())
        if bad:
            raise AmbientError(f"{where}: {name} contains {bad} NaN or infinite value(s). {RECOMPUTE}")
    s = sigma.astype(np.float64)
    scale = float(np.abs(s).max())
    asym = float(np.abs(s - s.T).max())
    if asym > SYMMETRY_RTOL * max(scale, 1e-300):
        raise AmbientError(f"{where}: sigma is not symmetric (max |sigma - sigma^T| = {asym:.3g}, "
                           f"{asym / scale:.3g} of its largest entry), so it is not a covariance matrix. "
                           f"{RECOMPUTE}")
    if np.any(np.diagonal(s) < -PSD_RTOL * scale):
        d = float(np.diagonal(s).min())
        raise AmbientError(f"{where}: sigma has a negative variance on its diagonal ({d:.4g}), so it is not "
                           f"a covariance matrix. {RECOMPUTE}")
    eig = np.linalg.eigvalsh((s + s.T) / 2)
    top = float(np.abs(eig).max())
    if eig[0] < -PSD_RTOL * top:
        raise AmbientError(f"{where}: sigma is not positive semidefinite (smallest eigenvalue {eig[0]:.4g}, "
                           f"largest {eig[-1]:.4g}), so it is not a covariance matrix and any Frechet "
                           f"distance from it would be meaningless (possibly negative). {RECOMPUTE}")


def checked_distance(value: float, mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray,
                     name: str = "Frechet distance") -> float:
    """`value` if it is a possible distance; tiny negative round-off -> 0.0; AmbientError otherwise."""
    value = float(value)
    if not math.isfinite(value):
        raise AmbientError(f"The {name} came out as {value}: the statistics are numerically broken "
                           "(e.g. a degenerate covariance). Recompute them from more images.")
    if value >= 0:
        return value
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    scale = float(diff @ diff + np.trace(s1) + np.trace(s2))
    if value >= -DISTANCE_RTOL * max(scale, 1e-300):
        return 0.0
    raise AmbientError(f"The {name} came out negative ({value:.6g}), which is impossible for valid "
                       "covariance matrices; one of the statistics is broken. Recompute both sides with "
                       "`ambient-eval stats`.")


def check_metrics_finite(metrics: dict, where: str) -> None:
    """AmbientError unless every metric is a finite number (and distances are not negative)."""
    for k, v in metrics.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            continue   # not a number: the schema checks elsewhere say so
        if not math.isfinite(float(v)):
            raise AmbientError(f"{where}: metric '{k}' is {float(v)}, not a finite number; refusing to "
                               "record an impossible result. Check the inputs that produced it.")
        if (k == "fid" or k.startswith("fd_")) and float(v) < 0:
            raise AmbientError(f"{where}: metric '{k}' is negative ({float(v):.6g}); a Frechet distance "
                               "cannot be. Refusing to record an impossible result.")


def max_cov_bytes() -> int:
    """Largest D x D float64 matrix we agree to build: AMBIENT_EVAL_MAX_COV_BYTES, else 1/6 of RAM
    (the Frechet distance holds about six such matrices at once)."""
    import os

    raw = os.environ.get("AMBIENT_EVAL_MAX_COV_BYTES", "").strip()
    if raw:
        try:
            return max(1, int(float(raw)))
        except ValueError:
            raise AmbientError(f"AMBIENT_EVAL_MAX_COV_BYTES='{raw}' is not a number of bytes.") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 6
    except (ValueError, OSError, AttributeError):
        return 8 * 2 ** 30


def check_cov_memory(dim: int, what: str = "features") -> None:
    """AmbientError when a dim x dim covariance would not fit in memory (e.g. pixel-128: 49152-d, 19 GB)."""
    need = 8 * int(dim) ** 2
    limit = max_cov_bytes()
    if need > limit:
        raise AmbientError(
            f"The {what} have {dim:,} dimensions, so one covariance matrix needs {need / 2**30:.1f} GiB "
            f"(the Frechet distance holds about six), more than this machine allows ({limit / 2**30:.1f} GiB "
            "per matrix). This is not a batch-size problem: use fewer feature dimensions, e.g. pixel-32 "
            "(3,072-d) instead of pixel-128, or an embedding extractor (inception, dinov2, clip); raise "
            "AMBIENT_EVAL_MAX_COV_BYTES only on a machine with enough memory.")
