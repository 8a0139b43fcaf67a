"""`ambient-eval demo`: the whole loop offline on built-in data, ending in one HTML report."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ambient_eval.cli.options import Device


def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (report.html, summary.json and "
                   "one subfolder per stage). An earlier demo output is reused: finished models and samples "
                   "with the same settings are not recomputed.", metavar="DIR")] = Path("demo_out"),
    quick: Annotated[bool, typer.Option("--quick", help="A much smaller run (well under a minute; for tests "
                     "and smoke checks). The numbers mean little.")] = False,
    device: Device = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the data split, corruption and training.",
                                      metavar="SEED")] = 0,
    retrain: Annotated[bool, typer.Option("--retrain", help="Annotate and train the four models here even "
                       "when shipped checkpoints (ambient_eval/demo/checkpoints, `make demo-models`) match.")] = False,
    pixel_only: Annotated[bool, typer.Option("--pixel-only", help="Use only pixel features even when official "
                          "Inception / DINOv2 / SSCD weights are found locally.")] = False,
) -> None:
    """Run the whole story offline in a few minutes on a CPU, ending with one HTML report.

    Built-in digits, 90% of them blurred; four tiny diffusion models with the same budget
    (clean subset only, twice with different seeds; naive on all data; Ambient-Omni on all
    data), trained here, or taken from checkpoints built by `make demo-models` with
    `ambient-eval train` (recipe in ambient_eval/demo/checkpoints/recipe.json) when they match
    the settings (--retrain ignores them); sample them with shared seeds;
    measure quality against held-out clean digits, memorization against each model's
    training set and reproducibility across models; write one combined report.

    Needs no download and no GPU. Quality and memorization use pixel features (named in the
    report; not comparable with published FID); official Inception / DINOv2 / SSCD weights are
    used in addition when found locally ($AMBIENT_EVAL_WEIGHTS or the libraries' caches).

    Examples:

      ambient-eval demo

      ambient-eval demo --out demo_out --quick

      ambient-eval demo --out demo_full --retrain

      ambient-eval demo --out /tmp/demo --device cuda
    """
    import logging
    import sys
    import time

    from ambient_eval.demo.run import check_out_dir, run_demo, summary_text
    from ambient_eval.demo.settings import DemoSettings

    if seed < 0:
        from ambient_eval.errors import AmbientError

        raise AmbientError(f"--seed {seed} is negative. Use a seed >= 0.")
    check_out_dir(out)  # before any import of torch or any work
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    kw = {"device": device, "seed": seed, "real_features": not pixel_only}
    if retrain:
        kw["pretrained"] = False
    settings = DemoSettings.quick(**kw) if quick else DemoSettings(**kw)
    t0: list[float] = []   # the clock starts with stage 1, as "Done in" does (imports before are not counted)

    def on_stage(i: int, n: int, msg: str) -> None:
        t0.append(t0[0] if t0 else time.perf_counter())
        typer.echo(f"[{i}/{n}] {msg}  (+{time.perf_counter() - t0[0]:.0f} s)", err=True)
        sys.stderr.flush()

    summary = run_demo(settings, out, on_stage)
    typer.echo(summary_text(summary))


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.command("demo")(demo)
