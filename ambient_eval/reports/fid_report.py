"""HTML report of one or several `fid` results: metric table, P/R and D/C bars, run comparison."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ambient_eval.reports.html import Report
from ambient_eval.results.envelope import (COMPARABILITY_KEYS, COVERAGE, DENSITY, FID, IS, IS_STD, KID, KID_STD,
                                  PRECISION, RECALL, Results)

# Metric columns in display order; fd_<extractor> keys are appended after FID when present.
_ORDER = (FID, KID, KID_STD, IS, IS_STD, PRECISION, RECALL, DENSITY, COVERAGE)
_PAIRS = (("Precision / recall", (PRECISION, RECALL)), ("Density / coverage", (DENSITY, COVERAGE)))


def _columns(runs: Sequence[Results]) -> list[str]:
    keys = list(dict.fromkeys(k for r in runs for k in r.metrics))
    fd = [k for k in keys if k.startswith("fd_")]
    return ([FID] if FID in keys else []) + fd + [k for k in _ORDER[1:] if k in keys] + \
        [k for k in keys if k not in _ORDER and k not in fd]


def build_fid_report(runs: Sequence[Results], labels: Sequence[str] | None = None,
                     title: str = "ambient-eval fid") -> Report:
    """A Report over `runs` (first one's settings in the header)."""
    import plotly.graph_objects as go

    labels = list(labels or [f"run {i + 1}" for i in range(len(runs))])
    first = runs[0]
    rep = Report(title, settings={k: v for k, v in first.settings.items() if not isinstance(v, (dict, list))},
                 inputs={k: (v.get("description") or v.get("type")) if isinstance(v, dict) else v
                         for k, v in first.inputs.items()})
    cols = _columns(runs)
    rep.heading("Metrics")
    rows = []
    for lab, r in zip(labels, runs):
        row = {"run": lab, "n_generated": r.settings.get("n_generated"), "n_reference": r.settings.get("n_reference"),
               "extractor": r.settings.get("extractor"), "mode": r.settings.get("mode")}
        row.update({c: r.metrics.get(c, "") for c in cols})
        rows.append(row)
    rep.table(rows, ["run", "n_generated", "n_reference", "extractor", "mode", *cols])
    if any(r.settings.get("weights_official") is False for r in runs):
        rep.text("Feature-extractor weights are not the official files: numbers are not comparable with "
                 "published ones.", note=True)
    for r in runs:
        for w in r.extra.get("warnings", []):
            rep.text(w, note=True)
        for n in r.extra.get("reference_notes", []):
            rep.text(n)
    for heading, keys in _PAIRS:
        if not any(k in r.metrics for r in runs for k in keys):
            continue
        rep.heading(heading)
        fig = go.Figure([go.Bar(name=lab, x=list(keys), y=[r.metrics.get(k) for k in keys])
                         for lab, r in zip(labels, runs)])
        fig.update_layout(barmode="group", height=340, margin=dict(l=40, r=10, t=30, b=40),
                          yaxis_title="value (1 = ideal for P, R, C; density ~1)")
        rep.figure(fig)
    if len(runs) > 1:
        rep.heading("Comparability")
        rows = [{"setting": k, **{lab: str(r.settings.get(k)) for lab, r in zip(labels, runs)}}
                for k in COMPARABILITY_KEYS]
        rep.table(rows, ["setting", *labels])
        differ = [k for k in COMPARABILITY_KEYS if len({str(r.settings.get(k)) for r in runs}) > 1]
        if differ:
            rep.text(f"These runs differ in {', '.join(differ)}: their numbers are not directly comparable.",
                     note=True)
        if FID in cols:
            fig = go.Figure(go.Bar(x=labels, y=[r.metrics.get(FID) for r in runs]))
            fig.update_layout(height=320, yaxis_title="FID (lower is better)", margin=dict(l=40, r=10, t=30, b=40))
            rep.figure(fig)
    return rep


def save_fid_report(runs: Sequence[Results], path: str | os.PathLike, labels: Sequence[str] | None = None) -> Path:
    """Build and write the report atomically; returns its path."""
    return build_fid_report(runs, labels).save(path)
