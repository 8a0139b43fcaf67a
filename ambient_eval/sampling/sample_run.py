"""`sample(...)` -> SampleResult: the `ambient-eval sample` command behind the API.

In memory (`out=None`): the images come back as one NHWC uint8 array and `.save(path)` writes them
as the command does. With `out=` (a folder of PNGs or a .npz): written while sampling (resumable,
torchrun-sharded, for 50k-image runs) by sampling.run.sample_to_path; the result describes them.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ambient_eval.errors import AmbientError

@dataclass(frozen=True)
class SampleResult:
    """Generated images, one per seed, and the settings that determine their pixels.

    `images` (NHWC uint8, in seed order) is None when they were written with `out=`:
    `load_images()` reads them back. `settings` is what the output's settings record holds
    (model hash, sampler, execution, ...).
    """

    seeds: np.ndarray                    # (N,) int64, in the order asked for
    labels: np.ndarray | None            # (N,) int64 class labels (conditional models), or None
    settings: dict                       # what determines the pixels (.ambient-sample.json / npz 'settings')
    images: np.ndarray | None = None     # NHWC uint8; None when written to `out`
    out: Path | None = None              # the PNG folder or .npz holding the images, or None (in memory)
    summary: dict | None = None          # sample_to_path's summary (generated, skipped, rank, ...) with out=

    def files(self) -> list[str | None]:
        """Where each seed's image is: its PNG, the .npz, or None (in memory)."""
        from ambient_eval.sampling.writer import png_path

        if self.out is None:
            return [None] * len(self.seeds)
        if self.out.suffix.lower() == ".npz":
            return [str(self.out)] * len(self.seeds)
        return [str(png_path(self.out, int(s))) for s in self.seeds]

    def to_pandas(self):
        """One row per seed: seed, label (None for unconditional models) and file (None in memory)."""
        import pandas as pd

        labels = [None] * len(self.seeds) if self.labels is None else [int(v) for v in self.labels]
        return pd.DataFrame({"seed": [int(s) for s in self.seeds], "label": labels, "file": self.files()})

    def load_images(self) -> np.ndarray:
        """NHWC uint8 images in seed order (from memory, or read back from `out`)."""
        if self.images is not None:
            return self.images
        if self.out is None:
            raise AmbientError("This SampleResult holds neither images nor an output path.")
        if self.out.suffix.lower() == ".npz":
            with np.load(self.out, allow_pickle=False) as z:
                pos = {int(s): i for i, s in enumerate(z["seeds"])}
                return z["images"][[pos[int(s)] for s in self.seeds]]
        from PIL import Image

        arrs = [np.asarray(Image.open(f)) for f in self.files()]
        return np.stack([a[:, :, None] if a.ndim == 2 else a for a in arrs])

    def save(self, path: str | os.PathLike) -> SampleResult:
        """Write the images as `ambient-eval sample --out PATH` does (PNGs in subfolders of 1000,
        or one .npz), each file atomically, with the settings record; => the result pointing at PATH.

        Seeds already in PATH (made with the same settings) are kept, as the command resumes.
        """
        import torch

        from ambient_eval.sampling.writer import make_writer

        dest = Path(path)
        if self.out is not None and dest.resolve() == self.out.resolve():
            return self
        images = self.load_images()
        writer = make_writer(dest)
        writer.prepare(self.settings)
        seeds = [int(s) for s in self.seeds]
        done = writer.done(seeds)
        keep = [i for i, s in enumerate(seeds) if s not in done]
        if keep:
            writer.write([seeds[i] for i in keep], torch.from_numpy(images[keep]).permute(0, 3, 1, 2), None)
        writer.finalize(seeds, self.labels, self.settings)
        return dataclasses.replace(self, images=None, out=dest, summary=None)


def sample(model: str | os.PathLike, seeds: str | Sequence[int] | None = None, out: str | os.PathLike | None = None, *,
           batch: int = 64, steps: int | None = None, sampler: str = "heun", class_label: int | str | None = None,
           prompts: str | os.PathLike | None = None, guidance: float | None = None, gnet: str | os.PathLike | None = None,
           negative_prompt: str | None = None, scheduler: str | None = None, lora: Sequence[str | os.PathLike] = (),
           lora_scale: float = 1.0, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
           S_churn: float = 0.0, S_min: float = 0.0, S_max: float = float("inf"), S_noise: float = 1.0,
           device: str = "auto", format: str | None = None, trust_pickle: bool = False,
           vae: str | os.PathLike | None = None, autocast: str | None = None,
           net_batch: str | int = "auto") -> SampleResult:
    """Generate images from a diffusion checkpoint with shared per-seed noise, as `ambient-eval sample`.

    Seed s always gets the same initial noise (and class), whatever `batch`, device or number of
    processes. `steps` defaults to 18 for EDM / VP models (Heun NFE 35), to the pipeline's own for
    diffusers pipelines. `seeds` is a list of ints or a spec such as "0-49999" (default with `prompts`: one
    per prompt row); the other arguments are the command's options (`--class` is `class_label`).
    Without `out` the images are returned in memory (`.save(path)` writes them); with `out` (a
    folder, or a .npz file) they are written while sampling, resumably and sharded under
    torchrun, and the result describes them (use this for large runs).

    Returns:
        A [SampleResult][ambient_eval.api.SampleResult]: `.to_pandas()` one row
        per seed with its file, `.save(path)` the command's output.

    Examples:
        >>> import ambient_eval as ae
        >>> run = ae.train("builtin:digits-16", out="runs/base", arch="tiny", steps=2, batch=4,
        ...                warmup=1, device="cpu")
        >>> s = ae.sample(run.final_checkpoint, seeds="0-3", steps=4, device="cpu")
        >>> s.images.shape
        (4, 16, 16, 3)
        >>> written = s.save("samples.npz")      # or a folder: samples/000000/000000.png, ...
        >>> written.to_pandas()["seed"].tolist()
        [0, 1, 2, 3]
    """
    from ambient_eval.models import load_model
    from ambient_eval.sampling import distributed
    from ambient_eval.sampling.conditioning import Conditioning, parse_class
    from ambient_eval.sampling.samplers import SamplerConfig
    from ambient_eval.sampling.seeds import parse_seeds

    cond = Conditioning(class_spec=None if class_label is None else str(class_label),
                        prompts=None if prompts is None else str(prompts), guidance=guidance,
                        negative_prompt=negative_prompt, scheduler=scheduler, steps=steps,
                        lora=tuple(str(p) for p in lora or ()), lora_scale=lora_scale,
                        gnet=None if gnet is None else str(gnet))
    if seeds is None and cond.default_seeds() is None:
        raise AmbientError("Pass --seeds (e.g. --seeds 0-49999), or --prompts FILE to generate "
                           "every prompt once.")
    seed_list = (cond.default_seeds() if seeds is None else parse_seeds(seeds) if isinstance(seeds, str)
                 else [int(s) for s in seeds])
    if not (net_batch == "auto" or str(net_batch).isdigit()):
        raise AmbientError(f"--net-batch '{net_batch}' is not 'auto' or a non-negative integer.")
    nb = net_batch if net_batch == "auto" else int(net_batch)
    cfg = SamplerConfig(sampler=sampler, steps=steps or SamplerConfig().steps, sigma_min=sigma_min, sigma_max=sigma_max,
                        rho=rho, S_churn=S_churn, S_min=S_min, S_max=S_max, S_noise=S_noise).validate()
    spec = None if class_label is None else parse_class(str(class_label))
    edm_class = None if spec == "random" else spec      # EDM / VP models: int | 'balanced' | None
    if out is None and distributed.world()[1] > 1:
        raise AmbientError("Under torchrun, pass out= (a folder or .npz): in-memory samples are not "
                           "gathered across processes.")
    dev = distributed.device_for_rank(device)
    denoiser = load_model(model, format=format, trust_pickle=trust_pickle, device=str(dev), vae=vae,
                          conditioning=cond)
    if out is not None:
        return _sample_to(denoiser, seed_list, Path(out), cfg, batch, edm_class, dev, nb, autocast)
    return _sample_in_memory(denoiser, seed_list, cfg, batch, edm_class, dev, nb, autocast)


def _sample_to(denoiser, seeds, out: Path, cfg, batch, class_label, dev, net_batch, autocast) -> SampleResult:
    from ambient_eval.files.atomic import claim_output_dir
    from ambient_eval.sampling import distributed
    from ambient_eval.sampling.run import sample_to_path

    # One run per output at a time: a second `sample` on the same --out stops here (exit 2).
    claim_output_dir(out if out.suffix.lower() != ".npz" else out.with_name(out.name + ".partial"))
    with distributed.process_group(dev):
        summary = sample_to_path(denoiser, seeds, out, cfg=cfg, batch_size=batch, class_label=class_label,
                                 device=dev, net_batch=net_batch, autocast=autocast)
    settings, labels = summary.pop("settings"), summary.pop("labels")
    return SampleResult(seeds=np.asarray(seeds, np.int64), labels=None if labels is None else np.asarray(labels, np.int64),
                        settings=settings, out=out, summary=summary)


def _sample_in_memory(denoiser, seeds, cfg, batch, class_label, dev, net_batch, autocast) -> SampleResult:
    from ambient_eval.runtime.progress import progress
    from ambient_eval.sampling.generate import generate
    from ambient_eval.sampling.run import prepare_sampling

    cfg, seeds, labels, settings = prepare_sampling(denoiser, seeds, cfg=cfg, batch_size=batch,
                                                    class_label=class_label, device=dev, net_batch=net_batch,
                                                    autocast=autocast)
    pos = {s: i for i, s in enumerate(seeds)}
    images = None
    bar = progress(None, total=len(seeds), desc="sample")
    try:
        for batch_seeds, imgs in generate(denoiser, seeds, batch_size=batch, config=cfg, device=dev,
                                          class_labels=None if labels is None else labels.tolist(),
                                          net_batch=net_batch, autocast=autocast):
            arr = imgs.permute(0, 2, 3, 1).numpy()              # NCHW uint8 => NHWC uint8
            if images is None:
                images = np.empty((len(seeds),) + arr.shape[1:], np.uint8)
            images[[pos[int(s)] for s in batch_seeds]] = arr
            bar.update(len(batch_seeds))
    finally:
        bar.close()
    return SampleResult(seeds=np.asarray(seeds, np.int64), labels=None if labels is None else np.asarray(labels, np.int64),
                        settings=settings, images=images)
