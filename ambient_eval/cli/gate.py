"""`ambient-eval gate` (CI regression gate) and `ambient-eval history` (results store)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

history_app = typer.Typer(no_args_is_help=False, add_completion=False)


def _writable(*paths: Optional[Path]) -> None:
    from ambient_eval.atomic import ensure_writable_dir

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
                            "with --model).", metavar="DIR")] = None,
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
    weights, N or reference statistics).

    Examples:

      ambient-eval gate --config gate.toml --baseline runs/main runs/new

      ambient-eval gate -c gate.toml -b base/ new/ mem/ --junit junit.xml
        --markdown "$GITHUB_STEP_SUMMARY" --json gate.json

      ambient-eval gate -c gate.toml --model ckpt/ --out gate_out
        --history hist.sqlite --run main --step 20000
    """
    from ambient_eval.errors import AmbientError
    from ambient_eval.gate import load_config, run_gate
    from ambient_eval.gate.output import format_table, write_outputs

    cfg = load_config(config)
    if out is not None:
        markdown = markdown or out / "gate.md"
        junit = junit or out / "junit.xml"
        json_out = json_out or out / "gate.json"
    _writable(markdown, junit, json_out, history)
    if model is not None:
        from ambient_eval.gate.model import check_model_config, compute_for_model

        if current:
            raise AmbientError("Pass either CURRENT_RESULTS or --model, not both.")
        check_model_config(cfg)
        current = [compute_for_model(cfg, model, out or Path("gate_out"))]
        checkpoint = checkpoint or model
    outcome = run_gate(cfg, current or [], baseline, as_repeats=as_repeats)
    typer.echo(format_table(outcome))
    write_outputs(outcome, markdown=markdown, junit=junit, json_path=json_out)
    if history is not None:
        from ambient_eval.history import record

        for loaded in outcome.current.values():
            record(loaded.results, db=history, run=run, step=step, checkpoint=checkpoint,
                   source=loaded.label)
        typer.echo(f"Recorded {len(outcome.current)} result(s) in {history}.", err=True)
    raise typer.Exit(outcome.exit_code)


@history_app.callback(invoke_without_command=True)
def history_show(
    ctx: typer.Context,
    metric: Annotated[Optional[str], typer.Option(
        "--metric", "-m", help="Metric address: fid, recall, memorization.frac_above_0.95, "
                               "reproducibility.rp, ... (default: all).", metavar="METRIC")] = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Only this run.", metavar="NAME")] = None,
    db: Annotated[Optional[Path], typer.Option(
        "--db", help="History database (default $AMBIENT_EVAL_HISTORY or "
                     "./ambient-eval-history.sqlite).", metavar="PATH")] = None,
    report: Annotated[Optional[Path], typer.Option(
        "--report", help="HTML trend report path (default reports/history-<time>.html).",
        metavar="PATH")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Print the table only.")] = False,
) -> None:
    """Show the results history: a table and an HTML trend plot per metric.

    The plot shows each metric vs training step per run, with CI bands. `history record` adds results.

    Examples:

      ambient-eval history record runs/step-10000 --run ambient --step 10000

      ambient-eval history --metric fid --report reports/fid-trend.html

      ambient-eval history --db ci-history.sqlite --run ambient --no-report
    """
    if ctx.invoked_subcommand is not None:
        return
    from ambient_eval.errors import AmbientError
    from ambient_eval.history import default_db_path, query
    from ambient_eval.reports.html import default_report_path

    rows = query(db, metric=metric, run=run)
    if metric and not rows:
        raise AmbientError(f"No recorded values of '{metric}'{f' for run {run!r}' if run else ''} in "
                           f"'{db or default_db_path()}'. Check the metric address (e.g. fid, "
                           "memorization.frac_above_0.95) and --run.")
    header = ("id", "recorded", "run", "step", "checkpoint", "metric", "value", "ci", "commit")
    table = [header] + [(str(r.evaluation_id), r.recorded, r.run or "-", "-" if r.step is None else str(r.step),
                         r.checkpoint or "-", r.metric, f"{r.value:.6g}",
                         f"[{r.ci_lo:.4g}, {r.ci_hi:.4g}]" if r.ci_lo is not None else "-",
                         (r.git_commit or "-")[:10]) for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(header))]
    for t in table:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    from ambient_eval.reports.history_report import incomparable_notes

    for note in incomparable_notes(rows):
        typer.echo("Note: " + note, err=True)
    if not no_report:
        from ambient_eval.reports.history_report import write_history_report

        path = write_history_report(rows, report or default_report_path("history"),
                                    db=str(db or default_db_path()), metric=metric)
        typer.echo(f"Report: {path}", err=True)


@history_app.command("record")
def history_record(
    results: Annotated[list[Path], typer.Argument(help="results.json files or directories.",
                                                  metavar="RESULTS...", show_default=False)],
    run: Annotated[Optional[str], typer.Option("--run", help="Run name (one line per run in the "
                                               "trend plot).", metavar="NAME")] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Training step of the checkpoint.",
                                                metavar="N", min=0)] = None,
    checkpoint: Annotated[Optional[str], typer.Option("--checkpoint", help="Checkpoint id or path.",
                                                      metavar="CKPT")] = None,
    db: Annotated[Optional[Path], typer.Option(
        "--db", help="History database (default $AMBIENT_EVAL_HISTORY or "
                     "./ambient-eval-history.sqlite).", metavar="PATH")] = None,
) -> None:
    """Record results.json files in the history database (with the git commit
    of the working directory, when it is a repository).

    Examples:

      ambient-eval history record runs/step-10000 --run ambient --step 10000

      ambient-eval history record fid_out mem_out --run base --db ci.sqlite
    """
    from ambient_eval.history import default_db_path, record
    from ambient_eval.results import load_results

    loaded = [(p, load_results(p)) for p in results]  # validate all before writing any
    for p, res in loaded:
        eid = record(res, db=db, run=run, step=step, checkpoint=checkpoint, source=str(p))
        typer.echo(f"Recorded {res.kind} results from {p} as evaluation {eid} in "
                   f"{db or default_db_path()}.")


def register(app: typer.Typer) -> None:
    """Add `gate` and `history` to the root app."""
    app.command("gate")(gate)
    app.add_typer(history_app, name="history")
