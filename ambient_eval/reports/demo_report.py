"""The demo's ONE combined report: provenance header, metric table with CIs, data examples,
training curves, sample grids by seed across models, memorization (histograms + closest pairs)
and the RP heatmap. Figure builders of the per-command reports are reused."""
from __future__ import annotations

import html
from typing import Any

import numpy as np

from ambient_eval.reports.html import Report, image_to_data_uri

GALLERY_PAIRS = 6        # closest pairs shown per model
DATA_EXAMPLES = 8        # clean vs corrupted examples shown
GRID_SIDE = 8            # per-model sample grid: GRID_SIDE x GRID_SIDE seeds
ZOOM = 4                 # nearest-neighbour upscaling of grids (16 px digits are tiny)

_TRAINED_ON = {"clean": "clean subset only", "all": "clean + corrupted"}
_METHOD = {"baseline": "EDM (corruption ignored)", "ambient-omni": "Ambient-Omni (sigma_tn)"}


def _grid(images, side: int, zoom: int = ZOOM) -> np.ndarray:
    """NCHW uint8 (first side*side rows) => HWC uint8 grid, upscaled by `zoom` (nearest)."""
    x = images[: side * side].numpy()
    n, c, h, w = x.shape
    pad = np.zeros((side * side - n, c, h, w), np.uint8)
    x = np.concatenate([x, pad]).reshape(side, side, c, h, w).transpose(0, 3, 1, 4, 2).reshape(side * h, side * w, c)
    return x.repeat(zoom, 0).repeat(zoom, 1)


def _img_tag(arr, alt: str, width: int | None = None) -> str:
    style = f' style="width:{width}px;max-width:100%;image-rendering:pixelated"' if width else ""
    return f'<img alt="{html.escape(alt)}" src="{image_to_data_uri(arr)}"{style}>'


def _ci(v, ci, fmt: str = ".2f") -> str:
    if v is None:
        return ""
    return f"{v:{fmt}}" + (f" [{ci[0]:{fmt}}, {ci[1]:{fmt}}]" if ci else "")


def _header(ctx: dict[str, Any]) -> Report:
    s, data = ctx["settings"], ctx["data"]
    settings = {k: v for k, v in s.to_dict().items()}
    settings.update({"device": ctx["device"], "real features found": ", ".join(v for v in ctx["real"].values() if v)
                     or "none (pixel features only)"})
    inputs = {f"{k} fingerprint": v for k, v in data.fingerprints.items()}
    inputs.update({"pool": data.description, "heldout": data.heldout.description})
    return Report("ambient-eval demo: training on 90% corrupted digits, evaluated end to end",
                  settings=settings, inputs=inputs)


def _quality_section(rep: Report, ctx: dict[str, Any]) -> None:
    import plotly.graph_objects as go

    from ambient_eval.audits import memorization as MM
    from ambient_eval.demo.settings import MODELS
    from ambient_eval.results.envelope import fd_key

    s = ctx["settings"]
    key = fd_key(s.fid_features)
    mem = {m.name: m for a in ctx["audits"].values() for m in a.models}
    t = min(next(iter(ctx["audits"].values())).thresholds)
    rows = []
    for label, subset, method, _ in MODELS:
        q = ctx["quality"][label][s.fid_features]
        m = mem[label]
        row = {"model": label, "trained on": _TRAINED_ON[subset], "method": _METHOD[method],
               f"FD ({s.fid_features}) [95% CI]": _ci(q.metrics.get(key), q.ci.get(key)),
               "FD bias-corrected": round(q.extra.get("bias_corrected", {}).get(key, float("nan")), 2),
               f"KID ({s.fid_features}) ± std": f"{q.metrics.get('kid', float('nan')):.4f} ± "
                                                  f"{q.metrics.get('kid_std', float('nan')):.4f}",
               f"precision ({s.fid_features})": round(q.metrics.get("precision", float("nan")), 3),
               f"recall ({s.fid_features})": round(q.metrics.get("recall", float("nan")), 3),
               f"top-1 similarity ({ctx['embed']}) [95% CI]": _ci(m.metrics.get(MM.TOP1_MEAN),
                                                                  m.ci.get(MM.TOP1_MEAN), ".3f"),
               f"copies > {t:g} [95% CI]": _ci(m.metrics.get(MM.frac_above_key(t)),
                                               m.ci.get(MM.frac_above_key(t)), ".3f")}
        for name, r in ctx["quality"][label].items():
            if name != s.fid_features:
                row.update({f"{k} ({name})": round(v, 4) for k, v in r.metrics.items()})
        rows.append(row)
    rep.heading("Results at a glance")
    rep.text(_verdict(ctx, key, mem, t), note=True)
    rep.text(f"Quality: each model's {s.n_samples} samples against {len(ctx['data'].heldout)} held-out clean "
             f"digits never used for training. FD = Frechet distance of '{s.fid_features}' features (raw "
             "pixels downsampled to 8x8, no network, no download; NOT comparable with published FID), lower is "
             "better. Memorization: cosine similarity of each sample to its nearest image in the model's OWN "
             f"training set ('{ctx['embed']}' embedding), higher = closer to a copy. FD intervals are basic "
             f"bootstrap intervals ({s.n_boot} resamples of samples and references): they correct FD's upward "
             "small-sample bias, so they can sit below the point estimate; the bias-corrected FD "
             "(2 FD - bootstrap mean) lies inside them.")
    rep.table(rows)
    fig = go.Figure()
    for label, *_ in MODELS:
        q = ctx["quality"][label][s.fid_features]
        v, ci = q.metrics.get(key), q.ci.get(key) or [q.metrics.get(key)] * 2
        fig.add_trace(go.Bar(x=[label], y=[v], name=label))
        # The interval on its own marker (its centre), not hung from the bar top it may lie below.
        c = (ci[0] + ci[1]) / 2
        fig.add_trace(go.Scatter(x=[label], y=[c], mode="markers", marker={"color": "black", "symbol": "line-ew",
                                                                           "size": 14, "line": {"width": 2}},
                                 error_y={"type": "data", "array": [ci[1] - c], "width": 10},
                                 name="95% interval", hovertemplate=f"95% interval [{ci[0]:.3g}, {ci[1]:.3g}]"))
    fig.update_layout(height=320, showlegend=False, yaxis_title=f"FD ({s.fid_features}), lower is better",
                      margin={"l": 50, "r": 10, "t": 30, "b": 40}, title="Quality with 95% bootstrap intervals")
    rep.figure(fig)


def _verdict(ctx: dict[str, Any], key: str, mem: dict, t: float) -> str:
    """One paragraph read off the numbers (no claim that the numbers do not support)."""
    from ambient_eval.audits import memorization as MM

    s = ctx["settings"]
    fd = {lab: r[s.fid_features].metrics.get(key) for lab, r in ctx["quality"].items()}
    best = min(fd, key=lambda k: fd[k])
    close = max(mem, key=lambda k: mem[k].metrics.get(MM.TOP1_MEAN, 0.0))
    res = ctx["repro"].result
    idx = {n: i for i, n in enumerate(res.names)}
    a, b = max(res.pairs(), key=lambda p: res.rp[idx[p[0]], idx[p[1]]])
    return (f"In this run: lowest FD {best} ({fd[best]:.2f}); samples closest to their training set: {close} "
            f"(mean top-1 similarity {mem[close].metrics.get(MM.TOP1_MEAN, float('nan')):.3f}); most reproducible "
            f"pair {a} | {b} (RP {res.rp[idx[a], idx[b]]:.2f}). This is a few-minute CPU run of ~50k-parameter "
            "models on 16 px digits: it demonstrates the evaluation loop, and its ranking need not match the "
            "Ambient-Omni paper, whose gains come from far larger models and training budgets.")


def _data_section(rep: Report, ctx: dict[str, Any]) -> None:
    import plotly.graph_objects as go

    s, data = ctx["settings"], ctx["data"]
    rep.heading("The data")
    n, nc = len(data.labels), int(data.corrupted.sum())
    rep.text(f"{data.description}: {n} training images, {n - nc} kept clean and {nc} corrupted with "
             f"{s.corruption} (level {s.level:g}). The clean-only models see the {n - nc} clean images; the "
             f"naive and Ambient-Omni models see all {n}. Left: original, right: what the models get.")
    idx = np.flatnonzero(data.corrupted)[:DATA_EXAMPLES]
    rep.gallery([{"images": [data.originals[i], data.images[i]], "caption": f"image {int(i)}"} for i in idx])
    ann, stn = ctx["annotation"], ctx["sigma_tn"][data.corrupted]
    rule = (f"a fixed sigma_tn = {s.fixed_sigma:g}" if ann["mode"] == "fixed" else
            f"a noise-conditional clean-vs-corrupted classifier ({s.classifier_steps} steps): sigma_tn is the "
            "smallest noise level where it can no longer tell them apart")
    rep.text(f"Ambient-Omni annotation: every corrupted image gets {rule}; the ambient model learns from a "
             "corrupted image only at diffusion noise levels above its sigma_tn.")
    if ann["mode"] != "fixed" and stn.size:
        fig = go.Figure(go.Histogram(x=stn, nbinsx=30))
        fig.update_layout(height=300, xaxis_title="sigma_tn (model space)", yaxis_title="corrupted images",
                          margin={"l": 50, "r": 10, "t": 30, "b": 40}, title="sigma_tn of the corrupted images")
        rep.figure(fig)


def _training_section(rep: Report, ctx: dict[str, Any]) -> None:
    import plotly.graph_objects as go

    from ambient_eval.demo.models import loss_curve
    from ambient_eval.demo.settings import MODELS

    rep.heading("Training curves")
    s = ctx["settings"]
    rep.text(f"Equal budget: {s.steps} steps x batch {s.batch} for every model ({s.arch} U-Net). Loss is the "
             "EDM-weighted denoising loss per step (summed over pixels, as in the official code), smoothed over "
             "10 steps; the ambient model draws each noise level first and then only images allowed at it "
             "(full batches).")
    fig = go.Figure()
    for label, *_ in MODELS:
        c = loss_curve(ctx["out"], label)
        y = np.asarray(c["loss"])
        if y.size:
            k = min(10, y.size)
            y = np.convolve(y, np.ones(k) / k, mode="valid")
            fig.add_trace(go.Scatter(x=c["step"][k - 1:], y=y, name=label, mode="lines"))
    fig.update_layout(height=340, xaxis_title="step", yaxis_title="loss (10-step mean)", legend_title="model",
                      margin={"l": 50, "r": 10, "t": 30, "b": 40})
    rep.figure(fig)


def _samples_section(rep: Report, ctx: dict[str, Any]) -> None:
    from ambient_eval.demo.settings import MODELS

    s, samples = ctx["settings"], ctx["samples"]
    rep.heading("Samples by seed across models")
    names = [m[0] for m in MODELS]
    rep.text("Same seed = same initial noise and the same deterministic sampler. Each card is one seed; "
             "images left to right: " + ", ".join(names) + ".")
    rep.gallery([{"images": [samples[n][i] for n in names], "caption": f"seed {i}"}
                 for i in range(min(s.grid_seeds, s.n_samples))])
    side = int(min(GRID_SIDE, np.floor(np.sqrt(s.n_samples))))
    cells = "".join(f'<figure style="margin:0;text-align:center">{_img_tag(_grid(samples[n], side), n, 220)}'
                    f"<figcaption>{html.escape(n)}: seeds 0-{side * side - 1}</figcaption></figure>"
                    for n in names)
    rep.raw_html(f'<div style="display:flex;flex-wrap:wrap;gap:12px">{cells}</div>')


def _memorization_section(rep: Report, ctx: dict[str, Any]) -> None:
    from dataclasses import replace

    from ambient_eval.reports.memorization_report import gallery_cards, histogram_figure, summary_rows

    audits = list(ctx["audits"].items())
    rep.heading("Memorization")
    rep.text("Each model's samples are searched against its own training set (exact FAISS search): clean-A/B "
             "against the clean subset, naive/ambient against all training images. 95% bootstrap intervals "
             "in brackets.")
    rep.table([{"training set": g, **r} for g, a in audits for r in summary_rows(a)])
    combined = replace(audits[0][1], models=[m for _, a in audits for m in a.models])
    rep.figure(histogram_figure(combined))
    for _, a in audits:
        for i, m in enumerate(a.models):
            rep.heading(f"Closest pairs: {m.name} (sample | nearest training image)")
            rep.gallery(gallery_cards(a, i, GALLERY_PAIRS))


def _reproducibility_section(rep: Report, ctx: dict[str, Any]) -> None:
    # Figure builders of the reproducibility report (module-private names; reused, not rewritten).
    from ambient_eval.reports.reproducibility_report import _heatmap, pair_rows

    res = ctx["repro"].result
    rep.heading("Reproducibility across models")
    rep.text(f"RP = fraction of seeds whose two samples have cosine > {res.threshold:g} ({ctx['embed']} "
             "embedding). Models that memorize their small training set tend to agree with each other.")
    rep.figure(_heatmap(res))
    rep.table(pair_rows(res))


def _leakage_section(rep: Report, ctx: dict[str, Any]) -> None:
    leak = ctx.get("leakage")
    if not leak:
        return
    r = leak["_rates"]
    rep.heading("Corruption leakage")
    rep.text(f"Fraction of samples that a clean-vs-corrupted classifier (trained on 80% of the training images, "
             f"at the lowest noise level) calls corrupted. On the held-out 20% it calls {r['clean']:.0%} of clean "
             f"and {r['corrupted']:.0%} of corrupted images corrupted; 'corrected' rescales by these rates. 95% "
             "bootstrap intervals in brackets. Naive training reproduces the corruption; clean-only and ambient "
             "models should not.")
    rows = []
    for label, v in leak.items():
        if label == "_rates":
            continue
        m, ci = v["metrics"], v["ci"]
        rows.append({"model": label, "leakage": _ci(m["leakage"], ci.get("leakage")),
                     "corrected": _ci(m["leakage_corrected"], ci.get("leakage_corrected"))
                     if "leakage_corrected" in m else "n/a", "mean P(corrupted)": v["settings"]["mean_prob"]})
    rep.table(rows)


def _files_section(rep: Report, ctx: dict[str, Any]) -> None:
    rep.heading("Run details")
    t = ctx["timings"]
    rep.table([{"stage": k, "seconds": round(v, 1)} for k, v in t.items() if k != "total_before_report"])
    rep.text("Per-stage outputs beside this report: data/ (npz + data.json), train/<model>/ "
             "(run.json; with --retrain also loss.csv, final/ and annotate/annotations.jsonl), samples/<model>.npz, fid/<model>/<features>/"
             "results.json, memorization/<training set>/ (summary.json, <model>/results.json, samples.csv), "
             "reproducibility/ (results.json, per_seed.csv, report.html), summary.json.")


def build_demo_report(ctx: dict[str, Any]) -> Report:
    """The combined Report (call .save(path))."""
    rep = _header(ctx)
    _quality_section(rep, ctx)
    _samples_section(rep, ctx)
    _training_section(rep, ctx)
    _data_section(rep, ctx)
    _memorization_section(rep, ctx)
    _reproducibility_section(rep, ctx)
    _leakage_section(rep, ctx)
    _files_section(rep, ctx)
    return rep
