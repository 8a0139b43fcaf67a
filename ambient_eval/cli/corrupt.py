"""`ambient-eval corrupt`: a corrupted copy of a dataset plus per-sample metadata (deterministic)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def corrupt_command(
    source: Annotated[str, typer.Argument(help="Images to corrupt (any source the toolkit reads).",
                      metavar="SOURCE", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output directory (must be new or empty).",
                   metavar="OUT", show_default=False)],
    kind: Annotated[str, typer.Option("--kind", help="blur, jpeg, motion-blur, noise or label-flip.",
                    metavar="KIND", show_default=False)],
    level: Annotated[float, typer.Option("--level", help="blur: sigma_B (pixels); jpeg: quality 1-100; "
                     "motion-blur: kernel length (pixels); noise: sigma_n (model-space [-1, 1] units); "
                     "label-flip: flip rate.", metavar="L", show_default=False)],
    fraction: Annotated[float, typer.Option("--fraction", help="Fraction of images corrupted (image kinds).",
                        metavar="F")] = 0.9,
    angle: Annotated[Optional[float], typer.Option("--angle", help="motion-blur angle in degrees (default: "
                     "uniform per sample).", metavar="DEG")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Selects the corrupted subset and per-sample draws.",
                    metavar="SEED")] = 0,
    resolution: Annotated[Optional[int], typer.Option("--resolution", help="Resize images to RxR first.",
                          metavar="R", min=4)] = None,
    max_images: Annotated[Optional[int], typer.Option("--max-images", help="Seeded random subset of the source.",
                          metavar="N", min=1)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty OUT.")] = False,
) -> None:
    """Write a corrupted copy of a dataset plus per-sample metadata (deterministic given --seed).

    OUT gets NNNNNN.png for every sample, dataset.json (labels after any flip), corruption.jsonl
    (index, name, corrupted, kind, params, label_before, label_after) and corruption.json. For
    --kind noise, OUT/observations.npz also holds the exact float32 observations (model space),
    which `train --method noisy` uses; the PNGs are rounded previews.

    Examples:
      ambient-eval corrupt builtin:digits -o blurred --kind blur --level 1.0 --fraction 0.9
      ambient-eval corrupt cifar/ -o jpeg10 --kind jpeg --level 10
      ambient-eval corrupt builtin:digits -o noisy --kind noise --level 0.2 --fraction 1
      ambient-eval corrupt builtin:digits -o flipped --kind label-flip --level 0.05
    """
    from ambient_eval.api import corrupt

    res = corrupt(source, kind, level, fraction=fraction, seed=seed, angle=angle, resolution=resolution,
                  max_images=max_images, out=out, overwrite=overwrite)
    typer.echo(f"Wrote {res.summary['n']} images ({res.summary['n_corrupted']} corrupted, {kind} {level}) to {out}")


def register(app: typer.Typer) -> None:
    """Add `corrupt` to the root app."""
    app.command("corrupt")(corrupt_command)
