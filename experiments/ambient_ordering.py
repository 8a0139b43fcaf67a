"""Does the bundled trainer reproduce Ambient-Omni's ordering? (Daras et al. 2025, CIFAR-10 table)

Data: 10% clean + 90% Gaussian-blurred (sigma_B pixels) images. Three models with the same
budget (steps x batch, architecture, seed):
  clean-only    EDM baseline on the 10% clean images
  naive-all     EDM baseline on all images (blurred ones treated as clean)
  ambient-omni  all images; sigma_tn per blurred image from the noisy classifier (annotate), and
                the ambient loss (a blurred image is used only at sigma_t > sigma_tn sqrt(4/3))
Each model draws the same seeds with the EDM Heun sampler; FID against the CLEAN versions of all
training images, with the `pixel-P` extractor (raw pixels resized to P x P, model space; no
pretrained weights exist offline, so this is NOT Inception FID and not comparable with papers).
Paper ordering at strong blur: Ambient-Omni < clean-only < naive-all.

    .venv/bin/python experiments/ambient_ordering.py                       # digits 8 px, a few CPU minutes
    .venv/bin/python experiments/ambient_ordering.py --steps 4000 --arch small --samples 1000
    .venv/bin/python experiments/ambient_ordering.py --data cifar10 --n 5000 --resolution 32 --arch small
Writes experiments_out/ambient_ordering/results.json and prints the table and the run time.
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
CIFAR_TAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar"


@dataclass(frozen=True)
class OrderingDefaults:
    data: str = "builtin:digits-16:train"  # image source spec, or "cifar10" (../shared/data tar, train split)
    n: int = 1500  # training images (seeded subset when the source is larger)
    resolution: int = 8  # side in pixels (digits are 8x8 natively)
    clean_fraction: float = 0.1  # Ambient-Omni setting: 10% clean
    blur: float = 1.0  # sigma_B of the Gaussian blur (pixels); the paper's strongest CIFAR level is 1.0
    arch: str = "tiny"  # trainer U-Net preset
    steps: int = 1000  # optimiser steps per model (equal budget)
    batch: int = 32  # images per step
    lr: float = 2e-3  # Adam learning rate
    ema: float = 2.0  # EMA half-life (kimg)
    sigma_policy: str = "mask"  # ambient-omni: below-threshold samples masked (or "truncate")
    ann_steps: int = 300  # classifier steps
    ann_grid: int = 16  # classifier sigma grid points (0.01 .. 10)
    ann_draws: int = 2  # noise draws per sample and sigma
    samples: int = 500  # generated images per model
    sample_steps: int = 18  # EDM Heun steps
    features: str = "pixel-8"  # FID extractor (pixel-P: raw pixels at P x P)
    seed: int = 0  # corruption subset, training seed, sampling seeds start
    threads: int = 1  # torch CPU threads (the machine is shared)
    device: str = "cpu"  # training / sampling device


def load_images(spec: str, n: int, resolution: int, seed: int):
    """=> NCHW uint8 tensor of n images in a seeded order."""
    import torch

    from ambient_eval.data import open_source

    if spec == "cifar10":
        if not CIFAR_TAR.is_file():
            raise SystemExit(f"{CIFAR_TAR} not found; use the default --data builtin:digits-16:train")
        src = open_source(f"{CIFAR_TAR}#train", resize=resolution, max_images=n, subset_seed=seed)
    else:
        src = open_source(spec, resize=resolution, max_images=n if n else None, subset_seed=seed)
    return torch.cat([x for _, x in src.iter_batches(512)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(OrderingDefaults):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    p.add_argument("--out", type=Path, default=ROOT / "experiments_out" / "ambient_ordering")
    args = p.parse_args(argv)

    import torch

    from ambient_eval import api
    from ambient_eval.atomic import write_json
    from ambient_eval.data import ArraySource
    from ambient_eval.data.corruptions import gaussian_blur, select_corrupted
    from ambient_eval.hashing import sha256_json
    from ambient_eval.sampling import generate
    from ambient_eval.training.annotate import AnnotateConfig, annotate
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import TrainData
    from ambient_eval.training.loop import train

    def fd(res) -> float:
        # pixel extractors report "fd_<name>"; Inception reports "fid": one FD metric per call here
        return float(next(v for k, v in res.metrics.items() if k == "fid" or k.startswith("fd_")))

    torch.set_num_threads(args.threads)
    t_start = time.time()
    clean = load_images(args.data, args.n, args.resolution, args.seed)                   # NCHW uint8
    N = len(clean)
    corrupted = select_corrupted(N, 1 - args.clean_fraction, args.seed)
    mixed = clean.clone()
    mixed[torch.from_numpy(corrupted)] = gaussian_blur(clean[torch.from_numpy(corrupted)], args.blur)
    names = [str(i) for i in range(N)]

    t0 = time.time()
    ci = np.flatnonzero(corrupted)
    ann = annotate(mixed[torch.from_numpy(~corrupted)], mixed[torch.from_numpy(ci)], ci,
                   AnnotateConfig(steps=args.ann_steps, grid_size=args.ann_grid, draws=args.ann_draws,
                                  seed=args.seed))
    sigma_tn = np.zeros(N, np.float32)
    sigma_tn[ci] = ann["sigma_tn"]
    t_ann = time.time() - t0

    def data(imgs, desc):
        return TrainData(desc, sha256_json([desc, args.seed, N, args.blur]), imgs, None, names[:len(imgs)])

    runs = {
        "clean-only": (data(clean[torch.from_numpy(~corrupted)], "clean 10%"), "baseline", None),
        "naive-all": (data(mixed, "mixed"), "baseline", None),
        "ambient-omni": (data(mixed, "mixed"), "ambient-omni", sigma_tn),
    }
    reference = ArraySource(clean.permute(0, 2, 3, 1).numpy(), description="clean training images")
    seeds = list(range(args.seed, args.seed + args.samples))
    rows = []
    for name, (d, method, stn) in runs.items():
        cfg = TrainConfig(method=method, arch=args.arch, steps=args.steps, batch=args.batch, lr=args.lr,
                          warmup_steps=min(100, args.steps // 10), ema_halflife_kimg=args.ema,
                          sigma_policy=args.sigma_policy, seed=args.seed, checkpoint_every=args.steps,
                          device=args.device)
        t0 = time.time()
        res = train(d, cfg, args.out / name, sigma_tn=stn, overwrite=True)
        t_train = time.time() - t0
        from ambient_eval.models import load_model

        model = load_model(args.out / name / "final", device=args.device)
        t0 = time.time()
        imgs = torch.cat([x for _, x in generate(model, seeds, batch_size=250, steps=args.sample_steps,
                                                 device=args.device)])
        gen = ArraySource(imgs.permute(0, 2, 3, 1).numpy(), description=f"{name} samples")
        r = api.fid(gen, reference, metrics=("fid",), features=args.features, cache=False, device="cpu")
        rows.append({"model": name, "train_images": len(d), "fid": fd(r),
                     "final_loss": res["final_loss"], "train_s": round(t_train, 1),
                     "sample_eval_s": round(time.time() - t0, 1)})
    # reference point: the blurred images themselves vs the clean ones (what naive training imitates)
    blur_only = ArraySource(mixed[torch.from_numpy(corrupted)].permute(0, 2, 3, 1).numpy(), description="blurred")
    clean_sub = ArraySource(clean[torch.from_numpy(~corrupted)].permute(0, 2, 3, 1).numpy(), description="clean 10%")
    ref_rows = {k: fd(api.fid(src, reference, metrics=("fid",), features=args.features, cache=False,
                              device="cpu")) for k, src in (("blurred data", blur_only),
                                                                               ("clean 10% data", clean_sub))}
    total = time.time() - t_start
    fids = {r["model"]: r["fid"] for r in rows}
    ordering_ok = fids["ambient-omni"] < fids["clean-only"] < fids["naive-all"]
    s = sigma_tn[ci]
    out = {"settings": vars(args) | {"out": str(args.out)}, "rows": rows, "data_fid": ref_rows,
           "sigma_tn": {"mean": float(s.mean()), "median": float(np.median(s)), "min": float(s.min()),
                        "max": float(s.max())},
           "classifier_accuracy": ann["accuracy"], "paper_ordering_reproduced": ordering_ok,
           "seconds": {"total": round(total, 1), "annotate": round(t_ann, 1)}}
    write_json(args.out / "results.json", out)

    print(f"Ambient-Omni ordering: {args.data} n={N} @ {args.resolution}px, {args.clean_fraction:.0%} clean, "
          f"blur sigma_B={args.blur}; {args.arch} U-Net, {args.steps} steps x {args.batch}; FID on "
          f"{args.features} features, {args.samples} samples vs {N} clean images")
    print(f"sigma_tn of blurred images: mean {s.mean():.3f}, median {np.median(s):.3f} "
          f"(classifier {args.ann_steps} steps, {t_ann:.0f} s)")
    print(f"{'model':<14}{'images':>8}{'FID':>10}{'loss':>9}{'train s':>9}")
    for r in rows:
        print(f"{r['model']:<14}{r['train_images']:>8}{r['fid']:>10.3f}{r['final_loss']:>9.4f}{r['train_s']:>9.1f}")
    for k, v in ref_rows.items():
        print(f"{'(' + k + ')':<22}{v:>10.3f}")
    print(f"paper ordering ambient-omni < clean-only < naive-all: {'YES' if ordering_ok else 'NO'}; "
          f"total {total:.0f} s -> {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
