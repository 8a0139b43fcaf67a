"""CLI options shared by several commands, declared once (flag names, metavar, validation, help).

    def fid_command(..., device: Device = "auto", batch: Batch = 64, trust_pickle: TrustPickle = False)

A command that needs different help text builds its own with the same factory, e.g.
`Annotated[int, batch_option("Images per batch for embedding and sampling.")]`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.reports.html import REPORT_HTML

DEV_HELP = "auto, cpu, cuda or cuda:N."
TRUST_PICKLE_HELP = ("Allow loading pickled checkpoints (EDM/Ambient .pkl): loading runs code stored in the file, "
                     "so only for files you trust.")


def device_option(help: str = DEV_HELP):
    """--device DEV."""
    return typer.Option("--device", help=help, metavar="DEV")


def batch_option(help: str = "Images per batch.", *aliases: str):
    """--batch N (>= 1)."""
    return typer.Option("--batch", *aliases, help=help, metavar="N", min=1)


def steps_option(help: str = "Sampler steps (EDM Heun: NFE = 2 * steps - 1)."):
    """--steps N (>= 1)."""
    return typer.Option("--steps", help=help, metavar="N", min=1)


def seeds_option(help: str = "Seeds, e.g. 0-49999 or 0,5,10-19."):
    """--seeds RANGES."""
    return typer.Option("--seeds", help=help, metavar="RANGES")


def weights_option(help: str = "Weights file of the feature extractor / embedding."):
    """--weights FILE."""
    return typer.Option("--weights", help=help, metavar="FILE")


def out_option(help: str, metavar: str = "DIR"):
    """-o / --out."""
    return typer.Option("--out", "-o", help=help, metavar=metavar)


def trust_pickle_option(help: str = TRUST_PICKLE_HELP):
    """--trust-pickle."""
    return typer.Option("--trust-pickle", help=help)


Device = Annotated[str, device_option()]
Batch = Annotated[int, batch_option("Images per batch.", "--batch-size")]
Steps = Annotated[int, steps_option()]
Seeds = Annotated[Optional[str], seeds_option()]
Weights = Annotated[Optional[str], weights_option()]
TrustPickle = Annotated[bool, trust_pickle_option()]
OutDir = Annotated[Path, out_option("Output directory.")]

ReportPath = Annotated[Optional[Path], typer.Option(
    "--report", help=f"Deprecated: the report is always OUT/{REPORT_HTML}; a PATH elsewhere is an error.",
    metavar="PATH", show_default=False)]


def check_report_option(report: Optional[Path], out: Optional[Path], command: str) -> None:
    """--report may only name OUT/report.html (where the report goes); anything else is an error naming that place."""
    from ambient_eval.errors import AmbientError

    if report is None or (out is not None and Path(report).absolute() == (Path(out) / REPORT_HTML).absolute()):
        return
    where = f"'{Path(out) / REPORT_HTML}'" if out is not None else f"OUT/{REPORT_HTML}"
    raise AmbientError(f"--report {report}: {command} writes its HTML report into its output folder, as {where}. "
                       f"Drop --report, or pass --out DIR to choose the folder (the report becomes "
                       f"DIR/{REPORT_HTML}).")
