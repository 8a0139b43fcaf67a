"""`annotate`: load CLEAN and CORRUPTED, assign sigma_tn, write the annotations JSONL and a report."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ambient_eval import __version__
from ambient_eval.files import atomic
from ambient_eval.errors import AmbientError
if TYPE_CHECKING:
    from ambient_eval.training.annotate import AnnotateConfig

log = logging.getLogger(__name__)


def _same_place(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


@dataclass(frozen=True)
class AnnotateResult:
    """sigma_tn of every sample of the training set, with the header the annotations JSONL records.

    `sigma_tn` (N,) float64 is 0 for clean samples; `curves` holds the classifier's accuracy vs
    sigma and losses (empty with fixed_sigma); `classifier` the leakage classifier when one was
    asked for (`save_classifier=True`).
    """

    header: dict                   # dataset/clean fingerprints, rule (grid, epsilon, ...), tool version
    names: list                    # sample names of CORRUPTED, in order
    corrupted: np.ndarray          # (N,) bool: which samples were annotated
    sigma_tn: np.ndarray           # (N,) float64 model-space sigma_tn (0 = clean)
    curves: dict = field(default_factory=dict)  # accuracy vs sigma and losses (report)
    classifier: Any = None         # metrics.leakage.LeakageClassifier, or None

    @property
    def summary(self) -> dict:
        """n, n_corrupted, mean and median sigma_tn of the corrupted samples (+ held-out classifier rates)."""
        s = self.sigma_tn[self.corrupted]
        out = {"n": len(self.names), "n_corrupted": int(self.corrupted.sum()),
               "sigma_tn_mean": float(s.mean()) if len(s) else 0.0,
               "sigma_tn_median": float(np.median(s)) if len(s) else 0.0}
        if self.classifier is not None:
            out["rates_heldout"] = self.classifier.rates
        return out

    def text(self) -> str:
        """The annotations JSONL (header line, then one record per sample)."""
        from ambient_eval.training.dataset import annotations_text

        return annotations_text(self.header, self.names, self.corrupted, self.sigma_tn)

    def to_pandas(self):
        """One row per sample: index, name, corrupted, sigma_tn (the JSONL's records)."""
        import pandas as pd

        return pd.DataFrame({"index": np.arange(len(self.names)), "name": list(self.names),
                             "corrupted": self.corrupted.astype(bool), "sigma_tn": self.sigma_tn.astype(np.float64)})

    def save(self, out: str | os.PathLike, *, classifier: str | os.PathLike | None = None,
             report: str | os.PathLike | None = None, overwrite: bool = False) -> dict:
        """Write the annotations JSONL `out` (atomically), the classifier to `classifier` (safetensors;
        needed when one was trained) and an HTML report to `report` (optional); => summary with paths."""
        out = Path(out)
        check_outputs(out, overwrite, classifier)
        if self.classifier is not None and classifier is None:
            raise AmbientError("This annotation trained a leakage classifier (save_classifier=True); pass "
                               "classifier=PATH to save() to write it.")
        summary = {"out": str(out), **{k: v for k, v in self.summary.items() if k != "rates_heldout"}}
        if self.classifier is not None:
            from ambient_eval.metrics.leakage import save_classifier

            save_classifier(self.classifier, classifier)
            summary["classifier"] = {"path": str(classifier), "rates_heldout": self.classifier.rates}
        atomic.write_text(out, self.text())
        if report:
            summary["report"] = str(write_report(report, summary, self.header, self.sigma_tn[self.corrupted],
                                                 self.curves))
        return summary


def check_outputs(out: Path, overwrite: bool, classifier: str | os.PathLike | None = None) -> None:
    """AmbientError, before any work, if the annotations file or the classifier cannot be written."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise AmbientError(f"Annotations file '{out}' already exists. Choose another -o or pass --overwrite.")
    atomic.ensure_writable_dir(out.parent if str(out.parent) else Path("."))
    if classifier:
        atomic.ensure_writable_dir(Path(classifier).parent)


def parse_grid(grid) -> tuple[float, float, int]:
    """'MIN,MAX,POINTS' or (min, max, points) => (float, float, int)."""
    try:
        gmin, gmax, gn = grid.split(",") if isinstance(grid, str) else grid
        return float(gmin), float(gmax), int(gn)
    except (ValueError, TypeError):
        raise AmbientError(f"--grid '{grid}' must be MIN,MAX,POINTS, e.g. 0.01,10,32.") from None


def annotate(clean: str, corrupted: str, *, fixed_sigma: float | None = None, steps: int = 400, batch: int = 64,
             grid: str | tuple = "0.01,10,32", draws: int = 4, epsilon: float = 0.05, chance: str = "calibrated",
             train_sigma: str = "log-uniform", resolution: int | None = None, seed: int = 0, device: str = "auto",
             save_classifier: bool = False) -> AnnotateResult:
    """Assign each sample of CORRUPTED its minimum noise level sigma_tn (Ambient-Omni), as `ambient-eval annotate`.

    A small noise-conditional classifier learns clean vs corrupted; sigma_tn is the smallest
    sigma on `grid` (MIN,MAX,POINTS log-spaced) where its P(corrupted) falls below chance +
    `epsilon`; clean samples get 0, and `fixed_sigma` skips the classifier. `clean` may be the
    same folder as `corrupted` when `ambient-eval corrupt` wrote it. `save_classifier=True` also
    trains the leakage classifier for `fid --metrics leakage`. Nothing is written until `.save`.

    Returns:
        An [AnnotateResult][ambient_eval.api.AnnotateResult]: `.to_pandas()` one
        row per sample, `.save(path)` the annotations JSONL that `train --annotations` reads.

    Examples:
        >>> import ambient_eval as ae
        >>> _ = ae.corrupt("builtin:digits", "blur", 1.0, fraction=0.5, max_images=20).save("blurred")
        >>> ann = ae.annotate("blurred", "blurred", fixed_sigma=0.5)
        >>> ann.summary["n_corrupted"], float(ann.to_pandas()["sigma_tn"].max())
        (10, 0.5)
        >>> _ = ann.save("ann.jsonl")       # then: ae.train("blurred", ..., annotations="ann.jsonl")
    """
    from ambient_eval.training.annotate import AnnotateConfig

    gmin, gmax, gn = parse_grid(grid)
    if train_sigma not in ("log-uniform", "edm"):
        raise AmbientError(f"--train-sigma '{train_sigma}' is unknown. Use log-uniform or edm.")
    if chance not in ("calibrated", "half"):
        raise AmbientError(f"--chance '{chance}' is unknown. Use calibrated or half.")
    cfg = AnnotateConfig(steps=steps, batch=batch, grid_min=gmin, grid_max=gmax, grid_size=gn, draws=draws,
                         epsilon=epsilon, chance=chance, train_sigma=train_sigma, seed=seed)
    return annotate_with(clean, corrupted, cfg, fixed_sigma=fixed_sigma, resolution=resolution, device=device,
                         save_classifier=save_classifier)


def annotate_with(clean: str, corrupted: str, cfg: AnnotateConfig, *, fixed_sigma: float | None = None,
                  resolution: int | None = None, device: str = "auto", save_classifier: bool = False) -> AnnotateResult:
    """annotate() with a ready AnnotateConfig (validated here, before any data is read)."""
    import torch

    from ambient_eval.runtime.device import resolve_device
    from ambient_eval.training.annotate import annotate as classify_annotate
    from ambient_eval.training.annotate import sigma_grid
    from ambient_eval.training.dataset import corruption_flags, load_train_data

    if fixed_sigma is not None and not (np.isfinite(fixed_sigma) and fixed_sigma > 0):
        raise AmbientError(f"--fixed-sigma {fixed_sigma} must be a positive number (model-space units).")
    if cfg.grid_size < 2 or not (0 < cfg.grid_min < cfg.grid_max) or cfg.steps < 1 or cfg.draws < 1:
        raise AmbientError(f"Annotation grid/steps are invalid (grid {cfg.grid_min}..{cfg.grid_max} x "
                           f"{cfg.grid_size}, steps {cfg.steps}, draws {cfg.draws}). Use 0 < min < max, >= 2 "
                           "points, >= 1 step and draw.")
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
        result = classify_annotate(clean_imgs, data.images[torch.from_numpy(idx)], idx, cfg, dev)
        sigma_tn[idx] = result["sigma_tn"]
    clf = _leakage_classifier(clean_imgs, data, flags, cfg, dev) if save_classifier else None
    header = {"dataset_fingerprint": data.fingerprint, "dataset": data.description,
              "clean_fingerprint": clean_fp, "clean": str(clean), "n_corrupted": n_cor,
              "fixed_sigma": fixed_sigma, "resolution": resolution,
              "rule": None if fixed_sigma is not None else {
                  "epsilon": cfg.epsilon, "chance": cfg.chance, "draws": cfg.draws, "smooth": cfg.smooth,
                  "grid": [float(s) for s in sigma_grid(cfg)], "classifier_steps": cfg.steps,
                  "train_sigma": cfg.train_sigma, "seed": cfg.seed},
              "tool_version": __version__}
    return AnnotateResult(header=header, names=list(data.names), corrupted=flags, sigma_tn=sigma_tn,
                          curves=result, classifier=clf)


def run_annotate(clean: str, corrupted: str, out: str | os.PathLike, cfg: AnnotateConfig, *,
                 fixed_sigma: float | None = None, resolution: int | None = None, report: str | None = None,
                 device: str = "auto", overwrite: bool = False, save_classifier: str | None = None) -> dict:
    """Annotate every sample of CORRUPTED (the training set) with sigma_tn and write OUT; => summary."""
    check_outputs(Path(out), overwrite, save_classifier)
    res = annotate_with(clean, corrupted, cfg, fixed_sigma=fixed_sigma, resolution=resolution, device=device,
                        save_classifier=bool(save_classifier))
    return res.save(out, classifier=save_classifier, report=report, overwrite=overwrite)


def _leakage_classifier(clean_imgs, data, flags, cfg: AnnotateConfig, dev):
    """--save-classifier: a classifier for `fid --metrics leakage`, trained on a split (metrics/leakage.py)."""
    import torch

    from ambient_eval.metrics.leakage import train_leakage_classifier

    idx = np.flatnonzero(flags)
    if data.images.dtype != torch.uint8 or len(clean_imgs) < 2 or idx.size < 2:
        raise AmbientError("--save-classifier needs image data with at least 2 clean and 2 corrupted samples "
                           f"(got {len(clean_imgs)} clean, {idx.size} corrupted).")
    return train_leakage_classifier(clean_imgs, data.images[torch.from_numpy(idx)], cfg, device=dev)


def annotate_report_path(out: str | os.PathLike) -> Path:
    """The default report of `annotate -o OUT`: beside OUT, same name with .html (ann.jsonl -> ann.html),
    so every file the command writes sits where the user pointed it."""
    out = Path(out)
    return out.with_suffix(".html") if out.suffix != ".html" else out.with_name(out.name + ".report.html")


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
