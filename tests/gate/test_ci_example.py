"""examples/ci/gate.yml: valid YAML, and every `ambient-eval` option it uses exists in the CLI
(commands not registered in this build are skipped, so the check tightens as they land)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ci" / "gate.yml"


def _invocations() -> list[list[str]]:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(EXAMPLE.read_text())
    steps = doc["jobs"]["gate"]["steps"]
    out = []
    for step in steps:
        script = step.get("run", "")
        script = re.sub(r"\\\n\s*", " ", script)  # join continued lines
        for line in script.splitlines():
            line = line.strip()
            if line.startswith("ambient-eval ") and "--version" not in line:
                out.append(shlex.split(line.removesuffix("|| true"), comments=True))
    return out


def test_workflow_uses_existing_options():
    import typer

    from ambient_eval.cli.app import app

    root = typer.main.get_command(app)
    calls = _invocations()
    used = {c[1] for c in calls}
    assert {"sample", "fid", "gate", "history"} <= used
    checked = 0
    for argv in calls:
        cmd = getattr(root, "commands", {}).get(argv[1])
        if cmd is None:
            continue  # command not in this build yet
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
        for tok in argv[2:]:
            if tok.startswith("--"):
                assert tok in opts, f"`ambient-eval {argv[1]}` has no option {tok}"
        checked += 1
    assert checked >= 2  # at least gate and history


def test_gate_step_passes_ci_outputs():
    gate = next(c for c in _invocations() if c[1] == "gate")
    for opt in ("--config", "--markdown", "--junit", "--as-repeats"):
        assert opt in gate
    assert gate[gate.index("--markdown") + 1] == "$GITHUB_STEP_SUMMARY"
