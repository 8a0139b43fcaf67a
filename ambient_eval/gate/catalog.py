"""Metric addressing for the gate and history: `<kind>.<name>` (kind `fid` may be omitted).

The catalog lists every metric name the evaluations write (results.json `metrics`), as exact
names or patterns with a placeholder, and which direction is "better" for each. The config is
validated against it, so a typo such as `fdi` fails before any work with the valid names listed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ambient_eval.results import envelope as R
LOWER = "lower-is-better"
HIGHER = "higher-is-better"
DIRECTIONS = (LOWER, HIGHER)


@dataclass(frozen=True)
class MetricPattern:
    """One known metric name (or a family of names) of one result kind."""

    kind: str              # results.json "kind"
    display: str           # how it is listed to users, e.g. "frac_above_<threshold>"
    regex: str             # full-match regex over the metric name
    direction: str | None  # LOWER / HIGHER, or None when "better" is undefined (std, counts)


def _exact(kind: str, name: str, direction: str | None) -> MetricPattern:
    return MetricPattern(kind, name, re.escape(name), direction)


_NUM = r"[0-9]+(?:\.[0-9]+)?"
_MODEL = r"[^\[\]|]+"

CATALOG: tuple[MetricPattern, ...] = (
    # kind fid: the constants in ambient_eval/results/envelope.py.
    _exact(R.KIND_FID, R.FID, LOWER),
    _exact(R.KIND_FID, R.KID, LOWER),
    _exact(R.KIND_FID, R.KID_STD, None),
    _exact(R.KIND_FID, R.IS, HIGHER),
    _exact(R.KIND_FID, R.IS_STD, None),
    _exact(R.KIND_FID, R.PRECISION, HIGHER),
    _exact(R.KIND_FID, R.RECALL, HIGHER),
    _exact(R.KIND_FID, R.DENSITY, HIGHER),
    _exact(R.KIND_FID, R.COVERAGE, HIGHER),
    _exact(R.KIND_FID, R.SFID, LOWER),
    _exact(R.KIND_FID, R.ADM_IS, HIGHER),
    _exact(R.KIND_FID, R.ADM_IS_STD, None),
    _exact(R.KIND_FID, R.ADM_PRECISION, HIGHER),
    _exact(R.KIND_FID, R.ADM_RECALL, HIGHER),
    _exact(R.KIND_FID, R.CLIP_SCORE, HIGHER),
    _exact(R.KIND_FID, R.CLIP_SCORE_STD, None),
    MetricPattern(R.KIND_FID, R.fd_key("<extractor>"), r"fd_[a-z0-9_]+", LOWER),
    _exact(R.KIND_FID, "leakage", LOWER),             # metrics/leakage.py: samples that look corrupted
    _exact(R.KIND_FID, "leakage_corrected", LOWER),   # the same, corrected by the classifier's held-out rates
    # kind memorization: fraction of samples above a similarity threshold, top-1 statistics.
    MetricPattern(R.KIND_MEMORIZATION, "frac_above_<threshold>", rf"frac_above_{_NUM}", LOWER),
    MetricPattern(R.KIND_MEMORIZATION, "top1_<statistic> (mean, median, max, q50..q99)",
                  r"top1_(?:mean|median|max|min|q[0-9]{1,2}(?:\.[0-9]+)?)", LOWER),
    _exact(R.KIND_MEMORIZATION, "top1_std", None),
    MetricPattern(R.KIND_MEMORIZATION, "frac_carlini", r"frac_carlini(?:_[a-z0-9_.]+)?", LOWER),
    _exact(R.KIND_MEMORIZATION, "count", None),
    # kind reproducibility: RP (Zhang et al. 2023), per-model memorization / GL scores.
    _exact(R.KIND_REPRODUCIBILITY, "rp", HIGHER),
    MetricPattern(R.KIND_REPRODUCIBILITY, "rp[<A>|<B>]", rf"rp\[{_MODEL}\|{_MODEL}\]", HIGHER),
    MetricPattern(R.KIND_REPRODUCIBILITY, "memorization[<model>]", rf"memorization\[{_MODEL}\]", LOWER),
    MetricPattern(R.KIND_REPRODUCIBILITY, "gl[<model>]", rf"gl\[{_MODEL}\]", HIGHER),
)

KINDS = (R.KIND_FID, R.KIND_MEMORIZATION, R.KIND_REPRODUCIBILITY)


@dataclass(frozen=True)
class MetricRef:
    """A metric addressed in a config: result kind + metric name inside that result."""

    kind: str
    name: str

    @property
    def address(self) -> str:
        """Canonical spelling: plain name for kind fid, `<kind>.<name>` otherwise."""
        return self.name if self.kind == R.KIND_FID else f"{self.kind}.{self.name}"


def parse_address(text: str) -> MetricRef:
    """'fid' / 'recall' / 'fid.kid' / 'memorization.frac_above_0.95' -> MetricRef (not validated)."""
    head, dot, rest = text.partition(".")
    if dot and head in KINDS:
        return MetricRef(head, rest)
    return MetricRef(R.KIND_FID, text)


def find_pattern(ref: MetricRef) -> MetricPattern | None:
    """The catalog entry matching `ref`, or None when the name is unknown."""
    for p in CATALOG:
        if p.kind == ref.kind and re.fullmatch(p.regex, ref.name):
            return p
    return None


def valid_names() -> list[str]:
    """Every addressable metric (patterns shown with <placeholders>), for error messages."""
    out = []
    for p in CATALOG:
        out.append(p.display if p.kind == R.KIND_FID else f"{p.kind}.{p.display}")
    return out
