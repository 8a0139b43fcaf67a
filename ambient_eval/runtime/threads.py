"""CPU thread policy: how many threads torch uses on CPU, chosen deliberately and recorded.

torch's default (one thread per physical core, ignoring the process's CPU affinity and other jobs)
multiplied the CPU time of small networks several-fold without making them faster (issue 24).
The CLI therefore sets torch's CPU threads to $AMBIENT_EVAL_THREADS, else $OMP_NUM_THREADS (torchrun
sets it to 1 per rank), else min(4, cores this process may use); the Python API leaves torch's setting alone unless AMBIENT_EVAL_THREADS is set.
Float reductions can be split differently with another thread count, so outputs (PNG bytes, FD) are
reproducible at a fixed thread count; results record it as settings["cpu_threads"].
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ambient_eval.errors import AmbientError

THREADS_ENV = "AMBIENT_EVAL_THREADS"


@dataclass(frozen=True)
class ThreadDefaults:
    cli_max: int = 4      # CLI default: at most this many CPU threads (fewer when the affinity allows fewer)


DEFAULTS = ThreadDefaults()
_CLI = [False]            # set by the CLI: apply the default even without AMBIENT_EVAL_THREADS
_APPLIED: list[int | None] = [None]   # the count last set by the policy (a caller may change it afterwards)


def enable_cli_policy() -> None:
    """Called once by the CLI before a command runs (imports no torch)."""
    _CLI[0] = True


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def wanted_threads() -> int | None:
    """$AMBIENT_EVAL_THREADS, else (CLI) $OMP_NUM_THREADS, else the CLI default, else None (leave torch alone)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise AmbientError(f"{THREADS_ENV}='{raw}' is not a positive whole number of CPU threads "
                               f"(e.g. {THREADS_ENV}=1 for the least CPU time, or unset it).")
        return int(raw)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if _CLI[0] and omp.isdigit() and int(omp) >= 1:
        return int(omp)      # the user's (or torchrun's: 1 per rank) OpenMP setting stands
    return min(DEFAULTS.cli_max, available_cores()) if _CLI[0] else None


def apply_cpu_threads() -> int:
    """Set torch's CPU threads by the policy above; => the count in effect (record it)."""
    import torch

    n = wanted_threads()
    if n is not None and n != _APPLIED[0]:   # once per choice: a caller's own later setting stands (demo)
        torch.set_num_threads(n)
        _APPLIED[0] = n
    return torch.get_num_threads()


def current_threads() -> int | None:
    """settings["cpu_threads"]: torch's CPU thread count when torch is loaded (a warm run loads none)."""
    import sys

    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None
