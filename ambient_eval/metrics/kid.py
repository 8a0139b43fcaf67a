"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 3 / Eq. 1).

Unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets,
with torch-fidelity's conventions (100 subsets of 1000, numpy RandomState(2020), each subset drawn
without replacement, generated first) and its order of summation.

Precision: kernels and sums are float64 whatever the features' dtype. torch-fidelity computes them in
the features' dtype (float32), and a float32 KID is the difference of three sums of m^2 kernel values
of order 1 whose rounding depends on the CPU's BLAS kernel: measured 3e-6..4e-5 relative on the same
features under OpenBLAS's Haswell, Zen, Sandybridge and this machine's default kernels (and up to 6e-4 for the std).
In float64 that error is ~1e-12, so our number is the same on every CPU. The tests check it against
torch-fidelity's `kid_features_to_metric` run on the same features as float64 tensors (rel 1e-9), and
against its float32 run within the float32 rounding bound (docs/quality.md, "KID precision").

Why our own code: torch-fidelity's function needs torch (~2.5 s to import, more than a whole warm-cache
`fid` run) and computes three kernel matrices per subset (300 matrix products for 100 subsets). Here
the three kernel matrices of the whole sets are computed once when they fit in GRAM_MAX_ELEMENTS and
each subset's kernels are rows and columns taken from them (the same numbers: the kernel is
elementwise in x.y), which is ~5x faster at N = 300 (subsets of 300) and ~10x at N = 2000.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class KIDDefaults:
    subsets: int = 100        # number of random subsets (torch-fidelity default)
    subset_size: int = 1000   # images per subset, drawn without replacement (torch-fidelity default)
    seed: int = 2020          # numpy RandomState seed for the subsets (torch-fidelity rng_seed)
    degree: int = 3           # polynomial kernel degree; gamma = 1/d, coef0 = 1


KID = KIDDefaults()
# Most elements (N1^2 + N2^2 + N1 N2) of whole-set kernel matrices computed at once (float64: 1 GiB).
GRAM_MAX_ELEMENTS = 1 << 27


def check_kid_n(n1: int, n2: int, subset_size: int = KID.subset_size) -> None:
    """AmbientError when a set is smaller than the KID subset size (we never shrink it silently)."""
    if subset_size < 2:
        raise AmbientError(f"KID subset size must be at least 2; got {subset_size}.")
    small = [f"{what} has {n}" for what, n in (("generated", n1), ("reference", n2)) if n < subset_size]
    if small:
        raise AmbientError(f"KID needs at least {subset_size} images per set (its subset size), but "
                           f"{' and '.join(small)}. Use more images, or lower the subset size with "
                           f"--kid-subset-size (numbers are then not comparable with the default of "
                           f"{KID.subset_size}).")


def kid_from_features(f1: np.ndarray, f2: np.ndarray, subsets: int = KID.subsets,
                      subset_size: int = KID.subset_size, seed: int = KID.seed) -> tuple[float, float]:
    """(mean, std) of unbiased MMD^2 over random subsets. # NC float (generated), MC float (real) => 2 floats"""
    check_kid_n(len(f1), len(f2), subset_size)
    if subsets < 1:
        raise AmbientError(f"KID needs at least 1 subset; got {subsets}.")
    # float64 kernels: a float32 sum of m^2 kernel values rounds differently on each BLAS kernel (module doc).
    f1, f2 = np.ascontiguousarray(f1, dtype=np.float64), np.ascontiguousarray(f2, dtype=np.float64)
    n1, n2 = len(f1), len(f2)
    # Whole-set kernels when they fit and cost less than half the per-subset products.
    whole = n1 * n1 + n2 * n2 + n1 * n2 <= min(GRAM_MAX_ELEMENTS, subsets * 3 * subset_size ** 2 // 2)
    if whole:
        k11, k22, k12 = poly_kernel(f1, f1), poly_kernel(f2, f2), poly_kernel(f1, f2)
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        a = rng.choice(n1, subset_size, replace=False)   # generated subset first, then real (torch-fidelity)
        b = rng.choice(n2, subset_size, replace=False)
        if whole:
            mmds[i] = unbiased_mmd2(_rows_cols(k11, a, a), _rows_cols(k12, a, b), _rows_cols(k22, b, b))
        else:
            x, y = f1[a], f2[b]
            mmds[i] = unbiased_mmd2(poly_kernel(x, x), poly_kernel(x, y), poly_kernel(y, y))
    return float(np.mean(mmds)), float(np.std(mmds))


def _rows_cols(k: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """k[rows][:, cols] as a new C-contiguous matrix (two takes: ~2x faster than np.ix_)."""
    return k.take(rows, axis=0).take(cols, axis=1)


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^degree for all row pairs. # NC, MC float64 => NxM float64"""
    return (np.matmul(x, y.T) * (1.0 / x.shape[1]) + 1) ** KID.degree


def unbiased_mmd2(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples from their kernel matrices (Binkowski et al., Eq. 1).

    Sums are taken in torch-fidelity's order (row sums minus the diagonal, then the total), in float64.
    """
    m = k_xx.shape[0]
    off_xx = (k_xx.sum(axis=1) - np.diagonal(k_xx)).sum()
    off_yy = (k_yy.sum(axis=1) - np.diagonal(k_yy)).sum()
    return (off_xx + off_yy) / (m * (m - 1)) - 2 * k_xy.sum(axis=0).sum() / (m * m)
