"""Demo stages 1-2: the built-in data split into a clean subset + corrupted rest, and sigma_tn.

DIR/data/       train_all.npz (clean + corrupted, what naive/ambient train on), train_clean.npz,
                data.json (counts, corruption, fingerprints)
DIR/annotate/   annotations.jsonl (same format as `ambient-eval annotate`), reused when it matches
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ambient_eval.files import atomic
from ambient_eval.demo.settings import DemoSettings

log = logging.getLogger(__name__)


@dataclass
class DemoData:
    """Everything the training and evaluation stages read (all in memory)."""

    images: torch.Tensor  # NCHW uint8 (3 ch): the pool after corruption (what naive/ambient see)
    originals: torch.Tensor  # NCHW uint8: the same pool before corruption (for the report only)
    labels: np.ndarray  # int64 (N,)
    corrupted: np.ndarray  # bool (N,)
    heldout: object  # ImageSource of held-out clean images (FID/KID reference)
    fingerprints: dict  # name -> sha256 of content
    description: str  # where the pool came from

    @property
    def clean_images(self) -> torch.Tensor:
        return self.images[torch.from_numpy(~self.corrupted)]


def array_source(images: torch.Tensor, description: str, labels: np.ndarray | None = None):
    """NCHW uint8 tensor => ArraySource (fingerprint = content hash)."""
    from ambient_eval.data.base import ArraySource

    return ArraySource(images.numpy(), labels, description=description)


def prepare_data(s: DemoSettings, out: Path) -> DemoData:
    """Load the pool, keep `clean_fraction` clean (seeded), corrupt the rest; write DIR/data/."""
    from ambient_eval.data import corruptions as C
    from ambient_eval.data import open_source

    src = open_source(s.data, max_images=s.n_train, subset_seed=s.seed)
    heldout = open_source(s.heldout)
    originals = torch.cat([x for _, x in src.iter_batches(512)])            # NCHW uint8, 3 ch
    labels = src.labels()
    labels = np.zeros(len(src), np.int64) if labels is None else np.asarray(labels, np.int64)
    n = len(src)
    C.validate(s.corruption, s.level, 1.0 - s.clean_fraction)
    corrupted = C.select_corrupted(n, 1.0 - s.clean_fraction, s.seed)
    images = originals.clone()
    idx = np.flatnonzero(corrupted)
    if idx.size:
        images[torch.from_numpy(idx)], _ = C.corrupt_batch(originals[torch.from_numpy(idx)], idx.tolist(),
                                                           s.corruption, s.level, s.seed)
    all_src = array_source(images, f"{s.data} ({int(corrupted.sum())} of {n} {s.corruption}-corrupted)", labels)
    clean_src = array_source(images[torch.from_numpy(~corrupted)], f"{s.data} (clean subset)",
                             labels[~corrupted])
    fps = {"pool": src.fingerprint(), "train_all": all_src.fingerprint(), "train_clean": clean_src.fingerprint(),
           "heldout": heldout.fingerprint()}
    d = out / "data"
    for name, x, lab in (("train_all", images, labels), ("train_clean", images[torch.from_numpy(~corrupted)],
                                                         labels[~corrupted])):
        atomic.save_npz(d / f"{name}.npz", images=x.permute(0, 2, 3, 1).contiguous().numpy(), labels=lab)
    atomic.write_json(d / "data.json", {
        "pool": src.description, "heldout": heldout.description, "n_pool": n, "n_clean": int((~corrupted).sum()),
        "n_corrupted": int(corrupted.sum()), "n_heldout": len(heldout), "corruption": s.corruption,
        "level": s.level, "seed": s.seed, "resolution": list(src.resolution), "fingerprints": fps})
    return DemoData(images, originals, labels, corrupted, heldout, fps, src.description)


def annotate_sigma(s: DemoSettings, data: DemoData, out: Path, device: str) -> tuple[np.ndarray, dict]:
    """sigma_tn per pool image (0 for clean) => (float32 (N,), info). Reuses DIR/annotate/ when it matches."""
    from ambient_eval.files.hashing import sha256_json
    from ambient_eval.training.annotate import AnnotateConfig, annotate
    from ambient_eval.training.dataset import annotations_text

    cfg = AnnotateConfig(steps=s.classifier_steps, grid_size=s.annotate_grid, draws=s.annotate_draws, seed=s.seed)
    rule = ({"fixed_sigma": s.fixed_sigma} if s.annotate == "fixed"
            else {"classifier_steps": cfg.steps, "epsilon": cfg.epsilon, "draws": cfg.draws, "grid_size": cfg.grid_size,
                  "seed": cfg.seed})
    key = sha256_json({"data": data.fingerprints["train_all"], "mode": s.annotate, "rule": rule})
    path = out / "annotate" / "annotations.jsonl"
    cached = _read_cached(path, key)
    if cached is not None:
        log.info("reusing %s", path)
        return cached, {"mode": s.annotate, "rule": rule, "reused": True, "accuracy": []}
    n = len(data.labels)
    sigma = np.zeros(n, np.float64)
    idx = np.flatnonzero(data.corrupted)
    info: dict = {"mode": s.annotate, "rule": rule, "reused": False, "accuracy": []}
    if s.annotate == "fixed":
        sigma[idx] = s.fixed_sigma
    elif idx.size:
        res = annotate(data.clean_images, data.images[torch.from_numpy(idx)], idx, cfg, device)
        sigma[idx] = res["sigma_tn"]
        info["accuracy"] = res["accuracy"]
    header = {"dataset_fingerprint": data.fingerprints["train_all"], "dataset": data.description,
              "n_corrupted": int(idx.size), "fixed_sigma": s.fixed_sigma if s.annotate == "fixed" else None,
              "rule": rule, "demo_key": key}
    atomic.write_text(path, annotations_text(header, [str(i) for i in range(n)], data.corrupted, sigma))
    return sigma.astype(np.float32), info


def _read_cached(path: Path, key: str) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        lines = path.read_text().splitlines()
        if json.loads(lines[0]).get("demo_key") != key:
            return None
        return np.array([json.loads(ln)["sigma_tn"] for ln in lines[1:] if ln.strip()], np.float32)
    except (OSError, ValueError, KeyError, IndexError):
        return None
