"""`ambient_eval.fid` and `ambient_eval.stats`: the `fid` and `stats` commands as functions with typed results.

    r = fid("samples/", "ref.npz", metrics=["fid", "kid"])   # -> FidResult
    r.metrics["fid"]; r.to_pandas(); r.save("out/")        # results.json, results.csv, report.html

The computation is metrics/fid_run.py; this module adds the result types, which write exactly the
files the CLI writes (the CLI calls these functions and `.save`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ambient_eval.errors import AmbientError
from ambient_eval.metrics.fid_run import DEFAULTS, compute_stats, fid_results

if TYPE_CHECKING:
    import pandas as pd

    from ambient_eval.metrics.stats import FeatureStats
    from ambient_eval.results.envelope import Results

# File names inside --out (one name for the report of every command).
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
REPORT_HTML = "report.html"


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


def fid(generated: Any = None, reference: Any = None, *, metrics: Sequence[str] = ("fid",),
        features: str | Mapping[str, str] | None = None, weights: Any = None,
        batch_size: int = DEFAULTS.batch_size, device: str = "auto", cache: Any = True,
        cache_dir: str | os.PathLike | None = None, max_images: int | None = None, subset_seed: int = 0,
        skip_bad: bool = False, kid_subsets: int = DEFAULTS.kid_subsets,
        kid_subset_size: int = DEFAULTS.kid_subset_size, is_splits: int = DEFAULTS.is_splits,
        pr_k: int = DEFAULTS.pr_k, dc_k: int = DEFAULTS.dc_k, fid_method: str = DEFAULTS.fid_method,
        model: str | None = None, seeds: str | Sequence[int] | None = None, steps: int = 18,
        trust_pickle: bool = False, repeats: int = 1, prompts: Any = None, clip_model: str | None = None,
        clip_weights: str | os.PathLike | None = None, classifier: str | os.PathLike | None = None,
        conditioning: Any = None, resize: int | None = None) -> FidResult:
    """Quality metrics of GENERATED images against REFERENCE images or statistics (`ambient-eval fid`).

    Args:
        generated: Folder, zip, .npz/.npy, builtin:NAME, an ImageSource, or a stats .npz /
            FeatureStats (then FID-type metrics only). Omit with `model`.
        reference: The same kinds, or ref:NAME; may be omitted for `metrics=["clipscore"]`.
        metrics: fid, kid, is, pr, dc, sfid, adm-is, adm-pr, clipscore, leakage.
        features: One extractor for all metrics, or METRIC=NAME pairs (default: fid/kid/is inception,
            pr vgg16, dc as pr).
        weights: Extractor weights file (PATH, or NAME=PATH pairs).
        batch_size: Images per feature-extraction batch.
        device: auto, cpu, cuda or cuda:N.
        cache: Use the feature cache (True/False, or a FeatureCache).
        cache_dir: Feature cache folder.
        max_images: Seeded random subset of at most N images per input.
        subset_seed: Seed of that subset.
        skip_bad: Skip unreadable images (counted) instead of stopping.
        kid_subsets: KID subsets.
        kid_subset_size: KID images per subset.
        is_splits: IS splits.
        pr_k: Precision/recall neighbourhood size.
        dc_k: Density/coverage neighbourhood size.
        fid_method: eig, sqrtm or auto.
        model: Checkpoint to sample instead of reading `generated` (needs `seeds`).
        seeds: Seeds for `model`, e.g. "0-49999".
        steps: Sampler steps for `model`.
        trust_pickle: Allow pickled checkpoints.
        repeats: With `model`: R disjoint seed ranges, mean with per-repeat values and a 95% CI.
        prompts: clipscore prompts (file or list, image i with prompt i).
        clip_model: open_clip model name for clipscore.
        clip_weights: Weights of `clip_model`.
        classifier: Clean-vs-corrupted classifier for `leakage`.
        conditioning: Class/prompt conditioning of `model` (ambient_eval.sampling.conditioning).
        resize: Center-crop and resize every image to R x R before extraction.

    Returns:
        A [FidResult][ambient_eval.metrics.fid_api.FidResult]: `.metrics`, `.to_pandas()`, `.save(dir)`.

    Examples:
        >>> import ambient_eval as ae
        >>> r = ae.fid("samples/", "reference_stats/cifar10.npz")   # doctest: +SKIP
        >>> r.save("out/")                                           # doctest: +SKIP
    """
    args = dict(locals())   # only the parameters are bound at this point
    return FidResult(fid_results(**args))


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


def stats(source: Any, *, features: str = "inception", output: str | None = None, weights: str | None = None,
          batch_size: int = DEFAULTS.batch_size, device: str = "auto", cache: Any = True,
          cache_dir: str | os.PathLike | None = None, max_images: int | None = None, subset_seed: int = 0,
          skip_bad: bool = False) -> StatsResult:
    """Reference statistics of SOURCE for later `fid` runs (`ambient-eval stats`).

    Args:
        source: Folder, zip, .npz/.npy, builtin:NAME, CIFAR/MNIST files, or an ImageSource.
        features: Extractor name (inception, inception-clean, vgg16, dinov2, clip, pixel, ...).
        output: Extractor output to summarise (default pool3 / fc2_relu / the first).
        weights: Weights file of the extractor.
        batch_size: Images per batch.
        device: auto, cpu, cuda or cuda:N.
        cache: Use the feature cache.
        cache_dir: Feature cache folder.
        max_images: Seeded random subset of at most N images.
        subset_seed: Seed of that subset.
        skip_bad: Skip unreadable images instead of stopping.

    Returns:
        A [StatsResult][ambient_eval.metrics.fid_api.StatsResult]; `.save("ref.npz")` writes the file.

    Examples:
        >>> import ambient_eval as ae
        >>> ae.stats("data/train.zip").save("reference_stats/train.npz")   # doctest: +SKIP
    """
    return StatsResult(compute_stats(source, features=features, output=output, weights=weights,
                                     batch_size=batch_size, device=device, cache=cache, cache_dir=cache_dir,
                                     max_images=max_images, subset_seed=subset_seed, skip_bad=skip_bad))
