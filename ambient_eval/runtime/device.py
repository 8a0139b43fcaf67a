"""Device selection: `auto` means cuda when available, else cpu. Never hard-code 'cuda'."""
from __future__ import annotations

from ambient_eval.errors import AmbientError


def resolve_device(name: str = "auto"):
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a torch.device, with a clear error if unavailable."""
    import torch

    if name in (None, "", "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(name)
        except RuntimeError as e:
            raise AmbientError(f"Unknown device '{name}'. Use auto, cpu, cuda or cuda:N.") from e
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise AmbientError(f"Device '{name}' was requested but CUDA is not available on this machine. "
                               "Use --device cpu (or auto).")
    return with_policy(dev)


def with_policy(dev):
    """`dev`, after applying the device's policy: exact float32 on CUDA (precision.py), the thread count
    on CPU (threads.py: CLI default or $AMBIENT_EVAL_THREADS)."""
    if getattr(dev, "type", None) == "cuda":
        from ambient_eval.runtime.precision import ensure_exact

        ensure_exact()
    elif getattr(dev, "type", None) == "cpu":
        from ambient_eval.runtime.threads import apply_cpu_threads

        apply_cpu_threads()
    return dev
