"""`ambient-eval stats`: reference statistics (mean, covariance, provenance) of an image set."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.options import Batch, Device


def stats_command(
    source: Annotated[str, typer.Argument(help="Images: folder, .zip, .npz/.npy, builtin:NAME, CIFAR/MNIST "
                                          "files.", metavar="SOURCE", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="Statistics file to write (.npz).",
                                         metavar="FILE.npz")],
    features: Annotated[str, typer.Option("--features", help="Extractor (inception, inception-clean, vgg16, "
                                          "dinov2, clip, pixel, ...).", metavar="NAME")] = "inception",
    feature_output: Annotated[Optional[str], typer.Option("--output-name", help="Extractor output to "
                              "summarise (default: pool3 / fc2_relu / the extractor's first).",
                              metavar="NAME")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", help="Weights file for the extractor.",
                                                   metavar="PATH")] = None,
    batch: Batch = 64,
    device: Device = "auto",
    max_images: Annotated[Optional[int], typer.Option("--max-images", help="Seeded random subset of at most N "
                          "images.", metavar="N", min=1)] = None,
    subset_seed: Annotated[int, typer.Option("--subset-seed", help="Seed of the --max-images subset.",
                                             metavar="SEED")] = 0,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Skip unreadable images instead of stopping.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Feature cache folder.",
                                                      metavar="DIR")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the feature cache.")] = False,
) -> None:
    """Compute reference statistics of SOURCE for later `ambient-eval fid` runs.

    Writes an .npz with mu (D,) and sigma (D, D) in float64, N, and provenance (extractor,
    preprocessing mode, feature output, weights SHA-256, source fingerprint, tool version).
    `fid` refuses to compare statistics made with a different extractor, mode or weights.
    Python: `ambient_eval.stats(SOURCE).save(FILE.npz)`.

    Examples:

      ambient-eval stats data/cifar10-train.zip -o reference_stats/cifar10-train.npz

      ambient-eval stats data/ffhq/ -o reference_stats/ffhq-clean.npz --features inception-clean

      torchrun --nproc_per_node 2 -m ambient_eval stats data/ffhq/ -o ffhq.npz   # ranks share extraction
    """
    import warnings

    from ambient_eval import api
    from ambient_eval.metrics.fid_result import check_stats_path

    check_stats_path(output)   # a bad -o fails before any work
    from ambient_eval.features.distributed import feature_group, is_main

    with warnings.catch_warnings(record=True) as caught, feature_group(device):  # torchrun: ranks share work
        warnings.simplefilter("always")
        res = api.stats(source, features=features, output=feature_output, weights=weights,
                        batch_size=batch, device=device, cache=not no_cache, cache_dir=cache_dir,
                        max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad)
    if not is_main():
        return
    for msg in dict.fromkeys(str(w.message) for w in caught):
        typer.echo("Warning: " + msg, err=True)
    res.save(output)
    st = res.stats
    typer.echo(f"Wrote {output}: N = {st.n}, {st.extractor}/{st.mode} {st.feature} ({st.mu.shape[0]}-d)")


def register(app: typer.Typer) -> None:
    """Add `stats` to the root app."""
    app.command("stats")(stats_command)
