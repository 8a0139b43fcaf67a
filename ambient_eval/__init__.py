"""ambient-eval: is an ambient diffusion model good, does it copy its training data, do models agree.

The Python API that the CLI is a thin layer over. Heavy modules (torch, faiss, open_clip) are
imported lazily, so `import ambient_eval` and `ambient-eval --help` stay fast.
"""
from __future__ import annotations

__version__ = "0.1.0"

from ambient_eval.errors import AmbientError  # noqa: E402

__all__ = ["__version__", "AmbientError",
           # models
           "sample", "train", "annotate", "corrupt"]


def __getattr__(name: str):
    # Lazy public API: ambient_eval.fid(...), ambient_eval.compute_stats(...), ...
    import importlib

    lazy = {
        "fid": ("ambient_eval.api", "fid"),
        "compute_stats": ("ambient_eval.api", "compute_stats"),
        # models
        "sample": ("ambient_eval.api", "sample"),
        "train": ("ambient_eval.api", "train"),
        "annotate": ("ambient_eval.api", "annotate"),
        "corrupt": ("ambient_eval.api", "corrupt"),
    }
    if name in lazy:
        module, attr = lazy[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'ambient_eval' has no attribute {name!r}")
