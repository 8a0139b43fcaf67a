"""load_model: detect a checkpoint's format and return a Denoiser (EDM convention).

Formats: native (safetensors + JSON, safe), diffusers (UNet2DModel + scheduler config dir,
safe with safetensors weights), edm-pickle (EDM / Ambient-Omni network-snapshot-*.pkl;
executes code stored in the file, so only with trust_pickle=True).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ambient_eval.errors import AmbientError
from ambient_eval.models.base import Denoiser

FORMATS = ("native", "diffusers", "edm-pickle")
PICKLE_SUFFIXES = (".pkl", ".pickle")


def detect_format(path: Path) -> str:
    """Guess the format from names and small config files only (never unpickles anything)."""
    from ambient_eval.models.native import is_native

    if is_native(path):
        return "native"
    if path.is_dir():
        if (path / "unet").is_dir() or (path / "model_index.json").is_file():
            return "diffusers"
        cfg = path / "config.json"
        if cfg.is_file():
            try:
                if "_class_name" in json.loads(cfg.read_text()):
                    return "diffusers"
            except (OSError, ValueError):
                pass
        raise AmbientError(
            f"Cannot tell the checkpoint format of directory '{path}': expected model.safetensors + "
            "config.json (native) or a diffusers UNet2DModel directory (config.json with "
            "'_class_name', or unet/ + scheduler/). Pass --format native|diffusers if it is one.")
    if path.suffix in PICKLE_SUFFIXES:
        return "edm-pickle"
    if path.suffix == ".safetensors":
        raise AmbientError(
            f"'{path}' is a safetensors file without an ambient-eval config in its header, so its "
            "architecture is unknown. Use a checkpoint written by save_native / ambient-eval train, "
            "or the directory that holds its config.json.")
    raise AmbientError(
        f"Unrecognised checkpoint '{path}' (suffix '{path.suffix}'). Supported: a native directory or "
        ".safetensors file, a diffusers directory, or an EDM network-snapshot-*.pkl (with "
        "--trust-pickle). Pass --format to choose explicitly.")


def load_model(path: str | os.PathLike, *, format: str | None = None, trust_pickle: bool = False,
               device: str = "auto", vae: str | os.PathLike | None = None,
               conditioning=None) -> Denoiser:
    """Checkpoint path => Denoiser on `device` in eval mode with `weights_sha256` set.

    `vae`: AutoencoderKL directory for EDM2 latent models (default: $AMBIENT_EVAL_VAE, then the
    local Hugging Face / EDM2 caches; see ambient_eval.models.latent). Pixel models ignore it.
    `conditioning` (ambient_eval.sampling.conditioning.Conditioning): prompts, class rule, guidance,
    scheduler and LoRA for DiT / SD / SDXL / LCM pipeline folders (models.pipelines).
    """
    from ambient_eval.runtime.device import resolve_device
    from ambient_eval.models.closed_form import is_closed_form, load_closed_form

    if is_closed_form(path):  # closed-form:empirical|gaussian:DATA (reference models, no file)
        return load_closed_form(str(path), resolve_device(device))
    p = Path(path)
    if not p.exists():
        raise AmbientError(f"Checkpoint '{p}' does not exist. Check the path.")
    if format is not None and format not in FORMATS:
        raise AmbientError(f"Unknown checkpoint format '{format}'. Use one of: {', '.join(FORMATS)}.")
    from ambient_eval.models.foreign import check_foreign
    from ambient_eval.models.pipelines import PIPELINES, load_pipeline, pipeline_class

    check_foreign(p)
    fmt = format or detect_format(p)
    dev = resolve_device(device)
    if fmt == "diffusers" and p.is_dir() and pipeline_class(p) in PIPELINES:
        if conditioning is not None and conditioning.gnet is not None:
            raise AmbientError(f"--gnet guides EDM2 network snapshots (.pkl); '{p}' is a diffusers "
                               "pipeline, guided by --guidance alone. Drop --gnet.")
        model = load_pipeline(p, conditioning=conditioning, device=dev, trust_pickle=trust_pickle)
        return model
    from ambient_eval.models.guided import apply_guidance, non_pipeline_flags

    extra = [] if conditioning is None else non_pipeline_flags(conditioning, fmt, p)
    if extra:
        raise AmbientError(f"{', '.join(extra)} only apply to diffusers "
                           f"conditional pipelines ({', '.join(PIPELINES)}); '{p}' is a {fmt} "
                           "checkpoint. Drop them.")
    if fmt == "native":
        from ambient_eval.models.native import load_native

        model = load_native(p, dev)
    elif fmt == "diffusers":
        from ambient_eval.models.diffusers_loader import load_diffusers

        model = load_diffusers(p, dev)
    else:
        from ambient_eval.models.edm_pickle import load_edm_pickle

        model = load_edm_pickle(p, dev, trust_pickle=trust_pickle, vae=vae)
    model.checkpoint_format = fmt
    model.checkpoint_path = str(p)
    return apply_guidance(model, conditioning, device=dev, trust_pickle=trust_pickle, vae=vae)
