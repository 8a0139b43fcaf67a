"""The ADM evaluator's `.npz` batches (openai/guided-diffusion `evaluations/evaluator.py`).

Layout: `arr_0` NHWC uint8 images; sample batches may add `arr_1` class labels; reference batches
(`VIRTUAL_imagenet64_labeled.npz` ... `VIRTUAL_imagenet512.npz`) add precomputed statistics of the
TF Inception graph: `mu`, `sigma` (pool_3, 2048-d, FID) and `mu_s`, `sigma_s` (mixed_6/conv[..., :7],
2023-d, sFID). The evaluator uses the precomputed statistics when present, its images otherwise;
so do we: the statistics are read as FeatureStats of extractor `inception` (mode `tf-compat`, the
same graph through torch-fidelity's port), so a batch compared in another feature space is refused.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import MIXED6_CONV7, POOL3

# Statistic keys of an ADM reference batch -> our feature output.
STATS_KEYS = {POOL3: ("mu", "sigma"), MIXED6_CONV7: ("mu_s", "sigma_s")}
IMAGES_KEY = "arr_0"
LABELS_KEY = "arr_1"


def _keys(path: Path) -> list[str]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return list(z.files)
    except Exception:  # noqa: BLE001 - not a readable npz: the image reader explains
        return []


def is_adm_reference(path: str | os.PathLike) -> bool:
    """An .npz holding ADM images (`arr_0`) and precomputed statistics (`mu`/`sigma` or `mu_s`/`sigma_s`)."""
    p = Path(path)
    if p.suffix.lower() != ".npz" or not p.is_file():
        return False
    keys = set(_keys(p))
    return IMAGES_KEY in keys and any(set(pair) <= keys for pair in STATS_KEYS.values())


def read_adm_pair(path: str | os.PathLike, k_mu: str, k_sigma: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The (mean, covariance) an ADM batch stores under `k_mu`/`k_sigma`, or None when it has none.

    Reads just those two arrays (npz members load lazily), never the images.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            if k_mu not in z.files or k_sigma not in z.files:
                return None
            return z[k_mu], z[k_sigma]
    except Exception as e:  # noqa: BLE001
        raise AmbientError(f"Cannot read ADM batch '{path}' ({type(e).__name__}: {e}).") from None


def read_adm_stats(path: str | os.PathLike) -> dict[str, Any]:
    """{feature output: FeatureStats} of the statistics an ADM reference batch holds."""
    from ambient_eval.metrics.stats import FeatureStats
    from ambient_eval.metrics.stats_checks import check_mean_cov

    p = Path(path)
    out = {}
    for feature, (k_mu, k_sigma) in STATS_KEYS.items():
        pair = read_adm_pair(p, k_mu, k_sigma)
        if pair is None:
            continue
        mu, sigma = pair
        check_mean_cov(mu, sigma, f"ADM reference batch '{p}' ({k_mu}, {k_sigma})")
        dim = 2048 if feature == POOL3 else 2023
        if mu.shape[0] != dim:
            raise AmbientError(f"ADM reference batch '{p}': {k_mu} has {mu.shape[0]} dimensions, expected "
                               f"{dim} ({feature}). The file is not an ADM evaluator batch.")
        out[feature] = FeatureStats(
            mu=mu.astype(np.float64), sigma=sigma.astype(np.float64), n=None, extractor="inception",
            mode="tf-compat", feature=feature, tool_version="",
            notes=[f"'{p.name}': ADM evaluator statistics {k_mu}/{k_sigma} of the TF Inception graph (read as "
                   "extractor 'inception', mode 'tf-compat'); weights hash and image count unknown."])
    return out


def open_adm_reference(path: str | os.PathLike, **open_kw):
    """ImageSource of the batch's images with `.precomputed_stats` ({output: FeatureStats}) attached.

    With --max-images selecting a subset, the statistics (of the whole batch) are not used.
    """
    from ambient_eval.data import open_source

    src = open_source(path, **open_kw)
    with np.load(path, allow_pickle=False) as z:
        n_all = int(z[IMAGES_KEY].shape[0])
    src.precomputed_stats = read_adm_stats(path) if len(src) == n_all else {}
    return src


def write_adm_npz(source, path: str | os.PathLike, batch_size: int = 256) -> Path:
    """Write SOURCE as an ADM sample batch: `arr_0` N x H x W x 3 uint8 (+ `arr_1` labels), atomically.

    Streams batches into the archive (stored, zip64), so 50k images never sit in memory at once.
    # ImageSource (N images, one size) => .npz file
    """
    from ambient_eval.files.atomic import atomic_path

    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise AmbientError(f"ADM batch file name '{p}' must end in .npz.")
    n = len(source)
    h, w = source.resolution
    with atomic_path(p) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(IMAGES_KEY + ".npy", "w", force_zip64=True) as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                      "shape": (n, h, w, 3)}
            np.lib.format.write_array_header_2_0(f, header)
            done = 0
            for _idx, images in source.iter_batches(batch_size):
                # NCHW uint8 => NHWC uint8 bytes
                arr = images.permute(0, 2, 3, 1).contiguous().cpu().numpy()
                if arr.shape[1:] != (h, w, 3):
                    raise AmbientError(f"{source.description} mixes image sizes ({arr.shape[1]}x{arr.shape[2]} "
                                       f"after {h}x{w}); ADM batches hold one size. Resize the images first.")
                f.write(arr.tobytes())
                done += len(arr)
            if done != n:
                raise AmbientError(f"{source.description} yielded {done} images but reports {n}.")
        labels = source.labels()
        if labels is not None:
            with zf.open(LABELS_KEY + ".npy", "w") as f:
                np.lib.format.write_array(f, np.asarray(labels, np.int64), allow_pickle=False)
    return p
