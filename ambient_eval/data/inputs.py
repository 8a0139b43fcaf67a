"""What the user named as an input to an evaluation, opened: images (folder, archive, builtin:NAME), a
statistics file, a named reference (`ref:NAME`), an ADM reference batch, or a checkpoint's samples.

Used by `fid`, `stats` and the leakage metric; a checkpoint passed where images belong is refused with the
option that would evaluate it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ambient_eval.errors import AmbientError


def open_input(spec: Any, *, max_images: int | None, subset_seed: int, skip_bad: bool, what: str,
                resize: int | None = None):
    """ImageSource or FeatureStats (an .npz with mu/sigma) for a user-given input (at `resize` when given)."""
    from ambient_eval.data.resized import resized

    src = open_unresized(spec, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad, what=what,
                          open_kw=dict(resize=resize, crop=True) if resize else {})
    if resize is not None and getattr(src, "precomputed_stats", None):
        src.precomputed_stats = {}      # an ADM batch's statistics are of its native size: use its images
    return resized(src, resize, what)


def open_unresized(spec: Any, *, max_images: int | None, subset_seed: int, skip_bad: bool, what: str,
                    open_kw: dict):
    from ambient_eval.data.base import ImageSource
    from ambient_eval.metrics.stats import FeatureStats, is_stats_file, load_stats

    if isinstance(spec, (ImageSource, FeatureStats)):
        return spec
    from ambient_eval.data.adm_npz import is_adm_reference, open_adm_reference
    from ambient_eval.refs.resolve import is_ref, load_ref, ref_entry_format, ref_name, ref_path

    if is_ref(spec):                                   # named reference statistics (catalog)
        if ref_entry_format(spec) != "adm-npz":
            return load_ref(spec)
        spec = ref_path(ref_name(spec))                # an ADM batch: its images and its statistics
    if isinstance(spec, (str, os.PathLike)) and is_adm_reference(spec):   # images + precomputed statistics
        return open_adm_reference(spec, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                                  **open_kw)
    if isinstance(spec, (str, os.PathLike)) and is_stats_file(spec):
        return load_stats(spec)
    from ambient_eval.data import open_source
    from ambient_eval.errors import option_hint
    from ambient_eval.data.model_inputs import is_checkpoint

    if isinstance(spec, (str, os.PathLike)) and Path(spec).exists() and is_checkpoint(spec):
        raise AmbientError(f"The {what} input '{spec}' is a model checkpoint, not images. " + option_hint(
            "--model", f"Pass it as --model {spec} --seeds RANGE to evaluate its samples.",
            "Generate images first with `ambient-eval sample CKPT --seeds RANGE --out DIR` and pass DIR."))

    return open_source(spec, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad, **open_kw)


def model_input(model: str, seeds: Any, **kw):
    """ImageSource streaming samples of a checkpoint (sampling module, imported lazily)."""
    try:
        from ambient_eval.sampling.seeds import parse_seeds
        from ambient_eval.sampling.source import model_source
    except ImportError as e:  # the sampler is an optional part of the install
        raise AmbientError(f"--model needs ambient_eval.sampling, which is not available ({e}). Generate "
                           "images with `ambient-eval sample` and pass the folder as GENERATED.") from None
    cond = kw.get("conditioning")
    if seeds is None and cond is not None and cond.default_seeds() is not None:
        seeds = cond.default_seeds()          # --prompts without --seeds: every row once
    if seeds is None:
        raise AmbientError("--model needs --seeds (e.g. --seeds 0-49999).")
    seed_list = parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]
    return model_source(model, seed_list, **kw)
