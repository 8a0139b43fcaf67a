"""Every supported input format round-trips exact pixels (or PIL's own decode for lossy JPEG)."""
from __future__ import annotations

import gzip
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ambient_eval.data import ArraySource, ImageSource, open_source
from tests.conftest import random_images, write_images


def as_nhwc(source: ImageSource) -> np.ndarray:
    return source.read(range(len(source))).permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("fmt,kw", [("png", {}), ("bmp", {}), ("webp", {"lossless": True})])
def test_lossless_formats_exact(tmp_path, fmt, kw):
    imgs = random_images(5, size=16, seed=1)
    for i, im in enumerate(imgs):
        Image.fromarray(im).save(tmp_path / f"{i:02d}.{fmt}", **kw)
    src = open_source(tmp_path)
    assert len(src) == 5 and src.resolution == (16, 16)
    assert src.item_names() == [f"{i:02d}.{fmt}" for i in range(5)]
    np.testing.assert_array_equal(as_nhwc(src), imgs)


def test_jpeg_equals_pil_decode_and_extensions_case_insensitive(tmp_path):
    imgs = random_images(3, size=16, seed=2)
    names = ["a.JPG", "b.JpEg", "c.PNG"]
    for im, n in zip(imgs, names):
        Image.fromarray(im).save(tmp_path / n, format="PNG" if n.endswith("PNG") else "JPEG", quality=80)
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".hidden.png").write_bytes(b"ignored too")
    src = open_source(tmp_path)
    assert src.item_names() == names
    expected = np.stack([np.asarray(Image.open(tmp_path / n).convert("RGB")) for n in names])
    np.testing.assert_array_equal(as_nhwc(src), expected)
    np.testing.assert_array_equal(as_nhwc(src)[2], imgs[2])


def test_nested_folders_sorted(tmp_path):
    imgs = random_images(4, size=8, seed=3)
    rels = ["b/1.png", "a/2.png", "a/10.png", "0.png"]
    for im, r in zip(imgs, rels):
        (tmp_path / r).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(tmp_path / r)
    src = open_source(tmp_path)
    order = sorted(rels)                          # lexical order of the posix relative path
    assert src.item_names() == order
    np.testing.assert_array_equal(as_nhwc(src), imgs[[rels.index(r) for r in order]])


def test_gray_rgba_la_palette_conventions(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "0_gray.png")
    Image.fromarray(rgba, "RGBA").save(tmp_path / "1_rgba.png")
    Image.fromarray(np.stack([gray, 255 - gray], -1), "LA").save(tmp_path / "2_la.png")
    pal = Image.fromarray(rgba[..., :3]).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "3_pal.png")
    out = as_nhwc(open_source(tmp_path))
    np.testing.assert_array_equal(out[0], np.repeat(gray[..., None], 3, -1))   # gray repeated
    np.testing.assert_array_equal(out[1], rgba[..., :3])                       # alpha dropped
    np.testing.assert_array_equal(out[2], np.repeat(gray[..., None], 3, -1))
    np.testing.assert_array_equal(out[3], np.asarray(pal.convert("RGB")))


def test_edm_zip_with_labels_read_lazily(tmp_path):
    imgs = random_images(6, size=8, seed=4)
    labels = [3, 1, 4, 1, 5, 9]
    zpath = tmp_path / "ds.zip"
    write_images(tmp_path / "tmp", imgs)
    names = [f"{i // 4:05d}/img{i:08d}.png" for i in range(6)]
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as zf:
        for i, n in enumerate(names):
            zf.write(tmp_path / "tmp" / f"{i:06d}.png", n)
        zf.writestr("dataset.json", json.dumps({"labels": [[n, l] for n, l in zip(names, labels)]}))
    src = open_source(zpath)
    assert src.item_names() == names and len(src) == 6
    np.testing.assert_array_equal(src.labels(), labels)
    assert src.labels().dtype == np.int64
    np.testing.assert_array_equal(as_nhwc(src), imgs)
    np.testing.assert_array_equal(src.read([5, 0])[0].permute(1, 2, 0).numpy(), imgs[5])


def test_folder_labels_from_class_subfolders(tmp_path):
    imgs = random_images(3, size=8, seed=5)
    for im, r in zip(imgs, ["dog/0.png", "cat/0.png", "cat/1.png"]):
        (tmp_path / r).parent.mkdir(exist_ok=True)
        Image.fromarray(im).save(tmp_path / r)
    src = open_source(tmp_path, labels="folders")
    assert src.item_names() == ["cat/0.png", "cat/1.png", "dog/0.png"]
    np.testing.assert_array_equal(src.labels(), [0, 0, 1])
    assert src.class_names == ["cat", "dog"]
    assert open_source(tmp_path).labels() is None


@pytest.mark.parametrize("layout", ["NHWC", "NCHW", "NHW"])
@pytest.mark.parametrize("container", ["npy", "npz", "npz-compressed"])
def test_arrays_layouts(tmp_path, layout, container):
    imgs = random_images(4, size=8, seed=6, channels=1 if layout == "NHW" else 3)
    arr = imgs.transpose(0, 3, 1, 2) if layout == "NCHW" else imgs
    path = tmp_path / ("x.npy" if container == "npy" else "x.npz")
    if container == "npy":
        np.save(path, arr)
    elif container == "npz":
        np.savez(path, images=arr, labels=np.arange(4))
    else:
        np.savez_compressed(path, arr)           # key arr_0
    src = open_source(path)
    expected = np.repeat(imgs[..., None], 3, -1) if layout == "NHW" else imgs
    np.testing.assert_array_equal(as_nhwc(src), expected)
    if container != "npz-compressed":
        assert isinstance(src._arr, np.memmap)   # streamed from disk, not loaded whole
    if container == "npz":
        np.testing.assert_array_equal(src.labels(), np.arange(4))


def test_array_source_from_tensor_and_rgba_array():
    imgs = random_images(3, size=8, seed=7)
    src = ArraySource(torch.from_numpy(imgs).permute(0, 3, 1, 2))
    np.testing.assert_array_equal(as_nhwc(src), imgs)
    rgba = np.concatenate([imgs, np.zeros_like(imgs[..., :1])], -1)
    np.testing.assert_array_equal(as_nhwc(ArraySource(rgba)), imgs)
    assert src.item_names() == ["0", "1", "2"]


def test_builtin_digits():
    from sklearn.datasets import load_digits

    target = load_digits().target
    full = open_source("builtin:digits")
    assert len(full) == 1797 and full.resolution == (32, 32)
    np.testing.assert_array_equal(full.labels(), target)
    train, test = open_source("builtin:digits:train"), open_source("builtin:digits:test")
    assert (len(train), len(test)) == (1500, 297)
    np.testing.assert_array_equal(test.labels(), target[1500:])
    x = full.read([0, 1500])
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 32, 32)
    assert torch.equal(x[0, 0], x[0, 1]) and torch.equal(x[0, 0], x[0, 2])    # gray repeated
    assert int(x.max()) >= 200 and int(x.min()) == 0
    assert torch.equal(x[1], test.read([0])[0])
    assert open_source("builtin:digits").fingerprint() == full.fingerprint()   # deterministic
    assert train.fingerprint() != test.fingerprint()
    assert open_source("builtin:digits-16:test").resolution == (16, 16)


def _write_idx(path, arr, gz):
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx(tmp_path, gz):
    imgs = random_images(5, size=28, seed=8, channels=1)
    labels = np.array([7, 2, 1, 0, 4], dtype=np.uint8)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", imgs, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", labels, gz)
    src = open_source(tmp_path / f"train-images-idx3-ubyte{sfx}")
    np.testing.assert_array_equal(as_nhwc(src), np.repeat(imgs[..., None], 3, -1))
    np.testing.assert_array_equal(src.labels(), labels)
    if not gz:
        assert isinstance(src._arr, np.memmap)


def test_real_mnist_test_set(shared_data):
    src = open_source(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    assert len(src) == 10000 and src.resolution == (28, 28)
    np.testing.assert_array_equal(src.labels()[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    np.testing.assert_array_equal(np.bincount(src.labels()),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


def test_real_cifar10_jpeg_tar(shared_data, tmp_path):
    import tarfile

    tar = shared_data / "cifar10-jpeg.tar"
    src = open_source(f"{tar}#test", labels="folders", max_images=20, subset_seed=1)
    assert len(src) == 20 and src.resolution == (32, 32)
    assert src.class_names[0] == "airplane" and len(src.class_names) == 10
    name = src.item_names()[3]
    with tarfile.open(tar) as tf:                 # the member's bytes, decoded by PIL directly
        data = tf.extractfile(src.container._members[name]).read()
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(src.read([3])[0].permute(1, 2, 0).numpy(), expected)
    assert src.labels()[3] == src.class_names.index(name.split("/")[0])
