"""`ambient-eval reproducibility`: do different models turn the same noise into the same image?"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.conditioning_options import (ClassSpec, Gnet, Guidance, Lora, LoraScale,
                                                   NegativePrompt, PipelineSteps, Prompts, Scheduler,
                                                   conditioning)
from ambient_eval.cli.options import Device, ReportPath, TrustPickle, check_report_option

DEFAULT_OUT = "reproducibility_out"


def _check_writable_target(path: Path, what: str) -> None:
    """Fail before any work when `path` (a dir or file to create) could not be written; creates nothing."""
    from ambient_eval.errors import AmbientError

    p = path.resolve()
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise AmbientError(f"Cannot write the {what} '{path}': '{probe}' is not a writable directory. "
                           "Choose another location.")


def reproducibility(
    models: Annotated[Optional[list[str]], typer.Argument(
        help="Two or more models: checkpoints (native dir, diffusers dir, EDM .pkl with --trust-pickle) "
             "sampled here with shared per-seed noise, or sample sets keyed by seed (folder/zip of "
             "{seed:06d}.png, or an npz with 'images' and 'seeds').", metavar="MODEL...",
        show_default=False)] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Seeds to compare, e.g. 0-999 or 0,5,10-19 "
                     "[default: 0-999; with --prompts: one per row].", metavar="RANGES",
                     show_default=False)] = None,
    embed: Annotated[str, typer.Option(help="Embedding: sscd (paper; weights via --weights), dinov2, "
                                            "clip, inception, pixel (no weights) or pixel-N.",
                                       metavar="NAME")] = "sscd",
    threshold: Annotated[Optional[float], typer.Option(
        help="Cosine above which two images count as the same, in [-1, 1]. Default per embedding, as in "
             "memorization: sscd 0.6 (Zhang et al. 2023), dinov2/clip/inception/pixel 0.95.",
        metavar="COS", show_default=False)] = None,
    train: Annotated[Optional[list[str]], typer.Option(
        help="Training data for memorization/GL scores: once for all models, or once per model in "
             "model order.", metavar="DATA")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (summary.json, results.json, "
                                      "per_seed.parquet/.csv, report.html).", metavar="DIR")] = Path(DEFAULT_OUT),
    report: ReportPath = None,
    name: Annotated[Optional[list[str]], typer.Option(
        "--name", help="Label per model (in order) used in metric keys rp[A|B]; default: file names.",
        metavar="LABEL")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per batch (sampling and "
                                       "embedding); never changes a sample.", metavar="N")] = 64,
    steps: PipelineSteps = None,
    class_label: ClassSpec = None,
    prompts: Prompts = None,
    guidance: Guidance = None,
    gnet: Gnet = None,
    negative_prompt: NegativePrompt = None,
    scheduler: Scheduler = None,
    lora: Lora = None,
    lora_scale: LoraScale = 1.0,
    device: Device = "auto",
    weights: Annotated[Optional[str], typer.Option(help="Weights file of the embedding (sscd, dinov2, "
                                                   "clip, inception).", metavar="FILE")] = None,
    trust_pickle: TrustPickle = False,
    checkpoint_format: Annotated[Optional[str], typer.Option("--format", help="Force the checkpoint "
                                 "format: native, diffusers or edm-pickle.", metavar="FMT")] = None,
    bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the confidence "
                                           "intervals (seeded).", metavar="N")] = 1000,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Cache training-set embeddings.")] = True,
) -> None:
    """Reproducibility across models: RP score of same-seed samples (Zhang et al. 2023).

    Samples every model from the same
    per-seed noise with the deterministic EDM Heun sampler (or read samples named by seed), embed,
    and report for every pair the fraction of seeds whose samples have cosine > --threshold (RP
    score), with seeded bootstrap confidence intervals. With --train, also each model's
    memorization score (fraction of samples whose nearest training image has cosine >
    --threshold) and GL score = 1 - memorization. Models may differ in family and architecture
    but must share resolution and channel count. Python: `ambient_eval.reproducibility(...)`.

    Examples:

      ambient-eval reproducibility runA/ runB/ --seeds 0-999 --embed sscd --weights sscd_disc_mixup.torchscript.pt

      ambient-eval reproducibility sd-base/ sd-finetune/ --prompts captions.txt --embed sscd --weights sscd.pt

      ambient-eval reproducibility samplesA/ samplesB.npz runC/ --seeds 0-199 --embed pixel --train builtin:digits -o repro/
    """
    from ambient_eval import api
    from ambient_eval.audits.reproducibility import check_threshold
    from ambient_eval.audits.reproducibility_api import check_models

    check_report_option(report, out, "reproducibility")
    models = list(models or [])
    check_models(models, name)
    if threshold is not None:
        check_threshold(threshold)
    _check_writable_target(out, "output directory")
    from ambient_eval.files.atomic import claim_output_dir

    claim_output_dir(out)   # a concurrent run on the same --out stops here (exit 2)
    cond = conditioning(class_label, prompts, guidance, negative_prompt, scheduler, steps, lora, lora_scale, gnet)
    from ambient_eval.features.distributed import feature_group, is_main

    with feature_group(device):  # under torchrun: ranks share the embedding work (rank 0 writes)
        result = api.reproducibility(models, seeds=seeds, embed=embed, threshold=threshold, train=train,
                                     names=name, batch_size=batch, steps=steps, conditioning=cond, device=device,
                                     weights=weights, trust_pickle=trust_pickle,
                                     checkpoint_format=checkpoint_format, bootstrap=bootstrap, cache=cache)
    if not is_main():
        return
    paths = result.save(out)   # every file, or none
    outcome, opts, seed_list = result.outcome, result.options, result.seeds
    res = outcome.result
    typer.echo(f"RP score (fraction of {len(seed_list)} seeds with cosine > {opts.threshold:g}, "
               f"embedding {embed}):")
    idx = {n: i for i, n in enumerate(res.names)}
    for a, b in res.pairs():
        i, j = idx[a], idx[b]
        typer.echo(f"  {a} | {b}: {res.rp[i, j]:.4f}  [{res.ci_lo[i, j]:.4f}, {res.ci_hi[i, j]:.4f}]")
    if len(res.names) > 2:
        typer.echo(f"  mean over pairs: {res.rp_mean():.4f}")
    for label, s in outcome.memorization.items():
        typer.echo(f"  {label}: memorization {s.memorization:.4f} [{s.ci[0]:.4f}, {s.ci[1]:.4f}], "
                   f"GL {s.gl:.4f}")
    typer.echo(f"Wrote {paths['summary']}, {paths['results']}, {paths['parquet']}, {paths['csv']}")
    typer.echo(f"Report: {paths['report']}")


def register(app: typer.Typer) -> None:
    """Add `reproducibility` to the root app."""
    app.command("reproducibility")(reproducibility)
