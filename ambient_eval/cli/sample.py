"""`ambient-eval sample`: generate images from a checkpoint with shared per-seed noise."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.conditioning_options import (ClassSpec, Gnet, Guidance, Lora, LoraScale, NegativePrompt,
                                                   PipelineSteps, Prompts, Scheduler)


class Sampler(str, Enum):
    heun = "heun"
    euler = "euler"
    ddim = "ddim"


class Format(str, Enum):
    native = "native"
    diffusers = "diffusers"
    edm_pickle = "edm-pickle"


class Autocast(str, Enum):
    bf16 = "bf16"
    tf32 = "tf32"


def sample(
    model: Annotated[Path, typer.Argument(help="Checkpoint: native dir/.safetensors, diffusers dir "
                                               "(UNet2DModel or DDPM/DDIM/PNDM, DiT, SD, SDXL, LCM "
                                               "pipeline), or EDM network-snapshot-*.pkl (needs --trust-pickle).",
                                          metavar="MODEL")],
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Seeds to generate, e.g. 0-49999 or "
                     "0,5,10-19; seed s is saved as {s:06d}.png [default with --prompts: one per row].",
                     metavar="LIST", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (PNGs in subfolders of "
                                      "1000) or a .npz file.", metavar="DIR|FILE.npz",
                                      show_default=False)] = ...,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per batch (does not change the "
                                       "images).", metavar="N")] = 64,
    steps: PipelineSteps = None,
    sampler: Annotated[Sampler, typer.Option("--sampler", help="heun (EDM Algorithm 1/2), euler, or "
                                             "ddim (VP/diffusers models).")] = Sampler.heun,
    class_label: ClassSpec = None,
    prompts: Prompts = None,
    guidance: Guidance = None,
    gnet: Gnet = None,
    negative_prompt: NegativePrompt = None,
    scheduler: Scheduler = None,
    lora: Lora = None,
    lora_scale: LoraScale = 1.0,
    sigma_min: Annotated[float, typer.Option("--sigma-min", help="Lowest noise level.", metavar="S")] = 0.002,
    sigma_max: Annotated[float, typer.Option("--sigma-max", help="Highest noise level.", metavar="S")] = 80.0,
    rho: Annotated[float, typer.Option("--rho", help="Schedule exponent (EDM Eq. 5).", metavar="R")] = 7.0,
    S_churn: Annotated[float, typer.Option("--S-churn", help="Stochastic churn (0 = deterministic); "
                                           "noise drawn per seed as EDM's generate.py does.",
                                           metavar="X")] = 0.0,
    S_min: Annotated[float, typer.Option("--S-min", help="Churn only above this sigma.", metavar="S")] = 0.0,
    S_max: Annotated[float, typer.Option("--S-max", help="Churn only below this sigma.", metavar="S")] = float("inf"),
    S_noise: Annotated[float, typer.Option("--S-noise", help="Churn noise inflation.", metavar="X")] = 1.0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N (under torchrun, "
                                        "auto/cuda = each rank its own GPU).", metavar="DEV")] = "auto",
    format: Annotated[Optional[Format], typer.Option("--format", help="Checkpoint format (default: "
                                                     "detected).")] = None,
    trust_pickle: Annotated[bool, typer.Option("--trust-pickle", help="Allow loading EDM .pkl "
                            "checkpoints. Unpickling runs code stored in the file: only for files "
                            "you trust.")] = False,
    vae: Annotated[Optional[Path], typer.Option("--vae", help="EDM2 latent models: folder of the "
                   "Stable Diffusion VAE (AutoencoderKL config.json + safetensors). Default: "
                   "$AMBIENT_EVAL_VAE, else the local Hugging Face cache; never downloaded.",
                   metavar="DIR")] = None,
    autocast: Annotated[Optional[Autocast], typer.Option("--autocast", help="GPU only: bf16 autocast "
                        "or TF32 matmuls and convolutions (faster, not bit-exact). Off by default: "
                        "exact float32.")] = None,
    net_batch: Annotated[str, typer.Option("--net-batch", help="Network call size: auto (8 on CPU "
                         "for batch-size-independent bits, whole batch on GPU), or N, or 0 = whole "
                         "batch.", metavar="auto|N")] = "auto",
) -> None:
    """Generate images from a diffusion checkpoint with shared per-seed noise.

    Seed s always gets the same initial noise (and class), whatever --batch,
    device or number of processes, so a seed can be compared across models.
    Existing outputs are skipped: re-run the same command to resume. Under
    `torchrun --nproc_per_node=G` the seeds are split over the processes; the
    files are identical to a single-process run.

    Examples:

      ambient-eval sample run/model --seeds 0-49999 --out samples/

      ambient-eval sample ckpt.safetensors --seeds 0-999 --out s.npz

      ambient-eval sample ddpm/ --seeds 0-63 --out g/ --sampler ddim --steps 50

      ambient-eval sample network-snapshot.pkl --trust-pickle --seeds 0-99 -o s/

      ambient-eval sample sd-folder/ --prompts captions.csv --guidance 7.5 -o s/

      ambient-eval sample dit-folder/ --class balanced --seeds 0-49999 -o s/

      ambient-eval sample edm2-img512-s.pkl --trust-pickle --vae sd-vae-ft-mse/ \\
          --steps 32 --seeds 0-99 -o s/

      ambient-eval sample edm2-img512-xs.pkl --gnet edm2-img512-xs-uncond.pkl \\
          --guidance 1.4 --trust-pickle --vae sd-vae-ft-mse/ --seeds 0-99 -o s/

      torchrun --nproc_per_node=4 -m ambient_eval sample run/model \\
          --seeds 0-49999 --out s/
    """
    from ambient_eval.api import sample

    res = sample(model, seeds, out, batch=batch, steps=steps, sampler=sampler.value, class_label=class_label,
                 prompts=prompts, guidance=guidance, gnet=gnet, negative_prompt=negative_prompt, scheduler=scheduler,
                 lora=lora or (), lora_scale=lora_scale, sigma_min=sigma_min, sigma_max=sigma_max, rho=rho,
                 S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise, device=device,
                 format=format.value if format else None, trust_pickle=trust_pickle, vae=vae,
                 autocast=autocast.value if autocast else None, net_batch=net_batch)
    if res.summary["rank"] == 0:
        typer.echo(f"Wrote {len(res.seeds) - res.summary['skipped']} samples to {out} "
                   f"({res.summary['skipped']} already there).")


def register(app: typer.Typer) -> None:
    """Add `sample` to the root app."""
    app.command("sample")(sample)
