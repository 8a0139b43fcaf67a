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


def compute(metrics, per_metric, outputs, extractors, gen, ref, fcache, batch_size, kid_subsets,
             kid_subset_size, is_splits, pr_k, dc_k, fid_method):
    """Extract each needed feature set once and compute the metrics."""
    from ambient_eval import metrics as M
    from ambient_eval.stats import FeatureStats, check_comparable, stats_from_features

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
        ex = extractors[name]
        return stats_from_features(get(which, name)[output], extractor=ex.name, mode=ex.mode, feature=output,
                                   weights_sha256=ex.weights_sha256, source_fingerprint=x.fingerprint())

    values: dict[str, Any] = {}
    # (Not in a thread next to KID/P/R: OpenBLAS's spinning worker threads made the eigensolver 2x
    # slower and the whole run slower than one after the other, measured at N = 1000.)
    for m in metrics:
        name, out = per_metric[m], outputs[m]
        t = time.perf_counter()
        if m == "fid":
            s_gen, s_ref = stats_of("gen", gen, name, out), stats_of("ref", ref, name, out)
            check_comparable(s_gen, s_ref)
            method = fid_method if fid_method != "auto" else ("sqrtm" if extractors[name].mode == "clean" else "eig")
            for what, s in (("generated", s_gen), ("reference", s_ref)):
                if s.n is not None:
                    M.fid.warn_small_n(s.n, s.mu.shape[0], what)
            values["fid"] = frechet_distance(s_gen, s_ref, method, fcache)
            values["_fid_method"] = method
            values["_fid_ref_stats"] = s_ref
        elif m == "kid":
            values["kid"] = M.kid_from_features(get("gen", name)[out], get("ref", name)[out], subsets=kid_subsets,
                                                subset_size=kid_subset_size)
        elif m == "is":
            values["is"] = M.inception_score(get("gen", name)[out], splits=is_splits)
        elif m == "pr":
            values["pr"] = M.precision_recall(get("ref", name)[out], get("gen", name)[out], k=pr_k)
        elif m == "dc":
            values["dc"] = M.density_coverage(get("ref", name)[out], get("gen", name)[out], k=dc_k)
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
    from ambient_eval.stats import FeatureStats

    if isinstance(x, FeatureStats):
        return {"type": "stats", "n": x.n, "fingerprint": x.source_fingerprint, "extractor": x.extractor,
                "mode": x.mode, "notes": x.notes}
    info = {"type": "images", "description": x.description, "n": len(x), "fingerprint": x.fingerprint(),
            "skipped": [list(s) for s in getattr(x, "skipped", [])]}
    if callable(getattr(x, "settings", None)):      # model samples: sampler, noise scheme, labels, VAE
        info["sampling"] = x.settings()
    return info


def build_results(metrics, per_metric, outputs, extractors, gen, ref, values, warns, timings, params):
    """Assemble the results.json envelope."""
    from ambient_eval import results as R

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
    from ambient_eval.threads import current_threads

    settings.setdefault("cpu_threads", current_threads())   # CPU numbers are reproducible at a fixed count
    extra = {"warnings": warns, "timings": timings}
    ref_stats = values.get("_fid_ref_stats")
    if ref_stats is not None and ref_stats.notes:
        extra["reference_notes"] = ref_stats.notes
    return R.Results(kind=R.KIND_FID, metrics=flat, settings=settings,
                     inputs={"generated": g_info, "reference": r_info}, extra=extra)
