"""Sampling: per-seed shared noise, EDM Heun / Euler / DDIM, generate(), writers, model_source.

The names below are imported on first use (PEP 562), so importing a submodule that needs no torch
(seeds, distributed) does not import the sampler and torch with it.
"""
from __future__ import annotations

import importlib
import sys
import types

_LAZY = {"generate": "generate", "to_uint8": "generate", "SamplerConfig": "samplers", "parse_seeds": "seeds",
         "model_source": "source"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"ambient_eval.sampling.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'ambient_eval.sampling' has no attribute {name!r}")


__all__ = list(_LAZY)


class _Package(types.ModuleType):
    """Keep `ambient_eval.sampling.generate` the function once the submodule of that name is imported.

    The import system binds each imported submodule as an attribute of its package, which would
    replace the function `generate` with the module `generate` (issue 24, defect 8).
    """

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
