"""Metrics as pure functions of features (np.ndarray NC float32/64), equal to torch-fidelity's.

One file per metric: fid, kid, inception_score, precision_recall, density_coverage.
"""
from __future__ import annotations

from ambient_eval.metrics.adm import adm_inception_score, adm_precision_recall
from ambient_eval.metrics.density_coverage import density_coverage
from ambient_eval.metrics.fid import FID_METHODS, SmallSampleWarning, fid_from_features, fid_from_stats
from ambient_eval.metrics.inception_score import inception_score
from ambient_eval.metrics.kid import kid_from_features
from ambient_eval.metrics.precision_recall import precision_recall

# Metric names accepted by `ambient-eval fid --metrics`.
METRIC_NAMES = ("fid", "kid", "is", "pr", "dc", "sfid", "adm-is", "adm-pr", "clipscore")

__all__ = ["METRIC_NAMES", "FID_METHODS", "SmallSampleWarning", "fid_from_features", "fid_from_stats",
           "kid_from_features", "inception_score", "precision_recall", "density_coverage", "adm_inception_score",
           "adm_precision_recall"]
