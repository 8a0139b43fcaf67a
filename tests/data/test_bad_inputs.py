"""Unreadable or unsupported inputs are clean AmbientErrors naming the file; skip_bad skips them."""
from __future__ import annotations

import io
import pickle
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from ambient_eval.data import open_source
from ambient_eval.errors import AmbientError
from tests.conftest import random_images, write_images


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def png16_rgb(h: int, w: int) -> bytes:
    """A valid 16-bit-per-channel RGB PNG (PIL cannot write one; it reads it as 8-bit RGB)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    raw = b"".join(b"\x00" + bytes(6 * w) for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_empty_folder_names_folder_and_extensions(tmp_path):
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(AmbientError) as e:
        open_source(tmp_path)
    assert str(tmp_path) in str(e.value) and ".png" in str(e.value) and ".webp" in str(e.value)


def test_missing_path_and_unknown_kind(tmp_path):
    with pytest.raises(AmbientError, match="does not exist"):
        open_source(tmp_path / "nope")
    (tmp_path / "x.csv").write_text("1,2")
    with pytest.raises(AmbientError, match="Cannot tell"):
        open_source(tmp_path / "x.csv")
    with pytest.raises(AmbientError, match="Unknown built-in"):
        open_source("builtin:faces")


@pytest.mark.parametrize("case", ["corrupt", "text", "png16", "png16-gray", "float-tiff"])
def test_bad_file_fails_at_open_naming_file_and_mode(tmp_path, case):
    write_images(tmp_path, random_images(2, size=8))
    bad = tmp_path / "bad.png"
    if case == "corrupt":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    elif case == "text":
        bad = tmp_path / "bad.jpg"
        bad.write_text("this is not an image")
    elif case == "png16":
        bad.write_bytes(png16_rgb(8, 8))
    elif case == "png16-gray":
        Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(bad)
    else:
        Image.fromarray(np.zeros((8, 8), np.float32)).save(bad, format="TIFF")
    with pytest.raises(AmbientError) as e:
        open_source(tmp_path)
    msg = str(e.value)
    assert bad.name in msg and "\n" not in msg
    if case == "png16":
        assert "16-bit" in msg
    if case == "png16-gray":
        assert "I;16" in msg
    if case == "float-tiff":
        assert "mode F" in msg
    src = open_source(tmp_path, skip_bad=True)
    assert len(src) == 2 and [n for n, _ in src.skipped] == [bad.name]


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp", "bmp"])
def test_truncated_file_fails_at_open_and_skip_bad(tmp_path, fmt):
    imgs = random_images(3, size=16, seed=1)
    write_images(tmp_path, imgs, fmt="png")
    buf = io.BytesIO()
    Image.fromarray(random_images(1, size=64, seed=9)[0]).save(buf, format="JPEG" if fmt == "jpg" else fmt)
    data = buf.getvalue()
    (tmp_path / f"000001.png").unlink()
    (tmp_path / f"000001.{fmt}").write_bytes(data[: len(data) * 2 // 3])   # header intact, pixels cut
    with pytest.raises(AmbientError, match=f"000001.{fmt}"):
        open_source(tmp_path)                    # caught before any long work starts
    ok = open_source(tmp_path, skip_bad=True)
    assert ok.item_names() == ["000000.png", "000002.png"] and len(ok.skipped) == 1
    np.testing.assert_array_equal(ok.read([1])[0].permute(1, 2, 0).numpy(), imgs[2])


def test_trailing_bytes_after_png_are_fine(tmp_path):
    img = random_images(1, size=16, seed=3)[0]
    (tmp_path / "a.png").write_bytes(png_bytes(img) + b"trailing junk")
    np.testing.assert_array_equal(open_source(tmp_path).read([0])[0].permute(1, 2, 0).numpy(), img)


def test_corrupt_pixel_data_clean_error_on_decode_and_skip_bad(tmp_path):
    imgs = random_images(3, size=16, seed=1)
    write_images(tmp_path, imgs)
    data = bytearray(png_bytes(random_images(1, size=16, seed=9)[0]))
    idat = data.index(b"IDAT")
    data[idat + 10: idat + 40] = bytes(30)       # pixel stream damaged, file complete
    (tmp_path / "000001.png").write_bytes(bytes(data))
    src = open_source(tmp_path)                  # the cheap header check passes...
    with pytest.raises(AmbientError, match="000001.png"):
        list(src.iter_batches(2))                # ...the full decode error is clean too
    assert [n for n, _ in src.validate()] == ["000001.png"]
    ok = open_source(tmp_path, skip_bad=True)
    assert ok.item_names() == ["000000.png", "000002.png"] and len(ok.skipped) == 1


def test_skip_bad_counts_several(tmp_path):
    write_images(tmp_path, random_images(3, size=8))
    (tmp_path / "x.png").write_bytes(b"garbage")
    (tmp_path / "y.webp").write_bytes(b"")
    src = open_source(tmp_path, skip_bad=True)
    assert len(src) == 3 and sorted(n for n, _ in src.skipped) == ["x.png", "y.webp"]
    for f in ("000000.png", "000001.png", "000002.png"):
        (tmp_path / f).unlink()
    with pytest.raises(AmbientError, match="no readable images"):
        open_source(tmp_path, skip_bad=True)


def test_mixed_sizes_named_and_resize(tmp_path):
    write_images(tmp_path, random_images(2, size=16))
    Image.fromarray(random_images(1, size=8)[0]).save(tmp_path / "small.png")
    with pytest.raises(AmbientError) as e:
        open_source(tmp_path)
    assert "small.png" in str(e.value) and "8x8" in str(e.value) and "16x16" in str(e.value)
    src = open_source(tmp_path, resize=12)
    x = src.read(range(3))
    assert x.shape == (3, 3, 12, 12)
    small = np.asarray(Image.open(tmp_path / "small.png").resize((12, 12), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(x[2].permute(1, 2, 0).numpy(), small)


@pytest.mark.parametrize("arr,match", [
    (np.zeros((2, 8, 8, 3), np.float32), "float32"),
    (np.zeros((2, 8, 8, 5), np.uint8), "channel"),
    (np.zeros((0, 8, 8, 3), np.uint8), "no images"),
    (np.zeros((8, 8), np.uint8), "shape"),
])
def test_bad_arrays(tmp_path, arr, match):
    np.save(tmp_path / "x.npy", arr)
    with pytest.raises(AmbientError, match=match):
        open_source(tmp_path / "x.npy")


def test_stats_npz_is_not_images(tmp_path):
    np.savez(tmp_path / "ref.npz", mu=np.zeros(4), sigma=np.eye(4))
    with pytest.raises(AmbientError, match="statistics"):
        open_source(tmp_path / "ref.npz")


def test_object_npy_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(AmbientError, match="object arrays are refused"):
        open_source(tmp_path / "o.npy")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os
        return (os.mkdir, (self.path,))


def test_malicious_cifar_pickle_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a"]}, protocol=2))
    payload = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": _Evil(str(marker))}
    (d / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(AmbientError, match="os.mkdir|posix.mkdir|refusing"):
        open_source(d / "data_batch_1")
    assert not marker.exists()
