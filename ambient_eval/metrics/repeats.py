"""The one repeats combiner: results of one checkpoint over disjoint seed ranges -> one Results.

Used by `fid --model ... --repeats R`, `gate --model` with [evaluate] repeats and `gate --as-repeats`,
so all three write the same results.json shape:

  metrics   mean over the repeats          repeats  per-repeat values
  ci        mean +- t_{0.975, R-1} s / sqrt(R)  (Student t, s = sample std, ddof=1)
  settings  first run's settings + repeats (R), repeats_of (labels), headline
  inputs    generated: every repeat's generated input; the other inputs of the first run
  extra     repeat_summary (mean/std/min/max), repeat_seeds (labels), warnings, timings (summed)

Refused (AmbientError): fewer than two runs, runs of different kinds, runs that are not comparable
(N, reference or any metric's feature space) and runs over the same generated images.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ambient_eval.errors import AmbientError


def seed_label(seeds: Sequence[int]) -> str:
    """'0-49999' for a contiguous range, else the comma-separated seeds."""
    s = [int(x) for x in seeds]
    if s and s == list(range(s[0], s[0] + len(s))):
        return f"{s[0]}-{s[-1]}"
    return ",".join(map(str, s))


def _generated_fingerprint(res) -> str | None:
    gen = res.inputs.get("generated") if isinstance(res.inputs, dict) else None
    fp = gen.get("fingerprint") if isinstance(gen, dict) else None
    return fp if isinstance(fp, str) else None


def check_repeats(runs: Sequence, labels: Sequence[str]) -> None:
    """One kind, comparable per metric, disjoint generated images."""
    from ambient_eval.results import comparability
    if len(runs) < 2:
        raise AmbientError("Repeats need at least two evaluations over disjoint seed ranges.")
    kinds = {r.kind for r in runs}
    if len(kinds) > 1:
        raise AmbientError(f"Repeats must be of one kind, got {sorted(kinds)} ({', '.join(labels)}).")
    first = runs[0]
    for r, label in zip(runs[1:], labels[1:]):
        comparability.check_comparable(first.settings, r.settings, list(first.metrics),
                                       label_a=f"'{labels[0]}'", label_b=f"'{label}'", what="Repeats")
    seen: dict[str, str] = {}
    for r, label in zip(runs, labels):
        fp = _generated_fingerprint(r)
        if fp is not None and fp in seen:
            raise AmbientError(f"'{label}' and '{seen[fp]}' evaluated the same generated images "
                               f"(fingerprint {fp[:12]}...); repeats must use disjoint seed ranges.")
        if fp is not None:
            seen[fp] = label


def combine_repeats(runs: Sequence, labels: Sequence[str]):
    """One Results from R comparable runs over disjoint seed ranges (see the module docstring)."""
    from scipy import stats as sps

    from ambient_eval.results.envelope import Results

    check_repeats(runs, labels)
    first, R = runs[0], len(runs)
    names = [k for k in first.metrics
             if all(isinstance(r.metrics.get(k), (int, float)) and not isinstance(r.metrics.get(k), bool)
                    for r in runs)]
    metrics, repeats, ci, summary = {}, {}, {}, {}
    for k in names:
        v = np.array([r.metrics[k] for r in runs], np.float64)
        mean, std = float(v.mean()), float(v.std(ddof=1))
        half = float(sps.t.ppf(0.975, R - 1) * std / np.sqrt(R))
        metrics[k], repeats[k], ci[k] = mean, v.tolist(), [mean - half, mean + half]
        summary[k] = {"mean": mean, "std": std, "min": float(v.min()), "max": float(v.max())}
    settings: dict[str, Any] = {**first.settings, "repeats": R, "repeats_of": list(labels),
                                "headline": "mean over repeats"}
    inputs: dict[str, Any] = {**first.inputs, "generated": [r.inputs.get("generated") for r in runs]}
    timings: dict[str, float] = {}
    for r in runs:
        for key, t in (r.extra.get("timings") or {}).items():
            if isinstance(t, (int, float)):
                timings[key] = timings.get(key, 0.0) + float(t)
    extra: dict[str, Any] = {
        "repeat_summary": summary, "repeat_seeds": list(labels),
        "warnings": list(dict.fromkeys(w for r in runs for w in r.extra.get("warnings", []))),
        "timings": timings}
    for key in ("reference_notes",):
        if key in first.extra:
            extra[key] = first.extra[key]
    return Results(kind=first.kind, metrics=metrics, settings=settings, ci=ci, repeats=repeats,
                   inputs=inputs, extra=extra, versions=dict(first.versions))
