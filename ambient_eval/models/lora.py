"""LoRA adapters on a diffusers pipeline: `--lora PATH` (repeatable) and `--lora-scale`.

Every format diffusers' `load_lora_weights` reads (a folder holding pytorch_lora_weights.safetensors,
or a .safetensors file in diffusers / kohya / PEFT layout). Pickled .bin adapters are refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ambient_eval.errors import AmbientError


def _weights(path: Path) -> Path:
    """The adapter's safetensors file (a folder holds exactly one)."""
    if path.is_file():
        if path.suffix != ".safetensors":
            raise AmbientError(f"LoRA '{path}' is not a .safetensors file; pickled adapters are not "
                               "loaded. Re-save it with save_lora_weights(..., safe_serialization=True).")
        return path
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if len(found) == 1:
            return found[0]
        raise AmbientError(f"LoRA folder '{path}' holds {len(found)} .safetensors files; expected one "
                           "(pytorch_lora_weights.safetensors). Pass the file itself.")
    raise AmbientError(f"LoRA '{path}' does not exist. Check the path.")


def apply_lora(pipe, paths: Sequence[str], scale: float) -> list[dict]:
    """Load every adapter into `pipe` with weight `scale` => [{path, sha256}] for provenance."""
    from ambient_eval.files.hashing import sha256_file

    try:
        import peft  # noqa: F401  (diffusers' LoRA loading needs it)
    except ImportError as e:
        raise AmbientError("--lora needs the 'peft' package: pip install 'ambient-eval[diffusers]'.") from e
    names, record = [], []
    for i, p in enumerate(paths):
        f = _weights(Path(p))
        name = f"lora{i}"
        try:
            pipe.load_lora_weights(str(f.parent), weight_name=f.name, adapter_name=name)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise AmbientError(f"Cannot load LoRA '{p}' into this {type(pipe).__name__}: "
                               f"{' '.join(str(e).split())[:300]}. It must be a LoRA for this base "
                               "model, in a format diffusers' load_lora_weights reads.") from e
        names.append(name)
        record.append({"path": str(p), "sha256": sha256_file(f)})
    pipe.set_adapters(names, adapter_weights=[float(scale)] * len(names))
    return record
