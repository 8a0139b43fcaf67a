"""`ambient-eval memorization`: find generated samples that copy training images (FAISS k-NN)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.conditioning_options import (ClassSpec, Gnet, Guidance, Lora, LoraScale, NegativePrompt,
                                                   PipelineSteps, Prompts, Scheduler, conditioning)
from ambient_eval.cli.options import Device, ReportPath, TrustPickle, check_report_option

EMBED_HELP = "sscd | dinov2 (Ambient papers' preprocessing) | clip | inception | pixel (or pixel-N)."


def memorization(
    samples: Annotated[Optional[list[str]], typer.Argument(
        help="Generated samples: folders, zips, .npz/.npy arrays (one model each).", metavar="SAMPLES...",
        show_default=False)] = None,
    train: Annotated[str, typer.Option("--train", help="Training set: folder, zip, .npz/.npy, builtin:...",
                                       metavar="DATA", show_default=False)] = ...,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", help="Checkpoint to sample from (repeatable; needs --seeds).", metavar="CKPT")] = None,
    seeds: Annotated[Optional[str], typer.Option(
        help="Seeds for --model, e.g. 0-9999 or 0,5,10-19.", metavar="SEEDS")] = None,
    steps: PipelineSteps = None,
    class_label: ClassSpec = None,
    prompts: Prompts = None,
    guidance: Guidance = None,
    gnet: Gnet = None,
    negative_prompt: NegativePrompt = None,
    scheduler: Scheduler = None,
    lora: Lora = None,
    lora_scale: LoraScale = 1.0,
    embed: Annotated[str, typer.Option(help=EMBED_HELP, metavar="NAME")] = "dinov2",
    weights: Annotated[Optional[str], typer.Option(
        help="Weights file of the embedding network (sscd, dinov2, clip, inception).", metavar="FILE")] = None,
    k: Annotated[int, typer.Option("--k", help="Nearest training images kept per sample.", metavar="K",
                                   min=1)] = 5,
    threshold: Annotated[Optional[list[str]], typer.Option(
        help="Copy threshold on top-1 cosine (repeatable), or 'calibrated' (see --calibrate). Default per "
             "embedding: sscd 0.5 0.6; dinov2 0.9 0.95 0.99; pixel/inception 0.95 0.98 0.99; clip 0.9 0.95 0.98.",
        metavar="T")] = None,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate", help="Calibrate the threshold on the training set: planted augmented copies vs held-out "
                            "images, threshold at --fpr; ROC in the report. Without samples: calibration only.")] = False,
    holdout: Annotated[Optional[str], typer.Option(
        help="Held-out real images (negatives) for --calibrate [default: a seeded 10% split of --train, "
             "at most 2000, kept out of the calibration index].", metavar="DATA")] = None,
    fpr: Annotated[float, typer.Option(help="Target false-positive rate of the calibrated threshold.",
                                       metavar="RATE", min=0.0, max=1.0)] = 0.01,
    check_seeds: Annotated[int, typer.Option(
        help="--calibrate: samples of each closed-form reference (empirical, Gaussian) flagged at the "
             "calibrated threshold as a second check (0: skip).", metavar="N", min=0)] = 100,
    index: Annotated[str, typer.Option(
        help="flat (exact) | ivf | ivfpq | hnsw (approximate; recall@1 is measured and printed).",
        metavar="KIND")] = "flat",
    index_path: Annotated[Optional[Path], typer.Option(
        help="Save the training-set index here, or reuse it if it matches the training set and embedding.",
        metavar="FILE")] = None,
    tta: Annotated[str, typer.Option(
        help="Query views, max similarity over views: none | flip | shift (2 px at 32 px, 8 directions) | "
             "flip+shift. Finds flipped / shifted copies; recorded in results.", metavar="MODE")] = "none",
    nprobe: Annotated[Optional[int], typer.Option(
        help="IVF cells searched per query for --index ivf/ivfpq (default max(16, nlist/16)); lower is "
             "faster, check the printed recall@1.", metavar="N", min=1)] = None,
    shards: Annotated[Optional[Path], typer.Option(
        help="Larger-than-RAM training sets: embed into .npy shards here (resumable) and search shard by "
             "shard; ivf/ivfpq indexes are merged on disk here. See docs/scaling.md.", metavar="DIR")] = None,
    shard_size: Annotated[int, typer.Option(help="Embeddings per shard file with --shards.", metavar="N",
                                            min=1)] = 65536,
    carlini: Annotated[bool, typer.Option(
        "--carlini", help="Also flag samples by the Carlini et al. 2023 l2-ratio criterion (alpha 0.5, "
                          "50 nearest).")] = False,
    carlini_delta: Annotated[float, typer.Option(help="Carlini criterion: flagged when l < delta.",
                                                 metavar="DELTA")] = 1 / 3,
    top_n: Annotated[int, typer.Option(help="Closest pairs shown per model in the report.", metavar="N",
                                       min=0)] = 32,
    out: Annotated[Path, typer.Option(help="Output directory (samples.parquet/.csv, summary.json, "
                                           "results.json, report.html; calibration.json and report.html "
                                           "for --calibrate alone).", metavar="DIR")] = Path("results/memorization"),
    report: ReportPath = None,
    batch: Annotated[int, typer.Option(help="Images per batch for embedding and sampling.", metavar="N",
                                       min=1)] = 64,
    device: Device = "auto",
    max_images: Annotated[Optional[int], typer.Option(
        help="Use a seeded random subset of at most N training images.", metavar="N", min=1)] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for confidence intervals (0: none).",
                                           metavar="B", min=0)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and of the recall sample.",
                                      metavar="SEED")] = 0,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the feature cache.")] = False,
    trust_pickle: TrustPickle = False,
) -> None:
    """Find generated samples that copy training images (FAISS nearest neighbours).

    Embeds the samples and the training set, searches the k nearest training images of every
    sample with FAISS (cosine similarity of L2-normalized embeddings), flags samples above the
    thresholds, and compares models.

    The training set is embedded once (feature cache) and indexed once for all models. Writes
    the tables, results.json and report.html into --out. Python: `ambient_eval.memorization(...)`.

    Examples:

      ambient-eval memorization samples/ --train cifar10/train --embed pixel --out audit/

      ambient-eval memorization base/ ambient/ --train data.zip --embed dinov2 --weights dinov2.pth

      ambient-eval memorization --model ckpt/ --seeds 0-9999 --train data/ --embed sscd --weights sscd.pt --carlini

      ambient-eval memorization --model sd-folder/ --prompts train_captions.csv --train images/ --embed sscd --weights sscd.pt

      ambient-eval memorization big/ --train big_train/ --embed clip --index ivf --index-path train.ivf

      ambient-eval memorization gen/ --train laion/ --embed clip --shards emb/ --index ivfpq --tta flip

      torchrun --nproc_per_node 2 -m ambient_eval memorization gen/ --train data/ --embed pixel

      ambient-eval memorization --calibrate --train data/train.zip --embed pixel --out calib/

      ambient-eval memorization gen/ --train data/train.zip --embed pixel --threshold calibrated
    """
    from ambient_eval import api
    from ambient_eval.audits.memorization_api import parse_thresholds
    from ambient_eval.errors import AmbientError
    from ambient_eval.files.atomic import claim_output_dir, ensure_writable_dir

    check_report_option(report, out, "memorization")
    samples, model = list(samples or []), list(model or [])
    _, use_calibrated = parse_thresholds(threshold)
    calibration_only = (calibrate or use_calibrated) and not samples and not model
    cond = conditioning(class_label, prompts, guidance, negative_prompt, scheduler, steps, lora, lora_scale, gnet)
    if not calibration_only:
        if not samples and not model:
            raise AmbientError("No generated samples given. Pass SAMPLES... (folders, zips, arrays) or "
                               "--model CKPT --seeds 0-9999.")
        if model and not seeds and cond.default_seeds() is None:
            raise AmbientError("--model needs --seeds (e.g. --seeds 0-9999) to know which samples to generate.")
    # Validate every output location before long work.
    claim_output_dir(out)   # a second run on the same --out stops here (exit 2)
    if index_path is not None:
        ensure_writable_dir(index_path.parent)
    from ambient_eval.features.distributed import feature_group, is_main

    with feature_group(device):  # under torchrun: ranks share the embedding work (rank 0 writes)
        result = api.memorization(samples, train=train, model=model, seeds=seeds, conditioning=cond, steps=steps,
                                  embed=embed, weights=weights, k=k, thresholds=threshold, calibrate=calibrate,
                                  holdout=holdout, fpr=fpr, check_seeds=check_seeds, index=index,
                                  index_path=index_path, tta=tta, nprobe=nprobe, shards=shards,
                                  shard_size=shard_size, carlini=carlini, carlini_delta=carlini_delta,
                                  top_n=top_n, batch_size=batch, device=device, max_images=max_images,
                                  bootstrap=bootstrap, seed=seed, cache=not no_cache, trust_pickle=trust_pickle)
    if not is_main():
        return
    written = result.save(out)   # every file, or none
    if result.calibration is not None:
        _print_calibration(result.calibration, fpr)
    if result.audit is not None:
        _print_summary(result.audit)
    for p in written:
        typer.echo(f"wrote {p}")


def _print_summary(audit) -> None:
    # One line per model: n, mean top-1, fraction above each threshold (95% CI).
    from ambient_eval.audits import memorization as M

    typer.echo(f"embedding {audit.embedding['embed']} ({audit.embedding['extractor']}, d={audit.embedding['dim']}), "
               f"training set {len(audit.train)} images, index {audit.index['kind']}")
    if "recall_at_1" in audit.index:
        typer.echo(f"approximate index recall@1 vs exact: {audit.index['recall_at_1']:.4f} "
                   f"({audit.index['n_queries']} sampled queries, seed {audit.index['seed']})")
    for w in audit.warnings:
        typer.echo("Warning: " + w, err=True)
    for m in audit.models:
        parts = [f"{m.name}: n={int(m.metrics[M.N])}", f"top1 mean {m.metrics[M.TOP1_MEAN]:.4f}"]
        for t in audit.thresholds:
            key = M.frac_above_key(t)
            ci = m.ci.get(key)
            parts.append(f">{t:g}: {m.metrics[key]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""))
        if M.FRAC_CARLINI in m.metrics:
            parts.append(f"carlini: {m.metrics[M.FRAC_CARLINI]:.4f}")
        typer.echo("  ".join(parts))


def _print_calibration(cal, fpr: float) -> None:
    """The calibrated threshold, its TPR per augmentation and the closed-form check."""
    typer.echo(f"calibrated threshold {cal.threshold:.4f} at FPR {cal.fpr:.4f} (target {fpr:g}, "
               f"{cal.n_negatives} held-out images); TPR {cal.tpr:.4f}: "
               + ", ".join(f"{a} {v:.2f}" for a, v in cal.tpr_per_aug.items()))
    if cal.reference:
        typer.echo(f"flagged at the calibrated threshold: empirical (memorizing) model "
                   f"{cal.reference['empirical']:.2%}, Gaussian model {cal.reference['gaussian']:.2%}")
    for w in cal.warnings:
        typer.echo("Warning: " + w, err=True)


def register(app: typer.Typer) -> None:
    """Add `memorization` to the root app."""
    app.command("memorization", no_args_is_help=True)(memorization)
