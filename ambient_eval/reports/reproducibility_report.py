"""HTML report of a reproducibility audit: RP heatmap, per-pair similarity histograms, seed grid."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ambient_eval.audits.reproducibility import MemorizationScore, RPResult
from ambient_eval.reports.html import Report

MAX_HISTOGRAMS = 15      # pairs shown as histograms (M models give M(M-1)/2 pairs)


def _heatmap(res: RPResult):
    """RP matrix as an annotated heatmap (value and CI in every cell)."""
    import plotly.graph_objects as go

    text = [[f"{res.rp[i, j]:.3f}<br>[{res.ci_lo[i, j]:.3f}, {res.ci_hi[i, j]:.3f}]"
             for j in range(len(res.names))] for i in range(len(res.names))]
    fig = go.Figure(go.Heatmap(z=res.rp, x=res.names, y=res.names, zmin=0.0, zmax=1.0, text=text,
                               texttemplate="%{text}", colorscale="Viridis",
                               colorbar={"title": "RP"}))
    fig.update_layout(title=f"RP score (fraction of seeds with cosine > {res.threshold:g})",
                      yaxis={"autorange": "reversed"}, height=max(320, 80 * len(res.names) + 120))
    return fig


def _histogram(a: str, b: str, cos: np.ndarray, threshold: float):
    """Per-seed cosine similarities of one pair, with the threshold as a vertical line."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Histogram(x=cos, xbins={"start": -1.0, "end": 1.02, "size": 0.02},
                                 name=f"{a} | {b}"))
    fig.add_vline(x=threshold, line_dash="dash", line_color="red",
                  annotation_text=f"threshold {threshold:g}")
    fig.update_layout(title=f"{a} vs {b}: cosine of same-seed samples (N={cos.size})",
                      xaxis_title="cosine similarity", yaxis_title="seeds", xaxis={"range": [-1, 1.02]},
                      height=320, showlegend=False)
    return fig


def pair_rows(res: RPResult) -> list[dict[str, Any]]:
    """One table row per pair: RP, CI, and cosine quantiles."""
    idx = {n: i for i, n in enumerate(res.names)}
    rows = []
    for (a, b), cos in res.cosine.items():
        i, j = idx[a], idx[b]
        rows.append({"model A": a, "model B": b, "RP": float(res.rp[i, j]),
                     "CI low": float(res.ci_lo[i, j]), "CI high": float(res.ci_hi[i, j]),
                     "mean cosine": float(cos.mean()), "median cosine": float(np.median(cos)),
                     "seeds": int(cos.size)})
    return rows


def build_report(res: RPResult, *, thumbs: Mapping[str, Any], grid_seeds: Sequence[int],
                 memorization: Mapping[str, MemorizationScore] | None = None,
                 settings: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
                 title: str = "Reproducibility across models") -> Report:
    """The report. thumbs: label -> NCHW uint8 images of `grid_seeds`, in that order."""
    rep = Report(title, settings=settings or {}, inputs=inputs or {})
    rep.text(f"{len(res.names)} models, {res.seeds.size} shared seeds. Same seed = same initial "
             "noise and a deterministic sampler; a pair of samples counts as reproduced when the "
             f"cosine of their embeddings exceeds {res.threshold:g} (Zhang et al. 2023).")
    rep.heading("RP matrix")
    rep.figure(_heatmap(res))
    rep.table(pair_rows(res))
    if memorization:
        rep.heading("Memorization vs generalization")
        rep.text("Memorization score = fraction of a model's samples whose closest training image "
                 f"has cosine > {res.threshold:g}; GL score = 1 - memorization score.")
        rep.table([{"model": k, "memorization": s.memorization, "CI low": s.ci[0], "CI high": s.ci[1],
                    "GL": s.gl, "samples": s.n} for k, s in memorization.items()])
    rep.heading("Similarity of same-seed samples, per pair")
    pairs = list(res.cosine.items())
    if len(pairs) > MAX_HISTOGRAMS:
        rep.text(f"Showing the first {MAX_HISTOGRAMS} of {len(pairs)} pairs; all per-seed values "
                 "are in per_seed.parquet / per_seed.csv.", note=True)
    for (a, b), cos in pairs[:MAX_HISTOGRAMS]:
        rep.figure(_histogram(a, b, cos, res.threshold))
    rep.heading("Same seeds across models")
    rep.text("Each card is one seed; images left to right: " + ", ".join(res.names) + ".")
    seed_row = {int(s): i for i, s in enumerate(res.seeds.tolist())}
    cards = []
    for k, s in enumerate(grid_seeds):
        i = seed_row[int(s)]
        cos_txt = ", ".join(f"{a}|{b} {cos[i]:.2f}" for (a, b), cos in list(res.cosine.items())[:3])
        cards.append({"images": [thumbs[n][k] for n in res.names],
                      "caption": f"seed {int(s)}: cosine {cos_txt}"})
    rep.gallery(cards)
    return rep
