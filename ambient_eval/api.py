"""The public Python API: one function per command, the same numbers and files as the CLI.

Each function returns a typed result: its numbers (`.metrics`, ...), `.to_pandas()` where it has
rows, and `.save(dir)`, which writes exactly the files the command writes into `--out` (the CLI
calls these functions and `.save`, so the two cannot differ).

Examples:
    ```python
    import ambient_eval as ae

    ae.stats("data/train.zip", features="pixel-8").save("ref.npz")   # mean, covariance, provenance
    q = ae.fid("samples/", "data/train.zip", metrics=["fid", "kid"], features="pixel-8")
    q.to_pandas()                                           # metric, value, ci_low, ci_high
    q.save("out/fid")                                       # results.json, results.csv, report.html
    m = ae.memorization(["samples/"], train="data/train.zip", embed="pixel")
    m.to_pandas().head()                                    # one row per sample: top-1 cosine, ...
    r = ae.reproducibility(["samplesA/", "samplesB/"], seeds="0-11", embed="pixel")
    r.to_pandas()                                           # one row per model pair: RP score, CI
    g = ae.gate(["out/fid"], config="gate.toml")
    g.passed, g.to_pandas()                                 # one row per rule
    ```

Each command's implementation lives in the folder named for its job (metrics/, audits/, sampling/,
training/, gate/); this module is the one place users import from.
"""
from __future__ import annotations

# Quality: fid, stats.
from ambient_eval.metrics.fid_result import FidResult, StatsResult
from ambient_eval.metrics.fid_run import DEFAULTS, FidDefaults, fid
from ambient_eval.metrics.stats_run import compute_stats, stats

# Audits and gates: memorization, reproducibility, gate.
from ambient_eval.audits.memorization_api import MemorizationResult, memorization
from ambient_eval.audits.reproducibility_api import ReproducibilityResult, reproducibility
from ambient_eval.gate.gate_api import GateResult, gate

# Models: sample, train, annotate, corrupt.
from ambient_eval.sampling.sample_run import SampleResult, sample
from ambient_eval.training.annotate_run import AnnotateResult, annotate
from ambient_eval.training.corrupt_run import CorruptResult, corrupt
from ambient_eval.training.train_run import TrainResult, train

__all__ = [
    # quality
    "DEFAULTS", "FidDefaults", "FidResult", "StatsResult", "compute_stats", "fid", "stats",
    # audits and gates
    "GateResult", "MemorizationResult", "ReproducibilityResult", "gate", "memorization", "reproducibility",
    # models
    "AnnotateResult", "CorruptResult", "SampleResult", "TrainResult", "annotate", "corrupt", "sample", "train",
]
