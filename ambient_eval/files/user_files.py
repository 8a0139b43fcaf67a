"""Small input files named by the user (configs, results.json, images): refuse what is not a regular file.

A FIFO named *.png or results.json would block a reader forever; a directory, a symlink cycle or a
device is bad input (exit 2), not an internal error.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ambient_eval.errors import AmbientError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def check_regular_file(path: str | os.PathLike, what: str, fix: str) -> os.stat_result:
    """stat of `path` (following links); AmbientError '<what> '<path>' is <kind>. <fix>' unless a regular file.

    FileNotFoundError is re-raised for callers that word 'does not exist' themselves.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise AmbientError(f"{what} '{p}' is a symbolic link to nothing ('{os.readlink(p)}'). {fix}") from None
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise AmbientError(f"{what} '{p}' is a symbolic link cycle (it leads back to itself). {fix}") from None
        raise AmbientError(f"Cannot read {what.lower()} '{p}': {e.strerror or e}. {fix}") from None
    for test, kind in _KINDS:
        if test(st.st_mode):
            raise AmbientError(f"{what} '{p}' is {kind}, not a file. {fix}")
    return st


def read_text(path: str | os.PathLike, what: str, fix: str) -> str:
    """UTF-8 text of a regular file; AmbientError for anything else (FileNotFoundError passes through)."""
    check_regular_file(path, what, fix)
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AmbientError(f"{what} '{path}' is not UTF-8 text ({e.reason} at byte {e.start}). {fix}") from None
    except OSError as e:
        raise AmbientError(f"Cannot read {what.lower()} '{path}': {e.strerror or e}. {fix}") from None
