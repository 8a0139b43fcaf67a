"""Run a reproducibility audit end to end: open models, embed same-seed samples, score, write files.

Python API behind `ambient-eval reproducibility` (the CLI is a thin layer over `run`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ambient_eval.audits import reproducibility as rp
from ambient_eval.audits.reproducibility_inputs import ModelSamples, SamplerSettings, open_models
from ambient_eval.errors import AmbientError

log = logging.getLogger(__name__)

GRID_SEEDS = 12          # seeds shown side by side in the report
NO_WEIGHTS_EMBEDS = ("pixel",)   # embeddings that need no weights file


@dataclass
class ReproOptions:
    """Everything that changes the numbers (recorded in settings)."""

    embed: str = rp.DEFAULTS.embed           # extractor name (sscd, dinov2, clip, inception, pixel[-N])
    weights: str | None = None               # weights file for the embedding
    threshold: float | None = None            # cosine threshold (pairs and memorization); None => per embedding
    threshold_default: bool = False           # set by run(): the threshold is the embedding's default
    n_boot: int = rp.DEFAULTS.n_boot          # bootstrap resamples
    boot_seed: int = rp.DEFAULTS.boot_seed    # bootstrap seed
    cache: bool = True                        # cache training-set embeddings (feature cache)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)


@dataclass
class ReproOutcome:
    """Numbers and arrays of one audit (what the files are written from)."""

    models: list[ModelSamples]
    result: rp.RPResult
    embed_info: dict[str, Any]
    memorization: dict[str, rp.MemorizationScore] = field(default_factory=dict)
    top1: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # label -> (sim, idx)
    train_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    thumbs: dict[str, Any] = field(default_factory=dict)     # label -> uint8 NCHW of grid seeds
    grid_seeds: list[int] = field(default_factory=list)


def make_embedder(name: str, weights: str | None, device: str):
    """The embedding extractor, with the missing-weights error pointing at alternatives."""
    from ambient_eval.audits.embed import extractor_for, family

    try:
        return extractor_for(name, weights=weights, device=device)
    except AmbientError as e:
        if family(name) in NO_WEIGHTS_EMBEDS:
            raise
        raise AmbientError(f"{e} The '{name}' embedding needs weights you supply (--weights FILE). "
                           "Without them, use --embed pixel (no weights; catches exact and near-exact "
                           "copies) or --embed dinov2 with its weights; the embedding is recorded in "
                           "the results, and RP values are comparable only within one embedding.") from None


def embed_samples(ms: ModelSamples, extractor, embed: str, batch_size: int,
                  n_thumbs: int) -> tuple[np.ndarray, Any]:
    """Embeddings of a model's samples in seed order, and its first n_thumbs images.

    Sampling is streamed (a checkpoint's images are generated batch by batch, never all held).
    # ImageSource rows (uint8 NCHW, 3 ch) => (N, d) float32 unit rows, uint8 NCHW (n_thumbs)
    """
    import torch

    from ambient_eval.audits.embed import centers, l2_normalize
    from ambient_eval.runtime.progress import progress

    key = extractor.default_output
    chunks, thumbs = [], []
    bar = progress(total=len(ms.source), desc=f"{ms.label}: sample+embed", unit="img")
    kept = 0
    for _, imgs in ms.source.iter_batches(batch_size):
        chunks.append(extractor(imgs)[key].numpy())
        if kept < n_thumbs:
            thumbs.append(imgs[: n_thumbs - kept].clone())
            kept += thumbs[-1].shape[0]
        bar.update(imgs.shape[0])
    bar.close()
    # Same normalization as the memorization audit (pixel: centred, so cosine = correlation).
    z = l2_normalize(np.concatenate(chunks), center=centers(embed))
    return z, torch.cat(thumbs)


def train_top1(train_spec: str, z: np.ndarray, extractor, embed: str, batch_size: int,
               cache: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Largest cosine of each sample to the training set and its index => (N,) f32, (N,) int64, info."""
    from ambient_eval.audits.embed import embed_source
    from ambient_eval.audits.search import iter_blocks, knn_blocks
    from ambient_eval.runtime.faiss_dist import check_faiss

    check_faiss()
    from ambient_eval.data import open_source
    from ambient_eval.features.cache import FeatureCache

    src = open_source(train_spec)
    # (nb, d) float32 unit rows; cached by source fingerprint + extractor, reused across models/runs
    zb = embed_source(src, extractor, embed=embed, batch_size=batch_size,
                      cache=FeatureCache() if cache else None)
    D, I = knn_blocks(z, iter_blocks(zb), 1)
    return D[:, 0], I[:, 0], {"train": str(train_spec), "n_train": len(src),
                              "train_fingerprint": src.fingerprint()}


def resolve_threshold(opts: ReproOptions) -> float:
    """The user's --threshold, else the embedding family's default (memorization.copy_threshold)."""
    from ambient_eval.audits.embed import family
    from ambient_eval.audits.memorization import copy_threshold

    if opts.threshold is None:
        return copy_threshold(family(opts.embed))
    return rp.check_threshold(opts.threshold)


def run(models: Sequence[Any], seeds: Sequence[int], opts: ReproOptions, *,
        train: Sequence[str] | None = None, labels: Sequence[str] | None = None,
        fmt: str | None = None) -> ReproOutcome:
    """Open and validate everything first (cheap), then sample/embed (long), then score."""
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise AmbientError("No seeds given. Pass --seeds, e.g. --seeds 0-999.")
    if len(set(seeds)) != len(seeds):
        raise AmbientError("--seeds lists some seed more than once. Pass each seed once, e.g. 0-999.")
    opts.threshold_default = opts.threshold is None
    opts.threshold = resolve_threshold(opts)
    models = list(models)
    if len(models) < 2:
        raise AmbientError(f"Reproducibility compares models, but {len(models)} model was given. Pass "
                           "at least two models (checkpoints or sample folders/npz keyed by seed).")
    train = list(train or [])
    if train and len(train) not in (1, len(models)):
        raise AmbientError(f"--train was given {len(train)} times for {len(models)} models. Pass it once "
                           "(one training set for all models) or once per model, in model order.")
    for t in train:
        if not str(t).startswith("builtin:") and not Path(t).exists():
            raise AmbientError(f"Training data '{t}' does not exist. Pass a folder, zip, npz or builtin:NAME.")
    from ambient_eval.audits.embed import embedding_info

    extractor = make_embedder(opts.embed, opts.weights, opts.sampler.device)
    opened = open_models(models, seeds, opts.sampler, labels=labels, fmt=fmt)
    n_thumbs = min(GRID_SEEDS, len(seeds))
    emb, out = {}, ReproOutcome(models=opened, result=None,  # type: ignore[arg-type]
                                embed_info=embedding_info(extractor, opts.embed), grid_seeds=seeds[:n_thumbs])
    for ms in opened:
        emb[ms.label], out.thumbs[ms.label] = embed_samples(ms, extractor, opts.embed,
                                                            opts.sampler.batch_size, n_thumbs)
    out.result = rp.rp_matrix(emb, seeds, opts.threshold, n_boot=opts.n_boot, boot_seed=opts.boot_seed)
    for i, ms in enumerate(opened):
        if not train:
            break
        t = train[0] if len(train) == 1 else train[i]
        sim, idx, info = train_top1(t, emb[ms.label], extractor, opts.embed, opts.sampler.batch_size,
                                    opts.cache)
        out.top1[ms.label] = (sim, idx)
        out.train_info[ms.label] = info
        out.memorization[ms.label] = rp.memorization_score(sim, opts.threshold, n_boot=opts.n_boot,
                                                           boot_seed=opts.boot_seed)
    return out


def settings_of(out: ReproOutcome, opts: ReproOptions, seeds: Sequence[int]) -> dict[str, Any]:
    """What must match for two reproducibility results to be compared."""
    info = out.embed_info
    sampled = any(m.kind != "samples" for m in out.models)  # sample sets carry no sampler provenance
    return {"extractor": info.get("extractor"), "mode": info.get("mode"),
            "weights_sha256": info.get("weights_sha256"), "weights_official": info.get("weights_official"),
            "embed": opts.embed, "normalization": info.get("normalization"), "threshold": opts.threshold,
            "threshold_default": opts.threshold_default, "n_seeds": len(seeds),
            "n_generated": len(seeds), "seeds_first": int(seeds[0]), "seeds_last": int(seeds[-1]),
            "seeds_sha256": _seeds_hash(seeds), "sampler": "heun" if sampled else None,
            "steps": opts.sampler.steps if sampled else None,
            "n_boot": opts.n_boot, "boot_seed": opts.boot_seed, "ci_level": rp.DEFAULTS.ci_level,
            "n_models": len(out.models)}


def _seeds_hash(seeds: Sequence[int]) -> str:
    from ambient_eval.files.hashing import sha256_json

    return sha256_json([int(s) for s in seeds])


def per_seed_table(out: ReproOutcome):
    """One row per seed: cosine of every pair, and each model's top-1 training match."""
    import pandas as pd

    cols: dict[str, Any] = {"seed": out.result.seeds}
    for (a, b), cos in out.result.cosine.items():
        cols[f"cos[{a}|{b}]"] = cos
        cols[f"reproduced[{a}|{b}]"] = cos > out.result.threshold
    for label, (sim, idx) in out.top1.items():
        cols[f"train_top1[{label}]"] = sim.astype(np.float64)
        cols[f"train_index[{label}]"] = idx
    return pd.DataFrame(cols)


def envelope(out: ReproOutcome, opts: ReproOptions, seeds: Sequence[int]):
    """(Results written as results.json, summary.json's dict) of one audit."""
    from ambient_eval.reports.reproducibility_report import pair_rows
    from ambient_eval.results.envelope import KIND_REPRODUCIBILITY, Results

    res = out.result
    settings = settings_of(out, opts, seeds)
    inputs = {m.label: m.info for m in out.models}
    metrics: dict[str, float] = {"rp": res.rp_mean()}
    ci: dict[str, list[float]] = {}
    idx = {n: i for i, n in enumerate(res.names)}
    for a, b in res.pairs():
        i, j = idx[a], idx[b]
        metrics[rp.rp_key(a, b)] = float(res.rp[i, j])
        ci[rp.rp_key(a, b)] = [float(res.ci_lo[i, j]), float(res.ci_hi[i, j])]
    for label, s in out.memorization.items():
        metrics[rp.memorization_key(label)] = s.memorization
        metrics[rp.gl_key(label)] = s.gl
        ci[rp.memorization_key(label)] = [s.ci[0], s.ci[1]]
        ci[rp.gl_key(label)] = [1.0 - s.ci[1], 1.0 - s.ci[0]]
    summary = {
        "settings": settings, "models": inputs,
        "rp": {"names": res.names, "matrix": res.rp.tolist(), "ci_low": res.ci_lo.tolist(),
               "ci_high": res.ci_hi.tolist(), "mean": metrics["rp"], "pairs": pair_rows(res)},
        "memorization": {label: {"memorization": s.memorization, "gl": s.gl, "ci": list(s.ci), "n": s.n,
                                 **out.train_info[label]} for label, s in out.memorization.items()},
    }
    return Results(kind=KIND_REPRODUCIBILITY, metrics=metrics, settings=settings, ci=ci, inputs=inputs,
                   extra={"rp_matrix": summary["rp"], "embed": out.embed_info}), summary


def write_outputs(out: ReproOutcome, opts: ReproOptions, seeds: Sequence[int], out_dir: Path,
                  report: bool = True) -> dict[str, Path]:
    """summary.json, results.json, per_seed.parquet/.csv and report.html in out_dir (each atomic)."""
    from ambient_eval.files.atomic import atomic_path, write_json
    from ambient_eval.reports.html import REPORT_HTML
    from ambient_eval.reports.reproducibility_report import build_report
    from ambient_eval.results.envelope import RESULTS_JSON

    results, summary = envelope(out, opts, seeds)
    paths = {"summary": out_dir / "summary.json", "results": out_dir / RESULTS_JSON,
             "parquet": out_dir / "per_seed.parquet", "csv": out_dir / "per_seed.csv"}
    table = per_seed_table(out)
    with atomic_path(paths["parquet"]) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(paths["csv"]) as tmp:
        table.to_csv(tmp, index=False)
    write_json(paths["summary"], summary)
    results.save(paths["results"])
    if report:
        paths["report"] = out_dir / REPORT_HTML
        rep = build_report(out.result, thumbs=out.thumbs, grid_seeds=out.grid_seeds, memorization=out.memorization,
                           settings=results.settings, inputs={k: v.get("path", v.get("kind"))
                                                              for k, v in results.inputs.items()})
        rep.save(paths["report"])
    return paths
