"""Frechet distance between Gaussians fitted to features (FID when the features are Inception pool3).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", Eq. (6):  d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).

Two conventions for the trace of the matrix square root are in use and both are supported:
  - "eig"   (torch-fidelity 0.4.0): Tr (S_1 S_2)^(1/2) = sum_i Re sqrt(lambda_i(S_1 S_2)), with
            lambda_i from numpy's general eigensolver on the product, the arithmetic of torch-fidelity's
            `fid_statistics_to_metric` (bit-identical; the tests compare). We compute it here rather
            than call it because importing torch-fidelity imports torch (~2.5 s, more than a whole
            warm-cache run). When both sets have more images than dimensions and S_1 is numerically
            positive definite, the same eigenvalues come ~3x faster from the symmetric matrix
            L^T S_2 L (S_1 = L L^T, Cholesky): equal to the general solver within ~1e-13 relative.
            With N <= dim the covariances are singular, their ~zero eigenvalues are rounding noise
            that shifts the sum by ~1e-4 relative, and only the general solver reproduces
            torch-fidelity's (and clean-fid's, EDM's) numbers, so it is used there.
  - "sqrtm" (EDM `calculate_metrics.py`, clean-fid `frechet_distance`): scipy.linalg.sqrtm of S_1 S_2.
On well-conditioned statistics they agree to ~1e-10 relative; on singular ones (N <= dim) the
eigenvalues near zero are numerical noise and the two may differ in the last digits.
"""
from __future__ import annotations

import contextlib
import logging
import warnings

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.runtime.progress import stage
from ambient_eval.metrics.stats_checks import checked_distance

log = logging.getLogger(__name__)

FID_METHODS = ("eig", "sqrtm")

# Diagonal offset added when sqrtm of a singular product is not finite (clean-fid / TTUR use 1e-6).
SQRTM_EPS = 1e-6
# Largest imaginary part tolerated on the diagonal of sqrtm's result (TTUR / clean-fid use 1e-3).
SQRTM_IMAG_ATOL = 1e-3
# Below this many samples FID is noticeably biased upward (SPEC "Quality metrics").
FID_MIN_UNBIASED_N = 10_000
# Smallest Cholesky pivot^2 / largest for the symmetric route (below: general eigensolver).
CHOLESKY_MIN_PIVOT_RATIO = 1e-12
# Dimensions from which the distance computation announces itself on stderr.
STAGE_MIN_DIM = 512


class SmallSampleWarning(UserWarning):
    """N is small enough that a metric is biased or its covariance singular."""


def _check_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> None:
    """Shapes agree and numbers are finite (AmbientError otherwise)."""
    if mu1.ndim != 1 or mu1.shape != mu2.shape or s1.shape != (mu1.shape[0],) * 2 or s1.shape != s2.shape:
        raise AmbientError(f"Feature statistics do not match: mean shapes {mu1.shape} vs {mu2.shape}, "
                           f"covariance shapes {s1.shape} vs {s2.shape}. Both sides must come from the "
                           "same extractor and output (e.g. Inception pool3, 2048-d).")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise AmbientError(f"Feature statistics contain NaN or infinite values ({name}). The features "
                               "or the statistics file are broken; recompute them.")


def _trace_sqrt_product_sqrtm(s1: np.ndarray, s2: np.ndarray) -> float:
    """Tr (S_1 S_2)^(1/2) via scipy.linalg.sqrtm (EDM / clean-fid convention), never crashing."""
    import scipy.linalg

    # Numerical risk: S_1 S_2 may be (almost) singular when N <= dim; sqrtm then returns inf/nan.
    # Like the references, retry with eps*I added to both covariances.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns "matrix is singular" for exactly this case
        covmean = scipy.linalg.sqrtm(s1.dot(s2))
        if not np.isfinite(covmean).all():
            log.warning("sqrtm(S1 S2) is not finite (singular product); adding %g to the covariance "
                        "diagonals", SQRTM_EPS)
            offset = np.eye(s1.shape[0]) * SQRTM_EPS
            covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    # Numerical risk: round-off leaves a small imaginary part; a large one means broken statistics.
    if np.iscomplexobj(covmean):
        imag = np.abs(np.diagonal(covmean).imag).max()
        if imag > SQRTM_IMAG_ATOL:
            raise AmbientError(f"The matrix square root in FID has an imaginary component of {imag:.3g} "
                               "(covariances are not valid). Recompute the statistics with more images.")
        covmean = covmean.real
    return float(np.trace(covmean))


def fid_from_stats(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray,
                   method: str = "eig", n1: int | None = None, n2: int | None = None) -> float:
    """Frechet distance of N(mu1, s1) and N(mu2, s2); inputs converted to float64.

    n1, n2: images behind each covariance when known; N > dim on both sides allows the faster
    symmetric eigensolver for method "eig" (same value).
    """
    # D (float) + DxD (float) twice => float
    if method not in FID_METHODS:
        raise AmbientError(f"Unknown FID method '{method}'. Use one of: {', '.join(FID_METHODS)}.")
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    _check_stats(mu1, s1, mu2, s2)
    # Large dimensions take a while (pixel-32: 3072-d, ~40 s on CPU): say so on stderr.
    with (stage(f"Frechet distance ({mu1.shape[0]}-d covariances, method {method})")
          if mu1.shape[0] >= STAGE_MIN_DIM else contextlib.nullcontext()):
        value = _distance(mu1, s1, mu2, s2, method, full_rank=_more_than_dims(n1, n2, mu1.shape[0]))
    # Never report an impossible distance: round-off negatives -> 0, anything else refused.
    return checked_distance(value, mu1, s1, mu2, s2)


def _more_than_dims(n1: int | None, n2: int | None, dim: int) -> bool:
    return n1 is not None and n2 is not None and min(n1, n2) > dim


def _distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray, method: str,
              full_rank: bool = False) -> float:
    if method == "eig":
        tr_covmean = _trace_sqrt_product_symmetric(s1, s2) if full_rank else None
        if tr_covmean is None:
            tr_covmean = trace_sqrt_product_eig(s1, s2)
    else:
        tr_covmean = _trace_sqrt_product_sqrtm(s1, s2)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def trace_sqrt_product_eig(s1: np.ndarray, s2: np.ndarray) -> float:
    """sum_i Re sqrt(lambda_i(S_1 S_2)) from the general eigensolver (torch-fidelity's arithmetic).

    Singular products give ~0 eigenvalues whose complex square roots contribute ~0 real part, so
    this never raises.
    """
    return float(np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2)).astype("complex128")).real))


def _trace_sqrt_product_symmetric(s1: np.ndarray, s2: np.ndarray) -> float | None:
    """Tr (S_1 S_2)^(1/2) via S_1 = L L^T and the eigenvalues of L^T S_2 L (similar to S_1 S_2,
    symmetric PSD), or None when S_1 is not clearly positive definite."""
    try:
        chol = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError:
        return None
    pivots = np.diagonal(chol) ** 2
    if not pivots.min() > CHOLESKY_MIN_PIVOT_RATIO * pivots.max():
        return None
    lam = np.linalg.eigvalsh(chol.T @ s2 @ chol)
    return float(np.sqrt(np.clip(lam, 0.0, None)).sum())


def fid_from_features(f1: np.ndarray, f2: np.ndarray, method: str = "eig") -> float:
    """Frechet distance between two feature sets. # NC float (two sets) => float"""
    from ambient_eval.metrics.stats import mean_cov

    warn_small_n(len(f1), f1.shape[1], "first set")
    warn_small_n(len(f2), f2.shape[1], "second set")
    mu1, s1 = mean_cov(f1)
    mu2, s2 = mean_cov(f2)
    return fid_from_stats(mu1, s1, mu2, s2, method=method, n1=len(f1), n2=len(f2))


def warn_small_n(n: int, dim: int, what: str) -> list[str]:
    """Warnings (issued as SmallSampleWarning and returned) for sample sizes that make FID biased or its covariance singular."""
    out = []
    if n <= dim:
        out.append(f"{what}: N = {n} <= feature dimension {dim}, so the covariance is singular and the "
                   f"Frechet distance is unreliable (use more than {dim} images).")
    elif n < FID_MIN_UNBIASED_N:
        out.append(f"{what}: N = {n} < {FID_MIN_UNBIASED_N}; FID is biased upward at small N and not "
                   "comparable with published 50k-sample numbers.")
    for msg in out:
        warnings.warn(msg, SmallSampleWarning, stacklevel=2)
    return out
