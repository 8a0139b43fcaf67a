"""`ambient_eval.reproducibility`: the `reproducibility` command as a function with a typed result.

    r = reproducibility(["runA/", "runB/"], seeds="0-999", embed="pixel")   # -> ReproducibilityResult
    r.to_pandas()        # one row per model pair: RP score, CI, cosine mean/median, seeds
    r.save("repro/")     # summary.json, results.json, per_seed.parquet/.csv, report.html

The audit itself is reproducibility_run.run; this module validates the arguments and adds the result type.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ambient_eval.audits.reproducibility_run import ReproOptions, ReproOutcome, envelope
from ambient_eval.errors import AmbientError

if TYPE_CHECKING:
    import pandas as pd

    from ambient_eval.results.envelope import Results

DEFAULT_SEEDS = "0-999"   # seeds compared when neither seeds nor prompts say


def check_models(models: Sequence[Any], names: Sequence[str] | None) -> None:
    """At least two models, and one unique label per model when labels are given."""
    if len(models) < 2:
        raise AmbientError(f"Reproducibility compares models, but {len(models)} model was given. Pass at "
                           "least two models (checkpoints or sample folders/npz keyed by seed).")
    if names and len(names) != len(models):
        raise AmbientError(f"--name was given {len(names)} times for {len(models)} models. Pass one label "
                           "per model, in model order.")
    if names and len(set(names)) != len(names):
        raise AmbientError(f"--name labels must be unique, got {', '.join(names)}.")


@dataclass
class ReproducibilityResult:
    """What `ambient-eval reproducibility` computes.

    Attributes:
        outcome: The audit (RP matrix with CIs, per-seed cosines, memorization/GL scores, thumbnails).
        options: Embedding, threshold, bootstrap and sampler settings used.
        seeds: The seeds compared.
    """

    outcome: ReproOutcome
    options: ReproOptions
    seeds: list[int]

    @property
    def results(self) -> "Results":
        """The Results envelope written as results.json."""
        return envelope(self.outcome, self.options, self.seeds)[0]

    @property
    def metrics(self) -> dict[str, float]:
        """rp (mean over pairs), rp[A|B] per pair, memorization[M] and gl[M] with training data."""
        return self.results.metrics

    def to_pandas(self) -> "pd.DataFrame":
        """One row per model pair: model A, model B, RP, CI low, CI high, mean/median cosine, seeds."""
        import pandas as pd

        from ambient_eval.reports.reproducibility_report import pair_rows

        return pd.DataFrame(pair_rows(self.outcome.result))

    def save(self, out: str | os.PathLike, *, report: bool = True) -> dict[str, Path]:
        """Write summary.json, results.json, per_seed.parquet/.csv and report.html into OUT (all, or none)."""
        from ambient_eval.audits.reproducibility_run import write_outputs
        from ambient_eval.files.atomic import publish_together

        with publish_together(out):   # every file, or none
            return write_outputs(self.outcome, self.options, self.seeds, Path(out), report=report)


def reproducibility(models: Sequence[str], *, seeds: str | Sequence[int] | None = None, embed: str = "sscd",
                    threshold: float | None = None, train: Sequence[str] | str | None = None,
                    names: Sequence[str] | None = None, batch_size: int = 64, steps: int | None = None,
                    conditioning: Any = None, device: str = "auto", weights: str | None = None,
                    trust_pickle: bool = False, checkpoint_format: str | None = None, bootstrap: int = 1000,
                    cache: bool = True) -> ReproducibilityResult:
    """Do different models turn the same noise into the same image? (`ambient-eval reproducibility`).

    Args:
        models: Two or more checkpoints (sampled here with shared per-seed noise) or sample sets keyed
            by seed (folder/zip of {seed:06d}.png, or an npz with 'images' and 'seeds').
        seeds: Seeds to compare, e.g. "0-999" (default 0-999; with prompts: one per row).
        embed: sscd, dinov2, clip, inception, pixel or pixel-N.
        threshold: Cosine above which two images count as the same (default per embedding).
        train: Training data for memorization/GL scores: one for all models, or one per model.
        names: One label per model (default: file names).
        batch_size: Images per batch (sampling and embedding).
        steps: Sampler steps (default 18 for EDM/VP models).
        conditioning: Class/prompt conditioning (ambient_eval.sampling.conditioning.Conditioning).
        device: auto, cpu, cuda or cuda:N.
        weights: Weights file of the embedding.
        trust_pickle: Allow pickled checkpoints.
        checkpoint_format: Force native, diffusers or edm-pickle.
        bootstrap: Bootstrap resamples for the confidence intervals.
        cache: Cache training-set embeddings.

    Returns:
        A [ReproducibilityResult][ambient_eval.audits.reproducibility_api.ReproducibilityResult].

    Examples:
        >>> import ambient_eval as ae
        >>> r = ae.reproducibility(["runA/", "runB/"], seeds="0-99", embed="pixel")   # doctest: +SKIP
        >>> r.metrics["rp"]                                                         # doctest: +SKIP
    """
    from ambient_eval.audits.reproducibility import check_threshold
    from ambient_eval.audits.reproducibility_inputs import SamplerSettings
    from ambient_eval.audits.reproducibility_run import run
    from ambient_eval.sampling.conditioning import Conditioning
    from ambient_eval.sampling.seeds import parse_seeds

    models = [str(m) for m in models]
    names = list(names) if names else None
    check_models(models, names)
    if threshold is not None:
        check_threshold(threshold)
    cond = conditioning if conditioning is not None else Conditioning()
    if seeds is None:
        seed_list = cond.default_seeds() or parse_seeds(DEFAULT_SEEDS)
    else:
        seed_list = parse_seeds(seeds) if isinstance(seeds, str) else [int(s) for s in seeds]
    opts = ReproOptions(embed=embed, weights=weights, threshold=threshold, n_boot=bootstrap, cache=cache,
                        sampler=SamplerSettings(steps=steps or SamplerSettings().steps, batch_size=batch_size, device=device,
                                                trust_pickle=trust_pickle, conditioning=cond))
    train = [train] if isinstance(train, (str, os.PathLike)) else train
    outcome = run(models, seed_list, opts, train=train, labels=names, fmt=checkpoint_format)
    return ReproducibilityResult(outcome, opts, list(seed_list))
