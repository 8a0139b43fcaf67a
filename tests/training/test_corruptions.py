"""Corruptions: determinism, reference implementations, metadata of the `corrupt` command."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ambient_eval.data import corruptions as C
from tests.conftest import random_images


def _imgs(n=6, size=12, seed=0):
    return torch.from_numpy(random_images(n, size=size, seed=seed)).permute(0, 3, 1, 2).contiguous()


def _numpy_blur_oracle(img: np.ndarray, sigma: float) -> np.ndarray:
    """The definition, written directly: out[y,x] = sum_{u,v} g(u) g(v) img[m(y+u), m(x+v)], with
    g the Gaussian normalised over |t| <= int(4 sigma + 0.5) and m the half-sample mirror."""
    r = int(4 * sigma + 0.5)
    t = np.arange(-r, r + 1)
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    g /= g.sum()

    def m(i, n):  # ... d c b a | a b c d | d c b a ...
        i = i % (2 * n)
        return 2 * n - 1 - i if i >= n else i

    H, W = img.shape[-2:]
    out = np.zeros(img.shape, dtype=np.float64)
    for y in range(H):
        for x in range(W):
            acc = 0.0
            for a, u in enumerate(t):
                for b, v in enumerate(t):
                    acc = acc + g[a] * g[b] * img[..., m(y + u, H), m(x + v, W)]
            out[..., y, x] = acc
    return out


@pytest.mark.parametrize("sigma", [0.6, 0.8, 1.0, 2.5])
def test_gaussian_blur_equals_definition_at_the_border(sigma):
    x = _imgs(n=2, size=8)
    ours = C.gaussian_blur_float(x.to(torch.float64), sigma).numpy()
    ref = _numpy_blur_oracle(x.numpy().astype(np.float64), sigma)
    assert np.abs(ours - ref).max() < 1e-9            # every pixel, borders included (radius > 8 at 2.5)
    u8 = C.gaussian_blur(x, sigma).numpy().astype(float)
    assert np.abs(u8 - np.clip(np.round(ref), 0, 255)).max() == 0


def test_gaussian_blur_matches_scipy_gaussian_filter():
    gaussian_filter = pytest.importorskip("scipy.ndimage").gaussian_filter  # third-party reference
    x = _imgs()
    for sigma in (0.6, 1.0, 2.0):
        ours = C.gaussian_blur_float(x.to(torch.float64), sigma).numpy()
        ref = gaussian_filter(x.numpy().astype(np.float64), sigma=(0, 0, sigma, sigma))  # defaults: reflect, 4.0
        assert np.abs(ours - ref).max() < 1e-9
    const = torch.full((1, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(C.gaussian_blur(const, 1.5), const)
    assert len(C.gaussian_kernel1d(1.0)) == 9 and len(C.gaussian_kernel1d(0.6)) == 5  # int(4 s + 0.5)


def test_motion_kernel_shape_and_normalisation():
    k = C.motion_kernel(5, 0.0)
    assert k.shape == (5, 5) and float(k.sum()) == pytest.approx(1.0)
    assert float(k[2].sum()) == pytest.approx(1.0)  # angle 0: horizontal line through the centre
    kv = C.motion_kernel(5, 90.0)
    assert float(kv[:, 2].sum()) == pytest.approx(1.0)


def test_corruptions_deterministic_and_per_sample():
    x = _imgs(8)
    idx = list(range(10, 18))
    for kind, level in (("blur", 1.0), ("jpeg", 20), ("motion-blur", 5), ("noise", 0.2)):
        a, pa = C.corrupt_batch(x, idx, kind, level, seed=3)
        b, pb = C.corrupt_batch(x, idx, kind, level, seed=3)
        assert torch.equal(a, b) and pa == pb
        # sample i's result does not depend on the batch it is in
        c, _ = C.corrupt_batch(x[5:], idx[5:], kind, level, seed=3)
        assert torch.equal(a[5:], c)
    n1, _ = C.corrupt_batch(x, idx, "noise", 0.2, seed=3)
    n2, _ = C.corrupt_batch(x, idx, "noise", 0.2, seed=4)
    assert not torch.equal(n1, n2)
    resid = n1 - C.to_model_space(x)  # model-space units
    assert float(resid.std()) == pytest.approx(0.2, rel=0.1)


def test_select_and_flip_labels():
    m = C.select_corrupted(1000, 0.9, seed=0)
    assert m.sum() == 900 and np.array_equal(m, C.select_corrupted(1000, 0.9, seed=0))
    assert not np.array_equal(m, C.select_corrupted(1000, 0.9, seed=1))
    labels = np.arange(3000) % 10
    new, flipped = C.flip_labels(labels, 0.5, 10, seed=0)
    assert flipped.sum() == 1500
    assert (new[flipped] != labels[flipped]).all() and (new[~flipped] == labels[~flipped]).all()
    shift = (new[flipped] - labels[flipped]) % 10
    counts = np.bincount(shift, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 1500 / 9 * 0.7  # uniform over the other 9 classes


def test_corrupt_cli_writes_metadata_and_is_deterministic(cli, tiny_folder, tmp_path):
    out1, out2 = tmp_path / "c1", tmp_path / "c2"
    for out in (out1, out2):
        r = cli(["corrupt", tiny_folder, "-o", out, "--kind", "blur", "--level", "1.0", "--fraction", "0.75"])
        assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (out1 / "corruption.jsonl").read_text().splitlines()]
    assert len(rows) == 40 and sum(r["corrupted"] for r in rows) == 30
    assert all(r["params"] == {"sigma_B": 1.0} for r in rows if r["corrupted"])
    assert all(r["params"] is None and r["kind"] is None for r in rows if not r["corrupted"])
    assert [r["label_before"] for r in rows] == [i % 4 for i in range(40)]
    for r in rows:
        assert (out1 / r["name"]).read_bytes() == (out2 / r["name"]).read_bytes()
    # uncorrupted samples are bit-identical to the source
    from ambient_eval.data import open_source

    src, dst = open_source(tiny_folder), open_source(out1)
    clean = [r["index"] for r in rows if not r["corrupted"]]
    assert torch.equal(src.read(clean), dst.read(clean))
    assert np.array_equal(dst.labels(), src.labels())


def test_corrupt_cli_noise_keeps_float_observations(cli, tiny_folder, tmp_path):
    out = tmp_path / "noisy"
    assert cli(["corrupt", tiny_folder, "-o", out, "--kind", "noise", "--level", "0.1", "--fraction", "1"]).exit_code == 0
    with np.load(out / "observations.npz") as z:
        obs, labels = z["observations"], z["labels"]
    assert obs.dtype == np.float32 and obs.shape == (40, 3, 8, 8)
    from ambient_eval.data import open_source

    x = open_source(tiny_folder).read(range(40))
    expect, _ = C.corrupt_batch(x, list(range(40)), "noise", 0.1, seed=0)
    np.testing.assert_array_equal(obs, expect.numpy())
    assert labels.tolist() == [i % 4 for i in range(40)]


def test_corrupt_cli_label_flip(cli, tiny_folder, tmp_path):
    out = tmp_path / "flip"
    assert cli(["corrupt", tiny_folder, "-o", out, "--kind", "label-flip", "--level", "0.25"]).exit_code == 0
    rows = [json.loads(line) for line in (out / "corruption.jsonl").read_text().splitlines()]
    flipped = [r for r in rows if r["corrupted"]]
    assert len(flipped) == 10 and all(r["label_after"] != r["label_before"] for r in flipped)
    labels = dict(json.loads((out / "dataset.json").read_text())["labels"])
    assert all(labels[r["name"]] == r["label_after"] for r in rows)


@pytest.mark.parametrize("args,msg", [
    (["--kind", "sharpen", "--level", "1"], "Unknown corruption kind"),
    (["--kind", "jpeg", "--level", "0"], "invalid for --kind jpeg"),
    (["--kind", "blur", "--level", "1", "--fraction", "1.5"], "--fraction"),
])
def test_corrupt_cli_bad_input(cli, tiny_folder, tmp_path, args, msg):
    out = tmp_path / "bad"
    r = cli(["corrupt", tiny_folder, "-o", out, *args])
    assert r.exit_code == 2 and msg in " ".join(r.output.split()) and not out.exists()


def test_corrupt_cli_refuses_non_empty_out_and_label_flip_without_labels(cli, tmp_path):
    from tests.conftest import write_images

    src = tmp_path / "nolabels"
    write_images(src, random_images(5, size=8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = cli(["corrupt", src, "-o", out, "--kind", "blur", "--level", "1"])
    assert r.exit_code == 2 and "not empty" in r.output and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    r = cli(["corrupt", src, "-o", tmp_path / "o2", "--kind", "label-flip", "--level", "0.1"])
    assert r.exit_code == 2 and "labels" in r.output and not (tmp_path / "o2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left behind
