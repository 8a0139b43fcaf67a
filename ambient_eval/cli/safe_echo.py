"""Printing after the work is done: a closed stdout (`| head -1`, `| true`) must not change the outcome.

Commands write every file first and print last through `echo`, which swallows a broken pipe (and
points stdout at /dev/null so later prints and the final flush stay quiet); the command then exits
with the code its work decided (a failing gate stays exit 1).
"""
from __future__ import annotations

import os
import sys

import typer


def silence_stream(stream) -> None:
    """Point the file descriptor of `stream` at /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def echo(message: str = "", err: bool = False) -> bool:
    """typer.echo that never raises BrokenPipeError; returns False when the reader has gone away."""
    try:
        typer.echo(message, err=err)
        return True
    except BrokenPipeError:
        silence_stream(sys.stderr if err else sys.stdout)
        return False
