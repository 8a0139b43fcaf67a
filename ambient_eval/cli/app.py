"""Root Typer app: global options, error handling (exit 2, no traceback), command registration.

Each command lives in its own module under ambient_eval/cli/ and exposes `register(app)`.
Command modules import torch & co. inside the command function so `--help` stays fast.
"""
from __future__ import annotations

import errno
import importlib
import os
import sys

import typer
from typer.core import TyperGroup

from ambient_eval import __version__
from ambient_eval.errors import COMMAND_OPTIONS, AmbientError

# Order = order in `ambient-eval --help`.
COMMAND_MODULES = (
    "fid", "stats", "sample", "train", "corrupt", "annotate", "memorization", "reproducibility", "gate",
    "demo", "history", "refs", "export_adm",
)


def _debug_enabled(ctx) -> bool:
    obj = getattr(ctx, "obj", None) or {}
    return bool(obj.get("debug")) or os.environ.get("AMBIENT_EVAL_DEBUG") == "1"


def _paragraph(msg: str) -> str:
    """One unwrapped paragraph: a long path stays on one line, so it can be copied."""
    return " ".join(str(msg).split())


def _click_exception_types() -> tuple[type, ...]:
    """ClickException of the click that typer really uses (typer >= 0.29 vendors its own) and of click."""
    types: list[type] = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    try:
        import click

        types.append(click.ClickException)
    except ImportError:  # pragma: no cover - typer without a separate click
        pass
    return tuple(dict.fromkeys(types))


def _as_user_error(exc: BaseException) -> AmbientError | None:
    """Map environment failures the user can fix (permissions, full disk, OOM) to AmbientError."""
    if isinstance(exc, AmbientError):
        return exc
    if isinstance(exc, PermissionError):
        return AmbientError(f"Permission denied: '{exc.filename}'. Choose a location you can write to "
                            "(or read from), or fix its permissions.")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return AmbientError(f"No space left on device while writing '{exc.filename}'. Free some disk "
                            "space or choose another output location; no partial file was kept.")
    from ambient_eval.runtime.oom import as_oom_error  # CUDA / faiss-gpu OOM: a RuntimeError, not MemoryError

    if as_oom_error(exc) is not None:
        return as_oom_error(exc)
    if isinstance(exc, MemoryError):
        return AmbientError("Ran out of memory. Lower --batch (or --max-images), or use a machine with "
                            "more memory.")
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _option_names(cmd) -> frozenset[str]:
    return frozenset(o for p in getattr(cmd, "params", []) for o in (*getattr(p, "opts", ()),
                                                                       *getattr(p, "secondary_opts", ()))
                     if o.startswith("--"))


class AmbientGroup(TyperGroup):
    """Click group that turns AmbientError into a one-paragraph message and exit code 2."""

    def resolve_command(self, ctx, args):  # noqa: D102
        name, cmd, rest = super().resolve_command(ctx, args)
        if cmd is not None and not getattr(cmd, "commands", None):
            COMMAND_OPTIONS.set(_option_names(cmd))  # messages suggest only this command's options
        return name, cmd, rest

    def invoke(self, ctx):  # noqa: D102
        from ambient_eval.files.atomic import track_created_dirs
        from ambient_eval.runtime.threads import enable_cli_policy

        enable_cli_policy()   # CPU threads: $AMBIENT_EVAL_THREADS or min(4, cores), see threads.py

        try:
            with track_created_dirs():  # a failed run leaves no empty output folders
                return self._invoke(ctx)
        finally:
            COMMAND_OPTIONS.set(None)  # Python API calls after an in-process CLI run get API wording

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            if _debug_enabled(ctx):
                raise
            typer.echo("Interrupted. Finished work was kept; run the same command again to resume.",
                       err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BrokenPipeError:
            # Output piped into `head` and closed early: not an error.
            _silence_stdout()
            raise typer.Exit(0) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence for the CLI
            if isinstance(exc, _click_exception_types()):
                raise  # usage error: click prints its message and exits 2
            if _debug_enabled(ctx):
                raise
            user = _as_user_error(exc)
            if user is not None:
                typer.echo("Error: " + _paragraph(str(user)), err=True)
                raise typer.Exit(user.exit_code) from None
            typer.echo("Internal error: " + _paragraph(f"{type(exc).__name__}: {exc}") +
                       "\nThis is a bug in ambient-eval. Re-run with --debug for the traceback and "
                       "report it.", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=AmbientGroup,
    name="ambient-eval",
    help="Evaluate diffusion models trained on corrupted data: quality (FID, KID, IS, P/R), "
         "memorization (FAISS nearest neighbours), reproducibility across models, and CI gates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help and usage errors (exit 2), never boxed
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"ambient-eval {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (as AMBIENT_EVAL_OFFLINE=1): "
                                 "missing weights or reference statistics are an error saying where to put them."),
) -> None:
    """ambient-eval: is it good, does it copy its training data, do models agree."""
    ctx.obj = {"debug": debug}
    if offline:   # for this invocation only (restored when the command ends: in-process callers)
        before = os.environ.get("AMBIENT_EVAL_OFFLINE")
        os.environ["AMBIENT_EVAL_OFFLINE"] = "1"
        ctx.call_on_close(lambda: os.environ.pop("AMBIENT_EVAL_OFFLINE", None) if before is None
                          else os.environ.__setitem__("AMBIENT_EVAL_OFFLINE", before))


for _name in COMMAND_MODULES:
    importlib.import_module(f"ambient_eval.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="ambient-eval")
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
