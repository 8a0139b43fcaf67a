"""Image arrays in .npy / .npz files, memory-mapped where the file layout allows it."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ambient_eval.errors import AmbientError

IMAGE_KEYS = ("images", "arr_0")        # tried in this order; else the only array in the file
LABEL_KEY = "labels"


def load_npy(path: Path) -> np.ndarray:
    """A .npy array, memory-mapped (read lazily); pickled object arrays are refused."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise AmbientError(f"Cannot read '{path}' as a numeric .npy array: {e}. Save images with "
                           "np.save(path, uint8_array) (object arrays are refused).") from e
    except OSError as e:
        raise AmbientError(f"Cannot read '{path}': {e}. Check that it is a complete .npy file.") from e


def load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(images, labels or None, key) from a .npz; stored (np.savez) members are memory-mapped."""
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise AmbientError(f"Cannot read '{path}' as .npz: {e}. Check that it is a complete .npz file.") from e
    key = next((k for k in IMAGE_KEYS if k in keys), None)
    if key is None:
        candidates = [k for k in keys if k != LABEL_KEY]
        if len(candidates) != 1:
            hint = (" It looks like a statistics file (mu, sigma); pass it where reference statistics "
                    "are accepted." if {"mu", "sigma"} <= set(keys) else "")
            raise AmbientError(f"'{path}' holds arrays {keys}, none named 'images' or 'arr_0'.{hint} "
                               "Save the images under the key 'images'.")
        key = candidates[0]
    images = _mmap_member(path, key + ".npy")
    if images is None:                            # compressed member: must be read into memory
        try:
            with np.load(path, allow_pickle=False) as z:
                images = z[key]
        except ValueError as e:                   # object (pickled) arrays are never loaded
            raise AmbientError(f"Cannot read '{path}' key '{key}': {e}. Images must be a numeric array "
                               "(np.savez(path, images=uint8_array)); object arrays are refused because "
                               "loading them runs pickled code.") from None
    labels = None
    label_key = LABEL_KEY if LABEL_KEY in keys else ("arr_1" if key == "arr_0" and "arr_1" in keys else None)
    if label_key is not None and key != label_key:  # arr_1: the ADM evaluator's sample-batch labels
        with np.load(path, allow_pickle=False) as z:
            labels = np.asarray(z[label_key])
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise AmbientError(f"'{path}' key '{label_key}' has shape {labels.shape} and dtype {labels.dtype}; "
                               "expected one integer per image. Fix or drop the labels.")
    return images, labels, key


def _mmap_member(path: Path, member: str) -> np.ndarray | None:
    """Memory-map an uncompressed .npy member of a zip (np.savez); None when compressed."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as f:
            # Local file header: 30 bytes + name + extra field, then the member's bytes.
            f.seek(info.header_offset)
            local = f.read(30)
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            start = info.header_offset + 30 + name_len + extra_len
            f.seek(start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            if dtype.hasobject or fortran:
                return None
            offset = f.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
