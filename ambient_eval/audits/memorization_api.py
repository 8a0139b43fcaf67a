"""`ambient_eval.memorization`: the `memorization` command as a function with a typed result.

    m = memorization(["samples/"], train="data/train.zip", embed="pixel")   # -> MemorizationResult
    m.to_pandas()          # one row per sample (all models): top-1 cosine, neighbours, flags
    m.save("audit/")       # samples.parquet/.csv, summary.json, results.json, report.html

Inputs are opened and validated here, the audit itself is memorization_run.run_memorization, and the
threshold calibration audits/calibration.py.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ambient_eval.audits.memorization_run import MemorizationAudit, MemorizationConfig, model_labels, model_results
from ambient_eval.errors import AmbientError
from ambient_eval.reports.html import REPORT_HTML

if TYPE_CHECKING:
    import pandas as pd

    from ambient_eval.audits.calibration import Calibration
    from ambient_eval.data.base import ImageSource
    from ambient_eval.results.envelope import Results

CALIBRATION_JSON = "calibration.json"  # --calibrate without samples


def parse_thresholds(values: Sequence[Any] | None) -> tuple[list[float], bool]:
    """Threshold values (numbers, or the word 'calibrated') => (numbers, whether 'calibrated' was among them)."""
    nums, calibrated = [], False
    for v in values or []:
        if str(v).strip().lower() == "calibrated":
            calibrated = True
            continue
        try:
            nums.append(float(v))
        except ValueError:
            raise AmbientError(f"--threshold {v!r} is neither a number nor 'calibrated'. Pass e.g. --threshold "
                               "0.95 or --threshold calibrated.") from None
    return nums, calibrated


@dataclass
class MemorizationResult:
    """What `ambient-eval memorization` computes.

    Attributes:
        audit: The audit (per-model tables, metrics, CIs, index and embedding provenance); None for a
            calibration-only run.
        calibration: The calibrated copy threshold (with `calibrate=True`), else None.
        train: The training set.
        top_n: Closest pairs shown per model in the report.
    """

    audit: MemorizationAudit | None
    calibration: "Calibration | None"
    train: "ImageSource"
    top_n: int = 32

    @property
    def results(self) -> dict[str, "Results"]:
        """Model name -> its Results envelope (what results.json holds)."""
        return {} if self.audit is None else {m.name: model_results(self.audit, m) for m in self.audit.models}

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Model name -> metrics (n, top-1 mean, fraction above each threshold, ...)."""
        return {} if self.audit is None else {m.name: m.metrics for m in self.audit.models}

    def calibration_json(self) -> dict[str, Any]:
        """calibration.json of a calibration-only run."""
        cal = self.calibration
        return {**cal.to_dict(), "embedding": cal.embedding,
                "train": {"description": self.train.description, "fingerprint": self.train.fingerprint()}}

    def to_pandas(self) -> "pd.DataFrame":
        """The per-sample score table of every model (samples.csv): one row per generated sample."""
        import pandas as pd

        if self.audit is None:
            raise TypeError("A calibration-only memorization result has no per-sample table; see "
                            ".calibration (threshold, ROC).")
        return pd.concat([m.table for m in self.audit.models], ignore_index=True)

    def save(self, out: str | os.PathLike, *, report: bool = True) -> list[Path]:
        """Write into OUT what the command writes (all files, or none); returns their paths.

        An audit: samples.parquet, samples.csv, summary.json, results.json (<model>/results.json for
        several models) and report.html. A calibration-only run: calibration.json and report.html.
        """
        from ambient_eval.audits.memorization_run import write_outputs
        from ambient_eval.files.atomic import publish_together, write_json

        out = Path(out)
        with publish_together(out):   # every file, or none
            if self.audit is None:
                write_json(out / CALIBRATION_JSON, self.calibration_json())
                written = [out / CALIBRATION_JSON]
                if report:
                    from ambient_eval.reports.calibration_report import build_calibration_report

                    written.append(build_calibration_report(self.calibration_json(), out / REPORT_HTML))
                return written
            rp = []
            if report:   # reads images: the step most likely to fail, so first
                from ambient_eval.reports.memorization_report import build_report

                rp = [build_report(self.audit, out / REPORT_HTML, top_n=self.top_n)]
            return [*write_outputs(self.audit, out), *rp]


def memorization(samples: str | Sequence[str] | None = None, *, train: Any, model: str | Sequence[str] | None = None,
                 seeds: str | Sequence[int] | None = None, conditioning: Any = None, steps: int | None = None,
                 embed: str = "dinov2", weights: str | None = None, k: int = 5,
                 thresholds: Sequence[float | str] | None = None, calibrate: bool = False, holdout: Any = None,
                 fpr: float = 0.01, check_seeds: int = 100, index: str = "flat",
                 index_path: str | os.PathLike | None = None, tta: str = "none", nprobe: int | None = None,
                 shards: str | os.PathLike | None = None, shard_size: int = 65536, carlini: bool = False,
                 carlini_delta: float = 1 / 3, top_n: int = 32, batch_size: int = 64, device: str = "auto",
                 max_images: int | None = None, bootstrap: int = 1000, seed: int = 0, cache: bool = True,
                 trust_pickle: bool = False) -> MemorizationResult:
    """Find generated samples that copy training images (`ambient-eval memorization`).

    Args:
        samples: Generated samples, one model each: folders, zips, .npz/.npy arrays.
        train: Training set (folder, zip, .npz/.npy, builtin:NAME).
        model: Checkpoint(s) to sample from instead (needs `seeds` unless the conditioning gives them).
        seeds: Seeds for `model`, e.g. "0-9999".
        conditioning: Class/prompt conditioning of `model` (ambient_eval.sampling.conditioning.Conditioning).
        steps: Sampler steps for `model` (default 18 for EDM/VP models).
        embed: sscd, dinov2, clip, inception, pixel or pixel-N.
        weights: Weights file of the embedding network.
        k: Nearest training images kept per sample.
        thresholds: Copy thresholds on the top-1 cosine, or "calibrated" among them (default per embedding).
        calibrate: Calibrate the threshold on the training set (planted copies vs held-out images).
        holdout: Held-out images for the calibration (default: a seeded split of `train`).
        fpr: Target false-positive rate of the calibrated threshold.
        check_seeds: Closed-form reference samples flagged at the calibrated threshold (0: skip).
        index: flat (exact), ivf, ivfpq or hnsw.
        index_path: Save the training-set index here, or reuse it when it matches.
        tta: Query views: none, flip, shift or flip+shift.
        nprobe: IVF cells searched per query.
        shards: Embed the training set into .npy shards in this folder (larger than RAM).
        shard_size: Embeddings per shard.
        carlini: Also flag samples by the Carlini et al. 2023 l2-ratio criterion.
        carlini_delta: Carlini criterion threshold.
        top_n: Closest pairs shown per model in the report.
        batch_size: Images per batch for embedding and sampling.
        device: auto, cpu, cuda or cuda:N.
        max_images: Seeded random subset of at most N training images.
        bootstrap: Bootstrap resamples for the confidence intervals (0: none).
        seed: Seed of the bootstrap and of the recall sample.
        cache: Use the feature cache.
        trust_pickle: Allow pickled checkpoints.

    Returns:
        A [MemorizationResult][ambient_eval.audits.memorization_api.MemorizationResult]. Without
        samples and models, `calibrate=True` (or "calibrated") runs the calibration only.

    Examples:
        >>> import ambient_eval as ae
        >>> m = ae.memorization(["samples/"], train="data/train.zip", embed="pixel")   # doctest: +SKIP
        >>> m.to_pandas().sort_values("top1_sim").tail()                            # doctest: +SKIP
    """
    from ambient_eval.data import open_source
    from ambient_eval.data.model_inputs import is_checkpoint
    from ambient_eval.sampling.conditioning import Conditioning

    samples = [samples] if isinstance(samples, (str, os.PathLike)) else [str(s) for s in samples or []]
    model = [model] if isinstance(model, (str, os.PathLike)) else [str(m) for m in model or []]
    nums, use_calibrated = parse_thresholds(thresholds)
    cond = conditioning if conditioning is not None else Conditioning()
    if (calibrate or use_calibrated) and not samples and not model:
        train_src = open_source(train, max_images=max_images)
        return MemorizationResult(None, _calibrate(train_src, holdout, embed, weights, device, fpr, check_seeds,
                                                   seed, tta), train_src, top_n)
    if not samples and not model:
        raise AmbientError("No generated samples given. Pass SAMPLES... (folders, zips, arrays) or "
                           "--model CKPT --seeds 0-9999.")
    if model and not seeds and cond.default_seeds() is None:
        raise AmbientError("--model needs --seeds (e.g. --seeds 0-9999) to know which samples to generate.")
    cfg = MemorizationConfig(embed=embed, weights=weights, device=device, k=k,
                             thresholds=tuple(nums) if nums else None, index=index,
                             index_path=str(index_path) if index_path else None, carlini=carlini,
                             carlini_delta=carlini_delta, batch_size=batch_size, n_boot=bootstrap, seed=seed,
                             tta=tta, shards=str(shards) if shards else None, shard_size=shard_size,
                             nprobe=nprobe)
    for spec in samples:  # the one checkpoint-or-samples rule (model_inputs), as every command
        if Path(spec).exists() and is_checkpoint(spec):
            raise AmbientError(f"'{spec}' is a model checkpoint, not samples. Pass it as --model {spec} "
                               "--seeds RANGE (its samples are generated and scored).")
    train_src = open_source(train, max_images=max_images)
    cal = None
    if calibrate or use_calibrated:
        cal = _calibrate(train_src, holdout, embed, weights, device, fpr, check_seeds, seed, tta)
        if use_calibrated:
            cfg = dataclasses.replace(cfg, thresholds=(*nums, cal.threshold))
    labels = model_labels([*samples, *model])
    sources = {lab: open_source(s) for lab, s in zip(labels, samples)}
    if model:
        from ambient_eval.audits.kept_images import KeptImages
        from ambient_eval.sampling import model_source, parse_seeds

        seed_list = parse_seeds(seeds) if seeds else cond.default_seeds()
        for lab, ckpt in zip(labels[len(samples):], model):
            # The report's gallery shows the very pixels that were scored (no second sampling pass).
            sources[lab] = KeptImages(model_source(ckpt, seed_list, batch_size=batch_size, steps=steps or 18,
                                                   device=device, trust_pickle=trust_pickle, conditioning=cond))
    from ambient_eval.audits.memorization_run import run_memorization
    from ambient_eval.features import FeatureCache

    audit = run_memorization(sources, train_src, cfg, cache=FeatureCache() if cache else None)
    audit.calibration = None if cal is None else cal.to_dict()
    return MemorizationResult(audit, cal, train_src, top_n)


def _calibrate(train_src, holdout, embed, weights, device, fpr, check_seeds, seed, tta) -> "Calibration":
    from ambient_eval.audits.calibration import calibrate
    from ambient_eval.data import open_source

    return calibrate(train_src, None if holdout is None else open_source(holdout), embed=embed, weights=weights,
                     device=device, fpr=fpr, check_seeds=check_seeds, seed=seed, tta=tta)
