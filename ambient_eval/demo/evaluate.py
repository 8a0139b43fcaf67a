"""Demo stage 5: quality (fid API), memorization and reproducibility audits of the sampled models.

DIR/fid/<model>/<features>/results.json      fid Results + bootstrap CI of the Frechet distance
DIR/memorization/<training set>/             memorization write_outputs (one run per training set)
DIR/reproducibility/                         reproducibility write_outputs (RP across all models)
Features needing no download (pixels) are always used; Inception (fid), SSCD or DINOv2 (audits)
are added automatically when their OFFICIAL weights are found locally (never downloaded).
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ambient_eval.demo.settings import DemoSettings
from ambient_eval.errors import AmbientError

log = logging.getLogger(__name__)

REAL_FID = ("inception",)           # extractor names tried for quality, in order
REAL_EMBED = ("sscd", "dinov2")     # --embed names tried for the audits, in order


def probe_real_features(s: DemoSettings) -> dict[str, str | None]:
    """{'fid': extractor name | None, 'embed': embed name | None}: official weights found locally.

    Weight resolution looks at $AMBIENT_EVAL_WEIGHTS, the libraries' caches and our download cache, with
    downloads blocked (`local_only`): the demo runs on built-in data and never fetches weights; a
    missing file is an AmbientError (caught here)."""
    from ambient_eval.audits.embed import extractor_for
    from ambient_eval.features import get_extractor
    from ambient_eval.fetch.policy import local_only

    found: dict[str, str | None] = {"fid": None, "embed": None}
    if not s.real_features:
        return found
    for slot, names, build in (("fid", REAL_FID, get_extractor), ("embed", REAL_EMBED, extractor_for)):
        for name in names:
            try:
                with warnings.catch_warnings(), local_only("the demo only uses weights already on this machine"):
                    warnings.simplefilter("ignore")
                    ex = build(name, device=s.device)
            except (AmbientError, ImportError, OSError) as e:
                log.info("%s not available: %s", name, e)
                continue
            if ex.weights_official:
                found[slot] = name
                break
            log.info("%s weights found but not the official file: not used by the demo", name)
    return found


def fd_bootstrap(gen_feats: np.ndarray, ref_feats: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """95% basic (pivotal) bootstrap interval of the Frechet distance, resampling both sets.

    FD is biased upward at small N, and a resample with repeated rows is "less diverse", so the
    bootstrap distribution sits above the estimate; the basic interval [2 FD - q97.5, 2 FD - q2.5]
    (Davison & Hinkley 1997, Eq. 5.6) corrects that shift to first order (a percentile interval
    would not even contain the estimate). The bias-corrected estimate 2 FD - mean(bootstrap) lies
    inside the interval. NC float (gen), NC float (ref) => {'ci': [lo, hi], 'bias_corrected': float}."""
    from ambient_eval.metrics import fid_from_features

    g0, r0 = gen_feats.astype(np.float64), ref_feats.astype(np.float64)
    rng = np.random.default_rng(seed)
    vals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-N warnings: already recorded once by fid()
        est = fid_from_features(g0, r0)
        for _ in range(n_boot):
            g = g0[rng.integers(0, len(g0), len(g0))]
            r = r0[rng.integers(0, len(r0), len(r0))]
            vals.append(fid_from_features(g, r))
    from ambient_eval.metrics.bootstrap import basic_interval

    lo, hi = basic_interval(est, vals, 0.95)
    return {"ci": [float(max(lo, 0.0)), float(hi)],
            "bias_corrected": float(max(2 * est - np.mean(vals), 0.0))}


def quality(s: DemoSettings, label: str, samples, heldout, features: str, out: Path):
    """fid(...) of one model's samples vs the held-out clean set with `features`; => Results (saved)."""
    from ambient_eval.api import fid
    from ambient_eval.features import extract_features, get_extractor
    from ambient_eval.results.envelope import FID, fd_key

    n = min(len(samples), len(heldout))
    pixel = features.startswith("pixel")
    metrics = ("fid", "kid", "pr") if pixel else ("fid", "kid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-n FID warnings: recorded in Results.extra by fid()
        res = fid(samples, heldout, metrics=metrics, features=features, device=s.device, cache=False,
                  batch_size=256, kid_subset_size=min(n, 1000), kid_subsets=100).results
    key = FID if features.startswith("inception") else fd_key(features)
    if pixel and s.n_boot:
        ex = get_extractor(features, device=s.device)
        out_name = ex.default_output
        g = extract_features(samples, ex, batch_size=256)[out_name]
        r = extract_features(heldout, ex, batch_size=256)[out_name]
        boot = fd_bootstrap(g, r, s.n_boot, s.seed)
        res.ci[key] = boot["ci"]
        res.extra["ci_method"] = {key: f"basic bootstrap, {s.n_boot} resamples of both sets, 95%"}
        res.extra["bias_corrected"] = {key: boot["bias_corrected"]}
    res.extra["model"] = label
    res.save(out / "fid" / label / features)
    return res


def memorization(s: DemoSettings, groups: dict[str, tuple[object, dict[str, object]]], embed: str, out: Path) -> dict:
    """One audit per training set: {group: (train ImageSource, {model: samples})} => {group: audit}."""
    from ambient_eval.audits.memorization_run import MemorizationConfig, run_memorization, write_outputs

    audits = {}
    for group, (train_src, models) in groups.items():
        cfg = MemorizationConfig(embed=embed, device=s.device, n_boot=s.n_boot, seed=s.seed, batch_size=256)
        audit = run_memorization(models, train_src, cfg)
        write_outputs(audit, out / "memorization" / group)
        audits[group] = audit
    return audits


def reproducibility(s: DemoSettings, labels: list[str], embed: str, out: Path):
    """RP across all models from their sample files; => (ReproOutcome, ReproOptions)."""
    from ambient_eval.audits.reproducibility_inputs import SamplerSettings
    from ambient_eval.audits.reproducibility_run import ReproOptions, run, write_outputs

    # threshold None: the embedding's default, the same as memorization's (memorization.copy_threshold)
    opts = ReproOptions(embed=embed, threshold=None, n_boot=max(s.n_boot, 1), boot_seed=s.seed, cache=False,
                        sampler=SamplerSettings(steps=s.sampler_steps, device=s.device))
    seeds = list(range(s.n_samples))
    paths = [str(out / "samples" / f"{lab}.npz") for lab in labels]
    outcome = run(paths, seeds, opts, labels=labels)
    write_outputs(outcome, opts, seeds, out / "reproducibility")
    return outcome, opts
