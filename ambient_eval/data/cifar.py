"""CIFAR-10 / CIFAR-100 "python version" batches (directory, .tar.gz, or one batch file).

The official batches are Python pickles of plain numpy data. We never run arbitrary pickles:
`_NumpyOnlyUnpickler` resolves only the few globals needed to rebuild numpy arrays (and
`_codecs.encode`, which Python 3 writes for bytes in protocol 2); any other global - e.g.
`os.system` in a malicious file - is refused before anything is called.
"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from ambient_eval.errors import AmbientError

CIFAR10_DIR, CIFAR100_DIR = "cifar-10-batches-py", "cifar-100-python"
SPLITS = {  # split => batch file names, per dataset
    "cifar10": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "cifar100": {"train": ["train"], "test": ["test"]},
}


def _allowed_globals() -> dict[tuple[str, str], object]:
    import codecs

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays and builtin containers (no other globals)."""

    def __init__(self, f, name: str) -> None:
        super().__init__(f, encoding="bytes")      # official batches were written by Python 2
        self._name = name
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        fn = self._allowed.get((module, name))
        if fn is None:
            raise AmbientError(
                f"CIFAR batch '{self._name}' references '{module}.{name}', which is not plain numpy "
                "data; refusing to load it (it could run code). Use the official CIFAR python batches.")
        return fn

    def persistent_load(self, pid):
        raise AmbientError(f"CIFAR batch '{self._name}' uses persistent ids; refusing to load it.")


def read_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Batch pickle bytes => (N,3,32,32 uint8 NCHW, int64 labels) via the restricted unpickler."""
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data), name).load()
    except AmbientError:
        raise
    except Exception as e:
        raise AmbientError(f"Cannot read CIFAR batch '{name}': {e}. Use the official python batches.") from e
    if not isinstance(obj, dict):
        raise AmbientError(f"CIFAR batch '{name}' is not a dict of arrays. Use the official python batches.")
    d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}
    x = np.asarray(d.get("data"))
    labels = d.get("labels", d.get("fine_labels"))
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or labels is None or len(labels) != len(x):
        raise AmbientError(f"CIFAR batch '{name}' lacks uint8 'data' (N, 3072) with one label per row "
                           f"(got {x.dtype} {x.shape}). Use the official python batches.")
    return x.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def is_cifar_dir(path: Path) -> bool:
    return (path / "batches.meta").is_file() or (path / "data_batch_1").is_file() or \
        ((path / "meta").is_file() and ((path / "train").is_file() or (path / "test").is_file()))


def is_cifar_tar(path: Path) -> bool:
    """True when the first members of the tar are a CIFAR python directory."""
    try:
        with tarfile.open(path) as tf:
            for _, m in zip(range(5), tf):
                if m.name.lstrip("./").split("/")[0] in (CIFAR10_DIR, CIFAR100_DIR):
                    return True
    except (tarfile.TarError, OSError, EOFError) as e:
        raise AmbientError(f"Cannot read tar '{path}': {e}. Check that the file is complete.") from e
    return False


def _batch_files(names: set[str], split: str, where: str) -> list[str]:
    kind = "cifar10" if any(n.startswith("data_batch") or n == "test_batch" for n in names) else "cifar100"
    if split not in SPLITS[kind]:
        raise AmbientError(f"Unknown CIFAR split '{split}' for {where}. Use '#train' or '#test'.")
    files = SPLITS[kind][split]
    missing = [f for f in files if f not in names]
    if missing:
        raise AmbientError(f"{where} lacks the CIFAR batch file(s) {missing}. Re-download or re-extract it.")
    return files


def load_cifar(path: Path, split: str = "") -> tuple[np.ndarray, np.ndarray, str]:
    """(N,3,32,32 uint8, int64 labels, description); split 'train' (default) or 'test'."""
    split = split or "train"
    if path.is_file() and not path.name.lower().endswith((".gz", ".tgz", ".tar")):   # one batch file
        x, y = read_batch(path.read_bytes(), str(path))
        return x, y, f"cifar batch {path}"
    blobs: dict[str, bytes] = {}
    if path.is_dir():
        names = {p.name for p in path.iterdir() if p.is_file()}
        for f in _batch_files(names, split, str(path)):
            blobs[f] = (path / f).read_bytes()
    else:
        with tarfile.open(path) as tf:                 # small archive: one sequential pass
            members = {m.name.split("/")[-1]: m for m in tf.getmembers() if m.isfile()}
            for f in _batch_files(set(members), split, str(path)):
                blobs[f] = tf.extractfile(members[f]).read()
    parts = [read_batch(b, f"{path}/{f}") for f, b in blobs.items()]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return x, y, f"cifar {path}#{split}"
