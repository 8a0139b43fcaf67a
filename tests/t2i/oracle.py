"""The reference: the diffusers pipeline called directly, one image per call, PIL output."""
from __future__ import annotations

import numpy as np
import torch


def diffusers_images(folder, kind: str, seeds, steps: int, prompts=None, classes=None, **kw) -> np.ndarray:
    """NHWC uint8 of pipe(..., generator=torch.Generator('cpu').manual_seed(s)).images[0] per seed."""
    import diffusers

    pipe = diffusers.DiffusionPipeline.from_pretrained(str(folder), use_safetensors=True,
                                                       local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    out = []
    for i, s in enumerate(seeds):
        cond = dict(class_labels=[classes[i]]) if kind == "dit" else dict(prompt=prompts[i])
        img = pipe(**cond, **kw, num_inference_steps=steps,
                   generator=torch.Generator("cpu").manual_seed(int(s))).images[0]   # PIL
        out.append(np.asarray(img))
    return np.stack(out)
