"""`ambient-eval train`: the bundled trainer for baseline and ambient models (EDM)."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.options import Device


class AmbientTarget(str, Enum):
    """Which official Ambient-Omni training loop ambient-omni follows (training/targets.py)."""

    pixel_loop = "pixel-loop"
    ambient_loss = "ambient-loss"


class BatchOrder(str, Enum):
    """sigma-first batch order: independent draws, or the official InfiniteSampler walk."""

    draw = "draw"
    walk = "walk"


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
    ambient_target: Annotated[AmbientTarget, typer.Option("--ambient-target", help="ambient-omni: which official "
                              "loop to follow. pixel-loop (default; the pixel-diffusion loop behind the paper's "
                              "CIFAR-10/FFHQ tables): a corrupted image is trained with the plain EDM loss on "
                              "itself, only at sigma_t > sigma_tn sqrt(s_max/(s_max-1)) (the annotation gates the "
                              "noise levels). ambient-loss (the latent-diffusion loop): sigma_tn also enters the "
                              "ambient loss (x_tn = y + sigma_tn z').")] = AmbientTarget.pixel_loop,
    batch_order: Annotated[BatchOrder, typer.Option("--batch-order", help="sigma-first batches: draw (default; each "
                           "slot drawn independently, uniform over the images eligible at its sigma_t, with "
                           "replacement) or walk (the official InfiniteSampler: a persistent shuffled order with "
                           "window swaps; no image repeats within a pass).")] = BatchOrder.draw,
    consistency: Annotated[float, typer.Option("--consistency", help="Weight of the Tweedie consistency loss "
                           "below each sample's sigma_tn (Daras et al. 2024); ambient-omni / noisy; 0 = off.",
                           metavar="W", min=0.0)] = 0.0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Checkpoint + resumable state "
                                "every K steps (and at the end).", metavar="K", min=1)] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Seed of init, batches and noise.", metavar="SEED")] = 0,
    device: Device = "auto",
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the network (GPU).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start over in an existing run directory.")] = False,
) -> None:
    """Train a diffusion model (EDM) on clean, corrupted or noisy data.

    Methods: baseline = EDM loss on every sample; ambient-omni = Ambient Diffusion Omni (a corrupted
    sample is used only at sigma_t > sigma_tn sqrt(s_max/(s_max-1)); --ambient-target picks the
    official pixel loop, plain EDM loss on it, or the latent loop's ambient loss);
    noisy = the same loss with sigma_tn = sigma_n for data observed with Gaussian noise; cep =
    baseline with condition embedding perturbation. Writes native checkpoints (EMA weights) that
    `ambient-eval sample` and `fid --model` load; re-running the command resumes after a kill.

    Examples:
      ambient-eval train builtin:digits-16 -o runs/base --arch tiny --steps 2000
      ambient-eval train blurred/ -o runs/amb --method ambient-omni --annotations ann.jsonl
      ambient-eval train blurred/ -o runs/amb2 --method ambient-omni --annotations ann.jsonl --ambient-target ambient-loss --batch-order walk
      ambient-eval train noisy/ -o runs/noisy --method noisy
      ambient-eval train builtin:digits -o runs/cep --method cep --cond --cep-gamma 1.0
    """
    from ambient_eval.api import train

    run = train(data, out, method=method, annotations=annotations, only_clean=only_clean, sigma_n=sigma_n,
                label_flip=label_flip, cep_gamma=cep_gamma, cep_noise=cep_noise, cep_scale=cep_scale, steps=steps,
                kimg=kimg, batch=batch, lr=lr, warmup=warmup, ema=ema, arch=arch, resolution=resolution, cond=cond,
                sigma_policy=sigma_policy, ambient_target=AmbientTarget(ambient_target).value,
                batch_order=BatchOrder(batch_order).value, consistency=consistency,
                checkpoint_every=checkpoint_every, seed=seed, device=device, compile=compile, overwrite=overwrite)
    res = run.summary
    if run.already_complete:
        typer.echo(f"Run '{out}' is already complete at step {res['end_step']}; nothing to do.")
        return
    loss = (f"loss {res['final_loss']:.4f}" if res["first_loss"] is None else   # one logged step
            f"loss {res['first_loss']:.4f} -> {res['final_loss']:.4f}")
    typer.echo(f"Trained steps {res['start_step']}..{res['end_step']} ({res['images_per_second']:.0f} img/s); "
               f"{loss}. Final checkpoint: {run.final_checkpoint}")


def register(app: typer.Typer) -> None:
    """Add `train` to the root app."""
    app.command("train")(train_command)
