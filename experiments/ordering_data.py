"""Data and metrics of the ordering experiment: two settings, their pools, held-out sets and features."""
from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CIFAR_TAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar"
CIFAR_TEST = ROOT.parent / "shared" / "data" / "cifar10-test-first1000.npz"


@dataclass(frozen=True)
class Setting:
    """One data regime of the experiment."""

    name: str  # digits8 | cifar16
    resolution: int  # training / evaluation side (pixels)
    n: int  # training images (seeded subset of the pool, the same for every split)
    clean_fraction: float  # fraction kept clean (the split draws WHICH ones)
    blur: float  # Gaussian blur sigma_B in pixels at `resolution`
    steps: int  # optimiser steps per model (equal budget)
    batch: int  # images per step
    ann_steps: int  # annotation classifier steps
    feature_pool: int  # FD / recall on pixels average-pooled to this side (memorisation uses full pixels)


SETTINGS = {
    # the original CPU regime (8x8 digits, 6% clean, blur 0.8 px = the paper's 0.8 at a quarter of the side)
    "digits8": Setting("digits8", 8, 1000, 0.06, 0.8, 200, 64, 300, 8),
    # closer to the paper: CIFAR-10 at 16 px, 10% clean, blur 0.5 px (= sigma_B 1.0 at 32 px, scaled)
    "cifar16": Setting("cifar16", 16, 1000, 0.10, 0.5, 150, 16, 200, 8),
}


def _u8_nchw(arr_nhwc: np.ndarray):
    import torch

    return torch.from_numpy(np.ascontiguousarray(arr_nhwc.transpose(0, 3, 1, 2)))


def _resize(imgs: list[np.ndarray], size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.BICUBIC)) for a in imgs])


def cifar_pool(n: int, resolution: int, seed: int = 0):
    """n CIFAR-10 train images (seeded subset of the 50,000), read straight from the tar (nothing is
    extracted), bicubic-resized => NCHW uint8."""
    from PIL import Image

    if not CIFAR_TAR.is_file():
        raise SystemExit(f"{CIFAR_TAR} is missing: the cifar16 setting needs ../shared/data (see its README)")
    with tarfile.open(CIFAR_TAR) as tf:
        members = sorted((m for m in tf.getmembers() if m.name.startswith("train/") and m.name.endswith(".jpg")),
                         key=lambda m: m.name)
        pick = np.sort(np.random.default_rng(seed).choice(len(members), n, replace=False))
        imgs = [np.asarray(Image.open(io.BytesIO(tf.extractfile(members[i]).read())).convert("RGB")) for i in pick]
    return _u8_nchw(_resize(imgs, resolution))


def cifar_heldout(resolution: int):
    """The first 1000 CIFAR-10 test images (exact pixels), resized => NCHW uint8."""
    with np.load(CIFAR_TEST) as z:
        return _u8_nchw(_resize(list(z["images"]), resolution))


def digits(spec: str, n: int | None, resolution: int):
    """builtin digits => NCHW uint8 (3 channels), seeded subset of n when given."""
    import torch

    from ambient_eval.data import open_source

    src = open_source(spec, max_images=n, subset_seed=0, resize=resolution)
    return torch.cat([x for _, x in src.iter_batches(512)])


def load_setting(s: Setting):
    """=> (pool NCHW uint8, held-out NCHW uint8)."""
    if s.name == "cifar16":
        return cifar_pool(s.n, s.resolution), cifar_heldout(s.resolution)
    return digits("builtin:digits:train", s.n, s.resolution), digits("builtin:digits:test", None, s.resolution)


def pixels(x, grey: bool) -> np.ndarray:
    """NCHW uint8 => (N, D) float64 model-space pixels (channel 0 only for grey data)."""
    a = x[:, :1] if grey else x
    return a.reshape(len(a), -1).numpy().astype(np.float64) / 127.5 - 1.0


def features(x, s: Setting) -> np.ndarray:
    """FD / recall features: model-space pixels average-pooled to feature_pool x feature_pool."""
    import torch

    a = x[:, :1] if s.name == "digits8" else x
    f = torch.nn.functional.adaptive_avg_pool2d(a.to(torch.float64), s.feature_pool)
    return f.reshape(len(f), -1).numpy() / 127.5 - 1.0


def max_corr(gen: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Per generated row, the highest Pearson correlation with any training row => (N,)."""
    def z(a):
        a = a - a.mean(1, keepdims=True)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return (z(gen) @ z(train).T).max(1)


def metrics(gen_u8, ref_feats: np.ndarray, clean_train_u8, s: Setting, thr: float) -> dict:
    """FD, precision, recall (k = 3) on features vs held-out; memorised fraction vs the clean images."""
    from ambient_eval.metrics.fid import fid_from_features
    from ambient_eval.metrics.precision_recall import precision_recall

    g = features(gen_u8, s)
    p, r = precision_recall(ref_feats, g, k=3)
    grey = s.name == "digits8"
    mem = max_corr(pixels(gen_u8, grey), pixels(clean_train_u8, grey)) > thr
    return {"fd": float(fid_from_features(g, ref_feats)), "precision": p, "recall": r, "memorized": float(mem.mean())}
