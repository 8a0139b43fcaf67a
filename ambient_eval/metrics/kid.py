"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", Sec. 3 / Eq. 1).

Unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random subsets,
computed by torch-fidelity's public `kid_features_to_metric` (its conventions: 100 subsets of 1000,
numpy RandomState(2020), sampling without replacement).
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
    import torch
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    check_kid_n(len(f1), len(f2), subset_size)
    if subsets < 1:
        raise AmbientError(f"KID needs at least 1 subset; got {subsets}.")
    out = kid_features_to_metric(torch.from_numpy(np.ascontiguousarray(f1)),
                                 torch.from_numpy(np.ascontiguousarray(f2)),
                                 kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed,
                                 kid_kernel="poly", kid_kernel_poly_degree=KID.degree,
                                 kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])
