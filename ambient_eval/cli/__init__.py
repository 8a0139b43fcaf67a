"""The `ambient-eval` command line: a thin layer over the Python API."""
from ambient_eval.cli.app import app, main

__all__ = ["app", "main"]
