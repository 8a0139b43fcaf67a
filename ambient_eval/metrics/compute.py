"""The fid computation behind api.fid: extract each feature set once, compute the metrics, and
assemble the results.json envelope (settings.per_metric records every metric's feature space).
"""
from __future__ import annotations

import time
from typing import Any

from ambient_eval.metrics.selection import INCEPTION_NAMES


def features_of(x, extractor, fcache, batch_size):
    from ambient_eval.features import extract_features

    return extract_features(x, extractor, batch_size=batch_size, cache=fcache)


def adm_reference_rows(feats):
    """At most ADM_PR.max_reference rows (the evaluator's 10k reference batch): a seeded subset, in order."""
    import numpy as np

    from ambient_eval.metrics.adm import ADM_PR

    if len(feats) <= ADM_PR.max_reference:
        return feats
    keep = np.sort(np.random.RandomState(0).choice(len(feats), ADM_PR.max_reference, replace=False))
    return feats[keep]


def compute(metrics, per_metric, outputs, extractors, gen, ref, fcache, batch_size, kid_subsets,
             kid_subset_size, is_splits, pr_k, dc_k, fid_method, prompts=None):
    """Extract each needed feature set once and compute the metrics."""
    from ambient_eval import metrics as M
    from ambient_eval.metrics.stats import FeatureStats, check_comparable, stats_from_features

    feats: dict[tuple[str, str], dict] = {}
    timings: dict[str, float] = {}

    def get(which: str, name: str):
        key = (which, name)
        if key not in feats:
            t = time.perf_counter()
            feats[key] = features_of(gen if which == "gen" else ref, extractors[name], fcache, batch_size)
            timings[f"features_{which}_{name}_s"] = time.perf_counter() - t
        return feats[key]

    def stats_of(which: str, x, name: str, output: str) -> FeatureStats:
        if isinstance(x, FeatureStats):
            return x
        if output in getattr(x, "precomputed_stats", {}):   # an ADM batch's mu/sigma or mu_s/sigma_s
            return x.precomputed_stats[output]
        ex = extractors[name]
        return stats_from_features(get(which, name)[output], extractor=ex.name, mode=ex.mode, feature=output,
                                   weights_sha256=ex.weights_sha256, source_fingerprint=x.fingerprint())

    values: dict[str, Any] = {}
    # (Not in a thread next to KID/P/R: OpenBLAS's spinning worker threads made the eigensolver 2x
    # slower and the whole run slower than one after the other, measured at N = 1000.)
    for m in metrics:
        name, out = per_metric[m], outputs[m]
        t = time.perf_counter()
        if m in ("fid", "sfid"):
            s_gen, s_ref = stats_of("gen", gen, name, out), stats_of("ref", ref, name, out)
            check_comparable(s_gen, s_ref)
            # sFID: scipy sqrtm as the ADM evaluator's frechet_distance, unless a method is named
            auto = "sqrtm" if m == "sfid" or extractors[name].mode == "clean" else "eig"
            method = fid_method if fid_method != "auto" else auto
            for what, s in (("generated", s_gen), ("reference", s_ref)):
                if s.n is not None:
                    M.fid.warn_small_n(s.n, s.mu.shape[0], what)
            values[m] = frechet_distance(s_gen, s_ref, method, fcache)
            values[f"_{m}_method"] = method
            values[f"_{m}_ref_stats"] = s_ref
        elif m == "kid":
            values["kid"] = M.kid_from_features(get("gen", name)[out], get("ref", name)[out], subsets=kid_subsets,
                                                subset_size=kid_subset_size)
        elif m == "is":
            values["is"] = M.inception_score(get("gen", name)[out], splits=is_splits)
        elif m == "pr":
            values["pr"] = M.precision_recall(get("ref", name)[out], get("gen", name)[out], k=pr_k)
        elif m == "dc":
            values["dc"] = M.density_coverage(get("ref", name)[out], get("gen", name)[out], k=dc_k)
        elif m == "adm-is":
            values[m] = M.adm_inception_score(get("gen", name)[out])
        elif m == "adm-pr":
            values[m] = M.adm_precision_recall(adm_reference_rows(get("ref", name)[out]), get("gen", name)[out])
        elif m == "clipscore":
            from ambient_eval.metrics.clip_score import clip_score_of

            values[m] = clip_score_of(gen, extractors[name], get("gen", name)[out], prompts)
        timings[f"metric_{m}_s"] = time.perf_counter() - t
    return values, timings


def frechet_distance(s_gen, s_ref, method: str, fcache) -> float:
    """fid_from_stats, reused from the cache when these exact statistics were compared before.

    Key: sha256 of the bytes of both means and covariances, the method, N (which picks the
    eigensolver) and the ambient-eval version, so any change in the inputs or the code recomputes.
    """
    from ambient_eval import metrics as M

    def compute() -> float:
        return M.fid_from_stats(s_gen.mu, s_gen.sigma, s_ref.mu, s_ref.sigma, method=method, n1=s_gen.n,
                                n2=s_ref.n)

    if fcache is None:
        return compute()
    import hashlib

    import numpy as np

    from ambient_eval import __version__

    h = hashlib.sha256(f"frechet-v1|{__version__}|{method}|{s_gen.n}|{s_ref.n}".encode())
    for a in (s_gen.mu, s_gen.sigma, s_ref.mu, s_ref.sigma):
        a = np.ascontiguousarray(a, np.float64)
        h.update(str(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    key = h.hexdigest()
    value = fcache.get_value(key)
    if value is None:
        value = compute()
        fcache.put_value(key, value, what="frechet distance", method=method, n=[s_gen.n, s_ref.n])
    return value


def input_info(x) -> dict[str, Any]:
    from ambient_eval.metrics.stats import FeatureStats

    if not isinstance(x, FeatureStats) and not hasattr(x, "fingerprint"):   # clipscore-only: no reference
        return {"type": "none", "n": None, "fingerprint": None}
    if isinstance(x, FeatureStats):
        return {"type": "stats", "n": x.n, "fingerprint": x.source_fingerprint, "extractor": x.extractor,
                "mode": x.mode, "notes": x.notes}
    info = {"type": "images", "description": x.description, "n": len(x), "fingerprint": x.fingerprint(),
            "skipped": [list(s) for s in getattr(x, "skipped", [])]}
    if getattr(x, "precomputed_stats", None):       # an ADM reference batch's mu/sigma, mu_s/sigma_s
        info["precomputed_stats"] = sorted(x.precomputed_stats)
    if callable(getattr(x, "settings", None)):      # model samples: sampler, noise scheme, labels, VAE
        info["sampling"] = x.settings()
    return info


def build_results(metrics, per_metric, outputs, extractors, gen, ref, values, warns, timings, params):
    """Assemble the results.json envelope."""
    from ambient_eval.results import envelope as R
    flat: dict[str, float] = {}
    if "fid" in values:
        name = per_metric["fid"]
        flat[R.FID if name in INCEPTION_NAMES else R.fd_key(name)] = values["fid"]
    if "kid" in values:
        flat[R.KID], flat[R.KID_STD] = values["kid"]
    if "is" in values:
        flat[R.IS], flat[R.IS_STD] = values["is"]
    if "pr" in values:
        flat[R.PRECISION], flat[R.RECALL] = values["pr"]
    if "dc" in values:
        flat[R.DENSITY], flat[R.COVERAGE] = values["dc"]
    if "sfid" in values:
        flat[R.SFID] = values["sfid"]
    if "adm-is" in values:
        flat[R.ADM_IS], flat[R.ADM_IS_STD] = values["adm-is"]
    if "adm-pr" in values:
        flat[R.ADM_PRECISION], flat[R.ADM_RECALL] = values["adm-pr"]
    if "clipscore" in values:
        flat[R.CLIP_SCORE], flat[R.CLIP_SCORE_STD] = values["clipscore"][:2]
    primary = per_metric[metrics[0]] if "fid" not in per_metric else per_metric["fid"]
    ex = extractors[primary]
    g_info, r_info = input_info(gen), input_info(ref)
    per = {m: {"extractor": extractors[per_metric[m]].name, "mode": extractors[per_metric[m]].mode,
               "feature": outputs[m], "weights_sha256": extractors[per_metric[m]].weights_sha256,
               "weights_official": extractors[per_metric[m]].weights_official} for m in metrics}
    settings = {
        "extractor": ex.name, "mode": ex.mode, "weights_sha256": ex.weights_sha256,
        "weights_official": ex.weights_official,
        "n_generated": g_info["n"], "n_reference": r_info["n"],
        "reference_fingerprint": r_info["fingerprint"], "metrics_requested": list(metrics),
        "per_metric": per, **params,
    }
    if "adm-pr" in values:
        from ambient_eval.metrics.adm import ADM_PR

        per["adm-pr"].update(k=ADM_PR.k, reference_images=min(r_info["n"] or 0, ADM_PR.max_reference),
                             reference_subset_seed=0, distances="float16 squared (ADM evaluator)")
    if "adm-is" in values:
        from ambient_eval.metrics.adm import ADM_IS

        per["adm-is"].update(split_size=ADM_IS.split_size)
    if "sfid" in values:
        per["sfid"]["method"] = values.pop("_sfid_method", None)
    if "clipscore" in values:
        per["clipscore"].update(values["clipscore"][2])
    from ambient_eval.runtime.threads import current_threads

    settings.setdefault("cpu_threads", current_threads())   # CPU numbers are reproducible at a fixed count
    extra = {"warnings": warns, "timings": timings}
    notes = [n for m in ("fid", "sfid") if values.get(f"_{m}_ref_stats") is not None
             for n in values[f"_{m}_ref_stats"].notes]
    if notes:
        extra["reference_notes"] = list(dict.fromkeys(notes))
    return R.Results(kind=R.KIND_FID, metrics=flat, settings=settings,
                     inputs={"generated": g_info, "reference": r_info}, extra=extra)
