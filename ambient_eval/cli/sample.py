"""`ambient-eval sample`: generate images from a checkpoint with shared per-seed noise."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.conditioning_options import (EDM_STEPS, ClassSpec, Gnet, Guidance, Lora, LoraScale,
                                                   NegativePrompt, PipelineSteps, Prompts, Scheduler,
                                                   conditioning, edm_class)


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
    from ambient_eval.errors import AmbientError
    from ambient_eval.models import load_model
    from ambient_eval.sampling import distributed
    from ambient_eval.sampling.run import sample_to_path
    from ambient_eval.sampling.samplers import SamplerConfig
    from ambient_eval.sampling.seeds import parse_seeds

    cond = conditioning(class_label, prompts, guidance, negative_prompt, scheduler, steps, lora, lora_scale, gnet)
    if seeds is None and cond.default_seeds() is None:
        raise AmbientError("Pass --seeds (e.g. --seeds 0-49999), or --prompts FILE to generate "
                           "every prompt once.")
    seed_list = parse_seeds(seeds) if seeds is not None else cond.default_seeds()
    if net_batch != "auto" and not net_batch.isdigit():
        raise AmbientError(f"--net-batch '{net_batch}' is not 'auto' or a non-negative integer.")
    cfg = SamplerConfig(sampler=sampler.value, steps=steps or EDM_STEPS, sigma_min=sigma_min, sigma_max=sigma_max,
                        rho=rho, S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise).validate()
    dev = distributed.device_for_rank(device)
    denoiser = load_model(model, format=format.value if format else None, trust_pickle=trust_pickle,
                          device=str(dev), vae=vae, conditioning=cond)
    from ambient_eval.files.atomic import claim_output_dir

    # One run per output at a time: a second `sample` on the same --out stops here (exit 2).
    claim_output_dir(out if out.suffix.lower() != ".npz" else out.with_name(out.name + ".partial"))
    with distributed.process_group(dev) as (rank, _):
        summary = sample_to_path(denoiser, seed_list, out, cfg=cfg, batch_size=batch,
                                 class_label=edm_class(class_label), device=dev,
                                 net_batch=net_batch if net_batch == "auto" else int(net_batch),
                                 autocast=autocast.value if autocast else None)
    if rank == 0:
        typer.echo(f"Wrote {len(seed_list) - summary['skipped']} samples to {out} "
                   f"({summary['skipped']} already there).")


def register(app: typer.Typer) -> None:
    """Add `sample` to the root app."""
    app.command("sample")(sample)
