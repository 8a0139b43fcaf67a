"""`ambient-eval reproducibility` end to end on closed-form (empirical-optimal) denoisers.

The empirical-optimal denoiser of K points y_k is the posterior mean under the empirical data
distribution: D(x; sigma) = sum_k softmax_k(-||x - y_k||^2 / (2 sigma^2)) y_k. Sampled with the
deterministic EDM Heun sampler it returns one of its K training points exactly, so:
  - two such denoisers over the same points give identical samples per seed (RP = 1),
  - every sample is a copy of its own training set (memorization score = 1),
  - over disjoint point sets, same-seed samples are unrelated images (RP low).
"""
from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from ambient_eval.models.base import Denoiser, sigma_column
from tests.conftest import random_images, write_images

RES = 8          # pixels: tiny, CPU
K = 6            # training points per empirical denoiser
SEEDS = list(range(24))


class EmpiricalDenoiser(Denoiser):
    """Closed-form posterior mean over K points (no training)."""

    def __init__(self, points_u8: np.ndarray) -> None:  # K H W C uint8
        super().__init__(img_resolution=points_u8.shape[1], img_channels=points_u8.shape[3],
                         sigma_min=0.002, sigma_max=80.0)
        y = torch.from_numpy(points_u8).permute(0, 3, 1, 2).double() / 127.5 - 1.0   # model space
        self.register_buffer("y", y)

    def forward(self, x, sigma, class_labels=None):
        # NCHW float32 (noisy) => NCHW float32 posterior mean, computed in float64 (softmax at small sigma)
        s = sigma_column(sigma, x).double().reshape(-1, 1)
        d2 = torch.cdist(x.double().flatten(1), self.y.flatten(1)) ** 2            # N x K
        w = torch.softmax(-d2 / (2 * s ** 2), dim=1)
        return (w @ self.y.flatten(1)).reshape(x.shape).float()


def sample_folder(den: Denoiser, seeds, folder):
    """Write {seed:06d}.png in EDM subfolders of 1000 with the project's sampler."""
    from PIL import Image

    from ambient_eval.sampling.generate import generate

    for batch_seeds, imgs in generate(den, seeds, batch_size=8, device="cpu"):
        for s, img in zip(batch_seeds, imgs):
            p = folder / f"{s - s % 1000:06d}" / f"{s:06d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(p)
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Training sets A and B (disjoint), and samples of three empirical denoisers (A, A again, B)."""
    root = tmp_path_factory.mktemp("repro")
    # Independent uniform pixels: 192-d, so unrelated images have |correlation| ~ 0.07.
    pts_a = np.random.default_rng(11).integers(0, 256, size=(K, RES, RES, 3), dtype=np.uint8)
    pts_b = np.random.default_rng(22).integers(0, 256, size=(K, RES, RES, 3), dtype=np.uint8)
    write_images(root / "train_a", pts_a)
    write_images(root / "train_b", pts_b)
    sample_folder(EmpiricalDenoiser(pts_a), SEEDS, root / "A")
    sample_folder(EmpiricalDenoiser(pts_a.copy()), SEEDS, root / "A2")
    sample_folder(EmpiricalDenoiser(pts_b), SEEDS, root / "B")
    return root


def _run(cli, args, out):
    r = cli(["reproducibility", *args, "--seeds", f"0-{SEEDS[-1]}", "--embed", "pixel", "--no-cache",
             "--bootstrap", "200", "--out", out])
    return r


def test_help(cli):
    r = cli(["reproducibility", "--help"])
    assert r.exit_code == 0
    assert "Examples:" in r.stdout and "--threshold" in r.stdout and "--train" in r.stdout


def test_same_points_rp1_disjoint_low_memorization_1(cli, world, tmp_path):
    out = tmp_path / "out"
    r = _run(cli, [world / "A", world / "A2", world / "B", "--train", world / "train_a",
                   "--train", world / "train_a", "--train", world / "train_b"], out)
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    m = res["metrics"]
    assert res["kind"] == "reproducibility"
    assert m["rp[A|A2]"] == 1.0
    assert m["rp[A|B]"] <= 0.05 and m["rp[A2|B]"] <= 0.05
    assert m["rp"] == pytest.approx((m["rp[A|A2]"] + m["rp[A|B]"] + m["rp[A2|B]"]) / 3)
    for lab in ("A", "A2", "B"):
        assert m[f"memorization[{lab}]"] == 1.0 and m[f"gl[{lab}]"] == 0.0
    s = res["settings"]
    assert s["extractor"] == "pixel" and s["n_seeds"] == len(SEEDS) and s["threshold"] == 0.95
    assert "weights_sha256" in s
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rp"]["names"] == ["A", "A2", "B"]
    assert np.allclose(np.diag(summary["rp"]["matrix"]), 1.0)
    lo, hi = summary["rp"]["ci_low"][0][2], summary["rp"]["ci_high"][0][2]
    assert lo <= m["rp[A|B]"] <= hi
    table = pd.read_parquet(out / "per_seed.parquet")
    assert table["seed"].tolist() == SEEDS
    assert np.allclose(table["cos[A|A2]"], 1.0, atol=1e-5)
    # Memorization against the *other* set is not 1: samples copy their own points only.
    assert (table["train_top1[A]"] > 0.999).all() and (table["train_top1[B]"] > 0.999).all()
    csv = pd.read_csv(out / "per_seed.csv")
    assert np.allclose(csv["cos[A|B]"], table["cos[A|B]"])
    html = (out / "report.html").read_text()
    assert "RP matrix" in html and html.count("data:image/png;base64") >= 3 * 12
    assert "threshold 0.95" in html


def test_disjoint_memorization_against_the_other_set_is_low(cli, world, tmp_path):
    out = tmp_path / "out"
    r = _run(cli, [world / "A", world / "B", "--train", world / "train_b", "--train", world / "train_a",
                   "--name", "modelA", "--name", "modelB"], out)
    assert r.exit_code == 0, r.stderr
    m = json.loads((out / "results.json").read_text())["metrics"]
    assert m["memorization[modelA]"] <= 0.05 and m["gl[modelA]"] >= 0.95
    assert "rp[modelA|modelB]" in m


def test_seed_alignment_ignores_file_order_and_names(cli, world, tmp_path):
    """Shuffle B's files over other subfolders (names keep the seed); per-seed results unchanged."""
    shuffled = tmp_path / "B_shuffled"
    files = sorted((world / "B").rglob("*.png"))
    random.Random(0).shuffle(files)
    for i, f in enumerate(files):
        dest = shuffled / f"part{(7 * i) % 5}" / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest)
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert _run(cli, [world / "A", world / "B"], out1).exit_code == 0
    assert _run(cli, [world / "A", shuffled, "--name", "A", "--name", "B"], out2).exit_code == 0
    t1, t2 = pd.read_parquet(out1 / "per_seed.parquet"), pd.read_parquet(out2 / "per_seed.parquet")
    np.testing.assert_array_equal(t1["cos[A|B]"].to_numpy(), t2["cos[A|B]"].to_numpy())
    # The cosines differ from seed to seed, so a misalignment would have changed them.
    assert t1["cos[A|B]"].std() > 0.01


def test_npz_samples_with_shuffled_seeds_match_folder(cli, world, tmp_path):
    from PIL import Image

    perm = np.random.default_rng(3).permutation(len(SEEDS))
    seeds = np.array(SEEDS)[perm]
    imgs = np.stack([np.asarray(Image.open(world / "B" / "000000" / f"{s:06d}.png")) for s in seeds])
    np.savez(tmp_path / "B.npz", images=imgs, seeds=seeds)
    out1, out2 = tmp_path / "o1", tmp_path / "o2"
    assert _run(cli, [world / "A", world / "B"], out1).exit_code == 0
    r = _run(cli, [world / "A", tmp_path / "B.npz"], out2)
    assert r.exit_code == 0, r.stderr
    t1, t2 = pd.read_parquet(out1 / "per_seed.parquet"), pd.read_parquet(out2 / "per_seed.parquet")
    np.testing.assert_array_equal(t1["cos[A|B]"].to_numpy(), t2["cos[A|B]"].to_numpy())


def test_missing_seed_is_named(cli, world, tmp_path):
    partial = tmp_path / "B_partial"
    shutil.copytree(world / "B", partial)
    (partial / "000000" / "000017.png").unlink()
    out = tmp_path / "out"
    r = _run(cli, [world / "A", partial], out)
    assert r.exit_code == 2
    assert "Seed 17 is missing from model B_partial" in " ".join(r.stderr.split())
    assert not out.exists()


def test_checkpoint_compared_with_itself_gives_rp_1(cli, tmp_path):
    from ambient_eval.models import UNetConfig, build_native_model, native_config, save_native

    torch.manual_seed(0)
    cfg = native_config(UNetConfig(img_resolution=RES, img_channels=3, model_channels=8, channel_mult=(1, 2),
                                   num_blocks=1, attn_resolutions=(), dropout=0.0))
    model = build_native_model(cfg)
    save_native(model, tmp_path / "ckpt", cfg, {})
    out = tmp_path / "out"
    r = cli(["reproducibility", tmp_path / "ckpt", tmp_path / "ckpt", "--seeds", "0-5", "--embed", "pixel",
             "--steps", "4", "--device", "cpu", "--bootstrap", "100", "--out", out])
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["metrics"]["rp[ckpt|ckpt-2]"] == 1.0
    assert res["inputs"]["ckpt"]["kind"] == "checkpoint"


@pytest.mark.parametrize("case", ["one_model", "threshold_high", "threshold_low", "resolution", "channels"])
def test_bad_input_exits_2_without_output(cli, world, tmp_path, case):
    out = tmp_path / "out"
    if case == "one_model":
        args, msg = [world / "A"], "at least two models"
    elif case.startswith("threshold"):
        t = "1.5" if case == "threshold_high" else "-1.01"
        args, msg = [world / "A", world / "B", "--threshold", t], "outside [-1, 1]"
    elif case == "resolution":
        write_images(tmp_path / "big", random_images(len(SEEDS), size=2 * RES, seed=5))
        args, msg = [world / "A", tmp_path / "big"], "different image shapes"
    else:
        write_images(tmp_path / "gray", random_images(len(SEEDS), size=RES, seed=5, channels=1))
        args, msg = [world / "A", tmp_path / "gray"], "1 channel(s)"
    r = _run(cli, args, out)
    assert r.exit_code == 2
    assert msg in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_python_api_with_in_memory_denoisers(tmp_path):
    """run() takes Denoiser objects: same points => RP 1, MS 1; disjoint => RP 0, each MS 1."""
    from ambient_eval.audits.reproducibility_run import ReproOptions, run

    pts = [np.random.default_rng(s).integers(0, 256, size=(K, RES, RES, 3), dtype=np.uint8) for s in (1, 2)]
    for i, p in enumerate(pts):
        np.savez(tmp_path / f"train{i}.npz", images=p)
    opts = ReproOptions(embed="pixel", n_boot=100, cache=False)
    opts.sampler.device = "cpu"
    dens = [EmpiricalDenoiser(pts[0]), EmpiricalDenoiser(pts[0]), EmpiricalDenoiser(pts[1])]
    out = run(dens, list(range(16)), opts, labels=["a", "a2", "b"],
              train=[str(tmp_path / "train0.npz")] * 2 + [str(tmp_path / "train1.npz")])
    r = out.result
    assert r.rp[0, 1] == 1.0 and r.rp[0, 2] == 0.0 and r.rp[1, 2] == 0.0
    assert all(out.memorization[k].memorization == 1.0 for k in ("a", "a2", "b"))
    # Every sample is one of its model's K training points, found by the FAISS search.
    sim, idx = out.top1["b"]
    assert (sim > 0.999).all() and set(idx.tolist()) <= set(range(K))


def test_sscd_without_weights_says_so_and_suggests_pixel(cli, world, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))            # no weights in any default location
    for var in ("AMBIENT_EVAL_WEIGHTS", "TORCH_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "out"
    r = cli(["reproducibility", world / "A", world / "B", "--seeds", "0-3", "--embed", "sscd", "--out", out])
    msg = " ".join(r.stderr.split())
    assert r.exit_code == 2, r.stderr
    assert "weights" in msg and "--embed pixel" in msg
    assert not out.exists()


def test_default_sscd_embedding_with_user_weights_is_recorded(cli, world, tmp_path):
    """A stand-in TorchScript file through the sscd path: runs, and the weights hash is recorded."""
    from ambient_eval.files.hashing import sha256_file

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 8, stride=8), torch.nn.AdaptiveAvgPool2d(2),
                              torch.nn.Flatten())                      # NCHW float => N x 64
    weights = tmp_path / "sscd_disc_mixup.torchscript.pt"
    torch.jit.script(net).save(str(weights))
    out = tmp_path / "out"
    r = cli(["reproducibility", world / "A", world / "A2", "--seeds", "0-7", "--weights", weights,
             "--bootstrap", "100", "--device", "cpu", "--out", out])
    assert r.exit_code == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["extractor"] == "sscd" and res["settings"]["embed"] == "sscd"
    assert res["settings"]["weights_sha256"] == sha256_file(weights)
    assert res["metrics"]["rp[A|A2]"] == 1.0
