"""Demo stages 3-4: train the four tiny models (equal budget) and sample them with shared seeds.

DIR/train/<model>/   a normal `ambient-eval train` run directory (run.json, loss.csv, final/, ...)
DIR/samples/<model>.npz   images NHWC uint8 + seeds + settings, as `ambient-eval sample --out X.npz`
A finished run / sample file with matching settings is reused; an interrupted one resumes.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from ambient_eval.demo.data import DemoData
from ambient_eval.demo.settings import DemoSettings

log = logging.getLogger(__name__)


def train_config(s: DemoSettings, method: str, seed_offset: int):
    """TrainConfig of one demo model (identical budget for all)."""
    from ambient_eval.training.config import TrainConfig

    return TrainConfig(method=method, arch=s.arch, steps=s.steps, batch=s.batch, lr=s.lr,
                       warmup_steps=s.warmup_steps, ema_halflife_kimg=s.ema, seed=s.seed + seed_offset,
                       checkpoint_every=max(s.steps // 3, 1), device=s.device)


def train_model(s: DemoSettings, data: DemoData, label: str, subset: str, method: str, seed_offset: int,
                sigma_tn: np.ndarray | None, out: Path) -> dict:
    """Train (or reuse / resume) one model into DIR/train/<label>; => train() summary."""
    from ambient_eval.files.hashing import sha256_json
    from ambient_eval.training.dataset import TrainData
    from ambient_eval.training.loop import train

    keep = ~data.corrupted if subset == "clean" else np.ones(len(data.labels), bool)
    images = data.images[torch.from_numpy(keep)]                      # NCHW uint8
    fp = data.fingerprints["train_clean" if subset == "clean" else "train_all"]
    tdata = TrainData(f"{data.description} [{subset}]", fp, images, data.labels[keep],
                      [str(i) for i in np.flatnonzero(keep)])
    cfg = train_config(s, method, seed_offset)
    stn = sigma_tn[keep] if method == "ambient-omni" and sigma_tn is not None else None
    ann_fp = sha256_json([float(v) for v in stn]) if stn is not None else None
    run_dir = out / "train" / label
    overwrite = _stale_run(run_dir, cfg, fp, ann_fp)
    if overwrite:
        log.info("settings changed: retraining %s", label)
    return train(tdata, cfg, run_dir, sigma_tn=stn, annotations_fingerprint=ann_fp, overwrite=overwrite)


def _stale_run(run_dir: Path, cfg, data_fp: str, ann_fp: str | None) -> bool:
    """True when run_dir holds a demo run made with other settings (it is then replaced)."""
    p = run_dir / "run.json"
    if not p.is_file():
        return False
    try:
        old = json.loads(p.read_text())
    except (OSError, ValueError):
        return True
    return (old.get("identity") != json.loads(json.dumps(cfg.identity())) or old.get("data_fingerprint") != data_fp
            or old.get("annotations_fingerprint") != ann_fp)


def sample_model(s: DemoSettings, label: str, out: Path) -> dict:
    """Sample seeds 0..n_samples-1 of DIR/train/<label>/final into DIR/samples/<label>.npz (reused when it
    matches the model and sampler)."""
    from ambient_eval.models import load_model
    from ambient_eval.sampling.run import sample_settings, sample_to_path
    from ambient_eval.sampling.samplers import SamplerConfig
    from ambient_eval.sampling.writer import settings_diff

    den = load_model(out / "train" / label / "final", device=s.device)
    cfg = SamplerConfig(steps=s.sampler_steps)
    seeds = list(range(s.n_samples))
    path = out / "samples" / f"{label}.npz"
    want = sample_settings(den, cfg, None, None, s.device)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                same = (not settings_diff(json.loads(str(z["settings"])), json.loads(json.dumps(want)))
                        and z["seeds"].tolist() == seeds)
        except (OSError, ValueError, KeyError):
            same = False
        if same:
            return {"out": str(path), "generated": 0, "skipped": len(seeds)}
        path.unlink()
    partial = path.with_name(path.name + ".partial")
    settings_file = partial / ".ambient-sample.json"
    if settings_file.is_file() and settings_diff(json.loads(settings_file.read_text()), json.loads(json.dumps(want))):
        shutil.rmtree(partial)                                       # an interrupted run of an older model
    return sample_to_path(den, seeds, path, cfg=cfg, batch_size=64, device=s.device)


def load_samples(out: Path, label: str) -> torch.Tensor:
    """DIR/samples/<label>.npz => NCHW uint8 (3 ch), seed order."""
    with np.load(out / "samples" / f"{label}.npz", allow_pickle=False) as z:
        x = torch.from_numpy(np.ascontiguousarray(z["images"])).permute(0, 3, 1, 2)
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def loss_curve(out: Path, label: str) -> dict[str, list[float]]:
    """loss.csv of a run => {'step': [...], 'loss': [...], 'frac_used': [...]}."""
    import csv

    p = out / "train" / label / "loss.csv"
    cols: dict[str, list[float]] = {"step": [], "loss": [], "frac_used": []}
    if p.is_file():
        with open(p, newline="") as f:
            for r in csv.DictReader(f):
                for k in cols:
                    cols[k].append(float(r[k]))
    return cols
