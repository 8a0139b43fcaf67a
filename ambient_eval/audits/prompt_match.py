"""Text-to-image memorization: each generation beside the caption it came from and that caption's
own training image (`image` column of the prompt file).

Columns added to a model's per-sample table when its samples come from a prompt file:
prompt, caption_image (name as given), caption_image_index (row in the training set, -1 when the
name is not found), caption_image_sim (cosine of the generation to its caption's own image, NaN when
not found), caption_image_is_top1 (that image is the nearest training image).
"""
from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Sequence

import numpy as np

from ambient_eval.errors import AmbientError


def conditioning_of(source: Any):
    """The Conditioning of a model source sampled from a prompt file, else None."""
    cond = getattr(getattr(source, "denoiser", None), "cond", None)
    return cond if cond is not None and getattr(cond, "rows", None) is not None else None


def _lookup(train_names: Sequence[str]) -> dict[str, int]:
    """Training-image name => row, under its full name, its posix path, and its file name / stem."""
    table: dict[str, int] = {}
    for j, n in enumerate(train_names):
        p = PurePosixPath(str(n).replace("\\", "/"))
        for key in (str(n), str(p), p.name, p.stem):
            table.setdefault(key, j)
    return table


def _train_vectors(rows: np.ndarray, xb: Any, index: Any) -> np.ndarray:
    """Embeddings of training rows: from xb in memory, else reconstructed from the (flat) index."""
    if isinstance(xb, np.ndarray):
        return xb[rows]
    try:
        return np.stack([index.reconstruct(int(j)) for j in rows]) if len(rows) else np.zeros((0, 1))
    except RuntimeError as e:
        raise AmbientError("The caption-image similarity needs the training embeddings, but this index "
                           f"cannot return them ({e}). Use --index flat without --shards for a prompt-file "
                           "memorization audit.") from e


def add_prompt_columns(table, source: Any, train_names: Sequence[str], xq: np.ndarray, xb: Any,
                       index: Any) -> None:
    """Add the prompt / caption-image columns to `table` in place (no-op without a prompt file)."""
    cond = conditioning_of(source)
    if cond is None:
        return
    rows = [cond.row_of(int(s)) for s in source.seeds]
    table["prompt"] = [r.prompt for r in rows]
    if all(r.image is None for r in rows):
        return
    lookup = _lookup(train_names)
    idx = np.asarray([-1 if r.image is None else lookup.get(r.image, lookup.get(
        PurePosixPath(r.image).name, -1)) for r in rows], dtype=np.int64)
    found = idx >= 0
    sim = np.full(len(rows), np.nan)
    if found.any():
        # xq rows and training vectors are L2-normalized: cosine = dot product (float64 sum)
        v = _train_vectors(idx[found], xb, index).astype(np.float64)
        sim[found] = np.clip(np.einsum("nd,nd->n", xq[found].astype(np.float64), v), -1.0, 1.0)
    table["caption_image"] = [r.image for r in rows]
    table["caption_image_index"] = idx
    table["caption_image_sim"] = sim
    table["caption_image_is_top1"] = found & (table["top1_index"].to_numpy() == idx)
