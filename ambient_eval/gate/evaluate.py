"""Gate evaluation: load results, refuse incomparable ones, apply every rule -> GateOutcome.

Everything that can make the gate an error (exit 2) is checked before any rule is judged:
missing kinds, missing metrics, missing baselines and results that differ
in their N, reference or a compared metric's feature space (ambient_eval.results.comparability).
Only then are the rules applied (exit 1 on any failure).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ambient_eval.errors import AmbientError
from ambient_eval.gate.config import GateConfig, Rule
from ambient_eval.gate.rules import Sample, Verdict, check_bounds, check_significant
from ambient_eval.results.envelope import RESULTS_JSON, Results, load_results

EXIT_PASS = 0
EXIT_REGRESSION = 1
EXIT_ERROR = 2


@dataclass(frozen=True)
class Loaded:
    """A results.json and where it came from."""

    path: Path
    results: Results
    sources: tuple[Path, ...] = ()   # the files combined as repeats, when more than one

    @property
    def label(self) -> str:
        return " + ".join(map(str, self.sources)) if self.sources else str(self.path)


@dataclass(frozen=True)
class RuleOutcome:
    """One rule applied to the current (and baseline) results."""

    rule: Rule
    current: Sample
    baseline: Sample | None
    verdict: Verdict


@dataclass(frozen=True)
class GateOutcome:
    """All rule outcomes plus the files they were computed from."""

    config: GateConfig
    outcomes: tuple[RuleOutcome, ...]
    current: dict[str, Loaded]
    baseline: dict[str, Loaded]

    @property
    def failures(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.verdict.passed]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_REGRESSION


def load_by_kind(paths: Sequence[str | os.PathLike], role: str, *,
                 as_repeats: bool = False) -> dict[str, Loaded]:
    """results.json files (or directories holding one), keyed by kind.

    Several results of one kind are an error, unless `as_repeats`: then they are evaluations of
    one checkpoint over disjoint seed ranges, combined by metrics.repeats.combine_repeats.
    """
    groups: dict[str, list[tuple[Path, Results]]] = {}
    for p in paths:
        path = Path(p)
        path = path / RESULTS_JSON if path.is_dir() else path
        res = load_results(path)
        groups.setdefault(res.kind, []).append((path, res))
    out: dict[str, Loaded] = {}
    for kind, items in groups.items():
        if len(items) == 1:
            out[kind] = Loaded(*items[0])
            continue
        if not as_repeats:
            raise AmbientError(f"Two {role} results of kind '{kind}': '{items[0][0]}' and '{items[1][0]}'. "
                               "Pass one results.json per kind, or --as-repeats when they are the same "
                               "checkpoint evaluated over disjoint seed ranges.")
        from ambient_eval.metrics.repeats import combine_repeats

        combined = combine_repeats([r for _, r in items], [str(p) for p, _ in items])
        out[kind] = Loaded(items[0][0], combined, tuple(p for p, _ in items))
    return out


def check_comparable(cur: Loaded, base: Loaded, metrics: Sequence[str] = ()) -> None:
    """Refuse to compare results that differ in N or reference, or in a compared metric's feature space."""
    from ambient_eval.results import comparability
    comparability.check_comparable(base.results.settings, cur.results.settings, metrics,
                                   label_a=f"the baseline '{base.label}'", label_b=f"the current '{cur.label}'")


def _sample(loaded: Loaded, rule: Rule, role: str) -> Sample:
    res, name = loaded.results, rule.metric.name
    if name not in res.metrics:
        have = ", ".join(sorted(res.metrics)) or "(none)"
        raise AmbientError(f"Rule {rule.index} ({rule.name}) needs metric '{name}', but the {role} result "
                           f"'{loaded.path}' (kind {res.kind}) has only: {have}. Re-run the evaluation "
                           "with that metric enabled, or fix the rule's metric name.")
    v = res.metrics[name]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise AmbientError(f"Metric '{name}' in '{loaded.path}' is {v!r}, not a finite number. "
                           "Re-run the evaluation that wrote it.")
    reps = tuple(float(x) for x in res.repeats.get(name, []) or [])
    ci = res.ci.get(name)
    ci_t = (float(ci[0]), float(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
    return Sample(float(v), reps, ci_t)


def _check_settings(config: GateConfig, current: dict[str, Loaded]) -> None:
    for kind, loaded in current.items():
        for key, want in config.settings.get(kind, {}).items():
            have = loaded.results.settings.get(key)
            if have != want:
                raise AmbientError(f"The gate config '{config.path}' requires setting {key} = {want!r}, "
                                   f"but '{loaded.path}' has {key} = {have!r}. Evaluate with the "
                                   f"settings the thresholds were made for, or update [gate.settings.{kind}].")


def evaluate_gate(config: GateConfig, current: dict[str, Loaded],
                  baseline: dict[str, Loaded]) -> GateOutcome:
    """Validate everything (AmbientError => exit 2), then apply the rules."""
    for rule in config.rules:
        kind = rule.metric.kind
        if kind not in current:
            have = ", ".join(f"{k} ({v.path})" for k, v in current.items()) or "none"
            raise AmbientError(f"Rule {rule.index} ({rule.name}) needs a '{kind}' result, but the current "
                               f"results are: {have}. Pass the results.json written by "
                               f"`ambient-eval {kind} --out DIR`.")
        if rule.needs_baseline and kind not in baseline:
            raise AmbientError(f"Rule {rule.index} ({rule.name}) is {rule.kind_label} and needs a '{kind}' "
                               "baseline, but none was given. Pass --baseline RESULTS or set baseline "
                               f"in [gate] of '{config.path}'.")
    _check_settings(config, current)
    for kind in config.kinds:
        if kind in current and kind in baseline:
            compared = [r.metric.name for r in config.rules if r.metric.kind == kind and r.needs_baseline]
            check_comparable(current[kind], baseline[kind], list(dict.fromkeys(compared)))
    pairs = []
    for rule in config.rules:
        kind = rule.metric.kind
        cur = _sample(current[kind], rule, "current")
        base = _sample(baseline[kind], rule, "baseline") if kind in baseline and rule.needs_baseline else None
        pairs.append((rule, cur, base))
    outcomes = []
    for rule, cur, base in pairs:
        if rule.significant:
            verdict = check_significant(rule, cur, base)  # type: ignore[arg-type]
        else:
            verdict = check_bounds(rule, cur.value, base.value if base else None)
        outcomes.append(RuleOutcome(rule, cur, base, verdict))
    return GateOutcome(config, tuple(outcomes), current, baseline)


def run_gate(config: GateConfig, current_paths: Sequence[str | os.PathLike],
             baseline_paths: Sequence[str | os.PathLike] | None = None, *,
             as_repeats: bool = False) -> GateOutcome:
    """Load the files (baselines default to the config's) and evaluate the gate."""
    if not current_paths:
        raise AmbientError("No current results given. Pass one or more results.json files or "
                           "directories (or --model CKPT).")
    current = load_by_kind(current_paths, "current", as_repeats=as_repeats)
    bpaths = list(baseline_paths) if baseline_paths else list(config.baselines)
    baseline = load_by_kind(bpaths, "baseline", as_repeats=as_repeats)
    return evaluate_gate(config, current, baseline)
