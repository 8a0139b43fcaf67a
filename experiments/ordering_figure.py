"""SVG figure of the ordering experiment: per model, FD per seed (dots) with mean and 95% interval."""
from __future__ import annotations

import math

COLORS = {"clean-only": "#1f77b4", "naive-all": "#d62728", "ambient-omni": "#2ca02c"}


def svg(rows: list[dict], summary: dict, models) -> str:
    """Self-contained SVG (no plotting library needed). Two panels: FD and memorised fraction."""
    W, H, pad = 760, 360, 60
    panels = [("fd", "FD vs held-out (pixels, lower is better)"), ("memorized", "memorised fraction (corr > 0.95)")]
    pw = (W - pad * 2) / len(panels)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for pi, (key, title) in enumerate(panels):
        x0 = pad + pi * pw
        vals = [r[f"{m}.{key}"] for m in models for r in rows]
        vals += [summary[f"{m}.{key}"][j] for m in models for j in (1, 2) if math.isfinite(summary[f"{m}.{key}"][j])]
        lo, hi = min(0.0, min(vals)), max(vals) * 1.1 or 1.0
        y = lambda v: H - pad - (v - lo) / (hi - lo) * (H - 2 * pad)  # noqa: E731
        out.append(f'<text x="{x0 + pw / 2:.0f}" y="{pad - 25}" text-anchor="middle" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{x0:.0f}" y1="{y(lo):.1f}" x2="{x0:.0f}" y2="{y(hi):.1f}" stroke="black"/>')
        for t in range(6):
            v = lo + (hi - lo) * t / 5
            out.append(f'<text x="{x0 - 5:.0f}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
            out.append(f'<line x1="{x0:.0f}" y1="{y(v):.1f}" x2="{x0 + pw - 20:.0f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        for mi, m in enumerate(models):
            cx = x0 + (mi + 0.5) * (pw - 20) / len(models)
            c = COLORS.get(m, "black")
            mean, l, h = summary[f"{m}.{key}"]
            if math.isfinite(l):
                out.append(f'<line x1="{cx:.1f}" y1="{y(l):.1f}" x2="{cx:.1f}" y2="{y(h):.1f}" stroke="{c}" stroke-width="2"/>')
                for v in (l, h):
                    out.append(f'<line x1="{cx - 8:.1f}" y1="{y(v):.1f}" x2="{cx + 8:.1f}" y2="{y(v):.1f}" stroke="{c}" stroke-width="2"/>')
            out.append(f'<rect x="{cx - 6:.1f}" y="{y(mean) - 2:.1f}" width="12" height="4" fill="{c}"/>')
            for k, r in enumerate(rows):
                out.append(f'<circle cx="{cx + 14 + 5 * k:.1f}" cy="{y(r[f"{m}.{key}"]):.1f}" r="3" fill="{c}" '
                           f'fill-opacity="0.6"><title>seed {r["seed"]}: {r[f"{m}.{key}"]:.3f}</title></circle>')
            out.append(f'<text x="{cx:.1f}" y="{H - pad + 18}" text-anchor="middle">{m}</text>')
    out.append(f'<text x="{W / 2:.0f}" y="{H - 12}" text-anchor="middle" fill="#555">bar: mean; whiskers: 95% '
               f't-interval over {len(rows)} seeds; dots: seeds</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
