"""The memorization audit end to end: embed, index, search, score, summarize, write files.

    audit = run_memorization({"base": src_a, "ambient": src_b}, train_src, MemorizationConfig(embed="pixel"))
    write_outputs(audit, "out/")          # samples.parquet/.csv, summary.json, results.json

Several models are scored against one training set that is embedded (and indexed) once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from ambient_eval.audits import embed as E
from ambient_eval.audits import memorization as M
from ambient_eval.audits import index_files as IF
from ambient_eval.audits import search as S
from ambient_eval.audits import tta as T
from ambient_eval.audits.prompt_match import add_prompt_columns
from ambient_eval.errors import AmbientError
from ambient_eval.data.model_inputs import model_labels  # noqa: F401 - re-exported for callers

if TYPE_CHECKING:
    import pandas as pd

    from ambient_eval.data.base import ImageSource
    from ambient_eval.features.cache import FeatureCache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemorizationConfig:
    embed: str = "pixel"                      # --embed name (embed.EMBEDS) or an extractor name
    weights: str | None = None                # extractor weights file (sscd, dinov2, clip, inception)
    device: str = "auto"                      # extractor device; the index goes to GPU when faiss sees one
    k: int = M.DEFAULTS.k                     # neighbours per sample
    thresholds: tuple[float, ...] | None = None   # None => DEFAULT_THRESHOLDS of the embedding family
    index: str = "flat"                       # flat (exact) | ivf | ivfpq | hnsw
    index_path: str | None = None             # save the index here / reuse it when its key matches
    carlini: bool = False                     # also compute the Carlini et al. 2023 l2-ratio criterion
    carlini_delta: float = M.DEFAULTS.carlini_delta   # flagged when l < delta
    carlini_n: int = M.DEFAULTS.carlini_n     # neighbourhood size of the criterion
    batch_size: int = 64                      # images per extractor batch
    n_boot: int = M.DEFAULTS.n_boot           # bootstrap resamples for CIs
    seed: int = M.DEFAULTS.seed               # bootstrap and recall-sample seed
    recall_queries: int = S.DEFAULTS.recall_queries   # queries sampled to measure approximate recall@1
    tta: str = "none"                         # query views: none | flip | shift | flip+shift (tta.py)
    shards: str | None = None                 # embed the training set into shards in this dir (shards.py)
    shard_size: int = 65536                   # embeddings per shard file
    nprobe: int | None = None                 # IVF cells visited per query (None: search.py default)


@dataclass
class ModelAudit:
    """One model's per-sample table and summary."""

    name: str
    source: "ImageSource"
    table: "pd.DataFrame"
    metrics: dict[str, float]
    ci: dict[str, list[float]]


@dataclass
class MemorizationAudit:
    """Everything a run produced (tables, summaries, provenance), before files are written."""

    models: list[ModelAudit]
    train: "ImageSource"
    config: MemorizationConfig
    thresholds: tuple[float, ...]
    embedding: dict[str, Any]
    index: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)   # e.g. an embedding whose similarities are all ~1
    calibration: dict[str, Any] | None = None           # Calibration.to_dict() when --calibrate was used


def _use_gpu(device: str) -> bool | None:
    # --device cpu keeps faiss on CPU; auto/cuda use a GPU when faiss sees one.
    return False if str(device).startswith("cpu") else None


def validate(models: Mapping[str, "ImageSource"], train: "ImageSource", cfg: MemorizationConfig) -> None:
    """Checks that need no embedding (run before any long work)."""
    if cfg.tta not in T.TTA_MODES:
        raise AmbientError(f"Unknown --tta '{cfg.tta}'. Use one of: {', '.join(T.TTA_MODES)}.")
    if cfg.shards and (cfg.index_path or cfg.index == "hnsw"):
        raise AmbientError("--shards keeps its index in the shards directory and supports --index flat, ivf "
                           "or ivfpq; drop --index-path and use one of those index kinds.")
    if cfg.nprobe is not None and (cfg.index not in ("ivf", "ivfpq") or cfg.nprobe < 1):
        raise AmbientError(f"--nprobe {cfg.nprobe} needs --index ivf or ivfpq and a value of at least 1.")
    if cfg.shard_size < 1:
        raise AmbientError(f"--shard-size must be at least 1, got {cfg.shard_size}.")
    if cfg.index not in S.INDEX_KINDS:
        raise AmbientError(f"Unknown --index '{cfg.index}'. Use one of: {', '.join(S.INDEX_KINDS)}.")
    if cfg.k < 1:
        raise AmbientError(f"--k must be at least 1, got {cfg.k}.")
    if not models:
        raise AmbientError("No generated samples were given. Pass sample folders/files, or --model CKPT --seeds.")
    n_train = len(train)
    if n_train == 0:
        raise AmbientError(f"The training set {train.description} is empty (0 images). Pass a --train "
                           "source with images.")
    if n_train < cfg.k:
        raise AmbientError(f"The training set {train.description} has {n_train} images, fewer than "
                           f"k = {cfg.k} neighbours. Lower --k to at most {n_train}.")
    if cfg.index == "ivfpq" and n_train < 2 * S.DEFAULTS.min_train_per_cell:
        raise AmbientError(f"--index ivfpq trains product quantizers and needs at least "
                           f"{2 * S.DEFAULTS.min_train_per_cell} training images, but {train.description} has "
                           f"{n_train}. Use --index flat (exact, and fast at this size).")
    if not (cfg.carlini_delta > 0 and np.isfinite(cfg.carlini_delta)):
        raise AmbientError(f"--carlini-delta must be a positive number (flagged when l < delta; l is a ratio "
                           f"of distances), got {cfg.carlini_delta}. Use e.g. --carlini-delta 0.333.")
    if cfg.carlini and n_train < cfg.carlini_n:
        raise AmbientError(f"--carlini needs at least {cfg.carlini_n} training images (its neighbourhood "
                           f"size), but {train.description} has {n_train}. Drop --carlini.")
    for name, src in models.items():
        if len(src) == 0:
            raise AmbientError(f"Generated samples '{name}' ({src.description}) hold no images.")


def index_key(train: "ImageSource", info: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """What a saved index must match to be reused."""
    return {"train_fingerprint": train.fingerprint(), "n_train": len(train), "embed": info["embed"],
            "extractor": info["extractor"], "mode": info["mode"], "weights_sha256": info["weights_sha256"],
            "normalization": info["normalization"], "index": kind}


def _in_memory_index(train, extractor, cfg: MemorizationConfig, key: dict[str, Any], d: int,
                     use_gpu: bool | None, cache) -> tuple[Any, Any, dict[str, Any] | None]:
    """(index, training embeddings or None, saved index key or None): a RAM index, saved/reused at --index-path."""
    saved = IF.read_index_key(cfg.index_path) if cfg.index_path else None
    if saved is not None:  # refuse a stale index before any embedding work
        IF.check_index_key(cfg.index_path, saved, key, d)
    xb = None
    if saved is None or cfg.index != "flat":  # approximate recall needs xb; cached after the first run
        xb = E.embed_source(train, extractor, embed=cfg.embed, batch_size=cfg.batch_size, cache=cache)
    if saved is not None:
        index = IF.load_index(cfg.index_path, key, d=d, use_gpu=use_gpu)
        log.info("Reusing the index %s", cfg.index_path)
    else:
        index = S.build_index(S.iter_blocks(xb), d, cfg.index, nb=xb.shape[0], use_gpu=use_gpu,
                              train_x=S.train_sample(xb) if cfg.index in ("ivf", "ivfpq") else None)
        from ambient_eval.features.distributed import is_main

        if cfg.index_path and is_main():  # under torchrun only rank 0 writes files
            IF.save_index(index, cfg.index_path, key)
    return index, xb, saved


def _set_nprobe(index: Any, nprobe: int, kind: str) -> None:
    """--nprobe: IVF cells visited per query (more: higher recall, slower); any CPU/GPU index type."""
    from ambient_eval.audits.faiss_gpu import check_gpu_limits, set_nprobe

    if kind not in ("ivf", "ivfpq") or nprobe < 1:
        raise AmbientError(f"--nprobe {nprobe} needs --index ivf or ivfpq and a value of at least 1.")
    check_gpu_limits(index, 1, nprobe)
    if hasattr(index, "nlist") and hasattr(index, "index"):   # shards.OnDiskIVF
        index.index.nprobe = index.nprobe = min(nprobe, index.nlist)
        return
    try:
        set_nprobe(index, nprobe)
    except (RuntimeError, AttributeError) as e:
        log.warning("Could not set nprobe on %s (%s); using its default.", type(index).__name__, e)


def run_memorization(models: Mapping[str, "ImageSource"], train: "ImageSource",
                     cfg: MemorizationConfig = MemorizationConfig(), *,
                     cache: "FeatureCache | None" = None) -> MemorizationAudit:
    """Embed the training set once, index it, and score every model's samples against it."""
    validate(models, train, cfg)
    from ambient_eval.runtime.faiss_dist import check_faiss

    check_faiss()
    extractor = E.extractor_for(cfg.embed, weights=cfg.weights, device=cfg.device)  # unknown name: named first
    thresholds = M.check_thresholds(cfg.thresholds or M.default_thresholds(E.family(cfg.embed)))
    info = E.embedding_info(extractor, cfg.embed)
    d, use_gpu = info["dim"], _use_gpu(cfg.device)
    key = index_key(train, info, cfg.index)
    saved = None
    if cfg.shards:  # larger than RAM: .npy shards on disk, exact per-shard or on-disk IVF search
        from ambient_eval.audits import shards as SH

        xb = SH.embed_shards(train, extractor, embed=cfg.embed, out_dir=cfg.shards, shard_size=cfg.shard_size,
                             batch_size=cfg.batch_size, key={k: v for k, v in key.items() if k != "index"})
        index = SH.open_index(xb, cfg.index, cfg.shards, key, use_gpu=use_gpu)
    else:
        index, xb, saved = _in_memory_index(train, extractor, cfg, key, d, use_gpu, cache)
    if cfg.nprobe is not None:
        _set_nprobe(index, cfg.nprobe, cfg.index)
    k_search = max(cfg.k, cfg.carlini_n) if cfg.carlini else cfg.k
    from ambient_eval.audits import faiss_gpu as FG

    FG.check_gpu_limits(index, k_search)   # before any query is embedded or searched
    train_names = _utf8(train.item_names())
    audits, queries = [], []
    top1s: dict[str, np.ndarray] = {}
    for name, src in models.items():
        D, I, top_view, xq, views = T.search_views(index, src, extractor, embed=cfg.embed, mode=cfg.tta,
                                                   k=k_search, batch_size=cfg.batch_size, cache=cache,
                                                   desc=f"search {name}")
        D = np.clip(D, -1.0, 1.0)  # float32 rounding puts identical unit vectors at 1.0000001
        lc = M.carlini_score(D, n=cfg.carlini_n) if cfg.carlini else None
        table = M.score_table(D, I, thresholds, sample_names=_utf8(src.item_names()), train_names=train_names,
                              model=name, k=cfg.k, carlini=lc, carlini_delta=cfg.carlini_delta)
        add_prompt_columns(table, src, train_names, xq, xb, index)  # text-to-image: prompt, own image
        if cfg.tta != "none":  # which query view matched best (identity, flip, shift(dy,dx), ...)
            table["top1_view"] = np.asarray(views, dtype=object)[top_view]
        top1s[name] = D[:, 0]
        flags = None if lc is None else table["carlini_flag"].to_numpy()
        metrics = M.summary_metrics(D[:, 0], thresholds, carlini_flag=flags)
        ci = M.bootstrap_ci(D[:, 0], thresholds, carlini_flag=flags, n_boot=cfg.n_boot, seed=cfg.seed)
        audits.append(ModelAudit(name, src, table, metrics, ci))
        queries.append(xq)
    index_info: dict[str, Any] = {"kind": cfg.index, "ntotal": int(index.ntotal), "path": cfg.index_path,
                                  "reused": saved is not None, "gpu": FG.is_gpu_index(index)}
    if cfg.shards:
        index_info.update({"shards": cfg.shards, "n_shards": len(xb.files), "shards_reused": xb.reused,
                           "on_disk": True, "gpu": type(index).__name__ == "GpuShardedFlat"})
        index_info.update({a: getattr(index, a) for a in ("nlist", "nprobe", "k_factor")
                           if getattr(index, a, None) is not None})
    else:
        index_info.update(S.index_params(index))
    if cfg.index != "flat":  # approximate: measure recall@1 against exact search on a seeded sample
        index_info.update(S.recall_at_1(index, np.concatenate(queries), xb, n=cfg.recall_queries, seed=cfg.seed))
    pairs = T.random_pair_sims(xb) if xb is not None else None
    warns = T.degenerate_warnings(top1s, pairs, cfg.embed)
    for w in warns:
        log.warning(w)
    return MemorizationAudit(audits, train, cfg, thresholds, info, index_info, warns)


def settings(audit: MemorizationAudit, model: ModelAudit) -> dict[str, Any]:
    """results.json settings: what must match to compare two memorization results."""
    cfg = audit.config
    return {**audit.embedding, "reference_fingerprint": audit.train.fingerprint(),
            "train_fingerprint": audit.train.fingerprint(), "n_train": len(audit.train),
            "n_generated": len(model.source), "k": cfg.k, "thresholds": list(audit.thresholds),
            "index": cfg.index, "similarity": "cosine (inner product of L2-normalized embeddings)",
            "tta": cfg.tta, "tta_shift_px": T.shift_pixels(min(model.source.resolution)) if "shift" in cfg.tta
            else None,
            "carlini": ({"alpha": M.DEFAULTS.carlini_alpha, "n": cfg.carlini_n, "delta": cfg.carlini_delta,
                         "distance": "l2 of normalized embeddings"} if cfg.carlini else None),
            "bootstrap": {"n_boot": cfg.n_boot, "seed": cfg.seed, "level": M.DEFAULTS.ci_level},
            "calibration": None if audit.calibration is None else
            {k: v for k, v in audit.calibration.items() if k != "roc"}}


def _utf8(names: list[str]) -> list[str]:
    """File names as valid UTF-8 for parquet/csv: undecodable bytes (surrogates) become \\xNN."""
    return [n.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for n in names]


def _dir_name(name: str) -> str:
    # model label -> a safe directory name
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return safe or "model"


def summary(audit: MemorizationAudit) -> dict[str, Any]:
    """The combined summary.json: per-model metrics + CIs, thresholds, index recall, provenance."""
    return {"embedding": audit.embedding, "thresholds": list(audit.thresholds),
            "train": {"description": audit.train.description, "fingerprint": audit.train.fingerprint(),
                      "n": len(audit.train)},
            "index": audit.index, "k": audit.config.k, "tta": audit.config.tta, "warnings": audit.warnings,
            "calibration": audit.calibration,
            "models": {m.name: {"description": m.source.description, "metrics": m.metrics, "ci": m.ci}
                       for m in audit.models}}


def write_outputs(audit: MemorizationAudit, out: str | Path) -> list[Path]:
    """samples.parquet + samples.csv (all models), summary.json, results.json (or <model>/results.json)."""
    import pandas as pd

    from ambient_eval.files.atomic import atomic_path, write_json

    out = Path(out)
    table = pd.concat([m.table for m in audit.models], ignore_index=True)
    paths = [out / "samples.parquet", out / "samples.csv", out / "summary.json"]
    with atomic_path(paths[0]) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(paths[1]) as tmp:
        table.to_csv(tmp, index=False)
    write_json(paths[2], summary(audit))
    for m in audit.models:
        target = out if len(audit.models) == 1 else out / _dir_name(m.name)
        paths.append(model_results(audit, m).save(target))
    return paths


def model_results(audit: MemorizationAudit, m: ModelAudit):
    """One model's Results envelope (its results.json)."""
    from ambient_eval.results.envelope import KIND_MEMORIZATION, Results

    return Results(kind=KIND_MEMORIZATION, metrics=m.metrics, ci=m.ci, settings=settings(audit, m),
                   inputs={"generated": {"description": m.source.description,
                                         "fingerprint": m.source.fingerprint(), "n": len(m.source)},
                           "train": {"description": audit.train.description,
                                     "fingerprint": audit.train.fingerprint(), "n": len(audit.train)}},
                   extra={"model": m.name, "index": audit.index, "warnings": audit.warnings,
                          "calibration": audit.calibration})
