"""`ambient-eval demo`: the whole loop offline (data, training, sampling, metrics, audits, report)."""
from __future__ import annotations

from ambient_eval.demo.settings import MODELS, DemoSettings

__all__ = ["DemoSettings", "MODELS", "run_demo"]


def __getattr__(name: str):
    if name == "run_demo":  # lazy: importing the package must not import torch
        from ambient_eval.demo.run import run_demo

        return run_demo
    raise AttributeError(name)
