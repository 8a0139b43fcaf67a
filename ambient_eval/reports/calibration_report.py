"""Calibration section of the memorization report: ROC figure, threshold, TPR per augmentation."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ambient_eval.audits import calibration as C


def roc_figure(cal: dict[str, Any]) -> Any:
    """ROC of planted copies vs held-out images (log FPR axis), the chosen threshold marked."""
    import plotly.graph_objects as go

    roc = cal["roc"]
    fig = go.Figure(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name=f"{cal['embed']} (AUC {cal[C.AUC]:.3f})",
                               customdata=roc["threshold"], hovertemplate="t=%{customdata:.4f}<br>FPR %{x:.4f}"
                                                                          "<br>TPR %{y:.4f}"))
    fig.add_trace(go.Scatter(x=[max(cal[C.FPR], 1e-4)], y=[cal[C.TPR]], mode="markers", marker={"size": 11},
                             name=f"threshold {cal[C.THRESHOLD]:.4f} (target FPR {cal[C.TARGET_FPR]:g})"))
    fig.update_layout(xaxis={"type": "log", "title": "false-positive rate (held-out real images)"},
                      yaxis={"title": "true-positive rate (planted copies)", "range": [0, 1.02]},
                      margin={"l": 50, "r": 20, "t": 30, "b": 50}, legend={"x": 0.4, "y": 0.05})
    return fig


def add_section(rep, cal: dict[str, Any]) -> None:
    """Append the calibration section to a Report."""
    rep.heading("Threshold calibration")
    rep.text(f"Threshold {cal[C.THRESHOLD]:.4f}: top-1 cosine above it flags a copy. Chosen at a false-positive "
             f"rate of {cal[C.FPR]:.4f} (target {cal[C.TARGET_FPR]:g}) on {cal['n_negatives']} held-out real images "
             f"({cal['holdout']}); index of {cal['n_index']} training images; {cal['n_per_augmentation']} planted "
             f"copies per augmentation; overall TPR {cal[C.TPR]:.4f}, AUC {cal[C.AUC]:.4f}.")
    rows = [{"augmentation": a, "TPR at threshold": v} for a, v in cal[C.TPR_PER_AUG].items()]
    rep.table(rows)
    ref = cal.get(C.REFERENCE) or {}
    if ref:
        ok = ref.get("empirical", 0) >= 0.99 and ref.get("gaussian", 1) <= 0.01
        rep.text(f"Closed-form check: {ref['empirical']:.2%} of the empirical (memorizing) denoiser's samples and "
                 f"{ref['gaussian']:.2%} of the Gaussian (never-copying) denoiser's samples are flagged "
                 f"(expected >= 99% and <= 1%).", note=not ok)
    for w in cal.get("warnings", []):
        rep.text(w, note=True)
    rep.figure(roc_figure(cal))


def build_calibration_report(cal: dict[str, Any], path: str | os.PathLike) -> Path:
    """A report with only the calibration section (memorization --calibrate without samples)."""
    from ambient_eval.reports.html import Report

    rep = Report("Memorization threshold calibration", settings={"embed": cal["embed"], "seed": cal["seed"]})
    add_section(rep, cal)
    return rep.save(path)
