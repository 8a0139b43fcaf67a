"""ambient-eval: is an ambient diffusion model good, does it copy its training data, do models agree.

The Python API that the CLI is a thin layer over (ambient_eval.api): `ambient_eval.fid(...)`,
`stats`, `memorization`, `reproducibility`, `gate`, ... Heavy modules (torch, faiss, open_clip) are
imported lazily, so `import ambient_eval` and `ambient-eval --help` stay fast.
"""
from __future__ import annotations

import sys
import types

__version__ = "0.1.0"

from ambient_eval.errors import AmbientError  # noqa: E402

# Names of ambient_eval.api served lazily from the package root (ambient_eval.fid is ambient_eval.api.fid).
_API = (
    # quality
    "DEFAULTS", "FidDefaults", "FidResult", "StatsResult", "compute_stats", "fid", "stats",
    # audits and gates
    "GateResult", "MemorizationResult", "ReproducibilityResult", "gate", "memorization", "reproducibility",
    # models
    "AnnotateResult", "CorruptResult", "SampleResult", "TrainResult", "annotate", "corrupt", "sample", "train",
)

__all__ = ["__version__", "AmbientError", *_API]


def __getattr__(name: str):
    # Lazy public API: ambient_eval.fid(...), ambient_eval.gate(...), ...
    if name in _API:
        import importlib

        return getattr(importlib.import_module("ambient_eval.api"), name)
    raise AttributeError(f"module 'ambient_eval' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Keep `ambient_eval.gate` the API function once the subpackage `ambient_eval.gate` is imported.

    The import system binds each imported subpackage as an attribute of its parent, which would hide
    the function behind the package of the same name; such a binding is dropped (the subpackage stays
    importable: `from ambient_eval.gate import load_config`), and the lazy `__getattr__` answers.
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
