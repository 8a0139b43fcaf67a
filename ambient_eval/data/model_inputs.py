"""'A model or its samples': the one rule every command uses to tell a checkpoint from samples,
and the one rule for short unique labels.

    kind_of("runs/base")        -> "checkpoint" | "samples"
    model_labels(["a/base", "b/base"]) -> ["base", "base-2"]

A directory holding image files (or subfolders of them) is SAMPLES, even with a stray config.json beside them; a directory
without images is a checkpoint when it holds config.json / model_index.json / a unet/ folder / a
weights file. A file is a checkpoint by its suffix (.pkl, .pickle, .safetensors, .pt, .pth, .ckpt);
.npz/.npy/.zip/.tar and image files are samples.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

CHECKPOINT_SUFFIXES = (".pkl", ".pickle", ".safetensors", ".pt", ".pth", ".ckpt")
CHECKPOINT_MARKERS = ("config.json", "model_index.json", "model.safetensors",
                      "diffusion_pytorch_model.safetensors", "unet")
_LABEL_SUFFIXES = (".npz", ".npy", ".zip", ".tar", *CHECKPOINT_SUFFIXES)


def _has_images(folder: Path, depth: int = 2) -> bool:
    """An image file in `folder` or its subfolders down to `depth` (EDM writes 000000/ subfolders)."""
    from ambient_eval.data.decode import is_image_name

    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    if any(e.is_file() and is_image_name(e.name) for e in entries):
        return True
    return depth > 0 and any(_has_images(Path(e.path), depth - 1) for e in entries
                             if e.is_dir() and not e.name.startswith("."))


def kind_of(spec: str | os.PathLike) -> str:
    """'checkpoint' or 'samples' for a user-given path (see the module docstring)."""
    if str(spec).startswith("closed-form:"):  # a closed-form reference model (models/closed_form.py)
        return "checkpoint"
    path = Path(spec)
    if path.is_dir():
        if _has_images(path):
            return "samples"
        if any((path / m).exists() for m in CHECKPOINT_MARKERS) or any(
                p.suffix.lower() in CHECKPOINT_SUFFIXES for p in path.iterdir() if p.is_file()):
            return "checkpoint"
        return "samples"
    return "checkpoint" if path.suffix.lower() in CHECKPOINT_SUFFIXES else "samples"


def is_checkpoint(spec: str | os.PathLike) -> bool:
    """kind_of(spec) == 'checkpoint'."""
    return kind_of(spec) == "checkpoint"


def model_labels(specs: Sequence[str | os.PathLike]) -> list[str]:
    """Unique labels from paths: 'runs/base/' -> 'base', 'x.npz' -> 'x', a second 'base' -> 'base-2'."""
    labels: list[str] = []
    for spec in specs:
        p = Path(str(spec).rstrip("/\\"))
        base = (p.stem if p.suffix.lower() in _LABEL_SUFFIXES else p.name) or str(spec)
        if str(spec).startswith("closed-form:"):  # closed-form:KIND:DATA -> 'KIND-<label of DATA>'
            kind, _, data = str(spec)[len("closed-form:"):].partition(":")
            base = f"{kind}-{model_labels([data])[0]}"
        label, i = base, 2
        while label in labels:
            label, i = f"{base}-{i}", i + 1
        labels.append(label)
    return labels
