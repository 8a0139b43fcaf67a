"""HTML report of a memorization audit: summary table with CIs, overlaid top-1 similarity
histograms with threshold lines, and a gallery of the closest (sample | training image) pairs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ambient_eval.audits import memorization as M

if TYPE_CHECKING:
    from ambient_eval.audits.memorization_run import MemorizationAudit


@dataclass(frozen=True)
class ReportDefaults:
    top_n: int = M.DEFAULTS.top_n     # closest pairs per model in the gallery
    thumb: int = 128                  # thumbnails are downscaled to at most this many pixels per side
    bins: int = 60                    # histogram bins over the observed similarity range


DEFAULTS = ReportDefaults()


def _thumb(img: np.ndarray, size: int) -> Any:
    # CHW uint8 => PIL image, downscaled (never upscaled) so big images keep the file small
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)))
    if max(im.size) > size:
        im.thumbnail((size, size), Image.Resampling.LANCZOS)
    return im


def _fmt_ci(metrics: dict[str, float], ci: dict[str, list[float]], key: str) -> str:
    v = metrics.get(key)
    if v is None:
        return ""
    lo_hi = ci.get(key)
    return f"{v:.4f}" + (f" [{lo_hi[0]:.4f}, {lo_hi[1]:.4f}]" if lo_hi else "")


def summary_rows(audit: "MemorizationAudit") -> list[dict[str, Any]]:
    """One row per model: n, mean, quantiles and fractions above thresholds with 95% CIs."""
    rows = []
    for m in audit.models:
        keys = [M.TOP1_MEAN, *[M.quantile_key(q) for q in M.DEFAULTS.quantiles],
                *[M.frac_above_key(t) for t in audit.thresholds]]
        if M.FRAC_CARLINI in m.metrics:
            keys.append(M.FRAC_CARLINI)
        row: dict[str, Any] = {"model": m.name, "n": int(m.metrics[M.N])}
        row.update({k: _fmt_ci(m.metrics, m.ci, k) for k in keys})
        rows.append(row)
    return rows


def histogram_figure(audit: "MemorizationAudit") -> Any:
    """Overlaid histograms of top-1 similarity per model, a dashed line per threshold."""
    import plotly.graph_objects as go

    fig = go.Figure()
    # the same bins for every model, so overlaid bars compare like with like
    lo = min(float(m.table["top1_sim"].min()) for m in audit.models)
    hi = max(float(m.table["top1_sim"].max()) for m in audit.models)
    size = max(hi - lo, 1e-3) / DEFAULTS.bins
    for m in audit.models:
        fig.add_trace(go.Histogram(x=m.table["top1_sim"], name=m.name, opacity=0.6, histnorm="probability",
                                   xbins={"start": lo, "end": hi + size, "size": size}))
    for i, t in enumerate(sorted(audit.thresholds)):   # labels on 3 staggered rows: close ones do not overlap
        fig.add_vline(x=t, line_dash="dash", line_color="#cf222e")
        fig.add_annotation(x=t, y=1, yref="paper", yanchor="bottom", yshift=2 + 13 * (i % 3), showarrow=False,
                           text=f"{t:g}", font={"color": "#cf222e", "size": 11})
    fig.update_layout(barmode="overlay", xaxis_title=f"top-1 cosine similarity ({audit.embedding['embed']})",
                      yaxis_title="fraction of samples", legend_title="model",
                      margin={"l": 50, "r": 20, "t": 60, "b": 50})
    return fig


def gallery_cards(audit: "MemorizationAudit", model_index: int, top_n: int = DEFAULTS.top_n) -> list[dict]:
    """Cards for the top_n closest pairs of one model, most similar first."""
    m = audit.models[model_index]
    pairs = M.closest_pairs(m.table, top_n)
    if pairs.empty:
        return []
    gen = m.source.read(pairs["sample_index"].tolist()).numpy()     # NCHW uint8
    ref = audit.train.read(pairs["top1_index"].tolist()).numpy()    # NCHW uint8
    cards = []
    for rank, (row, g, r) in enumerate(zip(pairs.itertuples(index=False), gen, ref), start=1):
        caption = f"#{rank} {row.sample} | train {row.top1_name} (#{row.top1_index}) | cos {row.top1_sim:.4f}"
        images = [_thumb(g, DEFAULTS.thumb), _thumb(r, DEFAULTS.thumb)]
        if "prompt" in pairs:          # text-to-image: prompt | generation | match (| caption's image)
            caption = f"#{rank} \"{row.prompt}\" | generation {row.sample} | match {row.top1_name} " \
                      f"cos {row.top1_sim:.4f}"
            own = int(getattr(row, "caption_image_index", -1))
            if own >= 0:
                images.append(_thumb(audit.train.read([own]).numpy()[0], DEFAULTS.thumb))
                caption += f" | caption's image {row.caption_image} cos {row.caption_image_sim:.4f}"
        cards.append({"images": images, "caption": caption})
    return cards


def build_report(audit: "MemorizationAudit", path: str | os.PathLike, *, top_n: int = DEFAULTS.top_n) -> Path:
    """Write the HTML report (self-contained, opens offline); returns its path."""
    from ambient_eval.reports.html import Report

    emb = audit.embedding
    settings = {"embed": emb["embed"], "extractor": emb["extractor"], "mode": emb["mode"],
                "weights_sha256": emb["weights_sha256"] or "none", "normalization": emb["normalization"],
                "thresholds": ", ".join(f"{t:g}" for t in audit.thresholds), "k": audit.config.k,
                "index": audit.index.get("kind")}
    inputs = {"train": f"{audit.train.description} ({len(audit.train)} images)",
              **{m.name: f"{m.source.description} ({len(m.source)} images)" for m in audit.models}}
    rep = Report("Memorization audit", settings=settings, inputs=inputs)
    if not emb["weights_official"]:
        rep.text(f"The {emb['extractor']} weights are not the official ones: similarities are not comparable "
                 "with published numbers.", note=True)
    rep.heading("Summary")
    rep.text("Top-1 cosine similarity of each generated sample to its nearest training image; fractions of "
             "samples above each threshold; 95% bootstrap intervals in brackets.")
    rep.table(summary_rows(audit))
    if audit.index.get("kind", "flat") != "flat":
        rep.text(f"Approximate index '{audit.index['kind']}': recall@1 vs exact search "
                 f"{audit.index.get('recall_at_1', float('nan')):.4f} on {audit.index.get('n_queries')} "
                 f"sampled queries (seed {audit.index.get('seed')}).", note=audit.index.get("recall_at_1", 0) < 0.95)
    if audit.calibration:
        from ambient_eval.reports.calibration_report import add_section

        add_section(rep, audit.calibration)
    rep.heading("Top-1 similarity distribution")
    rep.figure(histogram_figure(audit))
    for i, m in enumerate(audit.models):
        own = " | caption's own image" if "caption_image" in m.table else ""
        what = f"prompt | generation | match{own}" if "prompt" in m.table else "generated | nearest training image"
        rep.heading(f"Closest pairs: {m.name} ({what})")
        rep.gallery(gallery_cards(audit, i, top_n))
    return rep.save(path)
