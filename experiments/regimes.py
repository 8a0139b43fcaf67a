"""Regimes experiment (Zhang et al. 2023): memorization -> generalization as the training set grows.

For each training-set size n (nested subsets of one seeded permutation of the data), train
`--models-per-size` models with the bundled trainer (different training seeds, same data), sample
the same seeds from each with the deterministic EDM Heun sampler, and measure:
  - memorization score MS = fraction of samples whose nearest training image has cosine > tau,
  - GL score = 1 - MS,
  - RP score between the models of the same size (fraction of shared-noise pairs with cosine > tau).
Writes a JSON table and a Plotly HTML report; prints the table and the run time.

    .venv/bin/python experiments/regimes.py                          # defaults: digits 8 px, 2^6..2^10
    .venv/bin/python experiments/regimes.py --min-log2 6 --max-log2 8 --steps 300 --seeds 0-63  # quick
    .venv/bin/python experiments/regimes.py --data cifar10 --resolution 32 --arch small --steps 20000
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR_TAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar"


@dataclass(frozen=True)
class RegimesDefaults:
    data: str = "builtin:digits-16:train"   # 1500 digits; or "cifar10" (../shared/data tar)
    resolution: int = 8                     # training/sampling side in pixels (digits are 8x8 natively)
    min_log2: int = 6                       # smallest training set: 2^6 = 64 images
    max_log2: int = 10                      # largest training set: 2^10 = 1024 images
    models_per_size: int = 2                # independent models (training seeds) per size
    arch: str = "tiny"                      # trainer U-Net preset (tiny | small | cifar)
    steps: int = 1500                       # optimiser steps per model
    batch: int = 32                         # images per step
    lr: float = 2e-3                        # Adam learning rate
    seeds: str = "0-199"                    # sampling seeds (shared by all models)
    sample_steps: int = 18                  # EDM Heun steps
    embed: str = "pixel"                    # embedding (sscd needs user-supplied weights)
    threshold: float = 0.6                  # cosine threshold (Zhang et al. 2023)
    strict_threshold: float = 0.95          # second threshold: near-exact copies / identical pairs
    subset_seed: int = 0                    # seed of the permutation the nested subsets are cut from
    threads: int = 1                        # torch CPU threads (the machine is shared)


D = RegimesDefaults()


def load_images(spec: str, resolution: int, n_max: int, subset_seed: int) -> np.ndarray:
    """n_max images in a seeded random order => NHWC uint8 (nested subsets are prefixes)."""
    from ambient_eval.data import open_source

    if spec == "cifar10":
        if not CIFAR_TAR.is_file():
            raise SystemExit(f"{CIFAR_TAR} not found; use --data builtin:digits-16:train")
        import io
        import tarfile

        from PIL import Image

        with tarfile.open(CIFAR_TAR) as tar:
            names = sorted(m.name for m in tar.getmembers() if "/train/" in f"/{m.name}" and m.name.endswith(".jpg"))
            rng = np.random.default_rng(subset_seed)
            pick = [names[i] for i in rng.permutation(len(names))[:n_max]]
            imgs = [np.asarray(Image.open(io.BytesIO(tar.extractfile(n).read())).convert("RGB")
                               .resize((resolution, resolution), Image.Resampling.BICUBIC)) for n in pick]
        return np.stack(imgs)
    src = open_source(spec, resize=resolution)
    if n_max > len(src):
        raise SystemExit(f"{spec} has {len(src)} images, fewer than 2^max_log2 = {n_max}")
    order = np.random.default_rng(subset_seed).permutation(len(src))[:n_max]
    return src.read(order).permute(0, 2, 3, 1).numpy()


def train_one(npz: Path, run_dir: Path, args, seed: int) -> tuple[Path, float]:
    """Train (or reuse a finished run) => path of the final native checkpoint, seconds spent."""
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import load_train_data
    from ambient_eval.training.loop import train

    final = run_dir / "final"
    if final.exists():
        return final, 0.0
    t0 = time.time()
    cfg = TrainConfig(method="baseline", arch=args.arch, steps=args.steps, batch=args.batch, lr=args.lr,
                      warmup_steps=min(100, args.steps // 10), seed=seed, checkpoint_every=args.steps,
                      device=args.device)
    train(load_train_data(npz), cfg, run_dir, overwrite=True)
    return final, time.time() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in RegimesDefaults.__dataclass_fields__.items():
        p.add_argument("--" + k.replace("_", "-"), type=type(v.default) if v.default is not None else str,
                       default=v.default)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=ROOT / "experiments_out" / "regimes")
    args = p.parse_args(argv)

    import torch

    from ambient_eval.files.atomic import write_json
    from ambient_eval.audits.reproducibility_inputs import SamplerSettings
    from ambient_eval.audits.reproducibility_run import ReproOptions, run
    from ambient_eval.models import load_model
    from ambient_eval.sampling.seeds import parse_seeds

    torch.set_num_threads(args.threads)
    t_start = time.time()
    sizes = [2 ** k for k in range(args.min_log2, args.max_log2 + 1)]
    seeds = parse_seeds(args.seeds)
    work = args.out / "work"
    work.mkdir(parents=True, exist_ok=True)
    images = load_images(args.data, args.resolution, sizes[-1], args.subset_seed)   # NHWC uint8
    opts = ReproOptions(embed=args.embed, threshold=args.threshold, n_boot=1000, cache=False,
                        sampler=SamplerSettings(steps=args.sample_steps, batch_size=64, device=args.device))
    rows = []
    for n in sizes:
        npz = work / f"train_{n}.npz"
        if not npz.exists():
            np.savez(npz, images=images[:n])          # nested: the first n of one permutation
        dens, labels, t_train = [], [], 0.0
        for m in range(args.models_per_size):
            final, sec = train_one(npz, work / f"n{n}_m{m}", args, seed=1000 * m + 1)
            t_train += sec
            dens.append(load_model(final, device="cpu"))
            labels.append(f"n{n}_m{m}")
        t0 = time.time()
        # In-memory denoisers: sampled with shared per-seed noise, embedded, compared, searched.
        out = run(dens, seeds, opts, train=[str(npz)], labels=labels)
        t_eval = time.time() - t0
        res = out.result
        ms = [out.memorization[lab].memorization for lab in labels]
        # Also at a strict threshold: near-exact copies of a training image, near-identical pairs.
        # (Raw-pixel cosine of unrelated digits is often > 0.6; 0.6 is calibrated for SSCD.)
        st = args.strict_threshold
        copies = [float(np.mean(out.top1[lab][0] > st)) for lab in labels]
        rp_strict = float(np.mean([np.mean(c > st) for c in res.cosine.values()]))
        row = {"n_train": n, "rp": res.rp_mean(), "rp_ci": [float(res.ci_lo[0, 1]), float(res.ci_hi[0, 1])],
               "memorization": float(np.mean(ms)), "gl": float(1 - np.mean(ms)),
               "memorization_per_model": ms, "memorization_strict": float(np.mean(copies)),
               "gl_strict": float(1 - np.mean(copies)), "rp_strict": rp_strict,
               "mean_pair_cosine": float(np.mean([c.mean() for c in res.cosine.values()])),
               "train_seconds": round(t_train, 1), "eval_seconds": round(t_eval, 1)}
        rows.append(row)
        print(f"n={n:5d}  RP={row['rp']:.3f} [{row['rp_ci'][0]:.3f},{row['rp_ci'][1]:.3f}]  "
              f"MS={row['memorization']:.3f}  GL={row['gl']:.3f}  | @{st}: MS={row['memorization_strict']:.3f} "
              f"RP={rp_strict:.3f} | "
              f"pair cos={row['mean_pair_cosine']:.3f}  train {t_train:.0f}s eval {t_eval:.0f}s", flush=True)
    total = time.time() - t_start
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    table = {"settings": settings, "rows": rows, "seconds_total": round(total, 1), "n_seeds": len(seeds)}
    write_json(args.out / "regimes.json", table)
    _report(rows, settings, args.out / "regimes.html")
    print(f"total {total:.0f} s; wrote {args.out / 'regimes.json'} and {args.out / 'regimes.html'}")
    return 0


def _report(rows, settings, path: Path) -> None:
    """Plotly chart of MS, GL and RP against training-set size, plus the table."""
    import plotly.graph_objects as go

    from ambient_eval.reports.html import Report

    x = [r["n_train"] for r in rows]
    fig = go.Figure()
    t, st = settings["threshold"], settings["strict_threshold"]
    for key, name, dash in (("memorization", f"memorization score (>{t})", None), ("gl", f"GL score (>{t})", None),
                            ("rp", f"RP score (>{t})", None),
                            ("memorization_strict", f"memorization score (>{st})", "dot"),
                            ("gl_strict", f"GL score (>{st})", "dot"), ("rp_strict", f"RP score (>{st})", "dot")):
        fig.add_trace(go.Scatter(x=x, y=[r[key] for r in rows], mode="lines+markers", name=name,
                                 line={"dash": dash}))
    fig.update_layout(title="Memorization -> generalization (Zhang et al. 2023 regimes)",
                      xaxis={"type": "log", "title": "training images"}, yaxis={"range": [0, 1.02]})
    rep = Report("Regimes experiment", settings=settings)
    rep.figure(fig)
    rep.table([{k: v for k, v in r.items() if not isinstance(v, list)} for r in rows])
    rep.save(path)


if __name__ == "__main__":
    sys.exit(main())
