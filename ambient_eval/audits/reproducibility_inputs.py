"""Models to compare: checkpoints (sampled with shared per-seed noise) or sample sets keyed by seed.

Every input becomes a `ModelSamples`: an ImageSource whose row i is the sample of seeds[i], plus
what must match across models (resolution, channel count) and its provenance.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ambient_eval.audits.reproducibility import align_seeds, seeds_from_names
from ambient_eval.data.base import ImageSource
from ambient_eval.errors import AmbientError
from ambient_eval.data.model_inputs import is_checkpoint, model_labels



@dataclass
class SamplerSettings:
    """How checkpoints are sampled (identical for every model: the shared noise + schedule)."""

    steps: int = 18                    # EDM Heun steps (NFE = 2 * steps - 1)
    batch_size: int = 64               # images per forward pass (does not change any image)
    device: str = "auto"               # auto | cpu | cuda[:N]
    trust_pickle: bool = False         # allow EDM pickles (runs code stored in the file)
    conditioning: Any = None           # sampling.conditioning.Conditioning (class, prompts, guidance)


@dataclass
class ModelSamples:
    """One model's samples in requested-seed order."""

    label: str                         # short unique name used in metric keys rp[A|B]
    spec: str                          # what the user passed (path, or a description)
    kind: str                          # "checkpoint" | "samples" | "denoiser"
    resolution: tuple[int, int]        # (H, W)
    channels: int                      # native channels (1 gray, 3 RGB)
    source: ImageSource                # row i = sample of seeds[i]; uint8 NCHW 3 ch
    info: dict[str, Any] = field(default_factory=dict)   # provenance (fingerprint, weights sha)


class SeedOrderedSource(ImageSource):
    """View of `base` with rows reordered by `index` (row i = base row index[i])."""

    def __init__(self, base: ImageSource, index: np.ndarray, seeds: Sequence[int]) -> None:
        super().__init__()
        self._base, self._index, self._seeds = base, np.asarray(index, np.int64), list(seeds)
        self.description = f"{base.description} (seeds {len(self._seeds)})"

    def __len__(self) -> int:
        return int(self._index.size)

    @property
    def resolution(self) -> tuple[int, int]:
        return self._base.resolution

    def item_names(self) -> list[str]:
        names = self._base.item_names()
        return [names[i] for i in self._index]

    def read(self, indices: Sequence[int]):
        # positions in seed order => uint8 NCHW, 3 channels
        return self._base.read(self._index[self._check_indices(indices)])

    def _read_hwc(self, i: int) -> np.ndarray:
        return self.read([i])[0].permute(1, 2, 0).numpy()

    def fingerprint(self) -> str:
        from ambient_eval.files.hashing import sha256_json

        return sha256_json({"base": self._base.fingerprint(), "seeds": self._seeds,
                            "index": self._index.tolist()})


def _native_channels_folder(path: Path, first_name: str) -> int:
    """Channels of the first sample file (PIL mode), so gray and RGB sample sets are not mixed."""
    from PIL import Image

    if path.suffix.lower() == ".zip":
        import zipfile

        with zipfile.ZipFile(path) as z, z.open(first_name) as f, Image.open(f) as im:
            mode = im.mode
    else:
        with Image.open(path / first_name) as im:
            mode = im.mode
    return 1 if mode in ("1", "L", "LA", "I", "I;16", "F") else 3


def open_samples(path: Path, seeds: Sequence[int], label: str) -> ModelSamples:
    """A folder / zip of {seed:06d}.png files or an npz with `images` and `seeds` arrays."""
    from ambient_eval.data import open_source

    where = f"model {label} ('{path}')"
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "seeds" not in z.files or "images" not in z.files:
                raise AmbientError(f"'{path}' has arrays {sorted(z.files)}, but a sample npz needs "
                                   "'images' and 'seeds' (as written by `ambient-eval sample --out "
                                   "FILE.npz`). Re-sample, or pass the checkpoint.")
            present = z["seeds"].astype(np.int64).reshape(-1)
            shape = z["images"].shape
        from ambient_eval.data.base import array_layout

        base = open_source(path)
        if len(base) != present.size:
            raise AmbientError(f"'{path}' holds {len(base)} images but {present.size} seeds; they must "
                               "match one to one. Re-sample with `ambient-eval sample`.")
        layout = array_layout(np.empty((0,) + tuple(shape[1:]), np.uint8), where)
        channels = 1 if layout == "NHW" else int(shape[3] if layout == "NHWC" else shape[1])
        channels = 3 if channels == 4 else channels
    else:
        base = open_source(path)
        names = base.item_names()
        present = seeds_from_names(names, where)
        channels = _native_channels_folder(path, names[0])
    index = align_seeds(present, seeds, where)
    src = SeedOrderedSource(base, index, seeds)
    return ModelSamples(label=label, spec=str(path), kind="samples", resolution=tuple(base.resolution),
                        channels=channels, source=src,
                        info={"kind": "samples", "path": str(path), "fingerprint": src.fingerprint()})


def open_checkpoint(path: Path, seeds: Sequence[int], label: str, sampler: SamplerSettings,
                    fmt: str | None = None) -> ModelSamples:
    """A checkpoint: loaded now (validates format, resolution, channels), sampled lazily in batches."""
    from ambient_eval.models.guided import guidance_info
    from ambient_eval.sampling import model_source

    src = model_source(str(path), list(seeds), batch_size=sampler.batch_size, steps=sampler.steps,
                       device=sampler.device, trust_pickle=sampler.trust_pickle, format=fmt,
                       conditioning=sampler.conditioning)
    den = src.denoiser
    res, ch = int(den.img_resolution), int(den.img_channels)
    return ModelSamples(label=label, spec=str(path), kind="checkpoint", resolution=(res, res), channels=ch,
                        source=src, info={"kind": "checkpoint", "path": str(path),
                                          "format": getattr(den, "checkpoint_format", None),
                                          "weights_sha256": getattr(den, "weights_sha256", None),
                                          "fingerprint": src.fingerprint(), "steps": sampler.steps,
                                          **guidance_info(den)})


def from_denoiser(denoiser: Any, seeds: Sequence[int], label: str, sampler: SamplerSettings) -> ModelSamples:
    """An in-memory Denoiser (Python API, tests): sampled now, held in memory (small runs only)."""
    from ambient_eval.data.base import ArraySource
    from ambient_eval.sampling.generate import generate

    chunks = [imgs for _, imgs in generate(denoiser, list(seeds), batch_size=sampler.batch_size,
                                          steps=sampler.steps, device=sampler.device)]
    import torch

    arr = torch.cat(chunks).numpy()                       # NCHW uint8
    src = ArraySource(arr, description=f"denoiser {label}")
    res = int(denoiser.img_resolution)
    return ModelSamples(label=label, spec=f"<{type(denoiser).__name__}>", kind="denoiser",
                        resolution=(res, res), channels=int(denoiser.img_channels), source=src,
                        info={"kind": "denoiser", "fingerprint": src.fingerprint()})


def open_models(models: Iterable[Any], seeds: Sequence[int], sampler: SamplerSettings,
                labels: Sequence[str] | None = None, fmt: str | None = None) -> list[ModelSamples]:
    """Open every model input, check seeds, resolutions and channel counts (before any sampling)."""
    models = list(models)
    if len(models) < 2:
        raise AmbientError(f"Reproducibility compares models, but {len(models)} model was given. Pass "
                           "at least two models (checkpoints or sample folders/npz keyed by seed).")
    labels = list(labels) if labels else model_labels(
        [str(m) if isinstance(m, (str, os.PathLike)) else f"model{i}" for i, m in enumerate(models)])
    out = []
    for m, label in zip(models, labels):
        if isinstance(m, (str, os.PathLike)):
            p = Path(m)
            if not p.exists() and not is_checkpoint(m):  # closed-form:... specs are not files
                raise AmbientError(f"Model '{p}' does not exist. Pass a checkpoint, or a folder/npz of "
                                   "samples named by seed.")
            out.append(open_checkpoint(p, seeds, label, sampler, fmt) if is_checkpoint(p)
                       else open_samples(p, seeds, label))
        else:
            out.append(from_denoiser(m, seeds, label, sampler))
    ref = out[0]
    for m in out[1:]:
        if m.resolution != ref.resolution or m.channels != ref.channels:
            raise AmbientError(
                f"Models have different image shapes: {ref.label} is {ref.resolution[0]}x"
                f"{ref.resolution[1]} with {ref.channels} channel(s), {m.label} is {m.resolution[0]}x"
                f"{m.resolution[1]} with {m.channels} channel(s). Reproducibility compares samples "
                "from the same noise, so models must share resolution and channel count.")
    return out
