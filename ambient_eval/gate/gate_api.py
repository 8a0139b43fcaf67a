"""`ambient_eval.gate`: the `gate` command as a function with a typed result.

    g = gate(["runs/new"], config="gate.toml", baseline=["runs/main"])   # -> GateResult
    g.passed, g.exit_code      # True / 0 when every rule passes; 1 on a regression
    g.to_pandas()              # one row per rule
    g.save("gate_out/")        # gate.json, gate.md, junit.xml (and results.json with model=)

Bad configs, missing metrics and incomparable results raise AmbientError (the CLI's exit 2).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ambient_eval.errors import AmbientError
from ambient_eval.gate.config import GateConfig
from ambient_eval.gate.evaluate import GateOutcome, Loaded, evaluate_gate, load_by_kind, run_gate
from ambient_eval.results.envelope import RESULTS_JSON   # with model=: the fid results that were gated

if TYPE_CHECKING:
    import pandas as pd

    from ambient_eval.results.envelope import Results

# File names inside --out.
GATE_JSON = "gate.json"
GATE_MD = "gate.md"
JUNIT_XML = "junit.xml"


@dataclass
class GateResult:
    """What `ambient-eval gate` decides.

    Attributes:
        outcome: Every rule's outcome, with the current and baseline results they were computed from.
        model_results: With `model=`: the fid results computed for the checkpoint (saved as results.json).
    """

    outcome: GateOutcome
    model_results: "Results | None" = None

    @property
    def passed(self) -> bool:
        """True when every rule passes."""
        return self.outcome.passed

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 pass, 1 regression."""
        return self.outcome.exit_code

    def with_results_path(self, path: Path) -> "GateResult":
        """The same verdict with the computed results recorded as read from `path` (as gate.json lists them)."""
        if self.model_results is None:
            return self
        cur = {k: dataclasses.replace(v, path=path) if v.results is self.model_results else v
               for k, v in self.outcome.current.items()}
        return GateResult(dataclasses.replace(self.outcome, current=cur), self.model_results)

    def to_pandas(self) -> "pd.DataFrame":
        """One row per rule: the gate.json rule fields, current/baseline values flattened."""
        import pandas as pd

        from ambient_eval.gate.output import gate_json

        return pd.DataFrame([{**{k: v for k, v in r.items() if k not in ("current", "baseline")},
                              "current": (r["current"] or {}).get("value"),
                              "baseline": (r["baseline"] or {}).get("value")}
                             for r in gate_json(self.outcome)["rules"]])

    def save(self, out: str | os.PathLike) -> list[Path]:
        """Write OUT/gate.json, OUT/gate.md, OUT/junit.xml (and OUT/results.json with `model=`), all or none."""
        from ambient_eval.files.atomic import publish_together
        from ambient_eval.gate.output import write_outputs

        out = Path(out)
        paths = [out / GATE_JSON, out / GATE_MD, out / JUNIT_XML]
        me = self.with_results_path(out / RESULTS_JSON)
        with publish_together(out):
            if self.model_results is not None:
                paths.append(self.model_results.save(out / RESULTS_JSON))
            write_outputs(me.outcome, markdown=paths[1], junit=paths[2], json_path=paths[0])
        return paths


def gate(current: Sequence[str | os.PathLike] | None = None, *, config: str | os.PathLike | GateConfig,
         baseline: Sequence[str | os.PathLike] | None = None, as_repeats: bool = False,
         model: str | None = None) -> GateResult:
    """Apply CI regression rules to results.json files, or to a checkpoint (`ambient-eval gate`).

    Args:
        current: results.json files (or folders holding one) of the checkpoint under test, one per kind.
        config: The gate rules (TOML path, or a loaded GateConfig).
        baseline: Baseline results.json files; default: the ones the config names.
        as_repeats: Several results of one kind are one checkpoint over disjoint seed ranges: combine them.
        model: Evaluate this checkpoint as the config's [evaluate] table says (kind fid), instead of `current`.

    Returns:
        A [GateResult][ambient_eval.gate.gate_api.GateResult]: `.passed`, `.exit_code`, `.to_pandas()`, `.save(dir)`.

    Examples:
        >>> import ambient_eval as ae
        >>> g = ae.gate(["runs/new"], config="gate.toml", baseline=["runs/main"])   # doctest: +SKIP
        >>> g.passed                                                              # doctest: +SKIP
    """
    from ambient_eval.gate.parse import load_config

    cfg = config if isinstance(config, GateConfig) else load_config(config)
    if model is None:
        return GateResult(run_gate(cfg, list(current or []), baseline, as_repeats=as_repeats))
    from ambient_eval.gate.model import check_model_config, results_for_model

    if current:
        raise AmbientError("Pass either CURRENT_RESULTS or --model, not both.")
    check_model_config(cfg)
    res = results_for_model(cfg, model)
    bpaths = list(baseline) if baseline else list(cfg.baselines)
    base = load_by_kind(bpaths, "baseline", as_repeats=as_repeats)
    return GateResult(evaluate_gate(cfg, {res.kind: Loaded(Path(RESULTS_JSON), res)}, base), res)
