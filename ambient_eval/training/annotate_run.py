"""`annotate`: load CLEAN and CORRUPTED, assign sigma_tn, write the annotations JSONL and a report."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ambient_eval import __version__
from ambient_eval.files import atomic
from ambient_eval.errors import AmbientError
from ambient_eval.training.annotate import AnnotateConfig, annotate, sigma_grid
from ambient_eval.training.dataset import annotations_text, corruption_flags, load_train_data

log = logging.getLogger(__name__)


def _same_place(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def run_annotate(clean: str, corrupted: str, out: str | os.PathLike, cfg: AnnotateConfig, *,
                 fixed_sigma: float | None = None, resolution: int | None = None, report: str | None = None,
                 device: str = "auto", overwrite: bool = False, save_classifier: str | None = None) -> dict:
    """Annotate every sample of CORRUPTED (the training set) with sigma_tn; => summary."""
    import torch

    from ambient_eval.runtime.device import resolve_device

    out = Path(out)
    if out.exists() and not overwrite:
        raise AmbientError(f"Annotations file '{out}' already exists. Choose another -o or pass --overwrite.")
    atomic.ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    if fixed_sigma is not None and not (np.isfinite(fixed_sigma) and fixed_sigma > 0):
        raise AmbientError(f"--fixed-sigma {fixed_sigma} must be a positive number (model-space units).")
    if cfg.grid_size < 2 or not (0 < cfg.grid_min < cfg.grid_max) or cfg.steps < 1 or cfg.draws < 1:
        raise AmbientError(f"Annotation grid/steps are invalid (grid {cfg.grid_min}..{cfg.grid_max} x "
                           f"{cfg.grid_size}, steps {cfg.steps}, draws {cfg.draws}). Use 0 < min < max, >= 2 "
                           "points, >= 1 step and draw.")
    if save_classifier:
        atomic.ensure_writable_dir(Path(save_classifier).parent)
    dev = resolve_device(device)
    data = load_train_data(corrupted, resolution)
    flags = corruption_flags(corrupted, len(data))
    same = _same_place(clean, corrupted)
    if flags is None:
        if same:
            raise AmbientError(f"CLEAN and CORRUPTED are the same source '{corrupted}', but it has no "
                               "corruption.jsonl saying which samples are corrupted. Pass a separate clean set, "
                               "or use a folder written by `ambient-eval corrupt`.")
        flags = np.ones(len(data), dtype=bool)          # every sample of CORRUPTED is treated as corrupted
    if same:
        clean_imgs, clean_fp = data.images[torch.from_numpy(~flags)], data.fingerprint
    else:
        cdata = load_train_data(clean, resolution)   # native size unless --resolution: mismatches are refused below
        clean_imgs, clean_fp = cdata.images, cdata.fingerprint
    sigma_tn = np.zeros(len(data), dtype=np.float64)
    result: dict = {"accuracy": [], "losses": []}
    n_cor = int(flags.sum())
    if fixed_sigma is not None:
        sigma_tn[flags] = fixed_sigma
    elif n_cor:
        if data.images.dtype != torch.uint8 or clean_imgs.dtype != torch.uint8:
            raise AmbientError("Classifier annotation needs image data; these are float noisy observations. "
                               "Train them with --method noisy (sigma_tn = sigma_n), or pass --fixed-sigma.")
        if len(clean_imgs) == 0:
            raise AmbientError(f"No clean samples to train the classifier: every sample of '{corrupted}' is "
                               "corrupted. Pass a separate clean set as CLEAN, or use --fixed-sigma.")
        if clean_imgs.shape[1:] != data.images.shape[1:]:
            raise AmbientError(f"CLEAN images are {tuple(clean_imgs.shape[-2:])} but CORRUPTED images are "
                               f"{tuple(data.images.shape[-2:])}. Pass --resolution to resize both.")
        idx = np.flatnonzero(flags)
        result = annotate(clean_imgs, data.images[torch.from_numpy(idx)], idx, cfg, dev)
        sigma_tn[idx] = result["sigma_tn"]
    clf_rates = _leakage_classifier(save_classifier, clean_imgs, data, flags, cfg, dev) if save_classifier else None
    header = {"dataset_fingerprint": data.fingerprint, "dataset": data.description,
              "clean_fingerprint": clean_fp, "clean": str(clean), "n_corrupted": n_cor,
              "fixed_sigma": fixed_sigma, "resolution": resolution,
              "rule": None if fixed_sigma is not None else {
                  "epsilon": cfg.epsilon, "chance": cfg.chance, "draws": cfg.draws, "smooth": cfg.smooth,
                  "grid": [float(s) for s in sigma_grid(cfg)], "classifier_steps": cfg.steps,
                  "train_sigma": cfg.train_sigma, "seed": cfg.seed},
              "tool_version": __version__}
    atomic.write_text(out, annotations_text(header, data.names, flags, sigma_tn))
    s = sigma_tn[flags]
    summary = {"out": str(out), "n": len(data), "n_corrupted": n_cor,
               "sigma_tn_mean": float(s.mean()) if n_cor else 0.0,
               "sigma_tn_median": float(np.median(s)) if n_cor else 0.0}
    if clf_rates is not None:
        summary["classifier"] = {"path": str(save_classifier), "rates_heldout": clf_rates}
    if report:
        summary["report"] = str(write_report(report, summary, header, s, result))
    return summary


def _leakage_classifier(path, clean_imgs, data, flags, cfg: AnnotateConfig, dev) -> dict:
    """--save-classifier: a classifier for `fid --metrics leakage`, trained on a split (metrics/leakage.py)."""
    import torch

    from ambient_eval.metrics.leakage import save_classifier, train_leakage_classifier

    idx = np.flatnonzero(flags)
    if data.images.dtype != torch.uint8 or len(clean_imgs) < 2 or idx.size < 2:
        raise AmbientError("--save-classifier needs image data with at least 2 clean and 2 corrupted samples "
                           f"(got {len(clean_imgs)} clean, {idx.size} corrupted).")
    clf = train_leakage_classifier(clean_imgs, data.images[torch.from_numpy(idx)], cfg, device=dev)
    save_classifier(clf, path)
    return clf.rates


def write_report(path: str | os.PathLike, summary: dict, header: dict, sigma_cor: np.ndarray, result: dict) -> Path:
    """HTML: sigma_tn histogram of the corrupted samples and classifier accuracy vs sigma."""
    import plotly.graph_objects as go

    from ambient_eval.reports.html import Report

    rep = Report("sigma_tn annotation (Ambient-Omni)",
                 settings={"fixed_sigma": header["fixed_sigma"], **{f"rule.{k}": v for k, v in (header["rule"] or {}).items()
                                                                     if k != "grid"}},
                 inputs={"dataset": header["dataset"], "dataset_fingerprint": header["dataset_fingerprint"],
                         "clean": header["clean"]})
    rep.heading("Summary")
    rep.table([{k: v for k, v in summary.items() if k != "out"}])
    rep.heading("Distribution of sigma_tn (corrupted samples)")
    fig = go.Figure(go.Histogram(x=np.log10(np.maximum(sigma_cor, 1e-12)) if len(sigma_cor) else [], nbinsx=40))
    fig.update_layout(xaxis_title="log10 sigma_tn", yaxis_title="samples", height=340)
    rep.figure(fig)
    if result.get("accuracy"):
        rep.heading("Classifier accuracy vs sigma")
        acc = result["accuracy"]
        fig = go.Figure()
        for key in ("balanced_accuracy", "acc_clean", "acc_corrupted"):
            fig.add_trace(go.Scatter(x=[r["sigma"] for r in acc], y=[r[key] for r in acc], name=key, mode="lines+markers"))
        fig.update_layout(xaxis_type="log", xaxis_title="sigma (model space)", yaxis_title="accuracy", height=340)
        rep.figure(fig)
        rep.text("Accuracy is measured on (up to 512) training images of each class with one noise draw per "
                 "sigma; 0.5 means the classifier cannot tell clean from corrupted at that noise level.")
    return rep.save(path)
