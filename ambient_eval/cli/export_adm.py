"""`ambient-eval export-adm`: write images as an ADM evaluator sample batch (.npz, arr_0 NHWC uint8)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.safe_echo import echo


def export_adm_command(
    source: Annotated[str, typer.Argument(help="Images: folder, .zip, .npz/.npy, builtin:NAME (one size).",
                                          metavar="SOURCE", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Batch file to write (.npz).",
                                         metavar="FILE.npz")],
    max_images: Annotated[Optional[int], typer.Option("--max-images", help="Seeded random subset of at most N "
                          "images.", metavar="N", min=1)] = None,
) -> None:
    """Write SOURCE as an ADM evaluator sample batch, to hand our samples to guided-diffusion's
    `evaluations/evaluator.py REF_BATCH SAMPLE_BATCH`.

    The file holds arr_0 (N x H x W x 3 uint8, images in source order: folders sorted by name) and
    arr_1 (int64 labels) when the source has labels. Written atomically, streamed batch by batch.

    Examples:

      ambient-eval sample ckpt/ --seeds 0-49999 --out samples/ && ambient-eval export-adm samples/ -o samples.npz

      python evaluations/evaluator.py VIRTUAL_imagenet64_labeled.npz samples.npz
    """
    from ambient_eval.data import open_source
    from ambient_eval.data.adm_npz import write_adm_npz
    from ambient_eval.errors import AmbientError

    if output.suffix != ".npz" or output.is_dir():
        raise AmbientError(f"Output '{output}' must be a file name ending in .npz (e.g. samples.npz).")
    src = open_source(source, max_images=max_images)
    write_adm_npz(src, output)
    echo(f"Wrote {len(src)} images ({src.description}) to {output}")


def register(app: typer.Typer) -> None:
    """Add `export-adm` to the root app."""
    app.command("export-adm")(export_adm_command)
