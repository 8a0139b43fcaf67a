"""`ambient-eval reproducibility` (placeholder: the owner of this command replaces this file)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the root app."""
    # Placeholder until implemented.
    return None
