"""Images stored as files (folder / zip / tar): labels, header checks, lazy parallel decoding."""
from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ambient_eval.data.base import ImageSource, nhwc_to_tensor
from ambient_eval.data.containers import Container, image_names  # noqa: F401 (image_names re-exported)
from ambient_eval.data.decode import decode, probe
from ambient_eval.errors import AmbientError, option_hint

if TYPE_CHECKING:  # imported when images are read (data/base.py)
    import torch

LABELS_FILE = "dataset.json"   # EDM dataset_tool: {"labels": [["00000/img00000000.png", 6], ...]}


def find_labels(container: Container, names: list[str], mode: str | None) -> tuple[np.ndarray | None, list[str] | None]:
    """int64 labels for `names` from dataset.json (EDM) or class subfolders (mode="folders")."""
    if mode not in (None, "folders", "dataset.json", "none"):
        raise AmbientError(f"Unknown labels mode '{mode}'. Use 'folders', 'dataset.json' or 'none'.")
    if mode == "folders":
        tops = [n.split("/", 1)[0] if "/" in n else None for n in names]
        if None in tops:
            raise AmbientError(
                f"Image '{names[tops.index(None)]}' in {container.describe()} is not inside a class "
                "subfolder, but folder labels were requested. Put every image in <class>/ folders.")
        classes = sorted(set(tops))
        lookup = {c: i for i, c in enumerate(classes)}
        return np.array([lookup[t] for t in tops], dtype=np.int64), classes
    if mode == "none" or not container.exists(LABELS_FILE):
        if mode == "dataset.json":
            raise AmbientError(f"No {LABELS_FILE} in {container.describe()}. Add it or drop the labels option.")
        return None, None
    where = f"{LABELS_FILE} in {container.describe()}"
    try:
        meta = json.loads(container.read(LABELS_FILE))
    except (ValueError, UnicodeDecodeError) as e:
        raise AmbientError(f"Cannot parse {where}: {e}. Fix the JSON.") from e
    pairs = meta.get("labels") if isinstance(meta, dict) else None
    if pairs is None:
        return None, None                         # EDM writes "labels": null for unlabeled sets
    try:
        lookup = {str(p).replace("\\", "/"): int(lab) for p, lab in pairs}
    except (TypeError, ValueError) as e:
        raise AmbientError(f"{where} must hold {{\"labels\": [[relpath, int_label], ...]}}: {e}. "
                           "Fix the file.") from e
    missing = [n for n in names if n not in lookup]
    if missing:
        raise AmbientError(f"Image '{missing[0]}' has no label in {where} ({len(missing)} images "
                           "without labels). Regenerate dataset.json or remove the images.")
    return np.array([lookup[n] for n in names], dtype=np.int64), None


DECODE_THREADS_ENV = "AMBIENT_EVAL_DECODE_THREADS"   # threads decoding image files; 1 = serial
_POOL: tuple[int, Any] | None = None                   # (pid, ThreadPoolExecutor), per process


def decode_pool():
    """Shared decode thread pool (min(8, CPUs) threads, or $AMBIENT_EVAL_DECODE_THREADS); None = serial."""
    global _POOL
    n = int(os.environ.get(DECODE_THREADS_ENV) or min(8, os.cpu_count() or 1))
    if n <= 1:
        return None
    if _POOL is None or _POOL[0] != os.getpid():       # a forked child needs its own threads
        from concurrent.futures import ThreadPoolExecutor

        _POOL = (os.getpid(), ThreadPoolExecutor(max_workers=n, thread_name_prefix="ae-decode"))
    return _POOL[1]


class FileSource(ImageSource):
    """Images stored as files in a container; headers checked up front, pixels decoded lazily."""

    def __init__(self, container: Container, names: list[str], labels: np.ndarray | None = None, *,
                 resize: int | None = None, skip_bad: bool = False, subset: np.ndarray | None = None,
                 class_names: list[str] | None = None, crop: bool = False) -> None:
        super().__init__()
        self._crop = bool(crop and resize)        # center-crop to a square before the resize
        self.container = container
        self.description = container.describe()
        self.class_names = class_names
        self._resize = resize
        self._subset = subset
        keep = []
        sizes: dict[int, tuple[int, int]] = {}
        for k, name in enumerate(names):          # cheap header check: no pixel decode
            try:
                with container.open(name) as fp:
                    sizes[k] = probe(fp, container.display(name))
                keep.append(k)
            except AmbientError as e:
                if not skip_bad:
                    raise
                self.skipped.append((name, str(e)))
        self._names = [names[k] for k in keep]
        self._labels = None if labels is None else np.asarray(labels, np.int64)[keep]
        if not self._names:
            raise AmbientError(f"{self.description} contains no readable images "
                               f"({len(self.skipped)} skipped). Point the command at a source with images.")
        first = sizes[keep[0]]
        if resize is None:
            for k in keep:
                if sizes[k] != first:
                    raise AmbientError(
                        f"Image '{container.display(names[k])}' is {sizes[k][1]}x{sizes[k][0]} (WxH) but "
                        f"'{container.display(names[keep[0]])}' is "
                        f"{first[1]}x{first[0]}; all images must have the same size. " + option_hint(
                            "--resize", "Pass --resize R to resize every image to RxR (PIL bicubic), or fix the "
                            "data.", "Resize the images to one size first (or, from Python, open the folder with "
                            "ambient_eval.data.open_source(PATH, resize=R): PIL bicubic to RxR)."))
        self._size = (resize, resize) if resize else first
        if skip_bad:                              # full decode once so unreadable pixels are skipped too
            bad = dict(self.validate())
            if bad:
                good = [k for k, n in enumerate(self._names) if n not in bad]
                self.skipped.extend(bad.items())
                self._names = [self._names[k] for k in good]
                if self._labels is not None:
                    self._labels = self._labels[good]
                if not self._names:
                    raise AmbientError(f"{self.description} contains no readable images "
                                       f"({len(self.skipped)} skipped). Point the command at a source with images.")

    def __len__(self) -> int:
        return len(self._names)

    @property
    def resolution(self) -> tuple[int, int]:
        return self._size

    def item_names(self) -> list[str]:
        return list(self._names)

    def labels(self) -> np.ndarray | None:
        return self._labels

    def read(self, indices: Sequence[int]) -> "torch.Tensor":
        """Images at `indices` => uint8 NCHW (3 ch); files decoded in parallel threads (PIL frees the GIL)."""
        idx = self._check_indices(indices)
        h, w = self._size
        out = np.empty((len(idx), h, w, 3), dtype=np.uint8)

        def one(k: int) -> None:
            out[k] = self._read_hwc(int(idx[k]))

        pool = decode_pool() if len(idx) >= 8 else None
        for _ in (pool.map(one, range(len(idx))) if pool else map(one, range(len(idx)))):
            pass                                  # map keeps order; the first error (in order) is raised
        return nhwc_to_tensor(out)

    def _read_hwc(self, i: int) -> np.ndarray:
        name = self._names[i]
        shown = self.container.display(name)
        img = decode(self.container.read(name), shown, self._resize, self._crop)   # bytes => HW3 uint8
        if img.shape[:2] != self._size:
            raise AmbientError(f"Image '{shown}' decoded to {img.shape[1]}x{img.shape[0]} but its header "
                               f"said {self._size[1]}x{self._size[0]}. Replace the file.")
        return img

    def _content_chunks(self) -> Iterable[bytes]:
        for name in self._names:                  # file bytes: cheap compared with feature extraction
            yield hashlib.sha256(self.container.read(name)).digest()

    def _fingerprint_meta(self) -> dict[str, Any]:
        return {"kind": "files", "resize": self._resize, **({"crop": "center"} if self._crop else {}),
                "subset": None if self._subset is None else hashlib.sha256(
                    self._subset.astype("<i8").tobytes()).hexdigest()}
