"""CLI options for conditional models, shared by sample, fid, memorization and reproducibility.

    def cmd(..., class_: ClassSpec = None, prompts: Prompts = None, guidance: Guidance = None,
            negative_prompt: NegativePrompt = None, scheduler: Scheduler = None,
            lora: Lora = None, lora_scale: LoraScale = 1.0, gnet: Gnet = None)
    cond = conditioning(class_, prompts, guidance, negative_prompt, scheduler, steps, lora, lora_scale, gnet)
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

EDM_STEPS = 18          # default --steps of EDM / VP models (pipelines: their own default)

ClassSpec = Annotated[Optional[str], typer.Option(
    "--class", help="Class-conditional models (EDM, DiT): N for every image, random (a seed-determined "
    "class; EDM's generate.py rule for EDM models, RandomState(seed).randint(C) for DiT; the default) "
    "or balanced (seed s gets class s mod C: equal seeds per class, the ADM/DiT 50-per-class protocol).",
    metavar="N|random|balanced")]
Prompts = Annotated[Optional[Path], typer.Option(
    "--prompts", help="Text-to-image pipelines: .txt (one prompt per line) or .csv/.tsv/.jsonl/.parquet "
    "with a 'prompt' column (optional 'seed' and 'image'). Seed s uses row s mod N (or the row whose "
    "seed is s); without --seeds every row is generated once.", metavar="FILE")]
Guidance = Annotated[Optional[float], typer.Option(
    "--guidance", help="Classifier-free guidance weight of diffusers pipelines [default: the "
    "pipeline's own, e.g. SD 7.5, SDXL 5, DiT 4, LCM 8.5]; EDM2 snapshots: W with --gnet "
    "[default: 1, no guidance].", metavar="W")]
Gnet = Annotated[Optional[Path], typer.Option(
    "--gnet", help="EDM2 snapshots: guiding network .pkl (needs --trust-pickle and --guidance W), as "
    "EDM2's generate_images.py: the unconditional net (classifier-free guidance) or a smaller / "
    "less-trained net (autoguidance); D = D_gnet + W (D - D_gnet).", metavar="PKL")]
NegativePrompt = Annotated[Optional[str], typer.Option(
    "--negative-prompt", help="SD / SDXL: text for the unconditional branch of guidance.",
    metavar="TEXT")]
Scheduler = Annotated[Optional[str], typer.Option(
    "--scheduler", help="diffusers pipelines: a compatible scheduler class, e.g. DDIMScheduler, "
    "EulerDiscreteScheduler, DPMSolverMultistepScheduler [default: the pipeline's own].",
    metavar="NAME")]
Lora = Annotated[Optional[list[Path]], typer.Option(
    "--lora", help="LoRA adapter for SD / SDXL / LCM (repeatable): a .safetensors file or its folder, "
    "any format diffusers' load_lora_weights reads.", metavar="PATH")]
LoraScale = Annotated[float, typer.Option("--lora-scale", help="Weight of every --lora adapter.",
                                          metavar="S")]
PipelineSteps = Annotated[Optional[int], typer.Option(
    "--steps", help=f"Sampler steps [default: {EDM_STEPS} for EDM/VP models (Heun NFE = 2N-1), the "
    "pipeline's own for diffusers DiT/SD/SDXL/LCM pipelines].", metavar="N", min=1)]


def conditioning(class_spec=None, prompts=None, guidance=None, negative_prompt=None, scheduler=None,
                 steps=None, lora=None, lora_scale: float = 1.0, gnet=None):
    """CLI values => ambient_eval.sampling.conditioning.Conditioning (validated)."""
    from ambient_eval.sampling.conditioning import Conditioning

    return Conditioning(class_spec=class_spec, prompts=None if prompts is None else str(prompts),
                        guidance=guidance, negative_prompt=negative_prompt, scheduler=scheduler,
                        steps=steps, lora=tuple(str(p) for p in lora or ()), lora_scale=lora_scale,
                        gnet=None if gnet is None else str(gnet))


def edm_class(class_spec):
    """--class for EDM / VP models: int | 'balanced' | None (EDM's seed-determined rule)."""
    from ambient_eval.sampling.conditioning import parse_class

    spec = parse_class(class_spec)
    return None if spec == "random" else spec
