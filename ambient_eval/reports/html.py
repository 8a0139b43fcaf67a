"""A small HTML report builder: header with provenance, tables, Plotly figures, image galleries.

plotly.js is embedded once per file (inline) when the page has figures, so the report opens offline
(AMBIENT_EVAL_PLOTLYJS=cdn links it instead); the layout is a single
responsive column that renders on narrow screens. Every figure div carries the class
`ae-figure` so browser tests can check that each one rendered.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ambient_eval import __version__
from ambient_eval.files.atomic import write_text

REPORTS_DIR_ENV = "AMBIENT_EVAL_REPORTS"
REPORT_HTML = "report.html"   # every command's HTML report, inside its --out
# plotly.js (~4.7 MB) is embedded only in pages with figures, once. AMBIENT_EVAL_PLOTLYJS=cdn links
# it from cdn.plot.ly instead (small files, needs internet to view); "inline" (default) opens offline.
PLOTLYJS_ENV = "AMBIENT_EVAL_PLOTLYJS"


def plotlyjs_tag(check_only: bool = False) -> str:
    """The <script> that provides plotly.js: inline (default, offline) or from the CDN."""
    from ambient_eval.errors import AmbientError

    how = os.environ.get(PLOTLYJS_ENV, "inline").strip().lower() or "inline"
    if check_only and how in ("cdn", "inline"):
        return ""
    if how == "cdn":
        from plotly.offline import get_plotlyjs_version

        return (f'<script src="https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" '
                'charset="utf-8"></script>')
    if how != "inline":
        raise AmbientError(f"{PLOTLYJS_ENV}='{how}' is not understood. Use 'inline' (default: reports open "
                           "offline) or 'cdn' (small reports that load plotly.js from cdn.plot.ly).")
    from plotly.offline import get_plotlyjs

    return f'<script type="text/javascript">{get_plotlyjs()}</script>'

_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;padding:0 12px 40px;color:#1f2328;background:#fff;line-height:1.45}
main{max-width:1100px;margin:0 auto}
h1{font-size:1.5rem;margin:18px 0 4px} h2{font-size:1.2rem;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.ae-meta{color:#57606a;font-size:.85rem}
.ae-scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9rem;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
.ae-figure{width:100%;min-height:320px}
.ae-gallery{display:flex;flex-wrap:wrap;gap:10px}
.ae-card{border:1px solid #d0d7de;border-radius:6px;padding:6px;font-size:.8rem;text-align:center}
.ae-card img{image-rendering:pixelated;width:96px;height:96px;object-fit:contain;background:#f6f8fa}
.ae-row{display:flex;gap:4px;justify-content:center}
.ae-note{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:6px 10px;font-size:.9rem}
details summary{cursor:pointer;color:#0969da}
p,h1,h2,summary,.ae-meta,.ae-card{overflow-wrap:anywhere}
th,td{overflow-wrap:break-word}
"""


def default_report_path(name: str) -> Path:
    """reports/<name>-<UTC timestamp>.html under $AMBIENT_EVAL_REPORTS or ./reports."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(os.environ.get(REPORTS_DIR_ENV, "reports")) / f"{name}-{stamp}.html"


def default_out_dir(name: str) -> Path:
    """reports/<name>-<UTC timestamp>/ (under $AMBIENT_EVAL_REPORTS or ./reports): the default --out of
    a command whose --out is optional; a fresh folder (-2, -3, ... when that second is taken)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(os.environ.get(REPORTS_DIR_ENV, "reports")) / f"{name}-{stamp}"
    p, i = base, 1
    while p.exists():
        i += 1
        p = base.with_name(f"{base.name}-{i}")
    return p


def image_to_data_uri(img: Any) -> str:
    """HWC/CHW uint8 array, torch tensor or PIL image -> 'data:image/png;base64,...'."""
    import numpy as np
    from PIL import Image

    if not isinstance(img, Image.Image):
        arr = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
        if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
            arr = arr.transpose(1, 2, 0)  # CHW -> HWC
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        img = Image.fromarray(arr.astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return html.escape(str(v))


@dataclass
class Report:
    """Accumulates sections, then writes one self-contained HTML file."""

    title: str
    settings: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    _body: list[str] = field(default_factory=list)
    _n_fig: int = 0

    def heading(self, text: str) -> None:
        """Start a new section."""
        self._body.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, note: bool = False) -> None:
        """A paragraph of plain text (escaped); `note=True` highlights it."""
        cls = ' class="ae-note"' if note else ""
        self._body.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, rows: Sequence[dict[str, Any]] | Any, columns: Sequence[str] | None = None) -> None:
        """A table from a list of dicts or a pandas DataFrame."""
        if hasattr(rows, "to_dict"):
            columns = columns or [str(c) for c in rows.columns]
            rows = rows.to_dict(orient="records")
        rows = list(rows)
        columns = list(columns or (rows[0].keys() if rows else []))
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = []
        for r in rows:
            cells = []
            for c in columns:
                v = r.get(c, "")
                cls = ' class="num"' if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
                cells.append(f"<td{cls}>{_fmt(v)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        self._body.append(f'<div class="ae-scroll"><table><thead><tr>{head}</tr></thead>'
                          f'<tbody>{"".join(body)}</tbody></table></div>')

    def figure(self, fig: Any) -> None:
        """A Plotly figure (plotly.js is embedded once in the page head)."""
        self._n_fig += 1
        div = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"ae-fig-{self._n_fig}",
                          config={"responsive": True, "displaylogo": False})
        self._body.append(f'<div class="ae-figure-wrap">{div}</div>')

    def gallery(self, cards: Iterable[dict[str, Any]]) -> None:
        """Image cards: each {'images': [img, ...], 'caption': str}; images embedded as PNG."""
        out = []
        for card in cards:
            imgs = "".join(f'<img alt="" src="{image_to_data_uri(im)}">' for im in card["images"])
            out.append(f'<div class="ae-card"><div class="ae-row">{imgs}</div>'
                       f'<div>{html.escape(str(card.get("caption", "")))}</div></div>')
        self._body.append(f'<div class="ae-gallery">{"".join(out)}</div>')

    def raw_html(self, snippet: str) -> None:
        """Trusted HTML produced by this package."""
        self._body.append(snippet)

    def render(self) -> str:
        """The whole page as a string."""
        created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        meta_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>"
                            for k, v in {**self.settings, **{f"input: {k}": v for k, v in self.inputs.items()}}.items())
        header = (f"<h1>{html.escape(self.title)}</h1>"
                  f'<div class="ae-meta">ambient-eval {__version__} &middot; {created}</div>')
        if meta_rows:
            header += (f'<details><summary>Settings and inputs</summary><div class="ae-scroll">'
                       f"<table>{meta_rows}</table></div></details>")
        # Figures get the ae-figure class for sizing and for the browser test.
        body = "\n".join(self._body).replace('class="plotly-graph-div"', 'class="plotly-graph-div ae-figure"')
        return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style>"
                f"{plotlyjs_tag() if self._n_fig else ''}</head>"
                f"<body><main>{header}\n{body}</main></body></html>")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page atomically; returns the path."""
        p = Path(path)
        write_text(p, self.render())
        return p
