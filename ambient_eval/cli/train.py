"""`ambient-eval train`, `corrupt`, `annotate`: the bundled trainer for baseline and ambient models."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DEV_HELP = "auto, cpu, cuda or cuda:N."


def train_command(
    data: Annotated[str, typer.Argument(help="Training images: folder, .zip, .npz, builtin:digits[-16], CIFAR "
                    "batches, MNIST IDX, or a folder written by `ambient-eval corrupt`.", metavar="DATA",
                    show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Run directory (checkpoints, state, loss.csv). An "
                   "existing run with the same settings is resumed.", metavar="RUN_DIR", show_default=False)],
    method: Annotated[str, typer.Option("--method", help="baseline (EDM), ambient-omni (needs --annotations), "
                      "noisy (Tweedie; --sigma-n), cep (condition embedding perturbation; --cond).",
                      metavar="METHOD")] = "baseline",
    annotations: Annotated[Optional[Path], typer.Option("--annotations", help="sigma_tn per sample from "
                           "`ambient-eval annotate` (ambient-omni; or baseline with --only-clean).",
                           metavar="JSONL")] = None,
    only_clean: Annotated[bool, typer.Option("--only-clean", help="Train only on samples with sigma_tn = 0 in "
                          "--annotations (the clean-only baseline).")] = False,
    sigma_n: Annotated[Optional[float], typer.Option("--sigma-n", help="noisy: observation noise std in "
                       "model-space units ([-1, 1] range; 0.1 = 12.75 grey levels).", metavar="S")] = None,
    label_flip: Annotated[float, typer.Option("--label-flip", help="Flip this fraction of labels (seeded) "
                          "before training (needs --cond).", metavar="RATE")] = 0.0,
    cep_gamma: Annotated[float, typer.Option("--cep-gamma", help="cep: perturbation strength gamma.",
                         metavar="G")] = 1.0,
    cep_noise: Annotated[str, typer.Option("--cep-noise", help="cep: xi distribution, uniform or gaussian.",
                         metavar="DIST")] = "uniform",
    cep_scale: Annotated[str, typer.Option("--cep-scale", help="cep: sqrt-dim (e + gamma/sqrt(d) xi) or none "
                         "(e + gamma xi).", metavar="MODE")] = "sqrt-dim",
    steps: Annotated[Optional[int], typer.Option("--steps", help="Optimiser steps in total.", metavar="N",
                     min=1)] = None,
    kimg: Annotated[Optional[float], typer.Option("--kimg", help="Training length in thousands of images "
                    "(instead of --steps).", metavar="K")] = None,
    batch: Annotated[int, typer.Option("--batch", help="Images per step (all GPUs together).", metavar="N",
                     min=1)] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate after warm-up.", metavar="LR")] = 1e-3,
    warmup: Annotated[int, typer.Option("--warmup", help="Linear LR warm-up steps.", metavar="N", min=0)] = 100,
    ema: Annotated[float, typer.Option("--ema", help="EMA half-life in thousands of images (EDM ramp-up 0.05).",
                   metavar="KIMG")] = 10.0,
    arch: Annotated[str, typer.Option("--arch", help="U-Net size: tiny, small (~2M params) or cifar (DDPM++).",
                    metavar="ARCH")] = "small",
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Resize images to RxR (bicubic).",
                          metavar="R", min=4)] = None,
    cond: Annotated[bool, typer.Option("--cond/--uncond", help="Class-conditional model (needs labels).")] = False,
    sigma_policy: Annotated[str, typer.Option("--sigma-policy", help="Batch sampling: sigma-first (official "
                            "Ambient-Omni: draw sigma_t, then an image eligible at it; full batches), or the "
                            "image-first ablations mask (zero loss below the threshold) and truncate (draw "
                            "sigma_t above it).", metavar="POLICY")] = "sigma-first",
    consistency: Annotated[float, typer.Option("--consistency", help="Weight of the Tweedie consistency loss "
                           "below each sample's sigma_tn (Daras et al. 2024); ambient-omni / noisy; 0 = off.",
                           metavar="W", min=0.0)] = 0.0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Checkpoint + resumable state "
                                "every K steps (and at the end).", metavar="K", min=1)] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of init, batches and noise.", metavar="SEED")] = 0,
    device: Annotated[str, typer.Option("--device", help=DEV_HELP, metavar="DEV")] = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the network (GPU).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over in an existing run directory.")] = False,
) -> None:
    """Train a diffusion model (EDM) on clean, corrupted or noisy data.

    Methods: baseline = EDM loss on every sample; ambient-omni = Ambient Diffusion Omni (a corrupted
    sample is used only at sigma_t > sigma_tn sqrt(s_max/(s_max-1)), with the ambient loss);
    noisy = the same loss with sigma_tn = sigma_n for data observed with Gaussian noise; cep =
    baseline with condition embedding perturbation. Writes native checkpoints (EMA weights) that
    `ambient-eval sample` and `fid --model` load; re-running the command resumes after a kill.

    Examples:
      ambient-eval train builtin:digits-16 -o runs/base --arch tiny --steps 2000
      ambient-eval train blurred/ -o runs/amb --method ambient-omni --annotations ann.jsonl
      ambient-eval train noisy/ -o runs/noisy --method noisy
      ambient-eval train builtin:digits -o runs/cep --method cep --cond --cep-gamma 1.0
    """
    import numpy as np

    from ambient_eval.errors import AmbientError
    from ambient_eval.training.config import TrainConfig
    from ambient_eval.training.dataset import load_train_data, read_annotations
    from ambient_eval.training.loop import train

    if steps is not None and kimg is not None:
        raise AmbientError("Pass either --steps or --kimg, not both.")
    n_steps = steps if steps is not None else (max(1, round(kimg * 1000 / batch)) if kimg is not None else 2000)
    cfg = TrainConfig(method=method, arch=arch, resolution=resolution, cond=cond, steps=n_steps, batch=batch, lr=lr,
                      warmup_steps=warmup, ema_halflife_kimg=ema, sigma_policy=sigma_policy, consistency=consistency,
                      sigma_n=sigma_n,
                      label_flip=label_flip, cep_gamma=cep_gamma, cep_noise=cep_noise, cep_scale=cep_scale,
                      seed=seed, checkpoint_every=checkpoint_every, device=device, compile=compile)
    cfg.validate()
    if method == "ambient-omni" and annotations is None:
        raise AmbientError("--method ambient-omni needs --annotations (from `ambient-eval annotate`).")
    if annotations is not None and not (method == "ambient-omni" or only_clean):
        raise AmbientError(f"--annotations is used by --method ambient-omni (or with --only-clean); --method "
                           f"{method} would ignore it. Drop it or change the method.")
    if only_clean and annotations is None:
        raise AmbientError("--only-clean selects samples with sigma_tn = 0 from --annotations; pass --annotations.")
    if method != "noisy" and sigma_n is not None:
        raise AmbientError(f"--sigma-n is only used by --method noisy (got --method {method}).")
    data = load_train_data(data, resolution)
    sigma_tn, ann_fp, sigma_max = None, None, None
    if annotations is not None:
        from ambient_eval.hashing import sha256_file

        from ambient_eval.training.dataset import read_sigma_max

        sigma_tn, _ = read_annotations(annotations, data)
        sigma_max = read_sigma_max(annotations, len(data))  # locality branch (optional "sigma_max" per record)
        ann_fp = sha256_file(annotations)
        if only_clean:
            keep = np.flatnonzero(sigma_tn == 0)
            if len(keep) == 0:
                raise AmbientError(f"--only-clean: no sample has sigma_tn = 0 in '{annotations}'.")
            data = subset(data, keep)
            sigma_tn, sigma_max = None, None
    res = train(data, cfg, out, sigma_tn=sigma_tn, annotations_fingerprint=ann_fp, overwrite=overwrite,
                sigma_max=sigma_max)
    if res["start_step"] and res["start_step"] == res["end_step"]:
        typer.echo(f"Run '{out}' is already complete at step {res['end_step']}; nothing to do.")
        return
    typer.echo(f"Trained steps {res['start_step']}..{res['end_step']} ({res['images_per_second']:.0f} img/s); "
               f"loss {res['first_loss']:.4f} -> {res['final_loss']:.4f}. Final checkpoint: {Path(out) / 'final'}")


def subset(data, keep):
    """TrainData restricted to positions `keep` (fingerprint records the subset)."""
    import torch

    from ambient_eval.hashing import sha256_json
    from ambient_eval.training.dataset import TrainData

    return TrainData(f"{data.description} (clean subset, {len(keep)})",
                     sha256_json([data.fingerprint, [int(i) for i in keep]]), data.images[torch.from_numpy(keep)],
                     None if data.labels is None else data.labels[keep], [data.names[i] for i in keep], data.sigma_n)


def corrupt_command(
    source: Annotated[str, typer.Argument(help="Images to corrupt (any source the toolkit reads).",
                      metavar="SOURCE", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output directory (must be new or empty).",
                   metavar="OUT", show_default=False)],
    kind: Annotated[str, typer.Option("--kind", help="blur, jpeg, motion-blur, noise or label-flip.",
                    metavar="KIND", show_default=False)],
    level: Annotated[float, typer.Option("--level", help="blur: sigma_B (pixels); jpeg: quality 1-100; "
                     "motion-blur: kernel length (pixels); noise: sigma_n (model-space [-1, 1] units); "
                     "label-flip: flip rate.", metavar="L", show_default=False)],
    fraction: Annotated[float, typer.Option("--fraction", help="Fraction of images corrupted (image kinds).",
                        metavar="F")] = 0.9,
    angle: Annotated[Optional[float], typer.Option("--angle", help="motion-blur angle in degrees (default: "
                     "uniform per sample).", metavar="DEG")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Selects the corrupted subset and per-sample draws.",
                    metavar="SEED")] = 0,
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Resize images to RxR first.",
                          metavar="R", min=4)] = None,
    max_images: Annotated[Optional[int], typer.Option("--max-images", help="Seeded random subset of the source.",
                          metavar="N", min=1)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty OUT.")] = False,
) -> None:
    """Write a corrupted copy of a dataset plus per-sample metadata (deterministic given --seed).

    OUT gets NNNNNN.png for every sample, dataset.json (labels after any flip), corruption.jsonl
    (index, name, corrupted, kind, params, label_before, label_after) and corruption.json. For
    --kind noise, OUT/observations.npz also holds the exact float32 observations (model space),
    which `train --method noisy` uses; the PNGs are rounded previews.

    Examples:
      ambient-eval corrupt builtin:digits -o blurred --kind blur --level 1.0 --fraction 0.9
      ambient-eval corrupt cifar/ -o jpeg10 --kind jpeg --level 10
      ambient-eval corrupt builtin:digits -o noisy --kind noise --level 0.2 --fraction 1
      ambient-eval corrupt builtin:digits -o flipped --kind label-flip --level 0.05
    """
    from ambient_eval.data import corruptions as C
    from ambient_eval.data import open_source
    from ambient_eval.training.corrupt import check_output_dir, corrupt_source

    C.validate(kind, level, fraction)
    check_output_dir(out, overwrite)
    src = open_source(source, resize=resolution, max_images=max_images)
    res = corrupt_source(src, out, kind, level, fraction=fraction, seed=seed, angle=angle, overwrite=overwrite)
    typer.echo(f"Wrote {res['n']} images ({res['n_corrupted']} corrupted, {kind} {level}) to {out}")


def annotate_command(
    clean: Annotated[str, typer.Argument(help="Clean images (or the same folder as CORRUPTED when it was "
                     "written by `ambient-eval corrupt`: its clean samples are used).", metavar="CLEAN",
                     show_default=False)],
    corrupted: Annotated[str, typer.Argument(help="The training set to annotate (every sample gets a "
                         "sigma_tn; samples marked clean in its corruption.jsonl get 0).", metavar="CORRUPTED",
                         show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Annotations JSONL.", metavar="JSONL",
                   show_default=False)],
    fixed_sigma: Annotated[Optional[float], typer.Option("--fixed-sigma", help="Assign this sigma_tn to every "
                           "corrupted sample (no classifier).", metavar="S")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Classifier training steps.", metavar="N", min=1)] = 400,
    batch: Annotated[int, typer.Option("--batch", help="Classifier batch (half clean, half corrupted).",
                     metavar="N", min=2)] = 64,
    grid: Annotated[str, typer.Option("--grid", help="sigma grid MIN,MAX,POINTS (log-spaced, model space).",
                    metavar="MIN,MAX,N")] = "0.01,10,32",
    draws: Annotated[int, typer.Option("--draws", help="Noise draws averaged per sample and sigma.", metavar="K",
                     min=1)] = 4,
    epsilon: Annotated[float, typer.Option("--epsilon", help="sigma_tn = first sigma with P(corrupted) < chance "
                       "+ epsilon.", metavar="E")] = 0.05,
    chance: Annotated[str, typer.Option("--chance", help="Chance level the curve is compared with: calibrated "
                      "(the classifier's mean on clean images at the same sigma) or half (a fixed 0.5).",
                      metavar="MODE")] = "calibrated",
    train_sigma: Annotated[str, typer.Option("--train-sigma", help="Classifier training noise: log-uniform "
                           "(over the grid) or edm (log-normal).", metavar="DIST")] = "log-uniform",
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Resize images to RxR (use the same "
                          "value for train).", metavar="R", min=4)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Classifier seed.", metavar="SEED")] = 0,
    device: Annotated[str, typer.Option("--device", help=DEV_HELP, metavar="DEV")] = "auto",
    report: Annotated[Optional[Path], typer.Option("--report", help="HTML report path (default "
                      "reports/annotate-<stamp>.html).", metavar="PATH")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write the HTML report.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing annotations file.")] = False,
) -> None:
    """Assign each corrupted sample its minimum noise level sigma_tn (Ambient-Omni).

    Trains a small noise-conditional classifier c(x + sigma z, sigma) to tell clean from
    corrupted images (BCE); sigma_tn = the smallest sigma on the grid where its P(corrupted),
    averaged over --draws noise draws and smoothed along the grid, falls below chance + epsilon
    (--chance calibrated: the classifier's mean output on clean images at that sigma; half: 0.5).
    Clean samples get 0. The file records the dataset fingerprint; `train` checks it.

    Examples:
      ambient-eval annotate blurred blurred -o ann.jsonl
      ambient-eval annotate clean/ corrupted/ -o ann.jsonl --steps 1000 --report ann.html
      ambient-eval annotate blurred blurred -o ann.jsonl --fixed-sigma 0.5
    """
    from ambient_eval.errors import AmbientError
    from ambient_eval.reports.html import default_report_path
    from ambient_eval.training.annotate import AnnotateConfig
    from ambient_eval.training.annotate_run import run_annotate

    try:
        gmin, gmax, gn = grid.split(",")
        gmin, gmax, gn = float(gmin), float(gmax), int(gn)
    except ValueError:
        raise AmbientError(f"--grid '{grid}' must be MIN,MAX,POINTS, e.g. 0.01,10,32.") from None
    if train_sigma not in ("log-uniform", "edm"):
        raise AmbientError(f"--train-sigma '{train_sigma}' is unknown. Use log-uniform or edm.")
    if chance not in ("calibrated", "half"):
        raise AmbientError(f"--chance '{chance}' is unknown. Use calibrated or half.")
    cfg = AnnotateConfig(steps=steps, batch=batch, grid_min=gmin, grid_max=gmax, grid_size=gn, draws=draws,
                         epsilon=epsilon, chance=chance, train_sigma=train_sigma, seed=seed)
    rep = None if no_report else str(report or default_report_path("annotate"))
    res = run_annotate(clean, corrupted, out, cfg, fixed_sigma=fixed_sigma, resolution=resolution, report=rep,
                       device=device, overwrite=overwrite)
    typer.echo(f"Annotated {res['n']} samples ({res['n_corrupted']} corrupted): mean sigma_tn "
               f"{res['sigma_tn_mean']:.4g}, median {res['sigma_tn_median']:.4g} -> {out}"
               + (f"; report {res['report']}" if res.get("report") else ""))


def register(app: typer.Typer) -> None:
    """Add train, corrupt and annotate to the root app."""
    app.command("train")(train_command)
    app.command("corrupt")(corrupt_command)
    app.command("annotate")(annotate_command)
