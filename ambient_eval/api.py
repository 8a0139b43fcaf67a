"""The public Python API: one function per command, the same numbers as the CLI.

    import ambient_eval as ae
    res = ae.fid("samples/", "ref:cifar10-train-32")     # -> Results (what results.json holds)
    st = ae.compute_stats("data/train")                  # -> FeatureStats (a stats .npz)

Each command's implementation lives in the folder named for its job (metrics/, audits/, sampling/,
training/, gate/); this module is the one place users import from.
"""
from __future__ import annotations

# Quality: fid, stats.
from ambient_eval.metrics.fid_run import DEFAULTS, FidDefaults, compute_stats, fid

# Audits and gates: memorization, reproducibility, gate.

# Models: sample, train, annotate, corrupt.
from ambient_eval.sampling.sample_run import SampleResult, sample
from ambient_eval.training.annotate_run import AnnotateResult, annotate
from ambient_eval.training.corrupt_run import CorruptResult, corrupt
from ambient_eval.training.train_run import TrainResult, train

__all__ = [
    # quality
    "DEFAULTS", "FidDefaults", "compute_stats", "fid",
    # audits and gates
    # models
    "AnnotateResult", "CorruptResult", "SampleResult", "TrainResult", "annotate", "corrupt", "sample", "train",
]
