"""Native checkpoints: safetensors weights + JSON config. Safe to load (no code execution).

Layouts
  directory  DIR/model.safetensors + DIR/config.json
  file       FILE.safetensors with the config JSON in the safetensors metadata header
config.json = {"format": "ambient-eval-native", "format_version": 1,
               "architecture": "unet", "network": {UNetConfig fields},
               "precond": "edm" | "ve", "precond_kwargs": {...}, "metadata": {training metadata}}
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ambient_eval.files import atomic
from ambient_eval.errors import AmbientError
from ambient_eval.models.base import Denoiser
from ambient_eval.models.precond import EDMPrecond, VEPrecond
from ambient_eval.models.unet import UNet, UNetConfig

FORMAT = "ambient-eval-native"
FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
META_CONFIG_KEY = "ambient_eval_config"          # safetensors header key of the single-file form
ARCHITECTURES = {"unet": (UNet, UNetConfig)}
PRECONDS = {"edm": EDMPrecond, "ve": VEPrecond}


def native_config(network: UNetConfig, *, precond: str = "edm", sigma_data: float = 0.5,
                  architecture: str = "unet") -> dict:
    """Config dict for build_native_model / save_native from a network config."""
    kw = {"sigma_data": float(sigma_data)} if precond == "edm" else {}
    return {"architecture": architecture, "network": network.to_dict(), "precond": precond,
            "precond_kwargs": kw}


def build_native_model(config: dict) -> Denoiser:
    """config dict (see module docstring) => freshly initialised Denoiser (random weights)."""
    where = config.get("_source", "the checkpoint config")
    arch = config.get("architecture")
    if arch not in ARCHITECTURES:
        raise AmbientError(f"Unknown architecture {arch!r} in {where}. Supported: "
                           f"{sorted(ARCHITECTURES)}. Was it written by a newer ambient-eval?")
    precond = config.get("precond", "edm")
    if precond not in PRECONDS:
        raise AmbientError(f"Unknown preconditioning {precond!r} in {where}. Supported: "
                           f"{sorted(PRECONDS)}.")
    net_cls, cfg_cls = ARCHITECTURES[arch]
    try:
        cfg = cfg_cls.from_dict(config.get("network") or {})
        net = net_cls(cfg)
    except (TypeError, ValueError) as e:
        raise AmbientError(f"Invalid network config in {where}: {e}. Fix or re-save the checkpoint.") from e
    kw = dict(config.get("precond_kwargs") or {})
    try:
        return PRECONDS[precond](net, img_resolution=cfg.img_resolution,
                                 img_channels=cfg.img_channels, label_dim=cfg.label_dim, **kw)
    except TypeError as e:
        raise AmbientError(f"Invalid precond_kwargs {kw} in {where}: {e}.") from e


def save_native(model: Denoiser, path: str | os.PathLike, config: dict,
                metadata: dict | None = None) -> Path:
    """Write weights + config atomically; `path` ending in .safetensors => single file, else a dir."""
    from safetensors.torch import save_file

    full = {"format": FORMAT, "format_version": FORMAT_VERSION, **config,
            "metadata": dict(metadata or {})}
    json.dumps(full, allow_nan=False)  # fail before writing if metadata is not JSON
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    p = Path(path)
    if p.suffix == ".safetensors":
        with atomic.atomic_path(p) as tmp:
            save_file(tensors, str(tmp), metadata={META_CONFIG_KEY: json.dumps(full, sort_keys=True)})
        return p
    atomic.ensure_writable_dir(p)
    with atomic.atomic_path(p / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    atomic.write_json(p / CONFIG_NAME, full)
    return p


def is_native(path: Path) -> bool:
    """Cheap format sniff (reads only config.json or the safetensors header)."""
    try:
        if path.is_dir():
            cfg = path / CONFIG_NAME
            return (path / WEIGHTS_NAME).is_file() and cfg.is_file() and \
                json.loads(cfg.read_text()).get("format") == FORMAT
        if path.suffix == ".safetensors":
            return META_CONFIG_KEY in _header_metadata(path)
    except (OSError, ValueError):
        return False
    return False


def _header_metadata(path: Path) -> dict:
    # safetensors layout: u64 little-endian header length, then a JSON header with "__metadata__".
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        if n <= 0 or n > 100_000_000:
            raise ValueError("not a safetensors file")
        return json.loads(f.read(n)).get("__metadata__") or {}


def read_native_config(path: Path) -> tuple[dict, Path]:
    """=> (config dict, weights file)."""
    try:
        if path.is_dir():
            weights = path / WEIGHTS_NAME
            if not weights.is_file():
                raise AmbientError(f"Native checkpoint '{path}' has no {WEIGHTS_NAME}. "
                                   "Point at a directory written by save_native / ambient-eval train.")
            config = json.loads((path / CONFIG_NAME).read_text())
        else:
            weights = path
            meta = _header_metadata(path)
            if META_CONFIG_KEY not in meta:
                raise AmbientError(f"'{path}' is a safetensors file without an ambient-eval config in "
                                   "its header. Save it with save_native, or pass the checkpoint "
                                   "directory holding config.json.")
            config = json.loads(meta[META_CONFIG_KEY])
    except (OSError, ValueError) as e:
        raise AmbientError(f"Cannot read native checkpoint '{path}': {e}. The file is damaged or not "
                           "an ambient-eval checkpoint.") from e
    if not isinstance(config, dict):
        raise AmbientError(f"Config of '{path}' is not a JSON object.")
    config["_source"] = str(path)
    return config, weights


def load_native(path: str | os.PathLike, device: torch.device | str = "cpu") -> Denoiser:
    """Native checkpoint (dir or .safetensors) => Denoiser in eval mode, weights validated."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ambient_eval.files.hashing import sha256_file

    p = Path(path)
    config, weights = read_native_config(p)
    model = build_native_model(config)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise AmbientError(f"Cannot read weights '{weights}': {e}. The file is damaged or truncated; "
                           "re-save the checkpoint.") from e
    check_state_dict(model, state, str(weights))
    model.load_state_dict(state)
    model.weights_sha256 = sha256_file(weights)
    model.checkpoint_config = {k: v for k, v in config.items() if k != "_source"}
    return model.eval().requires_grad_(False).to(device)


def check_state_dict(model: torch.nn.Module, state: dict, where: str) -> None:
    """Missing / unexpected keys and shape mismatches => AmbientError naming key and shapes."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise AmbientError(
            f"Weights in '{where}' do not match the architecture in its config: "
            f"{len(missing)} missing key(s) {missing[:3]}, {len(unexpected)} unexpected key(s) "
            f"{unexpected[:3]}. The config and weights come from different models; re-save it.")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise AmbientError(
                f"Weight '{k}' in '{where}' has shape {tuple(state[k].shape)} but the config's "
                f"architecture expects {tuple(v.shape)}. The config and weights do not match; re-save it.")
