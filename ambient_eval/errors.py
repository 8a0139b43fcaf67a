"""User-facing errors: one paragraph that names the problem and the fix; the CLI exits with code 2."""
from __future__ import annotations


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
