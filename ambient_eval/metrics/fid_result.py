"""What `ambient_eval.fid` and `ambient_eval.stats` return: FidResult and StatsResult.

    r = ae.fid("samples/", "ref.npz", metrics=["fid", "kid"])   # -> FidResult
    r.metrics["fid"]; r.to_pandas(); r.save("out/")           # results.json, results.csv, report.html

They write exactly the files the `fid` / `stats` commands write (the CLI calls the API and `.save`).
The computations are metrics/fid_run.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ambient_eval.errors import AmbientError
from ambient_eval.reports.html import REPORT_HTML
from ambient_eval.results.envelope import RESULTS_JSON

if TYPE_CHECKING:
    import pandas as pd

    from ambient_eval.metrics.stats import FeatureStats
    from ambient_eval.results.envelope import Results

RESULTS_CSV = "results.csv"   # fid's one-row table inside --out


def results_csv(res: "Results") -> str:
    """One header line and one row: metrics plus the settings that make them comparable."""
    import csv
    import io

    from ambient_eval.results.envelope import COMPARABILITY_KEYS

    row = {"created": res.created, "kind": res.kind, "tool_version": res.tool_version}
    row.update({k: res.settings.get(k) for k in COMPARABILITY_KEYS})
    row["n_reference"] = res.settings.get("n_reference")
    row.update(res.metrics)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(row), lineterminator="\n")
    w.writeheader()
    w.writerow(row)
    return buf.getvalue()


def metric_rows(res: "Results") -> "pd.DataFrame":
    """One row per metric of a Results envelope: metric, value, ci_low, ci_high (NaN without a CI)."""
    import pandas as pd

    nan = float("nan")
    return pd.DataFrame([{"metric": k, "value": float(v), "ci_low": res.ci.get(k, (nan, nan))[0],
                          "ci_high": res.ci.get(k, (nan, nan))[1]} for k, v in res.metrics.items()],
                        columns=["metric", "value", "ci_low", "ci_high"])


@dataclass
class FidResult:
    """What `ambient-eval fid` computes: the Results envelope plus the runs shown beside it in the report.

    Attributes:
        results: The envelope written as results.json (metrics, ci, repeats, settings, inputs, extra).
        compared: Earlier results shown beside this run in the report (`--compare`).
        labels: Report labels of `compared`, then of this run.
    """

    results: "Results"
    compared: list["Results"] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    # The envelope's fields, read through (r.metrics["fid"], r.settings["extractor"], ...).
    @property
    def metrics(self) -> dict[str, float]:
        """Metric name -> value (results.json `metrics`)."""
        return self.results.metrics

    @property
    def ci(self) -> dict[str, list[float]]:
        """Metric name -> [low, high] (results.json `ci`)."""
        return self.results.ci

    @property
    def repeats(self) -> dict[str, list[float]]:
        """Metric name -> per-repeat values (results.json `repeats`)."""
        return self.results.repeats

    @property
    def settings(self) -> dict[str, Any]:
        """Conventions used (extractor, mode, weights hash, N, ...; results.json `settings`)."""
        return self.results.settings

    @property
    def inputs(self) -> dict[str, Any]:
        """Input descriptions and fingerprints (results.json `inputs`)."""
        return self.results.inputs

    @property
    def extra(self) -> dict[str, Any]:
        """Command-specific extras, e.g. warnings (results.json `extra`)."""
        return self.results.extra

    @property
    def kind(self) -> str:
        """The results kind, `fid`."""
        return self.results.kind

    def to_pandas(self) -> "pd.DataFrame":
        """One row per metric: metric, value, ci_low, ci_high (NaN where there is no interval)."""
        return metric_rows(self.results)

    def save(self, out: str | os.PathLike, *, report: bool = True) -> list[Path]:
        """Write OUT/results.json, OUT/results.csv and OUT/report.html (all of them, or none).

        Args:
            out: Output directory (created when missing).
            report: Also write the HTML report (the CLI's `--no-report` passes False).

        Returns:
            The paths written.
        """
        from ambient_eval.files.atomic import publish_together, write_text

        out = Path(out)
        if out.suffix == ".json":
            raise AmbientError(f"FidResult.save('{out}') takes an output folder (it writes {RESULTS_JSON}, "
                               f"{RESULTS_CSV} and {REPORT_HTML} there). To write only the results file, use "
                               f".results.save('{out}').")
        paths = [out / RESULTS_JSON, out / RESULTS_CSV]
        with publish_together(out):
            self.results.save(paths[0])
            write_text(paths[1], results_csv(self.results))
            if report:
                from ambient_eval.reports.fid_report import save_fid_report

                labels = list(self.labels) or [f"run {i + 1}" for i in range(len(self.compared))]
                labels += [out.name] * (len(self.compared) + 1 - len(labels))   # this run: its folder's name
                paths.append(save_fid_report([*self.compared, self.results], out / REPORT_HTML, labels))
        return paths


def check_stats_path(path: str | os.PathLike) -> Path:
    """Refuse a statistics file name that could not be written (before any work); returns it as a Path."""
    from ambient_eval.files.atomic import ensure_writable_dir

    p = Path(path)
    if p.suffix != ".npz":
        raise AmbientError(f"Output '{p}' must end in .npz (e.g. reference_stats/NAME.npz).")
    if p.is_dir():
        raise AmbientError(f"Output '{p}' is a directory; pass a file name ending in .npz.")
    ensure_writable_dir(p.parent if str(p.parent) else ".")
    return p


@dataclass
class StatsResult:
    """What `ambient-eval stats` computes: feature statistics with provenance.

    Attributes:
        stats: The FeatureStats (mu, sigma in float64, n, extractor, mode, feature, weights hash).
    """

    stats: "FeatureStats"

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics file (`-o FILE.npz` of the CLI) atomically; returns its path."""
        from ambient_eval.files.atomic import publish_together

        p = check_stats_path(path)
        with publish_together(p.parent if str(p.parent) else "."):
            self.stats.save(p)
        return p

    def to_pandas(self) -> "pd.DataFrame":
        """Not available: statistics are a mean and a covariance, not rows."""
        raise TypeError("StatsResult has no rows to tabulate (it holds a mean vector and a covariance "
                        "matrix); use .stats.mu and .stats.sigma.")


