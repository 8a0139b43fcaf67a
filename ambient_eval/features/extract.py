"""Stream an image source through an extractor, batch by batch, with the feature cache in front."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from ambient_eval.errors import AmbientError
from ambient_eval.features.base import FeatureExtractor
from ambient_eval.runtime.oom import oom_guard

if TYPE_CHECKING:
    from ambient_eval.data.base import ImageSource
    from ambient_eval.features.cache import FeatureCache

log = logging.getLogger(__name__)


def extract_features(source: "ImageSource", extractor: FeatureExtractor, *, batch_size: int = 64,
                     cache: "FeatureCache | None" = None) -> dict[str, np.ndarray]:
    """All outputs of `extractor` for every image of `source`, in source order.

    # ImageSource (N images) => {output name: N x dim float32}
    A cache hit does no extraction at all; NaN/Inf features are an error naming the source.
    Under torchrun the ranks share the work and all receive every row (features/distributed.py).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise AmbientError(f"Batch size must be a positive integer, got {batch_size!r}. Use e.g. --batch-size 64.")
    n = len(source)
    if n == 0:
        raise AmbientError(f"Image source {source.description} holds no images. Point it at images.")
    from ambient_eval.features import distributed as D

    key = None
    if cache is not None:
        key = cache.key(source.fingerprint(), extractor)
        hit = cache.get(key, extractor.outputs)
        ok = hit is not None and all(f.shape[0] == n for f in hit.values())
        if D.all_agree(ok):  # under torchrun: a hit only when every rank hits
            log.info("features of %s with %s: cache hit %s", source.description, extractor.name, key[:12])
            return hit
    if D.active():  # torchrun: this rank extracts a contiguous run of whole batches, then all gather
        rank, world = D.rank_world()
        start, stop = D.batch_range(n, batch_size, rank, world)
        error = None
        try:
            part = _extract_rows(_prefetched(D.iter_range(source, start, stop, batch_size), source, extractor),
                                 stop - start, start, source, extractor)
        except AmbientError as e:
            error, part = str(e), None
        error = D.broadcast_error(error)
        if error is not None:
            raise AmbientError(error)
        feats = {name: D.gather_rows(part[name], n) for name in extractor.outputs}
    else:
        feats = _extract_rows(_prefetched(source.iter_batches(batch_size), source, extractor), n, 0, source,
                              extractor)
    if cache is not None and key is not None and D.is_main():
        cache.put(key, feats)
    return feats


def _prefetched(batches, source, extractor):
    """Decode ahead of the network on GPUs (data/prefetch.py), into pinned memory.

    Sources whose "decoding" is itself GPU work (ModelSource: sampling) are not prefetched.
    """
    from ambient_eval.data.prefetch import DEFAULT_DEPTH, prefetch, prefetch_depth

    if not getattr(source, "prefetch_ok", True):
        return batches
    on_gpu = getattr(getattr(extractor, "device", None), "type", None) == "cuda"
    # CPU: decode and network share the cores (measured 0.82x when forced): off unless asked for.
    return prefetch(batches, depth=prefetch_depth(DEFAULT_DEPTH if on_gpu else 0), pin=on_gpu)


def _extract_rows(batches, n: int, offset: int, source, extractor: FeatureExtractor) -> dict[str, np.ndarray]:
    """Features of the n images yielded by `batches` (rows offset.. of `source`), with checks."""
    feats = {name: np.empty((n, dim), np.float32) for name, dim in extractor.outputs.items()}
    from ambient_eval.runtime.progress import progress

    bar = progress(None, total=n, desc=f"{extractor.name} features", unit="img")
    done = 0
    try:
        for _indices, images in batches:
            if done + images.shape[0] > n:
                raise AmbientError(f"Image source {source.description} yielded more than its {n} images. "
                                   "Re-open the source; it changed while being read.")
            with oom_guard(f"extracting {extractor.name} features of a batch of {images.shape[0]} images",
                           "Lower --batch (e.g. to half), or run with --device cpu."):
                out = extractor(images)
            for name, f in out.items():
                arr = f.numpy()
                _check_finite(arr, name, source, extractor, offset + done)
                feats[name][done:done + arr.shape[0]] = arr
            done += images.shape[0]
            bar.update(images.shape[0])
    finally:
        bar.close()
    if done != n:
        raise AmbientError(f"Image source {source.description} yielded {done} images but reports {n}. "
                           "Re-open the source; it changed while being read.")
    return feats


def _check_finite(arr: np.ndarray, name: str, source, extractor: FeatureExtractor, offset: int) -> None:
    # Non-finite features poison mean/covariance silently; stop with the first offending images.
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = (np.flatnonzero(bad) + offset)[:5].tolist()
        try:
            names = [source.item_names()[i] for i in rows]
        except Exception:  # naming is a courtesy; the indices are enough
            names = []
        raise AmbientError(
            f"Extractor '{extractor.name}' produced NaN/Inf features for {int(bad.sum())} image(s) of "
            f"{source.description} (output {name}, image indices {rows}{', ' + str(names) if names else ''}, "
            f"extraction stopped at the first bad batch). Check those images and the "
            f"weights file ({extractor.weights_path or 'none'}); try --device cpu if this happens on a GPU.")
