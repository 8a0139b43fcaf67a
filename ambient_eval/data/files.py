"""Image files in a folder, a zip (incl. EDM dataset_tool zips) or an uncompressed tar, read lazily."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from ambient_eval.data.base import ImageSource, nhwc_to_tensor
from ambient_eval.data.decode import IMAGE_EXTENSIONS, decode, is_image_name, probe
from ambient_eval.errors import AmbientError

LABELS_FILE = "dataset.json"   # EDM dataset_tool: {"labels": [["00000/img00000000.png", 6], ...]}


class Container:
    """Named binary members (relative posix paths) of a folder / zip / tar; `prefix` restricts."""

    kind = "container"

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.path = Path(path)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def names(self) -> list[str]:
        """All member names (relative to prefix), sorted, hidden and __MACOSX entries excluded."""
        raise NotImplementedError

    def read(self, name: str) -> bytes:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def open(self, name: str) -> io.BufferedIOBase:
        return io.BytesIO(self.read(name))

    def display(self, name: str) -> str:
        """How error messages name a member: a full path, or 'archive:member'."""
        return f"{self.path}:{self.prefix}{name}"

    def describe(self) -> str:
        return f"{self.kind} {self.path}" + (f"#{self.prefix.rstrip('/')}" if self.prefix else "")

    def _keep(self, rel: str) -> bool:
        parts = rel.split("/")
        return bool(rel) and not any(p.startswith(".") or p == "__MACOSX" for p in parts)


class FolderContainer(Container):
    kind = "folder"

    def names(self) -> list[str]:
        out = []
        root = self.path / self.prefix if self.prefix else self.path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
            for f in filenames:
                rel = f if rel_dir == "." else f"{rel_dir}/{f}"
                if self._keep(rel):
                    out.append(rel)
        return sorted(out)

    def display(self, name: str) -> str:
        return str(self._full(name))

    def _full(self, name: str) -> Path:
        return self.path / (self.prefix + name)

    def read(self, name: str) -> bytes:
        try:
            return self._full(name).read_bytes()
        except OSError as e:
            raise AmbientError(f"Cannot read '{self._full(name)}': {e.strerror or e}. Check the file.") from e

    def open(self, name: str) -> io.BufferedIOBase:
        return open(self._full(name), "rb")

    def exists(self, name: str) -> bool:
        return self._full(name).is_file()


class ZipContainer(Container):
    """Members of a zip, read one by one (never extracted); reopened lazily in child processes."""

    kind = "zip"

    def __init__(self, path: Path, prefix: str = "") -> None:
        super().__init__(path, prefix)
        self._zf: zipfile.ZipFile | None = None
        self._lock = threading.Lock()            # one member read at a time (decoding is parallel)
        try:
            members = self._zip().namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise AmbientError(f"Cannot open zip '{path}': {e}. Check that it is a complete zip file.") from e
        p = self.prefix
        self._names = sorted(m[len(p):] for m in members
                             if m.startswith(p) and not m.endswith("/") and self._keep(m[len(p):]))
        self._set = set(self._names)

    def _zip(self) -> zipfile.ZipFile:
        if self._zf is None:
            self._zf = zipfile.ZipFile(self.path)
        return self._zf

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_zf": None, "_lock": None}   # handles/locks do not cross processes

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> bytes:
        try:
            with self._lock:
                return self._zip().read(self.prefix + name)
        except (zipfile.BadZipFile, OSError, EOFError) as e:   # bad CRC, truncated member...
            raise AmbientError(f"Cannot read '{name}' from zip '{self.path}': {e}. Re-create the zip.") from e

    def open(self, name: str) -> io.BufferedIOBase:
        with self._lock:
            return self._zip().open(self.prefix + name)   # seekable, decompresses only what is read

    def exists(self, name: str) -> bool:
        return name in self._set


class TarContainer(Container):
    """Members of an uncompressed tar, indexed once, then read by seeking (never extracted)."""

    kind = "tar"

    def __init__(self, path: Path, prefix: str = "") -> None:
        super().__init__(path, prefix)
        self._tf: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._lock = threading.Lock()            # members share one file position
        try:
            for m in self._tar():
                if not m.isfile():
                    continue
                name = m.name[2:] if m.name.startswith("./") else m.name
                if name.startswith(self.prefix) and self._keep(name[len(self.prefix):]):
                    self._members[name[len(self.prefix):]] = m
        except (tarfile.TarError, OSError, EOFError) as e:
            raise AmbientError(f"Cannot read tar '{path}': {e}. Check that it is a complete, "
                               "uncompressed tar (or extract it to a folder).") from e
        self._names = sorted(self._members)

    def _tar(self) -> tarfile.TarFile:
        if self._tf is None:
            self._tf = tarfile.open(self.path, mode="r:")   # uncompressed only: seekable members
        return self._tf

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tf": None, "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def names(self) -> list[str]:
        return self._names

    def read(self, name: str) -> bytes:
        try:
            with self._lock:
                return self._tar().extractfile(self._members[name]).read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise AmbientError(f"Cannot read '{name}' from tar '{self.path}': {e}. Re-create the tar.") from e

    def exists(self, name: str) -> bool:
        return name in self._members


def image_names(container: Container) -> list[str]:
    """Sorted image member names; AmbientError naming the place and extensions when there are none."""
    names = [n for n in container.names() if is_image_name(n)]
    if not names:
        raise AmbientError(
            f"No images found in {container.describe()} (looked recursively for files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}, any case). Point the command at a folder, zip or tar "
            "that contains images.")
    return names


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
                 class_names: list[str] | None = None) -> None:
        super().__init__()
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
                        f"{first[1]}x{first[0]}; all images must have the same size. Pass --resize R "
                        "to resize every image to RxR (PIL bicubic), or fix the data.")
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

    def read(self, indices: Sequence[int]) -> torch.Tensor:
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
        img = decode(self.container.read(name), shown, self._resize)   # bytes => HW3 uint8
        if img.shape[:2] != self._size:
            raise AmbientError(f"Image '{shown}' decoded to {img.shape[1]}x{img.shape[0]} but its header "
                               f"said {self._size[1]}x{self._size[0]}. Replace the file.")
        return img

    def _content_chunks(self) -> Iterable[bytes]:
        for name in self._names:                  # file bytes: cheap compared with feature extraction
            yield hashlib.sha256(self.container.read(name)).digest()

    def _fingerprint_meta(self) -> dict[str, Any]:
        return {"kind": "files", "resize": self._resize,
                "subset": None if self._subset is None else hashlib.sha256(
                    self._subset.astype("<i8").tobytes()).hexdigest()}
