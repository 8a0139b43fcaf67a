"""Does the bundled trainer reproduce Ambient-Omni's ordering? (Daras et al. 2025, blurred CIFAR-10 table)

Regime (a CPU-sized version of the paper's): few clean images, many mildly blurred ones.
  data       builtin:digits:train (8x8 px), n = 1000 images, 6% clean (60), 94% Gaussian-blurred
             (sigma_B = 0.8 px, the official corruption: scipy gaussian_filter semantics)
  models     same budget (steps x batch, tiny U-Net, training seed), per seed:
    clean-only    EDM baseline on the 60 clean images (many passes over few images: memorises)
    naive-all     EDM baseline on all 1000 images (blurred ones treated as clean)
    ambient-omni  all images; sigma_tn per blurred image from the noise-conditional classifier
                  (`annotate`, calibrated chance), official sigma-first batches, ambient loss
  metrics    against the 297 HELD-OUT digits (builtin:digits:test), never seen in training:
             FD on raw pixels (64-d grey values in model space; NOT Inception FID, not comparable
             with papers), precision / recall (k = 3), and the memorisation audit: fraction of
             samples whose Pearson correlation with some clean training image exceeds 0.95.
Each seed redraws the corrupted subset, the classifier and the training seed; intervals are 95%
Student-t over seeds. Partial results are written per seed (experiments_out/.../seed-K.json), so
an interrupted run resumes with the seeds it has; --aggregate-only rebuilds the tables from them.

    make experiment                                            # full run (3 seeds, ~25 min on 1 core)
    .venv/bin/python experiments/ambient_ordering.py --seeds 1 --steps 100 --samples 100   # smoke test
Writes experiments/results/ambient_ordering.{md,csv,svg} (with --results DIR elsewhere).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODELS = ("clean-only", "naive-all", "ambient-omni")


@dataclass(frozen=True)
class OrderingDefaults:
    data: str = "builtin:digits:train"  # training pool (8x8 digits, 1500 images)
    heldout: str = "builtin:digits:test"  # reference for FD / recall (297 images, disjoint)
    resolution: int = 8  # images resized to this side (builtin:digits is 32 px; 8 = the native digits)
    n: int = 1000  # training images (seeded subset of the pool, the same for every seed)
    clean_fraction: float = 0.06  # 60 clean images
    blur: float = 0.8  # sigma_B in pixels
    arch: str = "tiny"  # trainer U-Net preset
    steps: int = 800  # optimiser steps per model (equal budget)
    batch: int = 64  # images per step
    lr: float = 2e-3  # Adam learning rate (same for all three; loss summed over pixels, see training/loss.py)
    ema: float = 2.0  # EMA half-life (kimg)
    ann_steps: int = 300  # classifier steps
    ann_grid: int = 16  # classifier sigma grid points (0.01 .. 10)
    ann_draws: int = 2  # noise draws per sample and sigma
    samples: int = 500  # generated images per model
    sample_steps: int = 18  # EDM Heun steps
    mem_threshold: float = 0.95  # memorised: Pearson correlation with a clean training image above this
    seeds: int = 3  # seeds 0..seeds-1 (corruption subset, classifier, training)
    split_seed: int = -1  # >= 0: every seed uses this corruption subset and ONE cached annotation (cheaper)
    threads: int = 1  # torch CPU threads (the machine is shared)


def load(spec: str, n: int | None = None, seed: int = 0, resolution: int | None = None):
    """=> NCHW uint8 (3 channels) tensor at resolution x resolution, seeded subset of n when given."""
    import torch

    from ambient_eval.data import open_source

    src = open_source(spec, max_images=n, subset_seed=seed, resize=resolution)
    return torch.cat([x for _, x in src.iter_batches(512)])


def feats(x) -> np.ndarray:
    """NCHW uint8 digits => (N, H*W) float64 model-space pixels of channel 0 (the data are grey)."""
    return x[:, 0].reshape(len(x), -1).numpy().astype(np.float64) / 127.5 - 1.0


def max_corr(gen: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Per generated row, the highest Pearson correlation with any training row => (N,)."""
    def z(a):
        a = a - a.mean(1, keepdims=True)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    return (z(gen) @ z(train).T).max(1)


def metrics(gen_u8, ref: np.ndarray, clean_train: np.ndarray, thr: float) -> dict:
    from ambient_eval.metrics.fid import fid_from_features
    from ambient_eval.metrics.precision_recall import precision_recall

    g = feats(gen_u8)
    p, r = precision_recall(ref, g, k=3)
    return {"fd": float(fid_from_features(g, ref)), "precision": p, "recall": r,
            "memorized": float((max_corr(g, clean_train) > thr).mean())}


def annotated_split(a, pool, split: int, out: Path):
    """Corruption subset `split`, blurred pool and sigma_tn (cached in out/annotation-split-K.npz when
    --split-seed is given) => (corrupted bool (N,), mixed NCHW uint8, sigma_tn (N,), annotate seconds)."""
    import torch

    from ambient_eval.data.corruptions import gaussian_blur, select_corrupted
    from ambient_eval.training.annotate import AnnotateConfig, annotate

    N = len(pool)
    corrupted = select_corrupted(N, 1 - a.clean_fraction, split)
    cm = torch.from_numpy(corrupted)
    mixed = pool.clone()
    mixed[cm] = gaussian_blur(pool[cm], a.blur)
    cache = out / f"annotation-split-{split}.npz"
    key = json.dumps([a.n, a.clean_fraction, a.blur, a.ann_steps, a.ann_grid, a.ann_draws, split])
    if a.split_seed >= 0 and cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return corrupted, mixed, z["sigma_tn"], float(z["seconds"])
    t0 = time.time()
    ci = np.flatnonzero(corrupted)
    ann = annotate(mixed[~cm], mixed[cm], ci, AnnotateConfig(steps=a.ann_steps, grid_size=a.ann_grid,
                                                              draws=a.ann_draws, seed=split))
    sigma_tn = np.zeros(N, np.float32)
    sigma_tn[ci] = ann["sigma_tn"]
    if a.split_seed >= 0:
        np.savez(cache, key=key, sigma_tn=sigma_tn, seconds=time.time() - t0)
    return corrupted, mixed, sigma_tn, time.time() - t0


def run_seed(a, seed: int, pool, ref: np.ndarray, out: Path) -> dict:
    """Train and evaluate the three models for one seed => row dict (main writes out/seed-K.json)."""
    import torch

    from ambient_eval.hashing import sha256_json
    from ambient_eval.models import load_model
    from ambient_eval.sampling import generate
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import TrainData
    from ambient_eval.training.loop import train

    t_seed = time.time()
    N = len(pool)
    split = seed if a.split_seed < 0 else a.split_seed
    corrupted, mixed, sigma_tn, t_ann = annotated_split(a, pool, split, out)
    cm = torch.from_numpy(corrupted)
    ann = {"sigma_tn": sigma_tn[corrupted]}
    clean_train = feats(pool[~cm])

    def data(imgs, desc):
        return TrainData(desc, sha256_json([desc, seed, N, a.blur]), imgs, None, [str(i) for i in range(len(imgs))])

    runs = {"clean-only": (data(pool[~cm], "clean subset"), "baseline", None),
            "naive-all": (data(mixed, "mixed"), "baseline", None),
            "ambient-omni": (data(mixed, "mixed"), "ambient-omni", sigma_tn)}
    row: dict = {"seed": seed, "n_clean": int((~corrupted).sum()), "n_blurred": int(corrupted.sum()),
                 "sigma_tn_median": float(np.median(ann["sigma_tn"])), "sigma_tn_mean": float(ann["sigma_tn"].mean()),
                 "annotate_s": round(t_ann, 1)}
    for name, (d, method, stn) in runs.items():
        cfg = TrainConfig(method=method, arch=a.arch, steps=a.steps, batch=a.batch, lr=a.lr,
                          warmup_steps=min(100, a.steps // 10), ema_halflife_kimg=a.ema, seed=seed,
                          checkpoint_every=a.steps, device="cpu")
        t0 = time.time()
        run_dir = out / f"seed-{seed}" / name
        train(d, cfg, run_dir, sigma_tn=stn, overwrite=True)
        model = load_model(run_dir / "final", device="cpu")
        seeds = list(range(10_000 * seed, 10_000 * seed + a.samples))
        imgs = torch.cat([x for _, x in generate(model, seeds, batch_size=250, steps=a.sample_steps, device="cpu")])
        m = metrics(imgs, ref, clean_train, a.mem_threshold)
        row.update({f"{name}.{k}": v for k, v in m.items()})
        row[f"{name}.seconds"] = round(time.time() - t0, 1)
        print(f"  seed {seed} {name:<13} FD {m['fd']:7.3f}  recall {m['recall']:.3f}  "
              f"memorised {m['memorized']:.3f}  ({time.time() - t0:.0f} s)", flush=True)
    # data-only reference points: the clean subset itself, and the blurred images, vs held-out
    from ambient_eval.metrics.fid import fid_from_features

    row["data.clean_subset_fd"] = float(fid_from_features(clean_train, ref))
    row["data.blurred_fd"] = float(fid_from_features(feats(mixed[cm]), ref))
    row["seconds"] = round(time.time() - t_seed, 1)
    return row


def t_interval(v: list[float]) -> tuple[float, float, float]:
    """mean and 95% Student-t interval over seeds."""
    from scipy.stats import t as student_t

    v = np.asarray(v, float)
    m = float(v.mean())
    if len(v) < 2:
        return m, float("nan"), float("nan")
    h = float(student_t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return m, m - h, m + h


def aggregate(rows: list[dict], settings: dict, results: Path, wall_s: float | None) -> dict:
    """Write ambient_ordering.{csv,md,svg} under `results`; => summary."""
    from ambient_eval import atomic
    from experiments.ordering_figure import svg

    summary = {}
    lines = ["model,metric,mean,ci_low,ci_high,n_seeds," + ",".join(f"seed{r['seed']}" for r in rows)]
    for name in MODELS:
        for k in ("fd", "precision", "recall", "memorized"):
            v = [r[f"{name}.{k}"] for r in rows]
            m, lo, hi = t_interval(v)
            summary[f"{name}.{k}"] = (m, lo, hi)
            lines.append(f"{name},{k},{m:.4f},{lo:.4f},{hi:.4f},{len(v)}," + ",".join(f"{x:.4f}" for x in v))
    for k in ("data.clean_subset_fd", "data.blurred_fd", "sigma_tn_median"):
        v = [r[k] for r in rows]
        m, lo, hi = t_interval(v)
        summary[k] = (m, lo, hi)
        lines.append(f"{k.split('.')[0]},{k.split('.')[-1]},{m:.4f},{lo:.4f},{hi:.4f},{len(v)},"
                     + ",".join(f"{x:.4f}" for x in v))
    atomic.write_text(results / "ambient_ordering.csv", "\n".join(lines) + "\n")
    fd = {n: summary[f"{n}.fd"][0] for n in MODELS}
    per_seed_best = sum(r["ambient-omni.fd"] < min(r["clean-only.fd"], r["naive-all.fd"]) for r in rows)
    paper = fd["ambient-omni"] < fd["clean-only"] and fd["ambient-omni"] < fd["naive-all"]
    ci_sep = summary["ambient-omni.fd"][2] < summary["clean-only.fd"][1]
    md = ["# Ambient-Omni ordering at CPU scale", "",
          f"Settings: {json.dumps(settings)}", "",
          f"{len(rows)} seeds; mean [95% t-interval]. FD on raw 8x8 pixels vs {settings.get('heldout')} "
          "(held out; lower is better). Memorised = fraction of samples with Pearson correlation > "
          f"{settings.get('mem_threshold')} to a clean training image.", "",
          "| model | FD | precision | recall | memorised |", "|---|---|---|---|---|"]
    for name in MODELS:
        cells = [f"{summary[f'{name}.{k}'][0]:.3f} [{summary[f'{name}.{k}'][1]:.3f}, {summary[f'{name}.{k}'][2]:.3f}]"
                 for k in ("fd", "precision", "recall", "memorized")]
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    md += ["", f"Reference points (data, no model): clean subset vs held-out FD "
           f"{summary['data.clean_subset_fd'][0]:.3f}; blurred images vs held-out FD {summary['data.blurred_fd'][0]:.3f}; "
           f"median sigma_tn of blurred images {summary['sigma_tn_median'][0]:.3f}.", "",
           f"Per seed FD (clean-only / naive-all / ambient-omni): " + "; ".join(
               f"seed {r['seed']}: {r['clean-only.fd']:.2f} / {r['naive-all.fd']:.2f} / {r['ambient-omni.fd']:.2f}"
               for r in rows) + ".", "",
           f"**Paper ordering (ambient-omni better than both) in the mean: {'YES' if paper else 'NO'}**; "
           f"ambient-omni best in {per_seed_best} of {len(rows)} seeds; ambient-omni's interval "
           f"{'lies below' if ci_sep else 'overlaps'} clean-only's."
           + (f" Wall time {wall_s / 60:.1f} min." if wall_s else "")]
    atomic.write_text(results / "ambient_ordering.md", "\n".join(md) + "\n")
    atomic.write_text(results / "ambient_ordering.svg", svg(rows, summary, MODELS))
    return {"fd": fd, "paper_ordering": paper, "per_seed_best": per_seed_best, "ci_separated": ci_sep}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(OrderingDefaults):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    p.add_argument("--out", type=Path, default=ROOT / "experiments_out" / "ambient_ordering")
    p.add_argument("--results", type=Path, default=ROOT / "experiments" / "results")
    p.add_argument("--aggregate-only", action="store_true", help="rebuild the tables from out/seed-K.json")
    p.add_argument("--only-seed", type=int, default=None, help="run just this seed (parallel processes), no tables")
    p.add_argument("--annotate-only", action="store_true", help="with --split-seed: compute and cache the annotation")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    settings = {f.name: getattr(a, f.name) for f in fields(OrderingDefaults)}
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "settings.json").write_text(json.dumps(settings, indent=1))
    t0 = time.time()
    rows = []
    if not a.aggregate_only:
        pool = load(a.data, a.n, 0, a.resolution)
        ref = feats(load(a.heldout, resolution=a.resolution))
        if a.annotate_only:
            if a.split_seed < 0:
                raise SystemExit("--annotate-only needs --split-seed K")
            annotated_split(a, pool, a.split_seed, a.out)
            print(f"annotation cached in {a.out} ({time.time() - t0:.0f} s)")
            return 0
        for seed in (range(a.seeds) if a.only_seed is None else [a.only_seed]):
            f = a.out / f"seed-{seed}.json"
            if f.is_file() and json.loads(f.read_text()).get("settings") == settings:
                rows.append(json.loads(f.read_text()))
                print(f"seed {seed}: reusing {f}")
                continue
            print(f"seed {seed}: training 3 models ({a.steps} steps x {a.batch})", flush=True)
            row = run_seed(a, seed, pool, ref, a.out)
            row["settings"] = settings
            from ambient_eval.atomic import write_json

            write_json(f, row)
            rows.append(row)
    else:
        rows = [json.loads(f.read_text()) for f in sorted(a.out.glob("seed-*.json"))]
        rows = [r for r in rows if r.get("settings") == settings]
    if a.only_seed is not None:
        print(f"seed {a.only_seed} done ({time.time() - t0:.0f} s); run --aggregate-only when all seeds are")
        return 0
    if not rows:
        raise SystemExit(f"no per-seed results with these settings under {a.out}")
    res = aggregate(rows, settings, a.results, None if a.aggregate_only else time.time() - t0)
    print(json.dumps(res, indent=1))
    print(f"-> {a.results / 'ambient_ordering.md'} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
