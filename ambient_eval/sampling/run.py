"""sample_to_path: the `ambient-eval sample` workflow (resume, torchrun sharding, progress)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from ambient_eval.sampling import distributed
from ambient_eval.sampling.execution import EXECUTION_KEY, execution
from ambient_eval.sampling.generate import check_generation, generate, provenance, resolve_labels
from ambient_eval.sampling.samplers import SamplerConfig
from ambient_eval.sampling.writer import make_writer

log = logging.getLogger(__name__)


def sample_settings(denoiser, cfg: SamplerConfig, class_label, autocast, device=None,
                    net_batch="auto") -> dict:
    """What determines the pixels (recorded with the output; resuming requires a match)."""
    return {EXECUTION_KEY: execution(device, autocast, net_batch),"model_sha256": getattr(denoiser, "weights_sha256", None),
            "model_format": getattr(denoiser, "checkpoint_format", None),
            "img_resolution": denoiser.img_resolution, "img_channels": denoiser.img_channels,
            "label_dim": denoiser.label_dim, "sampler": cfg.to_dict(),
            "class": class_label, "autocast": autocast, **provenance(denoiser, class_label)}


def prepare_sampling(denoiser, seeds: Sequence[int], *, cfg: SamplerConfig, batch_size: int = 64,
                     class_label: int | str | None = None, device=None, net_batch="auto",
                     autocast: str | None = None) -> tuple[SamplerConfig, list[int], object, dict]:
    """Validate a sampling run before the first image; => (cfg, seeds, labels | None, settings)."""
    cfg = cfg.validate()
    seeds = [int(s) for s in seeds]
    labels = resolve_labels(denoiser, seeds, class_label)          # validates --class early
    check_generation(denoiser, cfg, batch_size=batch_size, device=device, autocast=autocast)
    settings = sample_settings(denoiser, cfg, class_label, autocast, device, net_batch)
    if str(getattr(device, "type", device) or "cpu").startswith("cpu"):   # recorded, not compared on resume
        from ambient_eval.runtime.threads import current_threads

        settings["cpu_threads"] = current_threads()
    return cfg, seeds, labels, settings


def sample_to_path(denoiser, seeds: Sequence[int], out: str | Path, *, cfg: SamplerConfig,
                   batch_size: int = 64, class_label: int | None = None, device=None,
                   net_batch="auto", autocast: str | None = None) -> dict:
    """Generate the seeds not yet in `out` (this rank's share) and write them; => summary dict
    (counts, and the settings and labels recorded with the output).

    Everything is validated before the first image is generated. Under torchrun every rank
    takes every world_size-th missing seed; rank 0 merges .npz shards at the end.
    """
    from ambient_eval.runtime.progress import progress

    cfg, seeds, labels, settings = prepare_sampling(denoiser, seeds, cfg=cfg, batch_size=batch_size,
                                                    class_label=class_label, device=device, net_batch=net_batch,
                                                    autocast=autocast)
    writer = make_writer(out)
    rank, world = distributed.world()[:2]
    if rank == 0:
        writer.prepare(settings)                 # creates dirs, removes stale temps, settings file
    distributed.barrier()
    if rank != 0:
        writer.prepare(settings, clean=False)    # settings file exists now: this only re-checks it
    done = writer.done(seeds)
    distributed.barrier()                        # every rank sees the same `done` before writing
    todo = [s for s in seeds if s not in done]
    mine = todo[rank::world]
    label_of = None if labels is None else dict(zip(seeds, labels.tolist()))
    log.info("rank %d/%d: %d of %d seeds to generate (%d already done)", rank, world, len(mine),
             len(seeds), len(done))
    bar = progress(None, total=len(mine), desc=f"sample{'' if world == 1 else f' [rank {rank}]'}")
    try:
        if mine:
            batches = generate(denoiser, mine, batch_size=batch_size, config=cfg, device=device,
                               class_labels=None if label_of is None else [label_of[s] for s in mine],
                               net_batch=net_batch, autocast=autocast)
            for batch_seeds, images in batches:
                writer.write(batch_seeds, images, None)
                bar.update(len(batch_seeds))
    finally:
        bar.close()
    distributed.barrier()
    if rank == 0:
        writer.finalize(seeds, labels, settings)
    distributed.barrier()
    return {"out": str(out), "n_seeds": len(seeds), "generated": len(mine), "skipped": len(done),
            "rank": rank, "world_size": world, "settings": settings,
            "labels": None if labels is None else [int(v) for v in labels]}
