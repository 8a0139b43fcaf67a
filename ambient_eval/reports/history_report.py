"""HTML trend report of the results history: each metric vs training step, one line per run,
with its confidence interval as a shaded band (when the results carried CIs)."""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from ambient_eval.results.history import HistoryRow
from ambient_eval.reports.html import Report
from ambient_eval.results.comparability import problem, signature


def _name(row: HistoryRow) -> str:
    return row.metric.split(".", 1)[1] if row.kind != "fid" and "." in row.metric else row.metric


def _signature(row: HistoryRow) -> str:
    """Short hash of what must match for two values of this metric to be comparable (its feature space)."""
    return signature(row.settings, _name(row))


def incomparable_notes(rows: Sequence[HistoryRow]) -> list[str]:
    """One sentence per (run, metric) whose values come from different feature spaces or N / reference."""
    first: dict[tuple[str, str], HistoryRow] = {}
    notes = []
    for r in rows:
        key = (r.run or "(no run)", r.metric)
        if key not in first:
            first[key] = r
            continue
        why = problem(first[key].settings, r.settings, [_name(r)], label_a=f"evaluation {first[key].evaluation_id}",
                      label_b=f"evaluation {r.evaluation_id}")
        if why is not None and all(not n.startswith(f"Run {key[0]}, {r.metric}:") for n in notes):
            notes.append(f"Run {key[0]}, {r.metric}: not comparable, plotted as separate lines: {why}.")
    return notes


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def series_by_run(rows: Sequence[HistoryRow]) -> dict[str, list[HistoryRow]]:
    """Rows with a step, grouped per run (split further when comparability settings differ)."""
    by_run: dict[tuple[str, str], list[HistoryRow]] = defaultdict(list)
    for r in rows:
        if r.step is not None:
            by_run[(r.run or "(no run)", _signature(r))].append(r)
    split = {run for run, _ in by_run if sum(1 for k in by_run if k[0] == run) > 1}
    out = {}
    for (run, sig), rs in sorted(by_run.items()):
        out[f"{run} [settings {sig}]" if run in split else run] = sorted(rs, key=lambda r: (r.step, r.evaluation_id))
    return out


def _figure(metric: str, series: dict[str, list[HistoryRow]]):
    import plotly.express as px
    import plotly.graph_objects as go

    fig = go.Figure()
    palette = px.colors.qualitative.Plotly
    for i, (name, rs) in enumerate(series.items()):
        color = palette[i % len(palette)]
        x = [r.step for r in rs]
        banded = [r for r in rs if r.ci_lo is not None and r.ci_hi is not None]
        if banded:
            bx = [r.step for r in banded]
            fig.add_trace(go.Scatter(x=bx + bx[::-1], y=[r.ci_hi for r in banded] + [r.ci_lo for r in banded][::-1],
                                     fill="toself", fillcolor=_rgba(color, 0.18), line={"width": 0},
                                     hoverinfo="skip", legendgroup=name, showlegend=False, name=f"{name} CI"))
        hover = [f"step {r.step}<br>{metric} = {r.value:.6g}"
                 + (f" [{r.ci_lo:.4g}, {r.ci_hi:.4g}]" if r.ci_lo is not None else "")
                 + f"<br>checkpoint {r.checkpoint or '-'}<br>commit {(r.git_commit or '-')[:10]}"
                 + f"<br>{r.recorded}" for r in rs]
        fig.add_trace(go.Scatter(x=x, y=[r.value for r in rs], mode="lines+markers", name=name,
                                 legendgroup=name, line={"color": color}, hovertext=hover,
                                 hoverinfo="text"))
    fig.update_layout(xaxis_title="training step", yaxis_title=metric, template="plotly_white",
                      height=420, margin={"l": 60, "r": 20, "t": 30, "b": 50}, legend_title_text="run")
    return fig


def write_history_report(rows: Sequence[HistoryRow], path: str | os.PathLike, *, db: str,
                         metric: str | None = None) -> Path:
    """One figure per metric (all metrics when `metric` is None) plus the full table."""
    report = Report("ambient-eval results history",
                    settings={"database": db, "metric": metric or "all", "evaluations":
                              len({r.evaluation_id for r in rows})})
    metrics = sorted({r.metric for r in rows})
    if not rows:
        report.text("No recorded values match the filter.", note=True)
    for m in metrics:
        mrows = [r for r in rows if r.metric == m]
        series = series_by_run(mrows)
        report.heading(m)
        if series:
            report.figure(_figure(m, series))
        for note in incomparable_notes(mrows):
            report.text(note, note=True)
        nostep = sum(1 for r in mrows if r.step is None)
        if nostep:
            report.text(f"{nostep} value(s) recorded without a training step are listed in the table "
                        "only.", note=True)
    if rows:
        report.heading("All recorded values")
        report.table([{"id": r.evaluation_id, "recorded": r.recorded, "run": r.run or "-",
                       "step": r.step if r.step is not None else "-", "checkpoint": r.checkpoint or "-",
                       "metric": r.metric, "value": r.value,
                       "ci": f"[{r.ci_lo:.4g}, {r.ci_hi:.4g}]" if r.ci_lo is not None else "-",
                       "commit": (r.git_commit or "-")[:10]} for r in rows])
    return report.save(path)
