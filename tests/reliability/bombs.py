"""Tiny crafted inputs that would take gigabytes if decoded naively."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    # IHDR starts at byte 8: length(4) 'IHDR'(4) width(4) height(4) ...; CRC over type+data.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def png_bomb(path: Path, width: int = 8000, height: int = 8000) -> Path:
    """A ~100-byte PNG whose header declares width x height RGB pixels (192 MB at 8000^2, under PIL's own bomb limit)."""
    path.write_bytes(png_bytes(width, height))
    return path


def zip_bomb(path: Path, member_mb: int = 24, name: str = "000000.png") -> Path:
    """A zip with one member of `member_mb` MiB of zeros (compresses ~1000:1) beside a good image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("good.png", buf.getvalue())
        with z.open(name, "w", force_zip64=True) as f:
            chunk = bytes(2 ** 20)
            for _ in range(member_mb):
                f.write(chunk)
    return path
