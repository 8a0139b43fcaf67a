"""GPU out-of-memory errors as user errors: what failed, at which size, and what to lower.

torch raises `torch.OutOfMemoryError` (a RuntimeError subclass; `torch.cuda.OutOfMemoryError` is the
same class) for CUDA allocations; faiss-gpu raises a plain RuntimeError whose message names
`cudaMalloc` (or the CUDA error `cudaErrorMemoryAllocation`). Both would otherwise reach the CLI as
"Internal error" (exit 1). `oom_guard(what, lower)` around a GPU step turns them into an AmbientError
(exit 2) naming the batch or index size that failed; `as_oom_error` is the CLI's last-resort mapping.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator

from ambient_eval.errors import AmbientError

# Substrings of CUDA / cuBLAS / faiss-gpu allocation-failure messages (RuntimeError text).
OOM_MARKERS = ("CUDA out of memory", "cudaMalloc", "cudaErrorMemoryAllocation",
               "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED", "CUDA error: out of memory")


class GpuOutOfMemory(AmbientError):
    """A GPU allocation failed; the message names the size and what to lower."""


def is_gpu_oom(exc: BaseException) -> bool:
    """True for torch's OutOfMemoryError and CUDA / faiss-gpu allocation-failure RuntimeErrors."""
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and not isinstance(exc, AmbientError) and \
        any(m in str(exc) for m in OOM_MARKERS)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return (lines[0] if lines else type(exc).__name__)[:200]


def oom_error(exc: BaseException, what: str, lower: str) -> GpuOutOfMemory:
    """The one-paragraph message: 'Ran out of GPU memory while <what> (<first line>). <lower>'."""
    return GpuOutOfMemory(f"Ran out of GPU memory while {what} ({_first_line(exc)}). {lower} "
                          "Other processes on the same GPU also take memory (see nvidia-smi).")


@contextlib.contextmanager
def oom_guard(what: str, lower: str) -> Iterator[None]:
    """Re-raise a GPU OOM inside the block as GpuOutOfMemory(what, lower); other errors unchanged."""
    try:
        yield
    except Exception as e:
        if isinstance(e, AmbientError) or not is_gpu_oom(e):
            raise
        raise oom_error(e, what, lower) from e


def as_oom_error(exc: BaseException) -> AmbientError | None:
    """CLI fallback for a GPU OOM that no guard named: generic size advice; None otherwise."""
    if not is_gpu_oom(exc):
        return None
    return oom_error(exc, "running on the GPU", "Lower --batch (or --net-batch when sampling), use a "
                     "smaller --index (ivf / ivfpq) or --shards for large training sets, or run on "
                     "--device cpu.")
