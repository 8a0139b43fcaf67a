"""Original-repository checkpoints (CompVis / Stability .ckpt, single-file SD .safetensors, DiT .pt):
refused with the diffusers conversion that turns each into a save_pretrained folder we load.

Only names and the safetensors JSON header are read; nothing is unpickled.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from ambient_eval.errors import AmbientError

_SD_SINGLE_FILE = (
    "StableDiffusionPipeline.from_single_file('{p}').save_pretrained('sd-folder', "
    "safe_serialization=True) (StableDiffusionXLPipeline.from_single_file for SDXL), or diffusers' "
    "scripts/convert_original_stable_diffusion_to_diffusers.py --checkpoint_path {p} --dump_path "
    "sd-folder --to_safetensors; then pass sd-folder")


def _safetensors_keys(path: Path, limit: int = 1 << 26) -> list[str]:
    """Tensor names in a .safetensors header (8-byte length + JSON), [] when unreadable."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > limit:
                return []
            return [k for k in json.loads(f.read(n)) if k != "__metadata__"]
    except (OSError, ValueError, struct.error):
        return []


def check_foreign(path: Path) -> None:
    """Raise AmbientError naming the conversion for an original-repository checkpoint; else return."""
    path = Path(path)
    if not path.is_file():
        return
    suffix = path.suffix.lower()
    if suffix == ".ckpt":
        raise AmbientError(
            f"'{path}' is an original-repository .ckpt (CompVis / Stability LDM or Stable Diffusion "
            "format), a pickle whose layout ambient-eval does not read. Convert it to a diffusers "
            f"folder: {_SD_SINGLE_FILE.format(p=path)}.")
    if suffix == ".safetensors" and any(k.startswith(("model.diffusion_model.", "first_stage_model."))
                                        for k in _safetensors_keys(path)):
        raise AmbientError(
            f"'{path}' is a single-file Stable Diffusion checkpoint (original-repository layout). "
            f"Convert it to a diffusers folder: {_SD_SINGLE_FILE.format(p=path)}.")
    if suffix in (".pt", ".pth"):
        raise AmbientError(
            f"Unrecognised checkpoint '{path}': a PyTorch .pt/.pth file, whose architecture cannot be "
            "read without running a pickle. For a DiT checkpoint (facebookresearch/DiT, DiT-XL-2-256x256.pt "
            "or -512x512.pt) use diffusers' scripts/convert_dit_to_diffusers.py: place the file at "
            "pretrained_models/DiT-XL-2-256x256.pt, run it with --image_size 256 --vae_model "
            "stabilityai/sd-vae-ft-ema --save True --checkpoint_path dit-folder (it writes a DiTPipeline "
            "folder), and pass dit-folder; other "
            "networks: save them with ambient-eval's save_native or as a diffusers folder.")
