"""Gate outputs: terminal table, Markdown (CI step summary), JUnit XML, gate.json.

Files are written through ambient_eval.files.atomic: complete or absent, never partial.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

from ambient_eval.files.atomic import write_json, write_text
from ambient_eval.gate.evaluate import GateOutcome, RuleOutcome
from ambient_eval.gate.rules import Sample
from ambient_eval.results.envelope import now_iso

GATE_SCHEMA = "ambient-eval/gate@1"
COLUMNS = ("#", "rule", "baseline", "current", "bound", "status", "detail")


def _row(o: RuleOutcome) -> tuple[str, ...]:
    return (str(o.rule.index), o.rule.name, o.baseline.describe() if o.baseline else "-",
            o.current.describe(), o.verdict.bound, "PASS" if o.verdict.passed else "FAIL",
            o.verdict.detail)


def summary_line(outcome: GateOutcome) -> str:
    """'PASSED: 4 of 4 rules' / 'FAILED: 1 of 4 rules failed (fid: no significant increase)'."""
    n = len(outcome.outcomes)
    if outcome.passed:
        return f"Gate PASSED: {n} of {n} rules passed."
    names = "; ".join(o.rule.name for o in outcome.failures)
    return f"Gate FAILED: {len(outcome.failures)} of {n} rules failed ({names})."


def format_table(outcome: GateOutcome) -> str:
    """Fixed-width text table for the terminal, the statistics below it, then the verdict."""
    rows = [COLUMNS[:-1]] + [_row(o)[:-1] for o in outcome.outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"  rule {o.rule.index}: {o.verdict.detail}" for o in outcome.outcomes if o.verdict.detail]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n\n" + summary_line(outcome)


def _md(cell: str) -> str:
    # '|' would split the cell (metric names like rp[A|B]); newlines would end the row.
    return cell.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def format_markdown(outcome: GateOutcome) -> str:
    """GitHub-flavoured Markdown: a heading with the verdict and one table row per rule."""
    icon = "✅" if outcome.passed else "❌"
    lines = [f"## {icon} {outcome.config.name}", "", summary_line(outcome), "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    for o in outcome.outcomes:
        cells = list(_row(o))
        cells[5] = ("✅ " if o.verdict.passed else "❌ ") + cells[5]
        lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
    files = [f"current {k}: `{v.label}`" for k, v in outcome.current.items()]
    files += [f"baseline {k}: `{v.label}`" for k, v in outcome.baseline.items()]
    lines += ["", "Results: " + "; ".join(files), ""]
    return "\n".join(lines)


def format_junit(outcome: GateOutcome) -> str:
    """JUnit XML: one <testcase> per rule, failing rules carry a <failure> element."""
    n, f = len(outcome.outcomes), len(outcome.failures)
    common = {"tests": str(n), "failures": str(f), "errors": "0", "skipped": "0", "time": "0"}
    suites = ET.Element("testsuites", {"name": outcome.config.name, **common})
    suite = ET.SubElement(suites, "testsuite", {"name": outcome.config.name, **common,
                                                "timestamp": now_iso()})
    for o in outcome.outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": f"ambient_eval.gate.{o.rule.metric.kind}",
                                                 "name": f"rule {o.rule.index}: {o.rule.name}", "time": "0"})
        text = (f"current: {o.current.describe()}\nbaseline: "
                f"{o.baseline.describe() if o.baseline else '-'}\nbound: {o.verdict.bound}\n"
                f"{o.verdict.detail}".rstrip())
        if not o.verdict.passed:
            msg = f"current {o.current.describe()} fails '{o.verdict.bound}'" + \
                (f"; {o.verdict.detail}" if o.verdict.detail else "")
            fail = ET.SubElement(case, "failure", {"type": "regression", "message": msg})
            fail.text = text
        ET.SubElement(case, "system-out").text = text
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _sample_json(s: Sample | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"value": s.value, "repeats": list(s.repeats), "ci": list(s.ci) if s.ci else None}


def gate_json(outcome: GateOutcome) -> dict[str, Any]:
    """The machine-readable verdict (gate.json)."""
    return {
        "schema": GATE_SCHEMA, "created": now_iso(), "passed": outcome.passed,
        "exit_code": outcome.exit_code, "config": str(outcome.config.path),
        "current": {k: [str(p) for p in (v.sources or (v.path,))] for k, v in outcome.current.items()},
        "baseline": {k: [str(p) for p in (v.sources or (v.path,))] for k, v in outcome.baseline.items()},
        "rules": [{
            "index": o.rule.index, "name": o.rule.name, "metric": o.rule.metric.address,
            "type": o.rule.kind_label, "passed": o.verdict.passed, "bound": o.verdict.bound,
            "bound_value": o.verdict.bound_value, "method": o.verdict.method,
            "p_value": o.verdict.p_value, "alpha": o.rule.alpha if o.rule.significant else None,
            "detail": o.verdict.detail, "current": _sample_json(o.current),
            "baseline": _sample_json(o.baseline),
        } for o in outcome.outcomes],
    }


def write_outputs(outcome: GateOutcome, *, markdown: str | os.PathLike | None = None,
                  junit: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None) -> None:
    """Write the requested files atomically."""
    if markdown:
        write_text(markdown, format_markdown(outcome))
    if junit:
        write_text(junit, format_junit(outcome))
    if json_path:
        write_json(json_path, gate_json(outcome))
