"""What `ambient-eval demo` does: one frozen dataclass per preset (full / --quick), every default
on its own line. Everything here is recorded in DIR/demo.json and in the report header."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

# The four models, in report order: (label, training data, method, seed offset).
MODELS = (
    ("clean-A", "clean", "baseline", 0),     # the small clean subset only
    ("clean-B", "clean", "baseline", 1),     # same data, another seed (reproducibility pair)
    ("naive", "all", "baseline", 0),         # clean + corrupted, corruption ignored
    ("ambient", "all", "ambient-omni", 0),   # clean + corrupted, Ambient-Omni sigma_tn
)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the offline demo; `quick()` shrinks them for tests."""

    data: str = "builtin:digits-16:train"  # training pool (built in: scikit-learn digits at 16 px)
    heldout: str = "builtin:digits-16:test"  # held-out clean images: the FID/KID reference
    n_train: int | None = None  # use at most this many pool images (None = all 1500)
    clean_fraction: float = 0.1  # fraction of the pool kept clean; the rest is corrupted
    corruption: str = "blur"  # data/corruptions.py kind
    level: float = 1.5  # Gaussian blur sigma_B in pixels (strong at 16 px: strokes are ~2 px)
    annotate: str = "classifier"  # Ambient-Omni sigma_tn: "classifier" (annotate.py) | "fixed"
    fixed_sigma: float = 0.5  # sigma_tn of every corrupted image when annotate == "fixed" (model space)
    classifier_steps: int = 200  # annotation classifier optimisation steps
    annotate_grid: int = 16  # sigma grid points of the annotation (annotate.py default: 32)
    annotate_draws: int = 2  # noise draws per (image, sigma) (annotate.py default: 4)
    arch: str = "tiny"  # training/config.py ARCHS: tiny U-Net (~50k parameters) for 2 CPU cores
    steps: int = 300  # optimiser steps per model (equal budget for every model)
    batch: int = 64  # images per step
    lr: float = 2e-3  # Adam learning rate
    warmup_steps: int = 50  # linear learning-rate warm-up
    ema: float = 0.5  # EMA half-life in thousands of images
    pretrained: bool = True  # use the shipped checkpoints (demo/checkpoints) when they match; False = train
    leakage_steps: int = 150  # corruption-leakage classifier steps (demo/leakage.py; 0 = skip the section)
    leakage_width: int = 16  # channels of its first conv (annotate.py default: 32)
    n_samples: int = 256  # samples per model, seeds 0..n_samples-1 (shared noise across models)
    sampler_steps: int = 12  # EDM Heun steps (NFE = 2 * steps - 1)
    fid_features: str = "pixel-8"  # no-download features for FD/KID/precision/recall (8x8 pixels, 192-d)
    memorization_embed: str = "pixel-16"  # no-download embedding for memorization/RP (centred pixels)
    n_boot: int = 200  # bootstrap resamples for every confidence interval
    grid_seeds: int = 12  # seeds shown side by side in the report
    seed: int = 0  # data split, corruption and training seeds (model seeds are seed + offset)
    device: str = "auto"  # auto | cpu | cuda[:N]
    cpu_threads: int = 1  # torch threads on CPU: ~50k-parameter nets gain nothing from intra-op threads
    real_features: bool = True  # also use Inception / DINOv2 / SSCD when official weights are local

    @classmethod
    def quick(cls, **kw) -> "DemoSettings":
        """A < 1 minute version (tests): fewer images, steps and samples; fixed sigma_tn."""
        return replace(cls(n_train=200, annotate="fixed", steps=20, batch=32, warmup_steps=5, n_samples=32,
                           sampler_steps=4, n_boot=50, grid_seeds=6, pretrained=False, leakage_steps=30), **kw)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)
