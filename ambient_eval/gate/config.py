"""gate.toml: the frozen dataclasses a config is validated into (parsing: gate/parse.py).

Schema (see examples/ci/gate.toml):

    [gate]                                  # optional
    baseline = "baseline/results.json"      # or a list; --baseline overrides; relative to this file
    alpha = 0.05                            # default level of noise-aware rules
    [gate.settings.fid]                     # optional: required settings of the CURRENT results
    extractor = "inception"                 #   of one kind (fid, memorization, reproducibility)

    [[rule]]                                # bounds rule: min and/or max
    metric = "fid"
    max = 12.0                              # number, or "baseline", "baseline + 0.5",
                                            #   "baseline - 0.02", "baseline * 1.05"
    [[rule]]
    check = "recall >= baseline - 0.02"     # the same, as one expression (<= or >=)

    [[rule]]                                # noise-aware rule
    metric = "fid"
    regression = "significant"
    alpha = 0.05                            # optional, else [gate].alpha
    direction = "lower-is-better"           # optional for metrics with a known direction
    margin = 0.0                            # optional: regressions smaller than this are ignored
    method = "auto"                         # auto | welch | ci

    [evaluate]                              # only for `gate --model CKPT`
    reference = "reference_stats/cifar10.npz"
    seeds = "0-9999"
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ambient_eval.gate.catalog import MetricRef


@dataclass(frozen=True)
class GateDefaults:
    """Defaults of the gate config."""

    alpha: float = 0.05     # significance level of noise-aware rules (one-sided test)
    margin: float = 0.0     # smallest regression that counts, in the metric's units
    method: str = "auto"    # "welch" when both sides have >= 2 repeats, else "ci"


DEFAULTS = GateDefaults()
METHODS = ("auto", "welch", "ci")
TOP_KEYS = ("gate", "rule", "evaluate")
GATE_KEYS = ("baseline", "alpha", "settings", "name")
RULE_KEYS = ("name", "metric", "check", "min", "max", "regression", "direction", "alpha", "margin",
             "method")
EVALUATE_KEYS = ("reference", "seeds", "repeats", "metrics", "features", "weights", "batch", "steps",
                 "device")
_BOUND_OPS = ("+", "-", "*")


@dataclass(frozen=True)
class Bound:
    """One side of a bounds rule: a constant (op None) or `baseline <op> value`."""

    text: str               # as written, for tables
    value: float            # the constant, or the operand of op
    op: str | None = None   # None: constant; "+", "-", "*": relative to the baseline value

    @property
    def relative(self) -> bool:
        return self.op is not None

    def resolve(self, baseline: float | None) -> float:
        """The bound as a number (baseline is required when relative)."""
        if self.op is None:
            return self.value
        assert baseline is not None  # guaranteed by config validation + evaluate
        return {"+": baseline + self.value, "-": baseline - self.value, "*": baseline * self.value}[self.op]


@dataclass(frozen=True)
class Rule:
    """One gate rule (one JUnit test case)."""

    index: int                     # 1-based position in the config
    name: str                      # test-case name
    metric: MetricRef
    min: Bound | None = None       # bounds rule: current >= min
    max: Bound | None = None       # bounds rule: current <= max
    significant: bool = False      # noise-aware rule
    direction: str | None = None   # catalog.LOWER / HIGHER (noise-aware rules)
    alpha: float = DEFAULTS.alpha
    margin: float = DEFAULTS.margin
    method: str = DEFAULTS.method

    @property
    def needs_baseline(self) -> bool:
        return self.significant or any(b is not None and b.relative for b in (self.min, self.max))

    @property
    def kind_label(self) -> str:
        if self.significant:
            return "noise-aware"
        return "relative" if self.needs_baseline else "absolute"


@dataclass(frozen=True)
class GateConfig:
    """A validated gate config."""

    path: Path
    rules: tuple[Rule, ...]
    baselines: tuple[Path, ...] = ()
    alpha: float = DEFAULTS.alpha
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> required settings
    evaluate: dict[str, Any] = field(default_factory=dict)  # [evaluate] for --model
    name: str = "ambient-eval gate"

    @property
    def kinds(self) -> list[str]:
        return sorted({r.metric.kind for r in self.rules})

