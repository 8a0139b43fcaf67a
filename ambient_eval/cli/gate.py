"""`ambient-eval gate`: the CI regression gate over results.json files."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.safe_echo import echo


def _writable(*paths: Optional[Path]) -> None:
    from ambient_eval.files.atomic import ensure_writable_dir

    for p in paths:
        if p is not None:
            ensure_writable_dir(p.parent if str(p.parent) else ".")


def gate(
    current: Annotated[Optional[list[Path]], typer.Argument(
        help="results.json files (or directories holding one) of the checkpoint under test; "
             "one per kind (fid, memorization, reproducibility).",
        metavar="CURRENT_RESULTS...", show_default=False)] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="Gate rules (TOML), see "
                                         "examples/ci/gate.toml.", metavar="TOML")] = ...,  # type: ignore[assignment]
    baseline: Annotated[Optional[list[Path]], typer.Option(
        "--baseline", "-b", help="Baseline results.json (repeat for several kinds); overrides "
                                 "the baseline named in the config.", metavar="RESULTS")] = None,
    as_repeats: Annotated[bool, typer.Option(
        "--as-repeats", help="Several results of one kind (current or baseline) are one checkpoint "
                             "evaluated over disjoint seed ranges: combine them (mean, with repeats "
                             "for noise-aware rules).")] = False,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Evaluate this checkpoint as the config's evaluate table says (kind fid only), "
                        "then gate it, instead of reading CURRENT_RESULTS.", metavar="CKPT")] = None,
    markdown: Annotated[Optional[Path], typer.Option(
        "--markdown", help="Write the verdict as a Markdown table (e.g. $GITHUB_STEP_SUMMARY).",
        metavar="FILE")] = None,
    junit: Annotated[Optional[Path], typer.Option(
        "--junit", help="Write JUnit XML, one test case per rule.", metavar="FILE")] = None,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Write the machine-readable verdict (gate.json).", metavar="FILE")] = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Directory for gate.json, gate.md and junit.xml (and results.json "
                            "with --model) [default with --model: gate_out].", metavar="DIR")] = None,
    history: Annotated[Optional[Path], typer.Option(
        "--history", help="Also record the current results in this history database.",
        metavar="DB")] = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Run name for --history.",
                                               metavar="NAME")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Training step for --history.",
                                                metavar="N", min=0)] = None,
    checkpoint: Annotated[Optional[str], typer.Option(
        "--checkpoint", help="Checkpoint id/path for --history (default: --model).",
        metavar="CKPT")] = None,
) -> None:
    """Fail CI when a checkpoint regresses (rules from a TOML config over results.json files).

    Rules are absolute bounds (fid <= 12), bounds relative to a baseline
    (recall >= baseline - 0.02) or noise-aware (fail only when the regression
    is statistically significant, from repeats or CIs).

    Exit code 0: all rules pass; 1: a rule failed; 2: error (bad config,
    missing metric, results not comparable: different extractor, mode,
    weights, N or reference statistics). Python: `ambient_eval.gate(...)`.

    Examples:

      ambient-eval gate --config gate.toml --baseline runs/main runs/new

      ambient-eval gate -c gate.toml -b base/ new/ mem/ --junit junit.xml
        --markdown "$GITHUB_STEP_SUMMARY" --json gate.json

      ambient-eval gate -c gate.toml --model ckpt/ --out gate_out
        --history hist.sqlite --run main --step 20000
    """
    from ambient_eval import api
    from ambient_eval.gate import load_config
    from ambient_eval.gate.gate_api import GATE_JSON, GATE_MD, JUNIT_XML, RESULTS_JSON
    from ambient_eval.gate.output import format_table, write_outputs

    cfg = load_config(config)
    _writable(markdown, junit, json_out, history)
    from ambient_eval.files.atomic import claim_output_dir, publish_together

    if out is not None:
        claim_output_dir(out)   # a concurrent run on the same --out stops here (exit 2)
    gate_out = out or (Path("gate_out") if model is not None else None)   # --model writes results.json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # api.fid records them in results.extra["warnings"]
        result = api.gate(current, config=cfg, baseline=baseline, as_repeats=as_repeats, model=model)
    if result.model_results is not None:
        for w in result.model_results.extra.get("warnings", []):
            echo("Warning: " + w, err=True)
        checkpoint = checkpoint or model
    # Explicit --markdown/--junit/--json files go where they point; everything else into --out.
    elsewhere = {"markdown": markdown, "junit": junit, "json_path": json_out}
    if gate_out is not None:
        defaults = {"markdown": gate_out / GATE_MD, "junit": gate_out / JUNIT_XML, "json_path": gate_out / GATE_JSON}
        elsewhere = {k: p for k, p in elsewhere.items() if p is not None and p != defaults[k]}
    outcome = result.with_results_path(gate_out / RESULTS_JSON).outcome if gate_out is not None else result.outcome
    with publish_together(*{p.parent for p in elsewhere.values() if p is not None}, gate_out):
        # Write every file first (all or none), print last; a closed stdout keeps the verdict's exit code.
        if gate_out is not None:
            result.save(gate_out)
        write_outputs(outcome, **elsewhere)
        if history is not None:
            from ambient_eval.results.history import record

            for loaded in outcome.current.values():
                record(loaded.results, db=history, run=run, step=step, checkpoint=checkpoint,
                       source=loaded.label)
    echo(format_table(outcome))
    if history is not None:
        echo(f"Recorded {len(outcome.current)} result(s) in {history}.", err=True)
    raise typer.Exit(outcome.exit_code)


def register(app: typer.Typer) -> None:
    """Add `gate` to the root app."""
    app.command("gate")(gate)
