"""Which extractor and which of its outputs each metric uses, and which weights file each extractor gets."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from ambient_eval.errors import AmbientError

# Metric name -> extractor used when the caller does not choose (torch-fidelity defaults; dc follows pr).
DEFAULT_EXTRACTOR = {"fid": "inception", "kid": "inception", "is": "inception", "pr": "vgg16",
                     "sfid": "inception", "adm-is": "inception", "adm-pr": "inception", "clipscore": "clip"}
# Extractors whose Frechet distance is reported as "fid" (others as fd_<extractor>).
INCEPTION_NAMES = ("inception", "inception-clean")


def parse_features(features: str | Mapping[str, str] | None, metrics: Sequence[str]) -> dict[str, str]:
    """Extractor per metric from None, 'NAME', {'pr': 'inception'} or 'fid=inception-clean,pr=inception'."""
    from ambient_eval.metrics import METRIC_NAMES

    explicit: dict[str, str] = {}
    if isinstance(features, str):
        items = [s.strip() for s in features.split(",") if s.strip()]
        bare = [i for i in items if "=" not in i]
        if len(set(bare)) > 1:   # 'pixel-8,pixel-16' used pixel-16 for every metric (issue 24)
            raise AmbientError(f"--features '{features}' names {len(set(bare))} extractors for all metrics "
                               f"({', '.join(dict.fromkeys(bare))}). Give one NAME for all metrics, or one "
                               "per metric: e.g. fid=pixel-8,pr=pixel-16.")
        explicit.update({m: bare[0] for m in METRIC_NAMES} if bare else {})   # METRIC=NAME below wins
        pairs = [tuple(x.strip() for x in i.partition("=")[::2]) for i in items if "=" in i]
        for m, name in pairs:
            if sum(1 for mm, nn in pairs if mm == m and nn != name):
                raise AmbientError(f"--features '{features}' gives metric '{m}' two extractors. Name each "
                                   "metric once.")
            explicit[m] = name
    elif features:
        explicit = dict(features)
    bad = [m for m in explicit if m not in METRIC_NAMES]
    if bad:
        raise AmbientError(f"--features names unknown metric(s) {bad}. Use NAME for all metrics or "
                           f"METRIC=NAME with METRIC in {', '.join(METRIC_NAMES)}.")
    out = {}
    for m in metrics:
        if m in explicit:
            out[m] = explicit[m]
        elif m == "dc":
            out[m] = explicit.get("pr", DEFAULT_EXTRACTOR["pr"])
        else:
            out[m] = DEFAULT_EXTRACTOR[m]
    return out


def parse_weights(weights: str | Mapping[str, str] | Sequence[str] | None, extractors: Sequence[str]) -> dict[str, str | None]:
    """Weights path per extractor from None, 'PATH', ['inception=PATH', 'vgg16=PATH'] or a mapping."""
    out: dict[str, str | None] = {e: None for e in extractors}
    if not weights:
        return out
    items = [weights] if isinstance(weights, (str, os.PathLike)) else weights
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for it in items:
            name, sep, path = str(it).partition("=")
            from ambient_eval.features.registry import is_extractor_name

            # NAME=PATH names an extractor (used or not: an unused one gets the clear error below);
            # anything else is a path, which may itself contain '='.
            named = sep and (name in extractors or is_extractor_name(name)) and not os.path.exists(str(it))
            pairs.append((name, path) if named else (None, str(it)))
    for name, path in pairs:
        if name is None:
            weighted = [e for e in extractors if not e.startswith("pixel")]
            if len(weighted) != 1:
                raise AmbientError(f"--weights '{path}' is ambiguous: these metrics use the extractors "
                                   f"{list(extractors)}. Write --weights NAME=PATH for each (e.g. "
                                   "--weights inception=pt_inception.pth --weights vgg16=vgg16.pth).")
            name = weighted[0]
        if name not in out:
            raise AmbientError(f"--weights given for extractor '{name}', which no requested metric uses "
                               f"({list(extractors)}).")
        out[name] = path
    return out


def output_for(metric: str, extractor) -> str:
    """Which output of `extractor` a metric uses (IS: logits; else pool3 / fc2_relu / default)."""
    from ambient_eval.features.base import FC2_RELU, LOGITS, MIXED6_CONV7, POOL3

    if metric in ("is", "adm-is"):
        if LOGITS not in extractor.outputs:
            raise AmbientError(f"Inception Score needs Inception logits, but extractor '{extractor.name}' "
                               f"has none. Use --features {metric}=inception.")
        return LOGITS
    if metric == "sfid":
        if MIXED6_CONV7 not in extractor.outputs:
            raise AmbientError(f"sFID needs Inception mixed_6/conv features, which extractor '{extractor.name}' "
                               "does not produce. Use --features sfid=inception (the TF-compatible Inception, "
                               "as the ADM evaluator).")
        return MIXED6_CONV7
    for name in (POOL3, FC2_RELU):
        if name in extractor.outputs:
            return name
    return extractor.default_output
