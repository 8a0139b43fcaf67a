"""Progress bars on stderr (tqdm); silent when stderr is not a terminal unless forced."""
from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "img") -> "Iterator[T]":
    """Wrap `iterable` in a tqdm bar (AMBIENT_EVAL_PROGRESS=1 forces it on, =0 off)."""
    from tqdm.auto import tqdm

    force = os.environ.get("AMBIENT_EVAL_PROGRESS")
    disable = None if force is None else (force == "0")
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True,
                leave=False)
