"""Resumable training state: one safetensors file (model, EMA, Adam moments) with JSON in its header.

A single file written through ambient_eval.files.atomic is the commit point of a checkpoint: after a
kill the previous state file is intact, and no pickle is ever written or read. RNG state is not
needed: every random number of step k comes from generators seeded by (seed, k, rank).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ambient_eval.files.atomic import atomic_path
from ambient_eval.errors import AmbientError

STATE_KEY = "ambient_eval_train_state"


def save_state(path: str | os.PathLike, *, model: torch.nn.Module, ema: torch.nn.Module,
               opt: torch.optim.Optimizer, info: dict, extra: dict[str, torch.Tensor] | None = None) -> None:
    """Write model + EMA + optimizer tensors, `extra` tensors (e.g. the batch walk's order) and `info`
    (JSON-able: step, config, ...) atomically."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    osd = opt.state_dict()
    for i, st in osd["state"].items():
        for key, v in st.items():
            tensors[f"opt.{i}.{key}"] = torch.as_tensor(v)
    tensors.update({f"extra.{k}": v for k, v in (extra or {}).items()})
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {**info, "param_groups": osd["param_groups"]}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={STATE_KEY: json.dumps(meta, allow_nan=False)})


def read_state_info(path: str | os.PathLike) -> dict:
    """The JSON part of a state file (no tensors loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})[STATE_KEY])
    except Exception as e:  # noqa: BLE001 - any damage to the file means the same to the user
        raise AmbientError(f"Training state '{path}' is damaged ({type(e).__name__}: {e}). Delete it to "
                           "restart from the beginning, or pass --overwrite.") from e


def load_state(path: str | os.PathLike, *, model: torch.nn.Module, ema: torch.nn.Module,
               opt: torch.optim.Optimizer) -> dict:
    """Restore tensors in place; => info dict."""
    from safetensors.torch import load_file

    info = read_state_info(path)
    tensors = load_file(str(Path(path)))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, key = k.split(".", 2)
            state.setdefault(int(i), {})[key] = v
    groups = info.pop("param_groups")
    for g in groups:  # JSON turned tuples into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    device = next(model.parameters()).device
    opt.load_state_dict({"state": {i: {k: (v if k == "step" else v.to(device)) for k, v in s.items()}
                                   for i, s in state.items()}, "param_groups": groups})
    return info


def load_extra(path: str | os.PathLike, name: str) -> torch.Tensor | None:
    """One tensor saved through save_state(extra={name: ...}), or None when the file has none."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor(f"extra.{name}") if f"extra.{name}" in f.keys() else None
