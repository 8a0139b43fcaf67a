"""model_source: generated samples as an ImageSource, streamed into feature extraction.

Images are quantized exactly as `ambient-eval sample` saves them (to_uint8), so features of a
model_source equal features of the PNGs it would write. Nothing is written to disk.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from ambient_eval.data.base import ImageSource
from ambient_eval.errors import AmbientError
from ambient_eval.models.guided import guidance_note
from ambient_eval.sampling.execution import EXECUTION_KEY, execution
from ambient_eval.sampling.generate import generate, image_resolution, provenance, resolve_labels
from ambient_eval.sampling.samplers import SamplerConfig
from ambient_eval.sampling.seeds import format_seeds


class ModelSource(ImageSource):
    """len = number of seeds; item i = sample of seeds[i]; item_names = seed strings."""

    prefetch_ok = False  # its batches are network work already: no decode thread in front of it

    def __init__(self, denoiser, seeds: Sequence[int], *, cfg: SamplerConfig, batch_size: int = 64,
                 device="auto", class_label: int | None = None, net_batch="auto",
                 autocast: str | None = None, description: str | None = None) -> None:
        super().__init__()
        if not seeds:
            raise AmbientError("No seeds given for sampling. Pass e.g. --seeds 0-49999.")
        self.denoiser = denoiser
        self.seeds = [int(s) for s in seeds]
        self.cfg = cfg.validate()
        self.batch_size = int(batch_size)
        self.device = device
        self.class_label = class_label
        self.net_batch, self.autocast = net_batch, autocast
        self._labels = resolve_labels(denoiser, self.seeds, class_label)
        self._pos = {s: i for i, s in enumerate(self.seeds)}
        self.description = description or (
            f"model {getattr(denoiser, 'checkpoint_path', type(denoiser).__name__)} "
            f"seeds {format_seeds(self.seeds)} ({self.cfg.sampler}, {self.cfg.steps} steps"
            f"{guidance_note(denoiser)})")

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def resolution(self) -> tuple[int, int]:
        r = image_resolution(self.denoiser)
        return (r, r)

    def item_names(self) -> list[str]:
        return [str(s) for s in self.seeds]

    def labels(self) -> np.ndarray | None:
        return self._labels

    def settings(self) -> dict[str, Any]:
        """Provenance: what determines the pixels."""
        return {"model_sha256": getattr(self.denoiser, "weights_sha256", None),
                "model_format": getattr(self.denoiser, "checkpoint_format", None),
                EXECUTION_KEY: execution(self.device, self.autocast, self.net_batch),
                "sampler": self.cfg.to_dict(), "class": self.class_label, "autocast": self.autocast,
                "seeds": format_seeds(self.seeds), **provenance(self.denoiser, self.class_label)}

    def fingerprint(self) -> str:
        """sha256(weights hash + seeds + sampler settings); never runs the model."""
        if self._fingerprint is None:
            if not getattr(self.denoiser, "weights_sha256", None):
                raise AmbientError("The model has no weights fingerprint (not loaded with load_model), "
                                   "so its samples cannot be cached or compared. Load it with load_model.")
            blob = json.dumps({"kind": "model-samples-v2", **self.settings()}, sort_keys=True)
            self._fingerprint = hashlib.sha256(blob.encode()).hexdigest()
        return self._fingerprint

    def _generate(self, seeds: list[int]) -> Iterator[tuple[list[int], torch.Tensor]]:
        labels = None if self._labels is None else [int(self._labels[self._pos[s]]) for s in seeds]
        batches = generate(self.denoiser, seeds, batch_size=self.batch_size, config=self.cfg,
                           device=self.device, class_labels=labels, net_batch=self.net_batch,
                           autocast=self.autocast)
        return self._with_progress(batches, len(seeds))

    def _with_progress(self, batches, n: int) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Progress per network call (each net_batch chunk of each step), not per finished batch:
        a 64-image batch can take minutes on CPU (issue 24)."""
        from ambient_eval.runtime.progress import progress
        from ambient_eval.sampling.samplers import nfe

        total = n * nfe(self.cfg)
        bar = progress(None, total=total, desc="sampling (images x network evaluations)", unit="eval")
        done = [0]

        def hook(module, args, output) -> None:
            k = min(int(args[0].shape[0]), total - done[0])   # padded rows are not counted
            done[0] += k
            bar.update(k)

        handle = self.denoiser.register_forward_hook(hook) if hasattr(self.denoiser, "register_forward_hook") else None
        try:
            yield from batches
        finally:
            if handle is not None:
                handle.remove()
            bar.close()

    @staticmethod
    def _rgb(images: torch.Tensor) -> torch.Tensor:
        # NCHW uint8 (1 or 3 ch) => NCHW uint8, 3 channels (gray repeated, as image sources do).
        return images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        idx = self._check_indices(indices)
        seeds = [self.seeds[i] for i in idx]
        if not seeds:
            r = image_resolution(self.denoiser)
            return torch.empty((0, 3, r, r), dtype=torch.uint8)
        return torch.cat([self._rgb(x) for _, x in self._generate(seeds)])

    def iter_batches(self, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """(int64 indices, uint8 NCHW 3 ch) in seed order; batch_size sets both chunk and sampler batch."""
        if int(batch_size) < 1:
            raise AmbientError(f"Batch size must be at least 1, got {batch_size}.")
        self.batch_size = int(batch_size)
        start = 0
        for seeds, images in self._generate(self.seeds):
            yield np.arange(start, start + len(seeds), dtype=np.int64), self._rgb(images)
            start += len(seeds)

    def _read_hwc(self, i: int) -> np.ndarray:
        return self.read([i])[0].permute(1, 2, 0).numpy()

    def _content_chunks(self) -> Iterable[bytes]:  # fingerprint() is overridden; kept for the ABC
        return iter(())


def model_source(checkpoint: str, seeds: list[int], *, batch_size: int = 64, steps: int = 18,
                 device: str = "auto", trust_pickle: bool = False, format: str | None = None,
                 class_label: int | None = None, sampler: str = "heun",
                 config: SamplerConfig | None = None, net_batch="auto",
                 autocast: str | None = None, vae: str | None = None, conditioning=None) -> ModelSource:
    """Load `checkpoint` (validated now) => ImageSource of its samples for `seeds`.

    `conditioning`: sampling.conditioning.Conditioning (class rule, prompts, guidance, LoRA, ...).
    """
    from ambient_eval.models import load_model

    denoiser = load_model(checkpoint, format=format, trust_pickle=trust_pickle, device=device, vae=vae,
                          conditioning=conditioning)
    if class_label is None and conditioning is not None and conditioning.class_spec is not None:
        from ambient_eval.cli.conditioning_options import edm_class

        class_label = edm_class(conditioning.class_spec)
    cfg = config or SamplerConfig(sampler=sampler, steps=steps)
    return ModelSource(denoiser, seeds, cfg=cfg, batch_size=batch_size, device=device,
                       class_label=class_label, net_batch=net_batch, autocast=autocast)
