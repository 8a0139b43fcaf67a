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

__all__ = [
    # quality
    "DEFAULTS", "FidDefaults", "compute_stats", "fid",
    # audits and gates
    # models
]
