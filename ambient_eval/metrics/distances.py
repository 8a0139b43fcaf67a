"""Blocked Euclidean distances in float64 for the neighbourhood metrics (P/R, density/coverage).

Why our own and not torch-fidelity's `torch.cdist`: importing torch costs ~2.5 s on a 2-core CPU,
more than a whole warm-cache `fid` run, and the features arrive as numpy arrays on the CPU anyway
(torch-fidelity's P/R ran on the CPU here too). Distances are computed in float64 as
||a||^2 + ||b||^2 - 2 a.b after subtracting one common centre (distances do not change; the
cancellation error, ~1e-16 (|a|^2 + |b|^2), gets small), so membership decisions (<= or <) are made
on nearly exact numbers. Rows go in blocks so that one block of distances stays under BLOCK_BYTES.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

BLOCK_BYTES = 256 << 20   # one block of float64 distances (rows x columns x 8 bytes)


def centred_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets in float64, shifted by the mean of `a` (distances are translation invariant)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    centre = a.mean(axis=0)
    return a - centre, b - centre


def row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Slices of rows such that rows x n_cols float64 fit in BLOCK_BYTES (at least one row)."""
    step = max(1, BLOCK_BYTES // (8 * max(1, n_cols)))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def distances(a: np.ndarray, b: np.ndarray, a_sq: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of a and rows of b. # NC, MC float64 (+ squared norms) => NxM"""
    d2 = a_sq[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    np.maximum(d2, 0.0, out=d2)   # round-off can make a tiny distance negative
    return np.sqrt(d2, out=d2)


def squared_norms(x: np.ndarray) -> np.ndarray:
    """Row-wise squared norms. # NC float64 => N float64"""
    return np.einsum("ij,ij->i", x, x)


def kth_neighbour_distance(x: np.ndarray, k: int, x_sq: np.ndarray | None = None) -> np.ndarray:
    """Distance of each row of x to its k-th nearest other row. # NC float64 => N float64

    A row's distance to itself is set to exactly 0, so the (k+1)-th smallest of its row of
    distances is the k-th nearest other row (duplicates count as neighbours at distance 0).
    """
    x_sq = squared_norms(x) if x_sq is None else x_sq
    out = np.empty(len(x))
    for rows in row_blocks(len(x), len(x)):
        d = distances(x[rows], x, x_sq[rows], x_sq)
        d[np.arange(d.shape[0]), np.arange(rows.start, rows.stop)] = 0.0
        out[rows] = np.partition(d, k, axis=1)[:, k]
    return out
