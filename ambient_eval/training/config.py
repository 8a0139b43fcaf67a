"""Training configuration: one frozen dataclass, every default on its own line."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ambient_eval.errors import AmbientError

METHODS = ("baseline", "ambient-omni", "noisy", "cep")
ARCHS = ("tiny", "small", "cifar")
SIGMA_POLICIES = ("sigma-first", "mask", "truncate")
AMBIENT_TARGETS = ("pixel-loop", "ambient-loss")
BATCH_ORDERS = ("draw", "walk")
CEP_NOISES = ("uniform", "gaussian")
CEP_SCALES = ("sqrt-dim", "none")
# Keys that may change between a run and its resumption (everything else must match).
RESUMABLE_CHANGES = ("steps", "checkpoint_every", "device", "compile")


@dataclass(frozen=True)
class TrainConfig:
    """What `ambient-eval train` does; recorded in every checkpoint."""

    method: str = "baseline"  # baseline | ambient-omni | noisy | cep
    arch: str = "small"  # U-Net size: tiny (CPU tests) | small (~2M params) | cifar (DDPM++ ~56M)
    resolution: int | None = None  # resize images to this side (pixels); None = native size
    cond: bool = False  # class-conditional (needs labels)
    steps: int = 2000  # optimiser steps in total (a resumed run continues to this count)
    batch: int = 64  # images per step (all ranks together)
    lr: float = 1e-3  # Adam learning rate after warm-up (EDM CIFAR-10: 1e-3)
    warmup_steps: int = 100  # linear LR warm-up (EDM: lr_rampup_kimg = 10000)
    ema_halflife_kimg: float = 10.0  # EMA half-life in thousands of images (EDM CIFAR-10: 500)
    ema_rampup: float = 0.05  # EMA half-life <= ema_rampup * images seen so far (EDM: 0.05)
    dropout: float | None = None  # override the architecture's dropout; None = preset
    P_mean: float = -1.2  # EDM: ln(sigma) ~ N(P_mean, P_std^2)
    P_std: float = 1.2  # EDM
    sigma_data: float = 0.5  # EDM
    s_max: float = 4.0  # Ambient-Omni: use a corrupted sample only at sigma_t > sigma_tn sqrt(s_max/(s_max-1))
    # batch sampling: "sigma-first" (official Ambient-Omni: draw sigma_t, then an image eligible at it; full
    # batches) | image-first ablations: "mask" (zero loss below the threshold) | "truncate" (sigma_t drawn above it)
    sigma_policy: str = "sigma-first"
    # ambient-omni, which official loop to follow (training/targets.py): "pixel-loop" (pixel-diffusion
    # training_loop.py: plain EDM loss on the corrupted image above its threshold; the paper's CIFAR-10 tables)
    # | "ambient-loss" (latent-diffusion loop: the annotation's sigma_tn enters the ambient loss)
    ambient_target: str = "pixel-loop"
    # sigma-first batch order: "draw" (independent draws with replacement: training/batches.py) | "walk" (the
    # official InfiniteSampler walk: persistent shuffled order, window swaps; training/walk.py)
    batch_order: str = "draw"
    consistency: float = 0.0  # weight of the Tweedie consistency loss below sigma_tn (Daras et al. 2024); 0 = off
    sigma_n: float | None = None  # noisy method: observation noise std in model space [-1, 1] units
    label_flip: float = 0.0  # flip this fraction of labels (seeded, fixed for the run) before training
    cep_gamma: float = 1.0  # CEP strength gamma (Chen et al. 2024; unconfirmed, a parameter)
    cep_noise: str = "uniform"  # CEP xi: uniform on [-1, 1] | standard gaussian
    cep_scale: str = "sqrt-dim"  # CEP: e + gamma/sqrt(d) xi ("sqrt-dim") or e + gamma xi ("none")
    seed: int = 0  # weights init, batches, noise: step k uses seeds derived from (seed, k, rank)
    checkpoint_every: int = 500  # native checkpoint + resumable state every K steps (and at the end)
    device: str = "auto"  # auto | cpu | cuda[:N]
    compile: bool = False  # torch.compile the network (GPU)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)

    def identity(self) -> dict:
        """The settings a resumed run must share with the run it continues."""
        return {k: v for k, v in asdict(self).items() if k not in RESUMABLE_CHANGES}

    def validate(self) -> None:
        """AmbientError naming the bad option."""
        if self.method not in METHODS:
            raise AmbientError(f"Unknown method '{self.method}'. Use one of: {', '.join(METHODS)}.")
        if self.arch not in ARCHS:
            raise AmbientError(f"Unknown --arch '{self.arch}'. Use one of: {', '.join(ARCHS)}.")
        if self.sigma_policy not in SIGMA_POLICIES:
            raise AmbientError(f"Unknown --sigma-policy '{self.sigma_policy}'. Use {', '.join(SIGMA_POLICIES)}.")
        if self.ambient_target not in AMBIENT_TARGETS or self.batch_order not in BATCH_ORDERS:
            raise AmbientError(f"Unknown --ambient-target {self.ambient_target!r} or --batch-order {self.batch_order!r}. "
                               f"Use {' | '.join(AMBIENT_TARGETS)} and {' | '.join(BATCH_ORDERS)}.")
        if self.batch_order == "walk" and self.sigma_policy != "sigma-first":
            raise AmbientError(f"--batch-order walk is the official sigma-first walk; --sigma-policy "
                               f"{self.sigma_policy} draws images first. Use --sigma-policy sigma-first or --batch-order draw.")
        if self.cep_noise not in CEP_NOISES or self.cep_scale not in CEP_SCALES:
            raise AmbientError(f"Unknown CEP setting noise={self.cep_noise!r} scale={self.cep_scale!r}. "
                               f"Use --cep-noise {'|'.join(CEP_NOISES)} and --cep-scale {'|'.join(CEP_SCALES)}.")
        for name, v, ok in (("--steps", self.steps, self.steps >= 1), ("--batch", self.batch, self.batch >= 1),
                            ("--lr", self.lr, self.lr > 0), ("--checkpoint-every", self.checkpoint_every,
                                                             self.checkpoint_every >= 1),
                            ("--ema", self.ema_halflife_kimg, self.ema_halflife_kimg >= 0),
                            ("--warmup", self.warmup_steps, self.warmup_steps >= 0),
                            ("--s-max", self.s_max, self.s_max > 1),
                            ("--consistency", self.consistency, self.consistency >= 0),
                            ("--label-flip", self.label_flip, 0 <= self.label_flip <= 1)):
            if not ok:
                raise AmbientError(f"{name} {v} is out of range. See `ambient-eval train --help`.")
        if self.consistency > 0 and self.method not in ("ambient-omni", "noisy"):
            raise AmbientError(f"--consistency acts below each sample's sigma_tn, so it needs --method ambient-omni "
                               f"or noisy (got {self.method}). Drop --consistency or change the method.")
        if self.method == "noisy" and not (self.sigma_n is None or self.sigma_n > 0):
            raise AmbientError(f"--sigma-n {self.sigma_n} must be positive (model-space units).")
        if self.method == "cep" and not self.cond:
            raise AmbientError("--method cep perturbs the class embedding, so it needs a class-conditional "
                               "model: add --cond (and data with labels).")
        if self.label_flip > 0 and not self.cond:
            raise AmbientError("--label-flip only makes sense for a class-conditional model: add --cond.")
