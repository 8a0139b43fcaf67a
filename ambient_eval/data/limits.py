"""Memory limits checked before decoding, so a small malicious or broken input cannot take the machine.

A 140 KB PNG can declare 50000 x 50000 pixels (7.5 GB decoded); a 4 MB zip can hold a member that
inflates to gigabytes. We read sizes from headers (image header, zip/tar directory) and refuse with
exit 2 before allocating anything. Each limit can be raised with an environment variable:

  AMBIENT_EVAL_MAX_PIXELS       pixels per decoded image           (default 2**25 = 33.5 M, e.g. 5792 x 5792)
  AMBIENT_EVAL_MAX_FILE_BYTES   bytes per image file / archive member (default 256 MiB)
  AMBIENT_EVAL_MAX_BATCH_BYTES  bytes of one decoded batch; larger batches are split (default 1 GiB)
"""
from __future__ import annotations

import os

from ambient_eval.errors import AmbientError

DEFAULT_MAX_PIXELS = 2 ** 25
DEFAULT_MAX_FILE_BYTES = 256 * 2 ** 20
DEFAULT_MAX_BATCH_BYTES = 2 ** 30
# A zip member inflating more than this many times (and beyond 16 MiB) is treated as a bomb.
MAX_ZIP_RATIO = 200
ZIP_RATIO_MIN_BYTES = 16 * 2 ** 20


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise AmbientError(f"{name}='{raw}' is not a number. Set it to a positive integer or unset it.") from None
    if value < 1:
        raise AmbientError(f"{name}={raw} must be at least 1. Set a positive integer or unset it.")
    return value


def max_pixels() -> int:
    """Largest W*H decoded per image."""
    return _env_int("AMBIENT_EVAL_MAX_PIXELS", DEFAULT_MAX_PIXELS)


def max_file_bytes() -> int:
    """Largest image file or archive member read into memory."""
    return _env_int("AMBIENT_EVAL_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES)


def max_batch_bytes() -> int:
    """Largest decoded batch (N*H*W*3 bytes)."""
    return _env_int("AMBIENT_EVAL_MAX_BATCH_BYTES", DEFAULT_MAX_BATCH_BYTES)


def check_pixels(width: int, height: int, name: str) -> None:
    """AmbientError before decoding an image whose header declares more than max_pixels()."""
    limit = max_pixels()
    if int(width) * int(height) > limit:
        raise AmbientError(
            f"Image '{name}' declares {width}x{height} = {int(width) * int(height):,} pixels, more than the "
            f"limit of {limit:,} (it would take {int(width) * int(height) * 3 / 2**30:.1f} GiB decoded; "
            "possibly a decompression bomb). Remove the file, pass --skip-bad to skip it, or raise "
            "AMBIENT_EVAL_MAX_PIXELS if the image is genuine.")


def check_member_size(size: int, name: str, compressed: int | None = None) -> None:
    """AmbientError before reading a file/member of `size` bytes (declared) that is too large."""
    limit = max_file_bytes()
    if size > limit:
        raise AmbientError(
            f"'{name}' is {size:,} bytes{f' ({size / 2**20:.0f} MiB)' if size >= 2**20 else ''}, more than the "
            f"limit of {limit:,} bytes for "
            "one image file; it is not a plausible image (possibly a zip bomb). Remove it, pass --skip-bad "
            "to skip it, or raise AMBIENT_EVAL_MAX_FILE_BYTES.")
    if compressed is not None and size > ZIP_RATIO_MIN_BYTES and size > MAX_ZIP_RATIO * max(compressed, 1):
        raise AmbientError(
            f"'{name}' inflates from {compressed:,} to {size:,} bytes (ratio {size / max(compressed, 1):.0f}:1, "
            f"limit {MAX_ZIP_RATIO}:1); this looks like a zip bomb. Remove it or pass --skip-bad to skip it.")


def batch_rows(batch_size: int, height: int, width: int) -> int:
    """batch_size, lowered so one decoded uint8 batch stays within max_batch_bytes() (at least 1)."""
    per = max(1, int(height) * int(width) * 3)
    return max(1, min(int(batch_size), max_batch_bytes() // per))
