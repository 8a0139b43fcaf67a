"""Prompt files (minimal reader: .txt one prompt per line, .csv with a `prompt` column and optional
`seed`, `image` columns). Rows keep file order."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ambient_eval.errors import AmbientError


@dataclass(frozen=True)
class PromptRow:
    prompt: str                 # the text
    seed: int | None = None     # sampling seed for this prompt (None: the caller's)
    image: str | None = None    # image file this prompt belongs to (None: by position)


def read_prompts(path: str | os.PathLike) -> list[PromptRow]:
    """Rows of a .txt (one prompt per non-empty line) or .csv (`prompt` column) file."""
    p = Path(path)
    if not p.is_file():
        raise AmbientError(f"Prompt file '{p}' does not exist. Pass a .txt (one prompt per line) or a .csv "
                           "with a 'prompt' column.")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or "prompt" not in rows[0]:
            raise AmbientError(f"Prompt file '{p}' has no 'prompt' column (columns: "
                               f"{list(rows[0]) if rows else []}). Add a header line with 'prompt'.")
        try:
            return [PromptRow(r["prompt"], int(r["seed"]) if r.get("seed") not in (None, "") else None,
                              r.get("image") or None) for r in rows]
        except ValueError as e:
            raise AmbientError(f"Prompt file '{p}': a 'seed' value is not an integer ({e}).") from None
    if p.suffix.lower() != ".txt":
        raise AmbientError(f"Prompt file '{p}' must be .txt (one prompt per line) or .csv (a 'prompt' column).")
    return [PromptRow(line.strip()) for line in text.splitlines() if line.strip()]
