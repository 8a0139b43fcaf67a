"""Progress on stderr: a tqdm bar on a terminal, periodic log lines elsewhere (slurm, nohup, CI).

AMBIENT_EVAL_PROGRESS selects the style:
  unset      bar when stderr is a terminal, else lines
  bar (or 1) always a tqdm bar
  lines      always lines: "[ambient-eval] inception features: 1200/5000 img (24%), 310 img/s, ETA 12s"
  0 (or off) nothing
AMBIENT_EVAL_PROGRESS_INTERVAL: seconds between lines (default 10).
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")

DEFAULT_INTERVAL_S = 10.0
PREFIX = "[ambient-eval]"


def progress_mode() -> str:
    """'bar', 'lines' or 'off' from AMBIENT_EVAL_PROGRESS and whether stderr is a terminal."""
    v = os.environ.get("AMBIENT_EVAL_PROGRESS", "").strip().lower()
    if v in ("0", "off", "none", "false", "no"):
        return "off"
    if v in ("1", "bar", "tty", "true", "yes"):
        return "bar"
    if v in ("lines", "line", "log"):
        return "lines"
    if v:   # a typo must not silently pick a style (issue 24)
        from ambient_eval.errors import AmbientError

        raise AmbientError(f"AMBIENT_EVAL_PROGRESS='{os.environ['AMBIENT_EVAL_PROGRESS']}' is not a progress "
                           "style. Use bar (or 1), lines, or off (or 0); unset picks a bar on a terminal, "
                           "lines elsewhere.")
    try:
        return "bar" if sys.stderr.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


def interval_s() -> float:
    """Seconds between progress lines (AMBIENT_EVAL_PROGRESS_INTERVAL, default 10)."""
    try:
        return max(0.0, float(os.environ.get("AMBIENT_EVAL_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def _dur(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60
                                                                   else f"{s}s")


def log_line(text: str) -> None:
    """One progress line on stderr (never raises on a closed stderr)."""
    try:
        print(f"{PREFIX} {text}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class LineProgress:
    """tqdm-like counter (update, set_postfix, close, iteration) that logs a line every interval."""

    def __init__(self, iterable: Iterable | None = None, total: int | None = None, desc: str = "",
                 unit: str = "img", enabled: bool = True):
        self.iterable, self.total, self.desc, self.unit, self.enabled = iterable, total, desc, unit, enabled
        self.n, self.postfix = 0, ""
        self.t0 = self.last = time.monotonic()
        self.interval = interval_s()
        self.lines = 0
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:  # type: ignore[union-attr]
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return self.total if self.total is not None else len(self.iterable)  # type: ignore[arg-type]

    def describe(self) -> str:
        """'desc: n/total unit (p%), rate unit/s, ETA t'."""
        el = time.monotonic() - self.t0
        rate = self.n / el if el > 0 else 0.0
        count = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        text = f"{self.desc}: {count} {self.unit}"
        if self.total:
            text += f" ({100 * self.n / self.total:.0f}%)"
        text += f", {rate:.3g} {self.unit}/s, elapsed {_dur(el)}"
        if self.total and rate > 0 and self.n < self.total:
            text += f", ETA {_dur((self.total - self.n) / rate)}"
        return text + (f", {self.postfix}" if self.postfix else "")

    def update(self, k: int = 1) -> None:
        self.n += k
        now = time.monotonic()
        if self.enabled and now - self.last >= self.interval:
            self.last = now
            self.lines += 1
            log_line(self.describe())

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.enabled and (self.lines or time.monotonic() - self.t0 >= 1.0):
            log_line(self.describe().replace(", ETA", ", was ETA") + " - done")


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "",
             unit: str = "img") -> Any:
    """Wrap `iterable` (or count manual .update(k) calls) with the configured progress style."""
    mode = progress_mode()
    if mode == "bar":
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=False, dynamic_ncols=True,
                    leave=False, unit_scale=(unit == "B"), unit_divisor=1024)
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return LineProgress(iterable, total=total, desc=desc, unit=unit, enabled=(mode != "off"))


@contextlib.contextmanager
def stage(desc: str) -> Iterator[None]:
    """A long step without a count (covariance, matrix square root): a line before and after it."""
    if progress_mode() == "off":
        yield
        return
    t0 = time.monotonic()
    log_line(f"{desc} ...")
    yield
    log_line(f"{desc}: done in {_dur(time.monotonic() - t0)}")
