"""The `fid` command as an API function: `fid(...)` -> FidResult (metrics/fid_result.py); with
`--repeats` over disjoint seed ranges, and with the leakage metric. `stats`: metrics/stats_run.py.

Flow: sources -> (validate everything) -> extractors (weights resolved) -> cached features -> metrics.
All validation that can fail on user input happens before the first feature is extracted.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ambient_eval.data.inputs import model_input, open_input
from ambient_eval.metrics import compute as fid_compute
from ambient_eval.errors import AmbientError
from ambient_eval.features.cache import feature_cache
from ambient_eval.metrics.fid_checks import (StatsExtractor, check_sizes, check_stats_vs_extractor,
                                               explicit_fid_features)
from ambient_eval.metrics.fid_result import FidResult
from ambient_eval.metrics.selection import (DEFAULT_EXTRACTOR, INCEPTION_NAMES, output_for,  # noqa: F401
                                            parse_features, parse_weights)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FidDefaults:
    batch_size: int = 64              # images per feature-extraction batch
    kid_subsets: int = 100            # KID: number of random subsets (torch-fidelity)
    kid_subset_size: int = 1000       # KID: images per subset (torch-fidelity)
    is_splits: int = 10               # IS: number of splits
    pr_k: int = 3                     # precision/recall neighbourhood (Kynkaanniemi et al.)
    dc_k: int = 5                     # density/coverage neighbourhood (Naeem et al.)
    fid_method: str = "auto"          # "eig" (torch-fidelity), "sqrtm" (EDM/clean-fid); auto: sqrtm for clean mode


DEFAULTS = FidDefaults()

def fid(generated: Any = None, reference: Any = None, *, metrics: Sequence[str] = ("fid",),
        features: str | Mapping[str, str] | None = None, weights: Any = None,
        batch_size: int = DEFAULTS.batch_size, device: str = "auto", cache: Any = True,
        cache_dir: str | os.PathLike | None = None, max_images: int | None = None, subset_seed: int = 0,
        skip_bad: bool = False, kid_subsets: int = DEFAULTS.kid_subsets,
        kid_subset_size: int = DEFAULTS.kid_subset_size, is_splits: int = DEFAULTS.is_splits,
        pr_k: int = DEFAULTS.pr_k, dc_k: int = DEFAULTS.dc_k, fid_method: str = DEFAULTS.fid_method,
        model: str | None = None, seeds: str | Sequence[int] | None = None, steps: int = 18,
        trust_pickle: bool = False, repeats: int = 1, prompts: Any = None, clip_model: str | None = None,
        clip_weights: str | os.PathLike | None = None, classifier: str | os.PathLike | None = None,
        conditioning: Any = None, resize: int | None = None) -> FidResult:
    """Quality metrics of GENERATED images against REFERENCE images or statistics (`ambient-eval fid`).

    Args:
        generated: Folder, zip, .npz/.npy, builtin:NAME, an ImageSource, or a stats .npz /
            FeatureStats (then FID-type metrics only). Omit with `model`.
        reference: The same kinds, or ref:NAME; may be omitted for `metrics=["clipscore"]`.
        metrics: fid, kid, is, pr, dc, sfid, adm-is, adm-pr, clipscore, leakage.
        features: One extractor for all metrics, or METRIC=NAME pairs (default: fid/kid/is inception,
            pr vgg16, dc as pr).
        weights: Extractor weights file (PATH, or NAME=PATH pairs).
        batch_size: Images per feature-extraction batch.
        device: auto, cpu, cuda or cuda:N.
        cache: Use the feature cache (True/False, or a FeatureCache).
        cache_dir: Feature cache folder.
        max_images: Seeded random subset of at most N images per input.
        subset_seed: Seed of that subset.
        skip_bad: Skip unreadable images (counted) instead of stopping.
        kid_subsets: KID subsets.
        kid_subset_size: KID images per subset.
        is_splits: IS splits.
        pr_k: Precision/recall neighbourhood size.
        dc_k: Density/coverage neighbourhood size.
        fid_method: eig, sqrtm or auto.
        model: Checkpoint to sample instead of reading `generated` (needs `seeds`).
        seeds: Seeds for `model`, e.g. "0-49999".
        steps: Sampler steps for `model`.
        trust_pickle: Allow pickled checkpoints.
        repeats: With `model`: R disjoint seed ranges, mean with per-repeat values and a 95% CI.
        prompts: clipscore prompts (file or list, image i with prompt i).
        clip_model: open_clip model name for clipscore.
        clip_weights: Weights of `clip_model`.
        classifier: Clean-vs-corrupted classifier for `leakage`.
        conditioning: Class/prompt conditioning of `model` (ambient_eval.sampling.conditioning).
        resize: Center-crop and resize every image to R x R before extraction.

    Returns:
        A [FidResult][ambient_eval.metrics.fid_result.FidResult]: `.metrics`, `.to_pandas()`, `.save(dir)`.

    Examples:
        >>> import ambient_eval as ae
        >>> r = ae.fid("samples/", "reference_stats/cifar10.npz")   # doctest: +SKIP
        >>> r.save("out/")                                           # doctest: +SKIP
    """
    if "leakage" in [str(m).strip().lower() for m in metrics]:
        args = dict(locals())  # only the parameters are bound at this point
        

        args["metrics"] = list(dict.fromkeys(str(m).strip().lower() for m in metrics if str(m).strip()))
        return FidResult(_fid_with_leakage(**args))
    if int(repeats) != 1:
        return FidResult(_fid_repeats(**dict(locals())))  # only the parameters are bound at this point
    from ambient_eval.metrics import METRIC_NAMES
    from ambient_eval.metrics.fid import FID_METHODS
    from ambient_eval.metrics.stats import FeatureStats, check_comparable

    metrics = list(dict.fromkeys(m.strip().lower() for m in metrics if m.strip()))
    bad = [m for m in metrics if m not in METRIC_NAMES]
    if bad or not metrics:
        raise AmbientError(f"Unknown metric(s) {bad or metrics}. Choose from {', '.join(METRIC_NAMES)} "
                           "(comma-separated, e.g. --metrics fid,kid,pr).")
    if fid_method not in ("auto", *FID_METHODS):
        raise AmbientError(f"Unknown FID method '{fid_method}'. Use auto, eig or sqrtm.")
    if int(batch_size) < 1:
        raise AmbientError(f"Batch size must be at least 1, got {batch_size}.")
    if max_images is not None and int(max_images) < 1:
        raise AmbientError(f"--max-images must be at least 1, got {max_images}.")
    from ambient_eval.data.resized import RESIZE_KEY, check_resize, resize_setting

    resize = check_resize(resize)
    t0 = time.perf_counter()

    # 1. Inputs.
    if model is not None:
        if generated is not None:
            raise AmbientError("Give either GENERATED images or --model CKPT, not both.")
        generated = model_input(model, seeds, batch_size=batch_size, steps=steps, device=device,
                                 trust_pickle=trust_pickle, conditioning=conditioning)
        if prompts is None and conditioning is not None and conditioning.prompts is not None:
            # clipscore of a text-to-image model: each image with the prompt it was generated from
            prompts = [conditioning.prompt_of(s) for s in generated.seeds]
    if generated is not None and reference is None and metrics == ["clipscore"]:
        reference = _NO_REFERENCE        # CLIP score compares images with their prompts only
    if generated is None or reference is None:
        raise AmbientError("Both GENERATED and REFERENCE are required (GENERATED may be replaced by "
                           "--model CKPT --seeds RANGE).")
    gen = open_input(generated, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                      what="generated", resize=resize)
    ref = reference if reference is _NO_REFERENCE else open_input(
        reference, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad, what="reference",
        resize=resize)
    stats_given = [what for what, x in (("generated", gen), ("reference", ref)) if isinstance(x, FeatureStats)]
    if stats_given:
        raw = [m for m in metrics if m != "fid"]
        if raw:
            raise AmbientError(f"Metrics {raw} need image features, but the {' and '.join(stats_given)} input is "
                               "a statistics file (mean/covariance only). Pass images, or use --metrics fid.")
    per_metric = parse_features(features, metrics)
    clip_scorer = None
    if "clipscore" in metrics:
        from ambient_eval.metrics.clip_score import ClipScoreModel, read_prompt_texts

        prompt_texts = read_prompt_texts(prompts, len(gen))
        clip_scorer = ClipScoreModel(model_name=clip_model, weights=clip_weights, device=device)
        per_metric["clipscore"] = clip_scorer.key
    if "fid" in metrics and stats_given and not explicit_fid_features(features):
        per_metric["fid"] = (gen if isinstance(gen, FeatureStats) else ref).extractor
    n_gen = gen.n if isinstance(gen, FeatureStats) else len(gen)
    n_ref = ref.n if isinstance(ref, FeatureStats) else (None if ref is _NO_REFERENCE else len(ref))
    check_sizes(metrics, n_gen, n_ref, kid_subset_size, is_splits, pr_k, dc_k)

    # 2. Extractors (weights resolved now: a missing file fails before any work).
    from ambient_eval.features import get_extractor

    names = [n for n in dict.fromkeys(per_metric.values()) if clip_scorer is None or n != clip_scorer.key]
    wmap = parse_weights(weights, names)
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as wlist:
        warnings.simplefilter("always")
        if len(stats_given) == 2:  # stats vs stats: no network needed
            extractors = {gen.extractor: StatsExtractor(gen)}
            per_metric["fid"] = gen.extractor
        else:
            extractors = {n: get_extractor(n, weights=wmap[n], device=device) for n in names}
        if clip_scorer is not None:
            extractors[clip_scorer.key] = clip_scorer
        outputs = {m: output_for(m, extractors[per_metric[m]]) for m in metrics}
        if len(stats_given) == 2:
            check_comparable(gen, ref)
        for x, what in ((gen, "generated"), (ref, "reference")):
            if isinstance(x, FeatureStats) and len(stats_given) == 1:  # refuse a mismatch before extracting
                ex = extractors[per_metric["fid"]]
                check_stats_vs_extractor(x, ex, outputs["fid"], what)
            for m in ("fid", "sfid"):  # an ADM reference batch's statistics: same refusal, before extracting
                st = getattr(x, "precomputed_stats", {}).get(outputs.get(m))
                if m in metrics and st is not None:
                    check_stats_vs_extractor(st, extractors[per_metric[m]], outputs[m], what)
        fcache = feature_cache(cache, cache_dir)

        # 3. Features (cached by content), then metrics.
        values, timings = fid_compute.compute(metrics, per_metric, outputs, extractors, gen, ref, fcache, batch_size,
                                   kid_subsets, kid_subset_size, is_splits, pr_k, dc_k, fid_method,
                                   prompts=prompt_texts if clip_scorer is not None else None)
    for w in wlist:  # recorded into results.extra["warnings"], then shown to API callers once
        msg = str(w.message)
        if msg not in caught:
            caught.append(msg)
            warnings.warn(msg, w.category, stacklevel=2)
    timings["total_s"] = time.perf_counter() - t0
    res = fid_compute.build_results(metrics, per_metric, outputs, extractors, gen, ref, values, caught, timings,
                    dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, is_splits=is_splits,
                         pr_k=pr_k, dc_k=dc_k, fid_method=values.pop("_fid_method", None)))
    res.settings[RESIZE_KEY] = resize_setting(resize)
    return FidResult(res)


_NO_REFERENCE = object()   # sentinel: clipscore-only runs have no reference


def _fid_repeats(repeats: int, model: str | None, seeds: Any, **kw):
    """fid() over R disjoint seed ranges -> Results with mean metrics, `repeats`, t-based 95% `ci`."""
    from ambient_eval.metrics.repeats import combine_repeats, seed_label

    if model is None or seeds is None or int(repeats) < 1:
        raise AmbientError(f"--repeats {repeats} needs --model CKPT and --seeds RANGE (disjoint seed ranges "
                           "are generated per repeat) and a value of at least 1.")
    if isinstance(seeds, str):
        from ambient_eval.sampling.seeds import parse_seeds

        seeds = parse_seeds(seeds)
    seeds = [int(s) for s in seeds]
    span = max(seeds) - min(seeds) + 1
    kw.pop("generated", None)
    runs = [fid(None, model=model, seeds=[s + r * span for s in seeds], repeats=1, **kw).results
            for r in range(int(repeats))]
    return combine_repeats(runs, [seed_label([s + r * span for s in seeds]) for r in range(len(runs))])


def _fid_with_leakage(generated: Any = None, reference: Any = None, *, metrics, classifier=None, model=None,
                     seeds=None, steps: int = 18, batch_size: int = 64, device: str = "auto",
                     trust_pickle: bool = False, max_images=None, subset_seed: int = 0, skip_bad: bool = False,
                     repeats: int = 1, conditioning=None, **kw):
    """fid() with 'leakage' among the metrics => Results with leakage metrics, CIs and settings.

    The generated images are opened once (a checkpoint's samples are kept in memory, so the classifier
    sees the very pixels the other metrics scored); leakage goes into the same Results.
    """
    from ambient_eval.metrics import leakage as L
    from ambient_eval.audits.kept_images import KeptImages
    from ambient_eval.data.base import ImageSource
    from ambient_eval.results.envelope import KIND_FID, Results

    if classifier is None:
        raise AmbientError("--metrics leakage needs --classifier PATH: a clean-vs-corrupted classifier written by "
                           "`ambient-eval annotate CLEAN CORRUPTED -o ann.jsonl --save-classifier clf.safetensors`.")
    if int(repeats) != 1:
        raise AmbientError("--metrics leakage is not available with --repeats; run one seed range at a time.")
    clf = L.load_classifier(classifier)          # a bad file fails before any sampling
    if model is not None:
        if generated is not None:
            raise AmbientError("Give either GENERATED images or --model CKPT, not both.")
        generated = KeptImages(model_input(model, seeds, batch_size=batch_size, steps=steps, device=device,
                                                trust_pickle=trust_pickle, conditioning=conditioning))
    if generated is None:
        raise AmbientError("--metrics leakage needs GENERATED images (or --model CKPT --seeds RANGE).")
    gen = open_input(generated, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                          what="generated")
    if not isinstance(gen, ImageSource):
        raise AmbientError("Corruption leakage needs generated images, not a statistics file.")
    rest = [m for m in metrics if m != L.LEAKAGE]
    if rest:
        if reference is None:
            raise AmbientError(f"Metrics {rest} need REFERENCE images; pass them, or use --metrics leakage alone.")
        ref = open_input(reference, max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad,
                              what="reference")
        res = fid(gen, ref, metrics=rest, batch_size=batch_size, device=device, **kw).results
    else:
        res = Results(kind=KIND_FID, metrics={}, settings={"n_generated": len(gen)},
                      inputs={"generated": {"description": gen.description, "fingerprint": gen.fingerprint(),
                                            "n": len(gen)}})
    p = L.source_probs(clf, gen, batch=batch_size)
    m, ci, settings = L.leakage_metrics(p, clf)
    res.metrics.update(m)
    res.ci.update(ci)
    res.settings[L.SETTINGS_KEY] = settings
    # The "feature space" of leakage is the classifier: gate/compare refuse results from another one.
    res.settings.setdefault("per_metric", {})[L.LEAKAGE] = {
        "extractor": "leakage-classifier", "mode": f"sigma={clf.sigma:g}", "feature": "p_corrupted",
        "weights_sha256": clf.sha256}
    return res
