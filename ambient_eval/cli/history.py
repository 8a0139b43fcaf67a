"""`ambient-eval history` (show: table + HTML trend) and `history record`: the results store."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ambient_eval.cli.safe_echo import echo

# --db, the same for `history` and `history record`.
HistoryDb = Annotated[Optional[Path], typer.Option(
    "--db", help="History database (default $AMBIENT_EVAL_HISTORY or ./ambient-eval-history.sqlite).",
    metavar="PATH")]

history_app = typer.Typer(no_args_is_help=False, add_completion=False)


@history_app.callback(invoke_without_command=True)
def history_show(
    ctx: typer.Context,
    metric: Annotated[Optional[str], typer.Option(
        "--metric", "-m", help="Metric address: fid, recall, memorization.frac_above_0.95, "
                               "reproducibility.rp, ... (default: all).", metavar="METRIC")] = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Only this run.", metavar="NAME")] = None,
    db: HistoryDb = None,
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
    from ambient_eval.results.history import default_db_path, query
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
    path = None
    if not no_report:   # the file first: `history | head -1` must not lose the report
        from ambient_eval.reports.history_report import write_history_report

        from ambient_eval.files.atomic import publish_together

        path = report or default_report_path("history")
        with publish_together(path.parent if str(path.parent) else "."):
            path = write_history_report(rows, path, db=str(db or default_db_path()), metric=metric)
    for t in table:
        echo("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())
    from ambient_eval.reports.history_report import incomparable_notes

    for note in incomparable_notes(rows):
        echo("Note: " + note, err=True)
    if path is not None:
        echo(f"Report: {path}", err=True)


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
    db: HistoryDb = None,
) -> None:
    """Record results.json files in the history database (with the git commit
    of the working directory, when it is a repository).

    Examples:

      ambient-eval history record runs/step-10000 --run ambient --step 10000

      ambient-eval history record fid_out mem_out --run base --db ci.sqlite
    """
    from ambient_eval.results.history import check_recordable, default_db_path, record
    from ambient_eval.results.envelope import load_results

    loaded = [(p, load_results(p)) for p in results]  # validate all before writing any
    for p, res in loaded:
        check_recordable(res, str(p))
    done = [(p, res, record(res, db=db, run=run, step=step, checkpoint=checkpoint, source=str(p)))
            for p, res in loaded]
    for p, res, eid in done:   # print last: a closed stdout must not stop the recording
        echo(f"Recorded {res.kind} results from {p} as evaluation {eid} in {db or default_db_path()}.")


def register(app: typer.Typer) -> None:
    """Add `history` (and `history record`) to the root app."""
    app.add_typer(history_app, name="history")
