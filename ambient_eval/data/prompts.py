"""Prompt files: `.txt` (one prompt per line) or `.csv` / `.tsv` / `.jsonl` / `.parquet` tables.

    read_prompts("captions.csv") -> [PromptRow(prompt="a cat", seed=3, image="img/003.png"), ...]

Tables need a `prompt` column; `seed` (a non-negative integer: the seed that prompt is generated
with) and `image` (the training image a caption belongs to, for memorization audits) are optional.
Blank `.txt` lines are skipped; the order of the rows is kept.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ambient_eval.errors import AmbientError

SUFFIXES = (".txt", ".csv", ".tsv", ".jsonl", ".parquet")


@dataclass(frozen=True)
class PromptRow:
    prompt: str                     # the text condition
    seed: int | None = None         # the seed this prompt is generated with (None: by position)
    image: str | None = None        # training image this caption belongs to (memorization audits)


def _table_rows(path: Path, suffix: str) -> list[dict]:
    """A table file => list of {column: value} (values as read; None where missing)."""
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise AmbientError(f"Reading '{path}' needs pyarrow: pip install pyarrow, or save the "
                               "prompts as .csv / .jsonl.") from e
        return pq.read_table(str(path)).to_pylist()
    text = path.read_text(encoding="utf-8")
    if suffix == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise AmbientError(f"Line {n} of '{path}' is not JSON ({e}). Each line of a .jsonl "
                                       'prompt file must be an object such as {"prompt": "a cat"}.') from e
                if not isinstance(row, dict):
                    raise AmbientError(f"Line {n} of '{path}' is {type(row).__name__}, not an object "
                                       'such as {"prompt": "a cat"}.')
                rows.append(row)
        return rows
    return list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ","))


def _seed(value, path: Path, n: int) -> int | None:
    """A seed cell => int >= 0 | None (empty); anything else is an error naming row and value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seed = int(str(value).strip()) if not isinstance(value, (int, float)) else int(value)
        ok = float(value) == seed and seed >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise AmbientError(f"Row {n} of '{path}' has seed {value!r}; seeds must be non-negative "
                           "integers (or empty to take the seed from the row's position).")
    return seed


def read_prompts(path: str | os.PathLike) -> list[PromptRow]:
    """Prompt file => rows in file order (see the module docstring for the formats)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise AmbientError(f"Prompt file '{path}' has suffix '{suffix}'; use .txt (one prompt per "
                           "line) or .csv / .tsv / .jsonl / .parquet with a 'prompt' column.")
    try:
        if suffix == ".txt":
            rows = [PromptRow(line.strip()) for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]
        else:
            table = _table_rows(path, suffix)
            if table and "prompt" not in table[0]:
                raise AmbientError(f"Prompt file '{path}' has no 'prompt' column (columns: "
                                   f"{', '.join(map(str, table[0]))}). Name the caption column "
                                   "'prompt'; 'seed' and 'image' columns are optional.")
            rows = []
            for n, r in enumerate(table, 1):
                image = r.get("image")
                rows.append(PromptRow(str(r.get("prompt") or ""), _seed(r.get("seed"), path, n),
                                      None if image in (None, "") else str(image)))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise AmbientError(f"Cannot read prompt file '{path}': {e}. Check the path and that it is "
                           "UTF-8 text (or parquet).") from e
    except AmbientError:
        raise
    except Exception as e:  # pyarrow raises its own error types for damaged files
        raise AmbientError(f"Cannot read prompt file '{path}': {' '.join(str(e).split())[:300]}.") from e
    if not rows:
        raise AmbientError(f"Prompt file '{path}' holds no prompts. Write one prompt per line (.txt) "
                           "or one row per prompt with a 'prompt' column.")
    return rows
