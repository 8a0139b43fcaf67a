"""MNIST-style IDX files (`*-idx3-ubyte[.gz]` images, `*-idx1-ubyte[.gz]` labels beside them)."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np

from ambient_eval.errors import AmbientError

_UBYTE = 0x08   # IDX type code for unsigned byte


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """IDX file => uint8 array (memory-mapped when not gzipped); AmbientError on a bad header."""
    gz = path.name.lower().endswith(".gz")
    try:
        if gz:
            with gzip.open(path, "rb") as f:
                data = f.read()
            head = data[:4 + 4 * ndim]
        else:
            with open(path, "rb") as f:
                head = f.read(4 + 4 * ndim)
    except (OSError, EOFError) as e:
        raise AmbientError(f"Cannot read IDX file '{path}': {e}. Re-download it.") from e
    if len(head) < 4 + 4 * ndim or head[0] != 0 or head[1] != 0 or head[2] != _UBYTE or head[3] != ndim:
        raise AmbientError(f"'{path}' is not an unsigned-byte IDX file with {ndim} dimensions "
                           f"(header {head[:4].hex()}). Pass an MNIST *-idx{ndim}-ubyte[.gz] file.")
    shape = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    offset, count = 4 + 4 * ndim, int(np.prod(shape))
    size = len(data) if gz else path.stat().st_size
    if size - offset != count:
        raise AmbientError(f"IDX file '{path}' should hold {count} bytes of data for shape {shape} "
                           f"but holds {size - offset}. The file is truncated or corrupt; re-download it.")
    if gz:
        return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
    return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=shape)


def labels_path(images_path: Path) -> Path | None:
    """t10k-images-idx3-ubyte.gz => t10k-labels-idx1-ubyte.gz (when it exists)."""
    name = re.sub("idx3", "idx1", images_path.name, flags=re.IGNORECASE)
    name = re.sub("images", "labels", name, flags=re.IGNORECASE)
    for cand in (name, name[:-3] if name.endswith(".gz") else name + ".gz"):
        p = images_path.with_name(cand)
        if p.is_file() and p != images_path:
            return p
    return None


def load_mnist(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(N,H,W uint8 gray, int64 labels or None, description)."""
    images = read_idx(path, 3)
    lp = labels_path(path)
    labels = None
    if lp is not None:
        labels = np.asarray(read_idx(lp, 1), dtype=np.int64)
        if labels.shape[0] != images.shape[0]:
            raise AmbientError(f"'{lp}' has {labels.shape[0]} labels but '{path}' has {images.shape[0]} "
                               "images. Put the matching labels file beside the images.")
    return images, labels, f"mnist {path}"
