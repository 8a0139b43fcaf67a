"""`ambient-eval annotate`: each corrupted sample's minimum noise level sigma_tn (Ambient-Omni)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.options import Device


def annotate_command(
    clean: Annotated[str, typer.Argument(help="Clean images (or the same folder as CORRUPTED when it was "
                     "written by `ambient-eval corrupt`: its clean samples are used).", metavar="CLEAN",
                     show_default=False)],
    corrupted: Annotated[str, typer.Argument(help="The training set to annotate (every sample gets a "
                         "sigma_tn; samples marked clean in its corruption.jsonl get 0).", metavar="CORRUPTED",
                         show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Annotations JSONL.", metavar="JSONL",
                   show_default=False)],
    fixed_sigma: Annotated[Optional[float], typer.Option("--fixed-sigma", help="Assign this sigma_tn to every "
                           "corrupted sample (no classifier).", metavar="S")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Classifier training steps.", metavar="N", min=1)] = 400,
    batch: Annotated[int, typer.Option("--batch", help="Classifier batch (half clean, half corrupted).",
                     metavar="N", min=2)] = 64,
    grid: Annotated[str, typer.Option("--grid", help="sigma grid MIN,MAX,POINTS (log-spaced, model space).",
                    metavar="MIN,MAX,N")] = "0.01,10,32",
    draws: Annotated[int, typer.Option("--draws", help="Noise draws averaged per sample and sigma.", metavar="K",
                     min=1)] = 4,
    epsilon: Annotated[float, typer.Option("--epsilon", help="sigma_tn = first sigma with P(corrupted) < chance "
                       "+ epsilon.", metavar="E")] = 0.05,
    chance: Annotated[str, typer.Option("--chance", help="Chance level the curve is compared with: calibrated "
                      "(the classifier's mean on clean images at the same sigma) or half (a fixed 0.5).",
                      metavar="MODE")] = "calibrated",
    train_sigma: Annotated[str, typer.Option("--train-sigma", help="Classifier training noise: log-uniform "
                           "(over the grid) or edm (log-normal).", metavar="DIST")] = "log-uniform",
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Resize images to RxR (use the same "
                          "value for train).", metavar="R", min=4)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Classifier seed.", metavar="SEED")] = 0,
    device: Device = "auto",
    report: Annotated[Optional[Path], typer.Option("--report", help="HTML report path (default "
                      "beside the annotations: OUT with .html, e.g. ann.jsonl -> ann.html).", metavar="PATH")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write the HTML report.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing annotations file.")] = False,
    save_classifier: Annotated[Optional[Path], typer.Option("--save-classifier", help="Also train a clean-vs-"
                               "corrupted classifier on an 80/20 split and save it here (safetensors) with its "
                               "held-out rates, for `fid --metrics leakage --classifier FILE`.",
                               metavar="FILE")] = None,
) -> None:
    """Assign each corrupted sample its minimum noise level sigma_tn (Ambient-Omni).

    Trains a small noise-conditional classifier c(x + sigma z, sigma) to tell clean from
    corrupted images (BCE); sigma_tn = the smallest sigma on the grid where its P(corrupted),
    averaged over --draws noise draws and smoothed along the grid, falls below chance + epsilon
    (--chance calibrated: the classifier's mean output on clean images at that sigma; half: 0.5).
    Clean samples get 0. The file records the dataset fingerprint; `train` checks it.

    Examples:
      ambient-eval annotate blurred blurred -o ann.jsonl
      ambient-eval annotate clean/ corrupted/ -o ann.jsonl --steps 1000 --report ann.html
      ambient-eval annotate blurred blurred -o ann.jsonl --fixed-sigma 0.5

      ambient-eval annotate blurred blurred -o ann.jsonl --save-classifier clf.safetensors
    """
    from ambient_eval.api import annotate
    from ambient_eval.training.annotate_run import annotate_report_path, check_outputs

    check_outputs(out, overwrite, save_classifier)     # before any work
    ann = annotate(clean, corrupted, fixed_sigma=fixed_sigma, steps=steps, batch=batch, grid=grid, draws=draws,
                   epsilon=epsilon, chance=chance, train_sigma=train_sigma, resolution=resolution, seed=seed,
                   device=device, save_classifier=save_classifier is not None)
    rep = None if no_report else str(report or annotate_report_path(out))
    res = ann.save(out, classifier=save_classifier, report=rep, overwrite=overwrite)
    typer.echo(f"Annotated {res['n']} samples ({res['n_corrupted']} corrupted): mean sigma_tn "
               f"{res['sigma_tn_mean']:.4g}, median {res['sigma_tn_median']:.4g} -> {out}"
               + (f"; report {res['report']}" if res.get("report") else ""))
    if res.get("classifier"):
        r = res["classifier"]["rates_heldout"]
        typer.echo(f"Leakage classifier -> {res['classifier']['path']}: called corrupted on held-out clean "
                   f"{r['clean']:.2%} ({r['n_clean']}), held-out corrupted {r['corrupted']:.2%} ({r['n_corrupted']})")


def register(app: typer.Typer) -> None:
    """Add `annotate` to the root app."""
    app.command("annotate")(annotate_command)
