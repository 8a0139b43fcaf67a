"""CIFAR batches, seeded subsets, fingerprints and batch-size independence."""
from __future__ import annotations

import pickle
import shutil
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from ambient_eval.data import ArraySource, open_source
from tests.conftest import random_images, write_images


def write_cifar10(root, per_batch=2, seed=0):
    """Tiny batches in the official format: Python-2 style pickles with bytes keys, (N, 3072) uint8."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    all_x, all_y = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": y, b"data": x,
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        (d / name).write_bytes(pickle.dumps(batch, protocol=2))
        all_x[name], all_y[name] = x, y
    (d / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2))
    return d, all_x, all_y


def test_cifar10_python_batches_dir_tar_and_file(tmp_path):
    d, xs, ys = write_cifar10(tmp_path)
    train_x = np.concatenate([xs[f"data_batch_{i}"] for i in range(1, 6)])
    expected = train_x.reshape(-1, 3, 32, 32)            # official layout: R plane, G plane, B plane
    src = open_source(d)
    assert len(src) == 10 and src.resolution == (32, 32)
    assert torch.equal(src.read(range(10)), torch.from_numpy(expected))
    np.testing.assert_array_equal(src.labels(), sum((ys[f"data_batch_{i}"] for i in range(1, 6)), []))
    test = open_source(f"{d}#test")
    np.testing.assert_array_equal(test.read([1])[0].numpy(), xs["test_batch"][1].reshape(3, 32, 32))
    one = open_source(d / "test_batch")
    assert one.fingerprint() == test.fingerprint()
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(d, arcname="cifar-10-batches-py")
    assert open_source(tgz).fingerprint() == src.fingerprint()
    assert open_source(f"{tgz}#test").fingerprint() == test.fingerprint()


def test_cifar100_fine_labels(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    x = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for split in ("train", "test"):
        (d / split).write_bytes(pickle.dumps({b"data": x, b"fine_labels": [42, 7], b"coarse_labels": [1, 2]},
                                             protocol=2))
    (d / "meta").write_bytes(pickle.dumps({b"fine_label_names": []}, protocol=2))
    src = open_source(d)
    np.testing.assert_array_equal(src.labels(), [42, 7])
    np.testing.assert_array_equal(src.read([1])[0].numpy(), x[1].reshape(3, 32, 32))


def test_max_images_seeded_subset(tmp_path):
    imgs = random_images(20, size=8, seed=1)
    write_images(tmp_path, imgs)
    src = open_source(tmp_path, max_images=5, subset_seed=3)
    idx = np.sort(np.random.default_rng(3).choice(20, 5, replace=False))
    assert src.item_names() == [f"{i:06d}.png" for i in idx]
    assert torch.equal(src.read(range(5)), torch.from_numpy(imgs[idx]).permute(0, 3, 1, 2))
    again = open_source(tmp_path, max_images=5, subset_seed=3)
    assert again.item_names() == src.item_names() and again.fingerprint() == src.fingerprint()
    other = open_source(tmp_path, max_images=5, subset_seed=4)
    assert other.item_names() != src.item_names() and other.fingerprint() != src.fingerprint()
    assert open_source(tmp_path, max_images=100).fingerprint() == open_source(tmp_path).fingerprint()
    np.save(tmp_path / "a.npy", imgs)
    arr = open_source(tmp_path / "a.npy", max_images=5, subset_seed=3)
    assert arr.item_names() == [str(i) for i in idx]
    assert torch.equal(arr.read(range(5)), src.read(range(5)))


def test_fingerprint_content_not_path(tmp_path):
    imgs = random_images(4, size=8, seed=2)
    a = tmp_path / "a"
    write_images(a, imgs)
    shutil.copytree(a, tmp_path / "b")
    fa = open_source(a).fingerprint()
    assert len(fa) == 64 and open_source(tmp_path / "b").fingerprint() == fa
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:      # same files in a zip: same content
        for p in sorted(a.iterdir()):
            zf.write(p, p.name)
    assert open_source(tmp_path / "a.zip").fingerprint() == fa
    changed = imgs[2].copy()
    changed[0, 0, 0] ^= 1                                       # one pixel of one image
    Image.fromarray(changed).save(tmp_path / "b" / "000002.png")
    assert open_source(tmp_path / "b").fingerprint() != fa
    assert open_source(a, resize=16).fingerprint() != fa
    # arrays: NHWC vs NCHW storage of the same pixels agree; one changed pixel differs
    f1 = ArraySource(imgs).fingerprint()
    assert ArraySource(np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))).fingerprint() == f1
    imgs2 = imgs.copy()
    imgs2[3, 7, 7, 2] ^= 1
    assert ArraySource(imgs2).fingerprint() != f1
    src = open_source(a)
    src.fingerprint()
    assert src._fingerprint == fa                               # cached on the instance


@pytest.mark.parametrize("kind", ["folder", "array", "resize"])
def test_iter_batches_independent_of_batch_size(tmp_path, kind):
    imgs = random_images(11, size=8, seed=5)
    if kind == "array":
        src = open_source(_save(tmp_path, imgs), max_images=9)
    else:
        write_images(tmp_path, imgs)
        src = open_source(tmp_path, resize=12 if kind == "resize" else None)
    full = src.read(range(len(src)))
    assert full.dtype == torch.uint8 and full.shape[1] == 3 and full.is_contiguous()
    for bs in (1, 4, 64):
        batches = list(src.iter_batches(bs))
        idx = np.concatenate([i for i, _ in batches])
        assert idx.dtype == np.int64 and np.array_equal(idx, np.arange(len(src)))
        assert all(len(i) == len(x) <= bs for i, x in batches)
        assert torch.equal(torch.cat([x for _, x in batches]), full)
    perm = [3, 0, 3, len(src) - 1]
    assert torch.equal(src.read(perm), full[perm])


def _save(tmp_path, imgs):
    np.save(tmp_path / "x.npy", imgs)
    return tmp_path / "x.npy"
