"""Planted-copies data for the memorization tests: novel images plus exact and lightly modified
copies of training images, with the ground truth of which sample copies which training image."""
from __future__ import annotations

import io

import numpy as np


MODS = ("exact", "hflip", "shift1", "shift2", "jpeg75", "noise")
N_PER_MOD = 8          # planted copies per modification
N_NOVEL = 40           # generated images that copy nothing
N_TRAIN = 200


def smooth_images(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Seeded natural-looking images (NHWC uint8): 8x8 random colours, bilinear upsampling, mild noise."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g) * 255
    img = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    img = img + 3 * torch.randn(img.shape, generator=g)
    return img.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def modify(img: np.ndarray, mod: str, rng: np.random.Generator) -> np.ndarray:
    """One HWC uint8 image, lightly modified."""
    from PIL import Image

    if mod == "exact":
        return img.copy()
    if mod == "hflip":
        return img[:, ::-1].copy()
    if mod in ("shift1", "shift2"):  # translate by s px, edge rows/columns replicated
        s = int(mod[-1])
        out = np.roll(img, (s, s), axis=(0, 1))
        out[:s] = out[s]
        out[:, :s] = out[:, s:s + 1]
        return out
    if mod == "jpeg75":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=75)
        return np.asarray(Image.open(buf).convert("RGB"))
    if mod == "noise":  # Gaussian noise, sigma = 4 grey levels
        return np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    raise ValueError(mod)


def planted_set(size: int = 32, seed: int = 0):
    """(train NHWC, generated NHWC, truth): truth[i] = (mod or 'novel', training index or -1)."""
    rng = np.random.default_rng(seed)
    train = smooth_images(N_TRAIN, size, seed=seed + 1)
    novel = smooth_images(N_NOVEL, size, seed=seed + 2)
    src = rng.choice(N_TRAIN, len(MODS) * N_PER_MOD, replace=False)
    gen, truth = list(novel), [("novel", -1)] * N_NOVEL
    for j, mod in enumerate(MODS):
        for i in src[j * N_PER_MOD:(j + 1) * N_PER_MOD]:
            gen.append(modify(train[i], mod, rng))
            truth.append((mod, int(i)))
    order = rng.permutation(len(gen))  # planted copies are not at the front of the sample set
    return train, np.stack(gen)[order], [truth[o] for o in order]
