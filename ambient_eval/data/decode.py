"""Decoding one image file into HWC uint8 RGB per SPEC "Image conventions", with clean errors."""
from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np

from ambient_eval.data.base import resize_hwc, to_rgb_hwc
from ambient_eval.data.limits import check_pixels
from ambient_eval.errors import AmbientError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")   # matched case-insensitively
# 8-bit modes we convert: bilevel/gray -> repeated, palette -> RGB, alpha dropped.
SUPPORTED_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")

def skip_hint() -> str:
    """The fix for an unreadable image; names --skip-bad only where the command has it."""
    from ambient_eval.errors import option_hint

    return option_hint("--skip-bad", "Remove or replace the file, or pass --skip-bad to skip unreadable images "
                       "(they are counted).", "Remove or replace the file.")


def is_image_name(name: str) -> bool:
    """True for names ending in a supported image extension (any case); hidden files excluded."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def probe(fp: BinaryIO, name: str) -> tuple[int, int]:
    """Cheap header check (no pixel decode): (H, W), or AmbientError for unreadable/unsupported files."""
    from PIL import Image

    try:
        with Image.open(fp) as im:
            mode, fmt, (w, h) = im.mode, im.format, im.size
    except Exception as e:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError...)
        raise AmbientError(f"Cannot read image '{name}': {_reason(e)}. {skip_hint()}") from e
    check_pixels(w, h, name)                      # before any decode: no decompression bombs
    _check_mode(mode, name)
    fp.seek(0)
    head = fp.read(30)
    if fmt == "PNG" and len(head) >= 25 and head[24] == 16:
        # PIL opens 16-bit RGB(A) PNGs as 8-bit "RGB"/"RGBA" silently; the IHDR bit depth tells.
        raise AmbientError(
            f"Image '{name}' is a 16-bit PNG (mode {mode}, 16 bits per channel), which is not "
            "supported: images must be 8 bits per channel. Convert it to 8-bit, e.g. with "
            "`convert in.png -depth 8 out.png`.")
    if not _looks_complete(fp, fmt, head):
        # Cheap truncation check failed (a well-formed file usually ends this way); only a full
        # decode can tell a truncated file from one with trailing bytes, so decode it now.
        fp.seek(0)
        try:
            with Image.open(fp) as im:
                im.load()
        except Exception as e:
            raise AmbientError(f"Cannot decode image '{name}': {_reason(e)}. {skip_hint()}") from e
    return h, w


def _looks_complete(fp: BinaryIO, fmt: str | None, head: bytes) -> bool:
    """Does the file end as a complete PNG/JPEG/WebP/BMP does? (one seek, no decode)"""
    size = fp.seek(0, 2)
    if fmt == "PNG":
        fp.seek(max(0, size - 12))
        return fp.read(12) == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    if fmt in ("JPEG", "MPO"):
        fp.seek(max(0, size - 2))
        return fp.read(2) == b"\xff\xd9"
    if fmt == "WEBP":                             # RIFF size field = file size - 8
        return len(head) >= 8 and int.from_bytes(head[4:8], "little") + 8 <= size
    if fmt == "BMP":                              # bfSize field (0 in some writers: then decode)
        return len(head) >= 6 and 0 < int.from_bytes(head[2:6], "little") <= size
    return True


def decode(data: bytes, name: str, resize: int | None = None, crop: bool = False) -> np.ndarray:
    """Image file bytes => HWC uint8 RGB (gray repeated, alpha dropped, palette converted)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            check_pixels(im.size[0], im.size[1], name)
            _check_mode(im.mode, name)
            im.load()                             # full decode: truncation/corruption shows here
            if im.mode in ("P", "PA"):
                arr = np.asarray(im.convert("RGBA"))
            elif im.mode == "1":
                arr = np.asarray(im.convert("L"))
            else:
                arr = np.asarray(im)
    except AmbientError:
        raise
    except Exception as e:
        raise AmbientError(f"Cannot decode image '{name}': {_reason(e)}. {skip_hint()}") from e
    rgb = to_rgb_hwc(arr)                         # HW[C] uint8 => HW3 uint8
    return resize_hwc(rgb, resize, crop) if resize else rgb


_MODE_MEANING = {"I;16": "16-bit grayscale", "I;16B": "16-bit grayscale", "I;16L": "16-bit grayscale",
                 "I": "32-bit integer", "F": "32-bit float", "CMYK": "CMYK", "YCbCr": "YCbCr",
                 "LAB": "Lab", "HSV": "HSV", "RGBX": "padded RGB", "RGBa": "premultiplied RGBA"}


def _check_mode(mode: str, name: str) -> None:
    if mode not in SUPPORTED_MODES:
        raise AmbientError(
            f"Image '{name}' has mode {mode} ({_MODE_MEANING.get(mode, 'unsupported pixel format')}), "
            "which is not supported: images must be 8-bit grayscale, palette, RGB or RGBA. Convert it "
            "to an 8-bit RGB PNG.")


def _reason(e: Exception) -> str:
    text = str(e).strip().rstrip(".") or type(e).__name__
    return text.splitlines()[0]
