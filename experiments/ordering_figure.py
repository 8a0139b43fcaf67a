"""SVG figure of the ordering experiment: per setting, FD and memorised fraction per model.

Dots: cells (x offset by split, so a split's seeds sit together); bar: mean; whiskers: 95% interval over
split means. No plotting library needed."""
from __future__ import annotations

import math

COLORS = {"clean-only": "#1f77b4", "naive-all": "#d62728", "ambient-pixel": "#2ca02c", "ambient-loss": "#9467bd"}
PANELS = (("fd", "FD vs held-out (pixels, lower is better)"), ("memorized", "memorised fraction (corr > 0.95)"))


def _panel(out: list, x0: float, pw: float, H: int, pad: int, title: str, key: str, cells, summary, models) -> None:
    vals = [c[f"{m}.{key}"] for m in models for c in cells]
    vals += [summary[f"{m}.{key}"][j] for m in models for j in (1, 2) if math.isfinite(summary[f"{m}.{key}"][j])]
    lo, hi = min(0.0, min(vals)), (max(vals) * 1.1) or 1.0
    y = lambda v: H - pad - (v - lo) / (hi - lo) * (H - 2 * pad)  # noqa: E731
    out.append(f'<text x="{x0 + pw / 2:.0f}" y="{pad - 22}" text-anchor="middle" font-weight="bold">{title}</text>')
    out.append(f'<line x1="{x0:.0f}" y1="{y(lo):.1f}" x2="{x0:.0f}" y2="{y(hi):.1f}" stroke="black"/>')
    for t in range(6):
        v = lo + (hi - lo) * t / 5
        out.append(f'<text x="{x0 - 4:.0f}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        out.append(f'<line x1="{x0:.0f}" y1="{y(v):.1f}" x2="{x0 + pw - 20:.0f}" y2="{y(v):.1f}" stroke="#ddd"/>')
    for mi, m in enumerate(models):
        cx = x0 + 10 + (mi + 0.3) * (pw - 30) / len(models)
        c = COLORS.get(m, "black")
        mean, lo_, hi_ = summary[f"{m}.{key}"][:3]
        if math.isfinite(lo_):
            out.append(f'<line x1="{cx:.1f}" y1="{y(lo_):.1f}" x2="{cx:.1f}" y2="{y(hi_):.1f}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<rect x="{cx - 6:.1f}" y="{y(mean) - 2:.1f}" width="12" height="4" fill="{c}"/>')
        for r in cells:
            dx = 10 + 8 * r["split"] + 2 * r["seed"]
            out.append(f'<circle cx="{cx + dx:.1f}" cy="{y(r[f"{m}.{key}"]):.1f}" r="2.5" fill="{c}" fill-opacity="0.6">'
                       f'<title>split {r["split"]} seed {r["seed"]}: {r[f"{m}.{key}"]:.3f}</title></circle>')
        out.append(f'<text x="{cx + 10:.1f}" y="{H - pad + 16}" text-anchor="middle" font-size="10">{m}</text>')


def svg(found: dict, models, splits: int, summarise) -> str:
    """One row of two panels per setting."""
    W, RH, pad = 900, 330, 50
    H = RH * len(found) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    pw = (W - pad * 2) / len(PANELS)
    for ri, (name, d) in enumerate(found.items()):
        s = summarise(d["cells"], models, splits)
        g = [f'<g transform="translate(0,{ri * RH})">']
        for pi, (key, title) in enumerate(PANELS):
            _panel(g, pad + pi * pw, pw, RH, pad, f"{name}: {title}", key, d["cells"], s, models)
        out += g + ["</g>"]
    out.append(f'<text x="{W / 2:.0f}" y="{H - 10}" text-anchor="middle" fill="#555">bar: mean; whiskers: 95% '
               f't-interval over {splits} split means; dots: cells (grouped by split)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
