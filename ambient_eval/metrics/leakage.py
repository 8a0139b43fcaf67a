"""Corruption leakage (SPEC "Quality metrics"): how many generated samples look corrupted.

A clean-vs-corrupted classifier c(x + sigma z, sigma) (the noise-conditional classifier that
`annotate` trains, training/annotate.py) is applied at the lowest noise level sigma_0 of its
grid; a sample counts as corrupted when P(corrupted) > 0.5. Reported with a bootstrap interval,
next to the classifier's own rates on held-out clean (false alarms) and held-out corrupted
(detections) training images, and the rate-corrected estimate (Rogan and Gladen 1978):
    leakage_corrected = (leakage - rate_clean) / (rate_corrupted - rate_clean), clipped to [0, 1].

Classifier files: safetensors weights + a JSON header (architecture, sigma_0, resolution, rates);
never a pickle. `train_leakage_classifier` trains one on a seeded split of clean / corrupted images.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ambient_eval.errors import AmbientError

# results.json metric keys (kind fid) and settings key
LEAKAGE = "leakage"
LEAKAGE_CORRECTED = "leakage_corrected"
SETTINGS_KEY = "leakage"
FORMAT = "ambient-eval-leakage-classifier-v1"


@dataclass(frozen=True)
class LeakageDefaults:
    holdout_fraction: float = 0.2     # of each class, kept out of classifier training to measure its rates
    cutoff: float = 0.5               # a sample is "corrupted" when P(corrupted) > cutoff
    n_boot: int = 1000                # bootstrap resamples of the samples
    level: float = 0.95               # two-sided interval
    seed: int = 0                     # split, noise draws, bootstrap
    batch: int = 256                  # images per classifier call


DEFAULTS = LeakageDefaults()


@dataclass
class LeakageClassifier:
    """A trained clean-vs-corrupted classifier and its held-out rates."""

    model: torch.nn.Module
    sigma: float                                  # lowest noise level sigma_0 (model space)
    resolution: int
    channels: int
    width: int
    rates: dict[str, float] = field(default_factory=dict)   # {"clean": ..., "corrupted": ..., "n_clean": ...}
    sha256: str | None = None
    path: str | None = None


def _header(clf: LeakageClassifier) -> dict[str, str]:
    meta = {"format": FORMAT, "sigma": clf.sigma, "resolution": clf.resolution, "channels": clf.channels,
            "width": clf.width, "rates": clf.rates}
    return {"ambient_eval": json.dumps(meta)}


def save_classifier(clf: LeakageClassifier, path: str | os.PathLike) -> Path:
    """Write weights + header atomically (safetensors)."""
    from safetensors.torch import save_file

    from ambient_eval.files.atomic import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in clf.model.state_dict().items()}, str(tmp),
                  metadata=_header(clf))
    return p


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> LeakageClassifier:
    """Read a classifier file written by save_classifier (weights only; nothing executed)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from ambient_eval.files.hashing import sha256_file
    from ambient_eval.training.annotate import NoisyClassifier

    p = Path(path)
    if not p.is_file():
        raise AmbientError(f"Leakage classifier '{p}' does not exist. Train one with `ambient-eval annotate CLEAN "
                           "CORRUPTED -o ann.jsonl --save-classifier clf.safetensors`.")
    try:
        with safe_open(str(p), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("ambient_eval", "{}"))
        state = load_file(str(p))
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise AmbientError(f"'{p}' is not a readable safetensors file ({e}). Pass a classifier written by "
                           "`ambient-eval annotate --save-classifier`.") from None
    if meta.get("format") != FORMAT:
        raise AmbientError(f"'{p}' is not an ambient-eval leakage classifier (header format "
                           f"{meta.get('format')!r}, expected {FORMAT!r}). Train one with `ambient-eval annotate "
                           "--save-classifier`.")
    model = NoisyClassifier(int(meta["channels"]), int(meta["width"]))
    model.load_state_dict(state)
    return LeakageClassifier(model.to(device).eval(), float(meta["sigma"]), int(meta["resolution"]),
                             int(meta["channels"]), int(meta["width"]), dict(meta.get("rates", {})),
                             sha256=sha256_file(p), path=str(p))


@torch.no_grad()
def corrupted_prob(clf: LeakageClassifier, images: torch.Tensor, *, seed: int = DEFAULTS.seed,
                   start: int = 0) -> np.ndarray:
    """NCHW uint8 => (N,) float64 P(corrupted) at sigma_0, one seeded noise draw per image.

    Image i's noise comes from torch.Generator().manual_seed(seed * 2**32 + start + i): independent
    of batch size. RGB images of a 1-channel classifier are averaged to gray."""
    if images.shape[-1] != clf.resolution or images.shape[-2] != clf.resolution:
        raise AmbientError(f"The leakage classifier works on {clf.resolution}x{clf.resolution} images, but the "
                           f"samples are {images.shape[-2]}x{images.shape[-1]}. Use a classifier trained at the "
                           "samples' resolution.")
    x = images.to(torch.float32) / 127.5 - 1                        # model space [-1, 1]
    if clf.channels == 1 and x.shape[1] == 3:
        x = x.mean(1, keepdim=True)
    elif clf.channels != x.shape[1]:
        raise AmbientError(f"The leakage classifier expects {clf.channels}-channel images, got {x.shape[1]}.")
    z = torch.stack([torch.randn(x.shape[1:], generator=torch.Generator().manual_seed(seed * 2 ** 32 + start + i))
                     for i in range(len(x))])
    dev = next(clf.model.parameters()).device
    sig = torch.full((len(x),), clf.sigma, device=dev)
    logits = clf.model((x + clf.sigma * z).to(dev), sig)
    return torch.sigmoid(logits.to(torch.float64)).cpu().numpy()


def source_probs(clf: LeakageClassifier, source, *, seed: int = DEFAULTS.seed,
                 batch: int = DEFAULTS.batch) -> np.ndarray:
    """ImageSource => (N,) float64 P(corrupted), in source order."""
    return np.concatenate([corrupted_prob(clf, x, seed=seed, start=int(idx[0]))
                           for idx, x in source.iter_batches(batch)])


def corrected(frac: float, rates: dict[str, float]) -> float | None:
    """Rogan-Gladen estimate of the truly corrupted fraction; None when the classifier is uninformative."""
    a, b = rates.get("clean"), rates.get("corrupted")
    if a is None or b is None or b - a <= 1e-9:
        return None
    return float(np.clip((frac - a) / (b - a), 0.0, 1.0))


def leakage_metrics(p: np.ndarray, clf: LeakageClassifier, *, n_boot: int = DEFAULTS.n_boot,
                    seed: int = DEFAULTS.seed) -> tuple[dict[str, float], dict[str, list[float]], dict[str, Any]]:
    """Per-sample probabilities => (metrics, ci, settings) for results.json."""
    from ambient_eval.metrics.bootstrap import percentile_interval

    flags = p > DEFAULTS.cutoff
    n, frac = len(flags), float(flags.mean())
    # Bootstrap of 0/1 outcomes: a resample's count is Binomial(n, frac).
    reps = np.random.default_rng(seed).binomial(n, frac, size=n_boot) / n if n_boot else np.array([frac])
    metrics: dict[str, float] = {LEAKAGE: frac}
    ci = {LEAKAGE: list(percentile_interval(reps, DEFAULTS.level))} if n_boot else {}
    c = corrected(frac, clf.rates)
    if c is not None:
        metrics[LEAKAGE_CORRECTED] = c
        if n_boot:
            ci[LEAKAGE_CORRECTED] = list(percentile_interval([corrected(r, clf.rates) for r in reps], DEFAULTS.level))
    settings = {"classifier": clf.path, "classifier_sha256": clf.sha256, "sigma": clf.sigma,
                "cutoff": DEFAULTS.cutoff, "rates_heldout": clf.rates, "n": n, "n_boot": n_boot, "seed": seed,
                "mean_prob": float(p.mean())}
    return metrics, ci, settings


def train_leakage_classifier(clean: torch.Tensor, corrupted: torch.Tensor, cfg=None, *,
                             holdout_fraction: float = DEFAULTS.holdout_fraction, device="cpu") -> LeakageClassifier:
    """NCHW uint8 clean / corrupted images => classifier trained on a seeded split, rates on the rest."""
    from ambient_eval.training.annotate import AnnotateConfig, train_classifier

    cfg = cfg or AnnotateConfig()
    g = np.random.default_rng(cfg.seed)

    def split(x):
        n_h = max(1, int(round(len(x) * holdout_fraction)))
        if len(x) - n_h < 1:
            raise AmbientError(f"Need at least 2 images per class to train and check a leakage classifier; got {len(x)}.")
        perm = torch.from_numpy(g.permutation(len(x)))
        return x[perm[n_h:]], x[perm[:n_h]]

    (c_tr, c_ho), (b_tr, b_ho) = split(clean), split(corrupted)
    model, _ = train_classifier(c_tr, b_tr, cfg, device)
    clf = LeakageClassifier(model, float(cfg.grid_min), int(clean.shape[-1]), int(clean.shape[1]), int(cfg.width))
    pc, pb = corrupted_prob(clf, c_ho, seed=cfg.seed), corrupted_prob(clf, b_ho, seed=cfg.seed + 1)
    clf.rates = {"clean": float((pc > DEFAULTS.cutoff).mean()), "corrupted": float((pb > DEFAULTS.cutoff).mean()),
                 "n_clean": len(pc), "n_corrupted": len(pb)}
    return clf
