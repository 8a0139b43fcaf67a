"""Combine results of one checkpoint over disjoint seed ranges into one result with repeats.

Noise-aware rules need per-repeat values (results.repeats). `gate --as-repeats` and
`gate --model` with [evaluate] repeats build them from several evaluations: the headline metric
becomes the mean over the repeats, results.repeats keeps each evaluation's value.
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from ambient_eval.errors import AmbientError
from ambient_eval.results import COMPARABILITY_KEYS, Results


def _generated_fingerprint(res: Results) -> str | None:
    gen = res.inputs.get("generated") if isinstance(res.inputs, dict) else None
    fp = gen.get("fingerprint") if isinstance(gen, dict) else None
    return fp if isinstance(fp, str) else None


def combine_repeats(runs: Sequence[Results], labels: Sequence[str]) -> Results:
    """One Results: metrics = mean over `runs`, repeats = per-run values (labels name the runs)."""
    if len(runs) < 2:
        raise AmbientError("Repeats need at least two evaluations over disjoint seed ranges.")
    first = runs[0]
    kinds = {r.kind for r in runs}
    if len(kinds) > 1:
        raise AmbientError(f"Repeats must be of one kind, got {sorted(kinds)} ({', '.join(labels)}).")
    for r, label in zip(runs[1:], labels[1:]):
        for key in COMPARABILITY_KEYS:
            if r.settings.get(key) != first.settings.get(key):
                raise AmbientError(f"Repeats are not comparable: '{label}' has {key} = {r.settings.get(key)!r} "
                                   f"but '{labels[0]}' has {first.settings.get(key)!r}. Evaluate every seed "
                                   "range with the same settings and the same number of seeds.")
    fps = [_generated_fingerprint(r) for r in runs]
    seen: dict[str, str] = {}
    for fp, label in zip(fps, labels):
        if fp is not None and fp in seen:
            raise AmbientError(f"'{label}' and '{seen[fp]}' evaluated the same generated images "
                               f"(fingerprint {fp[:12]}...); repeats must use disjoint seed ranges.")
        if fp is not None:
            seen[fp] = label
    names = [k for k in first.metrics if all(isinstance(r.metrics.get(k), (int, float)) for r in runs)]
    repeats = {k: [float(r.metrics[k]) for r in runs] for k in names}
    metrics = {k: sum(v) / len(v) for k, v in repeats.items()}
    settings: dict[str, Any] = {**first.settings, "repeats_of": list(labels), "headline": "mean over repeats"}
    return Results(kind=first.kind, metrics=metrics, settings=settings, repeats=repeats,
                   inputs={"repeats": [json.loads(json.dumps(r.inputs, default=str)) for r in runs]},
                   extra={"repeats": [r.extra for r in runs]}, versions=dict(first.versions))
