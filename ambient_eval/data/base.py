"""ImageSource: the one interface every image input (folder, zip, arrays, built-in sets) offers.

Images leave a source as `torch.Tensor`, uint8, NCHW, 3 channels (RGB), on CPU, in batches, so
no dataset is ever held in memory as a whole (arrays are memory-mapped where the format allows).
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

from ambient_eval.errors import AmbientError

if TYPE_CHECKING:  # torch is imported when images are read, so a warm-cache run never imports it
    import torch

FINGERPRINT_VERSION = "ambient-eval-source-v1"  # bump when the fingerprint recipe changes


class ImageSource:
    """A finite, ordered collection of same-sized RGB images.

    Subclasses implement `__len__`, `resolution`, `item_names`, `_read_hwc` and
    `_content_chunks`; they may override `labels`, `read` (faster bulk reads) and
    `_fingerprint_meta`.
    """

    description: str = "images"          # human-readable ("folder /x/y", "npz samples.npz")

    def __init__(self) -> None:
        self.skipped: list[tuple[str, str]] = []   # (item name, reason) skipped with skip_bad
        self._fingerprint: str | None = None

    # ---- to implement -------------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def resolution(self) -> tuple[int, int]:
        """(H, W) of every image (after any resize)."""
        raise NotImplementedError

    def item_names(self) -> list[str]:
        """Relative path in a folder/zip/tar, or f"{i}" for arrays (original index)."""
        raise NotImplementedError

    def labels(self) -> np.ndarray | None:
        """int64 (N,) class labels, or None when the source has none."""
        return None

    def _read_hwc(self, i: int) -> np.ndarray:
        """Image i as HWC uint8, 3 channels, at `resolution`; AmbientError naming it if unreadable."""
        raise NotImplementedError

    def _content_chunks(self) -> Iterable[bytes]:
        """Bytes that identify the content of the selected images, in order (for fingerprint)."""
        raise NotImplementedError

    def _fingerprint_meta(self) -> dict[str, Any]:
        """Settings that change the images without changing the content bytes (resize, subset)."""
        return {}

    # ---- provided -----------------------------------------------------------------------
    def read(self, indices: Sequence[int]) -> "torch.Tensor":
        """Random access: images at `indices` (positions in this source) => uint8 NCHW, 3 channels."""
        idx = self._check_indices(indices)
        h, w = self.resolution
        out = np.empty((len(idx), h, w, 3), dtype=np.uint8)
        for k, i in enumerate(idx):
            out[k] = self._read_hwc(int(i))
        return nhwc_to_tensor(out)

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, "torch.Tensor"]]:
        """Yield (int64 indices, uint8 NCHW 3-channel tensor) for all images, in order.

        The images do not depend on batch_size; only one batch is in memory at a time.
        """
        if int(batch_size) < 1:
            raise AmbientError(f"Batch size must be at least 1, got {batch_size}. Pass a positive batch size.")
        n = len(self)
        from ambient_eval.data.limits import batch_rows

        batch_size = batch_rows(batch_size, *self.resolution)   # one decoded batch stays bounded
        for start in range(0, n, int(batch_size)):
            idx = np.arange(start, min(start + int(batch_size), n), dtype=np.int64)
            yield idx, self.read(idx)

    def fingerprint(self) -> str:
        """sha256 hex of the content (file or array bytes) + labels + subset + resize; cached.

        The same content gives the same fingerprint wherever it is stored (path is not hashed).
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(FINGERPRINT_VERSION.encode())
            meta = dict(self._fingerprint_meta())
            meta["n"] = len(self)
            meta["resolution"] = list(self.resolution)
            h.update(json.dumps(meta, sort_keys=True, default=str).encode())
            for chunk in self._content_chunks():
                h.update(chunk)
            labels = self.labels()
            if labels is not None:
                h.update(b"labels")
                h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def validate(self) -> list[tuple[str, str]]:
        """Decode every image once; return [(name, reason)] of the unreadable ones (no raise)."""
        bad = []
        names = self.item_names()
        for i in range(len(self)):
            try:
                self._read_hwc(i)
            except AmbientError as e:
                bad.append((names[i], str(e)))
        return bad

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}: {len(self)} images {self.resolution}>"

    def _check_indices(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise IndexError(f"image index {bad} out of range for {self.description} with {n} images")
        return idx


def nhwc_to_tensor(images: np.ndarray) -> "torch.Tensor":
    """NHWC uint8 (3 ch) numpy => NCHW uint8 contiguous CPU tensor."""
    import torch

    out = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    if not out.flags.writeable:                   # a view of a read-only memmap: copy it out
        out = out.copy()
    return torch.from_numpy(out)


def to_rgb_hwc(img: np.ndarray) -> np.ndarray:
    """HW / HW1 / HW3 / HW4 uint8 => HW3 uint8 (gray repeated, alpha dropped)."""
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if c == 1:
        return np.repeat(img, 3, axis=2)
    if c == 2:                                   # gray + alpha
        return np.repeat(img[:, :, :1], 3, axis=2)
    if c == 4:                                   # RGBA: alpha dropped (no compositing)
        return np.ascontiguousarray(img[:, :, :3])
    return img


def resize_hwc(img: np.ndarray, size: int, crop: bool = False) -> np.ndarray:
    """HW3 uint8 => size x size HW3 uint8 with PIL bicubic (identity when already that size).

    crop: first center-crop to a square of the short side (GigaGAN / COCO-30k FID protocol).
    """
    if crop and img.shape[0] != img.shape[1]:
        s = min(img.shape[:2])
        y0, x0 = (img.shape[0] - s) // 2, (img.shape[1] - s) // 2
        img = np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s])
    if img.shape[0] == size and img.shape[1] == size:
        return img
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))


def select_subset(n: int, max_images: int | None, subset_seed: int, what: str) -> np.ndarray | None:
    """Seeded random subset of range(n) of size max_images (sorted), or None for all.

    numpy default_rng(subset_seed).choice(n, max_images, replace=False), then sorted.
    """
    if n == 0:
        raise AmbientError(f"{what} contains no images. Point the command at a source with images.")
    if max_images is None or max_images >= n:
        return None
    if max_images < 1:
        raise AmbientError(f"--max-images must be at least 1, got {max_images}. Pass a positive number.")
    rng = np.random.default_rng(subset_seed)
    return np.sort(rng.choice(n, size=int(max_images), replace=False)).astype(np.int64)


class ArraySource(ImageSource):
    """Images from an in-memory or memory-mapped uint8 array.

    `images`: NHWC (C in 1, 3, 4), NHW (gray), or NCHW (C in 1, 3) when unambiguous; uint8.
    `index`: optional sorted positions selected from `images` (a subset); `resize`: square size.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, *,
                 description: str = "array", index: np.ndarray | None = None,
                 resize: int | None = None, crop: bool = False) -> None:
        super().__init__()
        self.description = description
        self._crop = bool(crop and resize)
        if _is_tensor(images):
            arr = images.detach().cpu().numpy()
        else:
            arr = images if isinstance(images, np.ndarray) else np.asarray(images)
        self._layout = array_layout(arr, description)
        self._arr = arr
        self._index = None if index is None else np.asarray(index, dtype=np.int64)
        self._resize = resize
        n_raw = arr.shape[0]
        if labels is not None:
            labels = np.asarray(labels)
            if labels.ndim != 1 or labels.shape[0] != n_raw:
                raise AmbientError(
                    f"Labels of {description} have shape {labels.shape}, expected ({n_raw},). "
                    "Provide one integer label per image.")
            labels = labels.astype(np.int64)
            if self._index is not None:
                labels = labels[self._index]
        self._labels = labels
        if len(self) == 0:
            raise AmbientError(f"{description} contains no images. Point the command at a source with images.")

    def __len__(self) -> int:
        return int(self._arr.shape[0] if self._index is None else self._index.shape[0])

    @property
    def resolution(self) -> tuple[int, int]:
        if self._resize:
            return (self._resize, self._resize)
        s = self._arr.shape
        return (s[2], s[3]) if self._layout == "NCHW" else (s[1], s[2])

    def item_names(self) -> list[str]:
        raw = range(self._arr.shape[0]) if self._index is None else self._index
        return [str(int(i)) for i in raw]

    def labels(self) -> np.ndarray | None:
        return self._labels

    def _raw_rows(self, idx: np.ndarray) -> np.ndarray:
        """Positions in this source => NHW3 uint8 at native size (reads only those rows)."""
        raw = idx if self._index is None else self._index[idx]
        if raw.size and np.all(np.diff(raw) == 1):
            rows = np.asarray(self._arr[int(raw[0]):int(raw[-1]) + 1])   # contiguous: slice memmap
        else:
            rows = np.asarray(self._arr[raw])
        if self._layout == "NCHW":
            rows = rows.transpose(0, 2, 3, 1)
        elif rows.ndim == 3:
            rows = rows[..., None]
        c = rows.shape[3]
        if c == 1:
            rows = np.repeat(rows, 3, axis=3)
        elif c == 4:
            rows = rows[..., :3]
        return rows

    def read(self, indices: Sequence[int]) -> "torch.Tensor":
        idx = self._check_indices(indices)
        rows = self._raw_rows(idx)
        if self._resize:
            rows = np.stack([resize_hwc(r, self._resize, self._crop) for r in rows]) if len(rows) else \
                np.empty((0, self._resize, self._resize, 3), np.uint8)
        return nhwc_to_tensor(rows)

    def _read_hwc(self, i: int) -> np.ndarray:
        return self.read([i])[0].permute(1, 2, 0).numpy()

    def _content_chunks(self) -> Iterable[bytes]:
        # Canonical NHWC bytes of the selected rows, streamed in chunks (layout-independent).
        n = len(self)
        step = 1024
        for start in range(0, n, step):
            idx = np.arange(start, min(start + step, n))
            raw = idx if self._index is None else self._index[idx]
            rows = np.asarray(self._arr[raw])
            if self._layout == "NCHW":
                rows = rows.transpose(0, 2, 3, 1)
            elif rows.ndim == 3:
                rows = rows[..., None]
            yield np.ascontiguousarray(rows).tobytes()

    def _fingerprint_meta(self) -> dict[str, Any]:
        shape = list(self._arr.shape)
        if self._layout == "NCHW":
            shape = [shape[0], shape[2], shape[3], shape[1]]
        elif len(shape) == 3:
            shape = shape + [1]
        return {"kind": "array", "raw_shape": shape[1:], "resize": self._resize,
                **({"crop": "center"} if self._crop else {}),
                "subset": None if self._index is None else hashlib.sha256(
                    self._index.astype("<i8").tobytes()).hexdigest()}


def _is_tensor(x: Any) -> bool:
    """A torch.Tensor (checked without importing torch: a tensor exists only if torch is imported)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def array_layout(arr: np.ndarray, what: str) -> str:
    """'NHWC', 'NHW' or 'NCHW' for a uint8 image array; AmbientError when not an image array."""
    if arr.dtype != np.uint8:
        raise AmbientError(
            f"{what} has dtype {arr.dtype} and shape {tuple(arr.shape)}; images must be uint8 (0..255). "
            "Convert first, e.g. from [-1, 1]: (x * 127.5 + 128).clip(0, 255).astype(np.uint8).")
    s = arr.shape
    if arr.ndim == 3:
        return "NHW"
    if arr.ndim == 4:
        nhwc = s[3] in (1, 3, 4)
        nchw = s[1] in (1, 3)
        if nhwc and nchw:                        # e.g. (N, 3, 32, 3): prefer the square reading
            sq_nhwc, sq_nchw = s[1] == s[2], s[2] == s[3]
            if sq_nhwc != sq_nchw:
                return "NHWC" if sq_nhwc else "NCHW"
        elif nhwc:
            return "NHWC"
        elif nchw:
            return "NCHW"
        else:
            raise AmbientError(
                f"{what} has shape {tuple(s)}: no channel axis of size 1, 3 (or 4 for RGBA). "
                "Store images as (N, H, W, C) or (N, C, H, W) uint8 with C = 1 or 3.")
    raise AmbientError(
        f"{what} has shape {tuple(s)}, which is ambiguous or not an image batch. "
        "Store images as (N, H, W, C) uint8 with C = 1 or 3 (or (N, H, W) for grayscale).")

