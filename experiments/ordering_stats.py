"""Tables of the ordering experiment, with intervals that include the corruption-split variance.

Design: cells (split s, training seed t). For a metric, the split mean m_s = mean over t; the estimate
is mean_s m_s and its 95% interval mean +- t_{S-1, 0.975} sd(m_s) / sqrt(S) (S splits). In a balanced
two-level design this is the exact standard error of the grand mean: Var(m_s) = var_split + var_seed / T,
so the interval carries both the split-to-split and the seed-to-seed variance. Paired differences
(ambient minus a baseline, same cell) get the same treatment.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

METRICS = ("fd", "precision", "recall", "memorized")
LOWER_BETTER = {"fd": True, "precision": False, "recall": False, "memorized": True}
SPLIT_KEYS = ("sigma_tn_q10", "sigma_tn_median", "sigma_tn_q90", "sigma_tn_at_grid_max", "clean_draw_share",
              "clean_subset_fd", "blurred_fd")


def split_interval(by_split: list[list[float]]) -> tuple[float, float, float]:
    """Cells grouped by split => (mean, low, high): 95% Student-t over the split means."""
    from scipy.stats import t as student_t

    m = np.array([np.mean(v) for v in by_split], float)
    mean = float(m.mean())
    if len(m) < 2:
        return mean, float("nan"), float("nan")
    h = float(student_t.ppf(0.975, len(m) - 1) * m.std(ddof=1) / np.sqrt(len(m)))
    return mean, mean - h, mean + h


def fmt(iv: tuple[float, float, float], d: int = 3) -> str:
    return f"{iv[0]:.{d}f} [{iv[1]:.{d}f}, {iv[2]:.{d}f}]"


def load_cells(out: Path, splits: int, seeds: int) -> dict[str, dict]:
    """{setting: {"cells": [...], "splits": [...], "settings": {...}}} from OUT/<setting>/*.json."""
    found = {}
    for d in sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []:
        sfiles = [d / f"split-s{s}.json" for s in range(splits)]
        if not all(f.is_file() for f in sfiles):
            continue
        info = [json.loads(f.read_text()) for f in sfiles]
        settings = info[0]["settings"]
        cells = [d / f"cell-s{s}-t{t}.json" for s in range(splits) for t in range(seeds)]
        rows = [json.loads(f.read_text()) for f in cells if f.is_file()]
        rows = [r for r in rows if r.get("settings") == settings]
        if len(rows) == splits * seeds and all(i["settings"] == settings for i in info):
            found[d.name] = {"cells": rows, "splits": info, "settings": settings}
    return found


def summarise(cells: list[dict], models, splits: int) -> dict:
    """Per model and metric, and per paired difference, the split-level interval and per-cell counts."""
    by = lambda key: [[c[key] for c in cells if c["split"] == s] for s in range(splits)]  # noqa: E731
    out: dict = {}
    for m in models:
        for k in METRICS:
            out[f"{m}.{k}"] = split_interval(by(f"{m}.{k}"))
    for amb in (x for x in models if x.startswith("ambient")):
        for base in ("clean-only", "naive-all"):
            for k in METRICS:
                diff = [[c[f"{amb}.{k}"] - c[f"{base}.{k}"] for c in cells if c["split"] == s] for s in range(splits)]
                better = [sum((d < 0) if LOWER_BETTER[k] else (d > 0) for d in v) for v in diff]
                out[f"{amb}-{base}.{k}"] = (*split_interval(diff), better)
    return out


def verdict(iv) -> str:
    """'below 0' / 'above 0' / 'includes 0' for an interval of a difference."""
    return "below 0" if iv[2] < 0 else "above 0" if iv[1] > 0 else "includes 0"


def setting_md(name: str, d: dict, models, splits: int, seeds: int) -> list[str]:
    st = d["settings"]
    s = summarise(d["cells"], models, splits)
    md = [f"## {name}: {st['n']} images at {st['resolution']} px, {st['clean_fraction']:.0%} clean, blur "
          f"{st['blur']} px; {st['steps']} steps x {st['batch']}, {st['arch']} U-Net, {st['samples']} samples",
          "", f"{splits} corruption splits x {seeds} training seeds; mean [95% t-interval over split means].", "",
          "| model | FD | precision | recall | memorised |", "|---|---|---|---|---|"]
    md += [f"| {m} | " + " | ".join(fmt(s[f"{m}.{k}"]) for k in METRICS) + " |" for m in models]
    md += ["", "Paired differences (ambient minus baseline, same cell); k/n = cells where ambient is better:", "",
           "| comparison | FD | recall | memorised |", "|---|---|---|---|"]
    for amb in (x for x in models if x.startswith("ambient")):
        for base in ("clean-only", "naive-all"):
            cells = []
            for k in ("fd", "recall", "memorized"):
                iv = s[f"{amb}-{base}.{k}"]
                cells.append(f"{fmt(iv[:3])} ({verdict(iv)}; {sum(iv[3])}/{splits * seeds}, per split "
                             f"{'/'.join(map(str, iv[3]))})")
            md.append(f"| {amb} - {base} | " + " | ".join(cells) + " |")
    md += ["", "Per split (annotation of the blurred images; share of ambient's batch slots holding a clean image; "
           "data-only reference FDs):", "",
           "| split | sigma_tn q10 / median / q90 | at grid max (10) | at grid min (0.01) | clean share of draws | "
           "clean-subset FD | blurred FD |", "|---|---|---|---|---|---|---|"]
    md += [f"| {i['split']} | {i['sigma_tn_q10']:.3f} / {i['sigma_tn_median']:.3f} / {i['sigma_tn_q90']:.3f} | "
           f"{i['sigma_tn_at_grid_max']:.1%} | {i['sigma_tn_at_grid_min']:.1%} | {i['clean_draw_share']:.1%} | {i['clean_subset_fd']:.3f} | "
           f"{i['blurred_fd']:.3f} |" for i in d["splits"]]
    md += ["", "Per cell FD (" + " / ".join(models) + "): " + "; ".join(
        f"s{c['split']}t{c['seed']}: " + " / ".join(f"{c[f'{m}.fd']:.2f}" for m in models) for c in d["cells"]) + ".", ""]
    return md


def write_results(out: Path, results: Path, splits: int, seeds: int, models) -> dict:
    """ambient_ordering.{md,csv,svg} under `results` from the cached cells; => short summary."""
    from ambient_eval.files import atomic
    from experiments.ordering_figure import svg

    found = load_cells(out, splits, seeds)
    if not found:
        raise SystemExit(f"no complete setting ({splits} splits x {seeds} seeds) under {out}")
    md = ["# Ambient-Omni ordering at CPU scale, across corruption splits", "",
          "Regenerate: `make experiment` (or `python experiments/ambient_ordering.py --aggregate-only` from cached "
          "cells). FD and recall on raw (pooled) pixels vs held-out images: NOT Inception FID, not comparable with "
          "papers. Memorised = Pearson correlation > 0.95 with a clean training image.", ""]
    csv = ["setting,model,metric,mean,ci_low,ci_high," + ",".join(f"s{s}t{t}" for s in range(splits) for t in range(seeds))]
    summary = {}
    for name, d in found.items():
        md += setting_md(name, d, models, splits, seeds)
        s = summarise(d["cells"], models, splits)
        cells = sorted(d["cells"], key=lambda c: (c["split"], c["seed"]))
        pairs = {f"{a}-{b}": (a, b) for a in models if a.startswith("ambient") for b in ("clean-only", "naive-all")}
        for key, iv in s.items():
            m, k = key.rsplit(".", 1)
            vals = ([c[f"{m}.{k}"] for c in cells] if m in models
                    else [c[f"{pairs[m][0]}.{k}"] - c[f"{pairs[m][1]}.{k}"] for c in cells])
            csv.append(f"{name},{m},{k},{iv[0]:.4f},{iv[1]:.4f},{iv[2]:.4f}," + ",".join(f"{v:.4f}" for v in vals))
        summary[name] = {k: [round(x, 4) for x in v[:3]] for k, v in s.items() if k.endswith(".fd")}
    atomic.write_text(results / "ambient_ordering.md", "\n".join(md) + "\n")
    atomic.write_text(results / "ambient_ordering.csv", "\n".join(csv) + "\n")
    atomic.write_text(results / "ambient_ordering.svg", svg(found, models, splits, summarise))
    return summary
