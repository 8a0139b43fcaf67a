"""Demo: corruption leakage of each model (metrics/leakage.py).

A clean-vs-blurred classifier is trained on an 80/20 split of the demo's own clean and corrupted
training images (DIR/leakage/classifier.safetensors, reused when the data and settings match);
each model's samples get P(corrupted) at the lowest noise level. Naive training reproduces the
blur; clean-only and ambient models should not.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ambient_eval.files import atomic
from ambient_eval.demo.settings import DemoSettings

log = logging.getLogger(__name__)


def classifier(s: DemoSettings, data, out: Path, device: str):
    """Train (or reuse) the demo's leakage classifier => LeakageClassifier."""
    from ambient_eval.files.hashing import sha256_json
    from ambient_eval.metrics import leakage as L
    from ambient_eval.training.annotate import AnnotateConfig

    cfg = AnnotateConfig(steps=s.leakage_steps, width=s.leakage_width, seed=s.seed)
    key = sha256_json({"data": data.fingerprints["train_all"], "steps": cfg.steps, "width": cfg.width,
                       "seed": cfg.seed})
    path, meta = out / "leakage" / "classifier.safetensors", out / "leakage" / "classifier.json"
    try:
        if json.loads(meta.read_text()).get("key") == key:
            log.info("reusing %s", path)
            return L.load_classifier(path, device)
    except (OSError, ValueError, Exception):  # noqa: BLE001 - stale or missing: train again
        pass
    corrupted = torch.from_numpy(data.corrupted)
    clf = L.train_leakage_classifier(data.images[~corrupted], data.images[corrupted], cfg, device=device)
    L.save_classifier(clf, path)
    atomic.write_json(meta, {"key": key, "rates": clf.rates})
    return L.load_classifier(path, device)


def leakage(s: DemoSettings, data, sources: dict, out: Path, device: str) -> dict[str, Any]:
    """label -> {"metrics", "ci", "settings"}; "_rates" -> the classifier's held-out rates."""
    from ambient_eval.metrics import leakage as L

    clf = classifier(s, data, out, device)
    res: dict[str, Any] = {"_rates": clf.rates}
    for label, src in sources.items():
        m, ci, st = L.leakage_metrics(L.source_probs(clf, src), clf, n_boot=s.n_boot, seed=s.seed)
        res[label] = {"metrics": m, "ci": ci, "settings": st}
    return res
