"""generate(): seeds => uint8 images, batch-size and process-count independent (shared noise)."""
from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import torch

from ambient_eval.runtime import precision
from ambient_eval.errors import AmbientError
from ambient_eval.runtime.oom import oom_guard
from ambient_eval.models.base import one_hot
from ambient_eval.sampling.edm2_sampler import EDM2, convention, edm2_sigmas, sample_edm2
from ambient_eval.sampling.noise import NOISE_SCHEME, SeedNoise, seed_labels
from ambient_eval.sampling.samplers import SamplerConfig, ddim_sigmas, edm_sigmas, sample

# CPU convolution / GEMM kernels pick their algorithm by batch shape, so an image's float result
# (and, rarely, its uint8 value) would depend on --batch. Evaluating the network in fixed-size,
# zero-padded chunks keeps every image bit-identical across batch sizes, batch composition and
# process counts on CPU (checked by tests/sampling/test_invariance.py). GPUs use the full batch.
CPU_NET_BATCH = 8
AUTOCAST = (None, "bf16", "tf32")


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """NCHW float model space [-1, 1] => NCHW uint8, EDM convention (x*127.5 + 128, clip, floor)."""
    return (x * 127.5 + 128).clip(0, 255).to(torch.uint8)


class NetCall:
    """Calls the denoiser in fixed-size padded chunks (net_batch) under an optional autocast."""

    def __init__(self, denoiser, net_batch: int | None, autocast: str | None) -> None:
        self.denoiser, self.net_batch, self.autocast = denoiser, net_batch, autocast

    def round_sigma(self, sigma):
        return self.denoiser.round_sigma(sigma)

    def _ctx(self, device: torch.device):
        if self.autocast == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        if self.autocast == "tf32":
            return precision.tf32()
        return contextlib.nullcontext()

    def __call__(self, x, sigma, labels):  # NCHW float32, (N,) float32, NC|None => NCHW float32
        size = x.shape[0] if self.net_batch is None else min(self.net_batch, x.shape[0])
        with oom_guard(f"running the network on {size} images of {tuple(x.shape[1:])} at once",
                       "Lower --net-batch (e.g. 8) or --batch, or sample with --device cpu."), \
                torch.no_grad(), self._ctx(x.device):
            nb = self.net_batch
            if nb is None or x.shape[0] == nb:
                return self.denoiser(x, sigma, labels).to(torch.float32)
            out = []
            for s in range(0, x.shape[0], nb):
                xs, ss = x[s:s + nb], sigma[s:s + nb]
                ls = None if labels is None else labels[s:s + nb]
                n = xs.shape[0]
                if n < nb:  # zero-pad to the fixed shape; padded rows are discarded
                    xs = torch.cat([xs, xs.new_zeros((nb - n,) + xs.shape[1:])])
                    ss = torch.cat([ss, ss[:1].expand(nb - n)])
                    ls = None if ls is None else torch.cat([ls, ls.new_zeros((nb - n,) + ls.shape[1:])])
                out.append(self.denoiser(xs, ss, ls)[:n].to(torch.float32))
            return torch.cat(out)


def resolve_labels(denoiser, seeds: Sequence[int], class_labels=None) -> np.ndarray | None:
    """None / 'random' => seed-determined labels (conditional models) | int => that class |
    'balanced' => seed s gets s mod label_dim | per-seed ints. Pipelines: their own class rule."""
    if hasattr(denoiser, "labels_for"):
        return denoiser.labels_for(seeds)
    if isinstance(class_labels, str):
        class_labels = _class_mode(denoiser, seeds, class_labels)
    if denoiser.label_dim == 0:
        if class_labels is not None:
            raise AmbientError(f"--class {class_labels} was given, but the model is unconditional "
                               "(label_dim 0). Drop --class.")
        return None
    if class_labels is None:
        return seed_labels(seeds, denoiser.label_dim, latent_shape(denoiser))
    labels = np.broadcast_to(np.asarray(class_labels, dtype=np.int64), (len(seeds),)).copy()
    bad = labels[(labels < 0) | (labels >= denoiser.label_dim)]
    if bad.size:
        raise AmbientError(f"Class {int(bad[0])} is out of range: the model has {denoiser.label_dim} "
                           f"classes (0-{denoiser.label_dim - 1}).")
    return labels


def _class_mode(denoiser, seeds, mode: str):
    """'random' => None (EDM's seed-determined rule); 'balanced' => seed mod label_dim; 'N' => N."""
    from ambient_eval.sampling.conditioning import Conditioning, parse_class

    spec = parse_class(mode)
    if spec == "balanced" and denoiser.label_dim:
        Conditioning(class_spec="balanced").check_seeds(seeds, denoiser.label_dim)
        return np.asarray(seeds, dtype=np.int64) % denoiser.label_dim
    return None if spec in ("random", "balanced") else spec


def latent_shape(denoiser) -> list[int]:
    """Per-image shape of the initial noise (model space: latents for EDM2 latent models)."""
    return [denoiser.img_channels, denoiser.img_resolution, denoiser.img_resolution]


def decode_images(denoiser, x: torch.Tensor) -> torch.Tensor:
    """Sampler output (model space) => NCHW uint8: EDM's to_uint8, or the latent model's VAE decoder."""
    decoder = getattr(denoiser, "decoder", None)
    return to_uint8(x) if decoder is None else decoder(x)


def image_resolution(denoiser) -> int:
    """Height = width of the output images (the VAE upsamples latent models' outputs)."""
    decoder = getattr(denoiser, "decoder", None)
    return denoiser.img_resolution * (1 if decoder is None else decoder.upscale)


def provenance(denoiser, class_label) -> dict:
    """Noise scheme, label rule and decoder: recorded with every output (they determine the pixels)."""
    if hasattr(denoiser, "provenance"):                 # diffusers conditional pipelines
        return {"sampler": None, **denoiser.provenance()}
    decoder = getattr(denoiser, "decoder", None)
    labels = None if not denoiser.label_dim else (
        "seed s: class s mod label_dim (balanced)" if class_label == "balanced"
        else f"class {class_label} for every seed" if class_label not in (None, "random")
        else "per seed: randint(label_dim) after the latents (EDM generate.py)")
    scheme = NOISE_SCHEME if convention(denoiser) != EDM2 else (
        NOISE_SCHEME.replace("churn randn float64 every step", "churn randn float32 on churn steps only")
        + "; EDM2 float32 sampler")
    from ambient_eval.models.guided import guidance_info

    return {"noise": scheme, "labels": labels,
            "vae": None if decoder is None else decoder.describe(), **guidance_info(denoiser)}


def resolve_net_batch(net_batch, device: torch.device) -> int | None:
    if net_batch == "auto":
        return CPU_NET_BATCH if device.type == "cpu" else None
    return None if net_batch in (None, 0) else int(net_batch)


def check_generation(denoiser, cfg: SamplerConfig, *, batch_size: int = 64, device="auto",
                     autocast: str | None = None) -> tuple[torch.device, torch.Tensor]:
    """Validate sampler/model/device choices before any work => (device, float64 sigmas)."""
    from ambient_eval.runtime.device import resolve_device, with_policy

    if batch_size < 1:
        raise AmbientError(f"--batch must be at least 1, got {batch_size}.")
    if autocast not in AUTOCAST:
        raise AmbientError(f"Unknown autocast '{autocast}'. Use bf16 or tf32 (GPU only), or leave it off.")
    dev = resolve_device(device) if isinstance(device, str) else with_policy(torch.device(device))
    if hasattr(denoiser, "generate_images"):           # diffusers conditional pipeline: it samples
        if autocast:
            raise AmbientError("--autocast does not apply to diffusers pipelines (they run in the "
                               "dtype they were saved in). Drop --autocast.")
        return dev, None
    if autocast and dev.type != "cuda":
        raise AmbientError(f"--autocast {autocast} needs a CUDA device; sampling on {dev} is float32 "
                           "already. Drop --autocast.")
    if convention(denoiser) == EDM2 and cfg.sampler == "ddim":
        raise AmbientError("The ddim sampler needs a discrete-time VP model; this EDM2 network samples "
                           "with --sampler heun (EDM2's default) or euler.")
    if cfg.sampler == "ddim":
        sigmas = ddim_sigmas(cfg, denoiser)
    else:
        sigmas = edm2_sigmas(cfg) if convention(denoiser) == EDM2 else edm_sigmas(cfg, denoiser)
    return dev, sigmas


def generate(denoiser, seeds: Sequence[int], *, batch_size: int = 64, steps: int = 18,
             sampler: str = "heun", class_labels=None, device: str = "auto",
             config: SamplerConfig | None = None, net_batch: int | str | None = "auto",
             autocast: str | None = None) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Yield (seeds, NCHW uint8 on CPU, model's channel count) batches in seed-list order.

    `config` overrides steps/sampler when given. Labels: see resolve_labels.
    """
    cfg = (config or SamplerConfig(sampler=sampler, steps=steps)).validate()
    dev, sigmas = check_generation(denoiser, cfg, batch_size=batch_size, device=device,
                                   autocast=autocast)
    denoiser = denoiser.to(dev).eval()
    if hasattr(denoiser, "generate_images"):           # diffusers conditional pipeline
        denoiser.check_seeds(seeds)
        yield from denoiser.generate_images(seeds, batch_size, dev)
        return
    # Seed-determined classes are drawn below, in EDM's order; given ones are validated here.
    labels_all = None if class_labels is None else resolve_labels(denoiser, seeds, class_labels)
    D = NetCall(denoiser, resolve_net_batch(net_batch, dev), autocast)
    shape = latent_shape(denoiser)
    seeds = [int(s) for s in seeds]
    for start in range(0, len(seeds), batch_size):
        batch = seeds[start:start + batch_size]
        noise = SeedNoise(batch, dev)
        latents = noise.randn(shape)                                # NCHW float32 N(0, I)
        labels = None
        if denoiser.label_dim:                                      # EDM: class drawn after latents
            drawn = noise.randint(denoiser.label_dim)
            chosen = drawn if class_labels is None else labels_all[start:start + len(batch)]
            labels = one_hot(chosen, denoiser.label_dim, device=dev)
        sampler = sample_edm2 if convention(denoiser) == EDM2 else sample
        x = sampler(D, latents, labels, cfg, noise, sigmas)         # NCHW model space
        with torch.no_grad():
            images = decode_images(denoiser, x).cpu()
        yield batch, images
