"""User-facing errors: one paragraph that names the problem and the fix; the CLI exits with code 2."""
from __future__ import annotations

from contextvars import ContextVar

# Options of the CLI command now running (set by cli/app.py); None for Python API callers.
COMMAND_OPTIONS: ContextVar[frozenset[str] | None] = ContextVar("ambient_eval_command_options", default=None)


class AmbientError(Exception):
    """Bad input or environment the user can fix.

    The message is one paragraph: what is wrong (with the offending value, file or number) and
    what to do about it. The CLI prints it without a traceback and exits with code 2.
    """

    exit_code = 2


def require(condition: bool, message: str) -> None:
    """Raise AmbientError(message) unless condition holds (never use bare assert on user input)."""
    if not condition:
        raise AmbientError(message)


def option_hint(option: str, with_option: str, without: str) -> str:
    """`with_option` when the running command has `option` (or outside the CLI), else `without`.

    Messages must never suggest an option the command lacks (e.g. --skip-bad in memorization).
    """
    opts = COMMAND_OPTIONS.get()
    return with_option if opts is None or option in opts else without
