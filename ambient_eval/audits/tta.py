"""Test-time augmentation of memorization queries: copies that survive flips and small shifts.

`--tta none|flip|shift|flip+shift`: every generated sample is embedded in several views (itself,
its horizontal mirror, and/or shifted by a few pixels in 8 directions), each view is searched, and a
sample's similarity to a training image is the MAX over views (a flipped copy of a training image
matches the flipped view exactly). The training set is embedded once, unaugmented.

Views are image sources of their own (fingerprint = base fingerprint + view), so their features
go through the feature cache like any source. Also here: `degenerate_warnings`, which flags an
embedding whose similarities are all near 1 (random or wrong weights make every sample a "copy").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ambient_eval.data.base import ImageSource
from ambient_eval.data.wrapped import WrappedSource
from ambient_eval.errors import AmbientError

if TYPE_CHECKING:
    import torch

TTA_MODES = ("none", "flip", "shift", "flip+shift")


@dataclass(frozen=True)
class TTADefaults:
    shift_frac: float = 1 / 16        # shift = max(1, round(side * shift_frac)) pixels (2 px at 32 px)
    degenerate_top1: float = 0.98     # warn when the median top-1 similarity of a model exceeds this
    degenerate_pairs: float = 0.90    # ... or the median similarity of random training pairs does
    n_pairs: int = 2000               # random training pairs sampled for that check
    seed: int = 0


DEFAULTS = TTADefaults()


def shift_pixels(side: int, defaults: TTADefaults = DEFAULTS) -> int:
    """Shift of the `shift` views for images of this side (pixels)."""
    return max(1, round(side * defaults.shift_frac))


def _shift(x: "torch.Tensor", dy: int, dx: int) -> "torch.Tensor":
    # NCHW => content moved by (dy, dx) pixels; the uncovered border repeats the edge pixels
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    padded = F.pad(x.float(), (p, p, p, p), mode="replicate").to(x.dtype)
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w].contiguous()


def view_transforms(mode: str, side: int) -> list[tuple[str, Callable]]:
    """[(view name, NCHW uint8 => NCHW uint8)] for a --tta mode; the identity view comes first."""
    if mode not in TTA_MODES:
        raise AmbientError(f"Unknown --tta '{mode}'. Use one of: {', '.join(TTA_MODES)}.")
    s = shift_pixels(side)
    views: list[tuple[str, Callable]] = [("identity", lambda x: x)]
    flips = [("", lambda x: x)]
    if "flip" in mode:
        views.append(("flip", lambda x: x.flip(-1)))
        flips.append(("flip+", lambda x: x.flip(-1)))
    if "shift" in mode:
        for fname, f in flips:
            for dy, dx in ((0, s), (0, -s), (s, 0), (-s, 0), (s, s), (s, -s), (-s, s), (-s, -s)):
                views.append((f"{fname}shift({dy},{dx})",
                              lambda x, f=f, dy=dy, dx=dx: _shift(f(x), dy, dx)))
    return views


class ViewSource(WrappedSource):
    """`base` with a transform applied to every image (same order, names and size)."""

    def __init__(self, base: ImageSource, view: str, transform: Callable) -> None:
        super().__init__(base)
        self.view, self.transform = view, transform
        self.description = f"{base.description} [view {view}]"

    def read(self, indices: Sequence[int]):
        return self.transform(self.base.read(indices))

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, Any]]:
        for idx, images in self.base.iter_batches(batch_size):
            yield idx, self.transform(images)

    def _read_hwc(self, i: int) -> np.ndarray:
        return self.read([i])[0].permute(1, 2, 0).numpy()

    def _content_chunks(self) -> Iterable[bytes]:  # fingerprint() is overridden
        return iter(())

    def fingerprint(self) -> str:
        from ambient_eval.files.hashing import sha256_json

        return sha256_json({"view_of": self.base.fingerprint(), "view": self.view})


def merge_views(results: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k over views with the max similarity per training image, and the view of each top-1.

    results: per view (D (nq, k) float32, I (nq, k) int64) => D, I (nq, k), view index (nq,) int64.
    """
    D = np.concatenate([d for d, _ in results], axis=1)
    I = np.concatenate([i for _, i in results], axis=1)
    V = np.concatenate([np.full(d.shape, v, np.int64) for v, (d, _) in enumerate(results)], axis=1)
    order = np.lexsort((V, -D, I), axis=-1)         # per row: by training index, best similarity first
    D, I, V = (np.take_along_axis(a, order, 1) for a in (D, I, V))
    dup = np.zeros(D.shape, bool)
    dup[:, 1:] = I[:, 1:] == I[:, :-1]              # a training image found by several views: keep max
    D = np.where(dup | (I < 0), -np.inf, D)
    order = np.lexsort((V, I, -D), axis=-1)[:, :k]  # similarity descending, lower index, first view
    D, I, V = (np.take_along_axis(a, order, 1) for a in (D, I, V))
    return D.astype(np.float32), I, V[:, 0]


def degenerate_warnings(top1: dict[str, np.ndarray], pair_sims: np.ndarray | None, embed: str,
                        defaults: TTADefaults = DEFAULTS) -> list[str]:
    """Warnings when similarities are all near 1 (an embedding that cannot tell images apart)."""
    out = []
    if pair_sims is not None and pair_sims.size and float(np.median(pair_sims)) > defaults.degenerate_pairs:
        out.append(f"Embedding '{embed}': unrelated training images have median cosine similarity "
                   f"{float(np.median(pair_sims)):.4f} (> {defaults.degenerate_pairs}), so it cannot tell "
                   "images apart and copy flags are meaningless. This happens with random or wrong "
                   "weights; check --weights (official files), or use --embed pixel for exact copies.")
    for name, t in top1.items():
        med = float(np.median(t)) if t.size else 0.0
        if med > defaults.degenerate_top1:
            out.append(f"Model '{name}': median top-1 similarity is {med:.4f} (> {defaults.degenerate_top1}) "
                       f"with embedding '{embed}': nearly every sample looks like a copy. Either the model "
                       "reproduces its training set, or the embedding's weights are random or wrong; "
                       "check --weights and look at the report's closest pairs before trusting the flags.")
    return out


def random_pair_sims(xb: Any, n_pairs: int = DEFAULTS.n_pairs, seed: int = DEFAULTS.seed) -> np.ndarray:
    """Cosine similarities of seeded random pairs of distinct training rows (unit vectors)."""
    n = xb.shape[0]
    if n < 2:
        return np.empty(0, np.float32)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, n_pairs)
    b = (a + rng.integers(1, n, n_pairs)) % n          # b != a
    rows = np.unique(np.concatenate([a, b]))
    x = np.asarray(xb[rows], dtype=np.float32)
    pos = {int(r): i for i, r in enumerate(rows)}
    ia, ib = np.array([pos[int(r)] for r in a]), np.array([pos[int(r)] for r in b])
    return np.einsum("ij,ij->i", x[ia], x[ib])


def search_views(index: Any, source: ImageSource, extractor: Any, *, embed: str, mode: str, k: int,
                 batch_size: int, cache: Any = None, desc: str = "search"
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Embed and search every view of `source`; merged (D, I), top-1 view index, identity queries, view names."""
    from ambient_eval.audits import embed as E
    from ambient_eval.audits import search as S

    views = view_transforms(mode, min(source.resolution))
    results, xq = [], None
    for name, f in views:
        src = source if name == "identity" else ViewSource(source, name, f)
        x = E.embed_source(src, extractor, embed=embed, batch_size=batch_size, cache=cache)
        if xq is None:
            xq = x
        results.append(S.search(index, x, k, progress_desc=desc if len(views) == 1 else f"{desc} [{name}]"))
    if len(results) == 1:
        D, I = results[0]
        return D, I, np.zeros(D.shape[0], np.int64), xq, [views[0][0]]
    D, I, V = merge_views(results, k)
    return D, I, V, xq, [v for v, _ in views]
