"""Sampling: per-seed shared noise, EDM Heun / Euler / DDIM, generate(), writers, model_source."""
from __future__ import annotations

from ambient_eval.sampling.generate import generate, to_uint8
from ambient_eval.sampling.samplers import SamplerConfig
from ambient_eval.sampling.seeds import parse_seeds


def model_source(*args, **kwargs):
    """See ambient_eval.sampling.source.model_source (imported lazily)."""
    from ambient_eval.sampling.source import model_source as _ms

    return _ms(*args, **kwargs)


__all__ = ["generate", "to_uint8", "SamplerConfig", "parse_seeds", "model_source"]
