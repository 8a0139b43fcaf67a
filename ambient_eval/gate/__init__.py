"""CI regression gates: a TOML config of rules applied to results.json files -> exit code.

    config = load_config("gate.toml")
    outcome = run_gate(config, ["runs/new/results.json"], ["runs/main/results.json"])
    outcome.exit_code   # 0 pass, 1 regression (errors raise AmbientError => CLI exit 2)

Modules: catalog (metric names), config (TOML schema), rules (statistics), evaluate, output,
model (compute results for `gate --model`).
"""
from __future__ import annotations

from ambient_eval.gate.config import GateConfig, Rule
from ambient_eval.gate.evaluate import GateOutcome, evaluate_gate, run_gate
from ambient_eval.gate.parse import load_config, parse_config

__all__ = ["GateConfig", "GateOutcome", "Rule", "evaluate_gate", "load_config", "parse_config",
           "run_gate"]
