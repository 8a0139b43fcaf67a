"""EDM2 latent models: final latents => pixels with Stable Diffusion's VAE (Karras et al. 2024).

EDM2 trains in the latent space of `stabilityai/sd-vae-ft-mse` (diffusers AutoencoderKL). Its
encoder record (StabilityVAEEncoder, stored in the snapshot under 'encoder') whitens the VAE's raw
latents per channel: final = raw * scale + bias with scale = final_std / raw_std and
bias = final_mean - raw_mean * scale (float32; defaults raw_mean (5.81, 3.25, 0.12, -2.15),
raw_std (4.17, 4.62, 3.71, 3.28), final_mean 0, final_std 0.5). Decoding inverts this exactly,
raw = (final - bias) / scale, runs vae.decode(raw).sample (no extra 0.18215 factor: it is folded
into raw_std) in chunks of 4 (EDM2 generate_images' encoder batch), and maps the VAE's [0, 1]
output to uint8 as EDM2 does: clamp(0, 1) * 255, truncated.

The VAE weights are looked up, in order: --vae PATH, $AMBIENT_EVAL_VAE, the Hugging Face cache
(HF_HOME / HF_HUB_CACHE), EDM2's own cache ($DNNLIB_CACHE_DIR or ~/.cache/dnnlib, subfolder
diffusers); then, on a connected machine, downloaded by huggingface_hub into its cache (honouring
HF_ENDPOINT; never with --offline or in CI: ambient_eval/fetch/hf.py). Only safetensors weights are read.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ambient_eval.errors import AmbientError

VAE_NAME = "stabilityai/sd-vae-ft-mse"
VAE_ENV = "AMBIENT_EVAL_VAE"
WEIGHTS = "diffusion_pytorch_model.safetensors"
RAW_MEAN = (5.81, 3.25, 0.12, -2.15)
RAW_STD = (4.17, 4.62, 3.71, 3.28)
FINAL_MEAN, FINAL_STD = 0.0, 0.5
DECODE_BATCH = 4


def whitening(state: dict | None) -> tuple[str, np.ndarray, np.ndarray]:
    """Encoder record (its attributes) => (vae_name, scale float32 (C,), bias float32 (C,))."""
    state = dict(state or {})
    name = str(state.get("vae_name") or VAE_NAME)
    if state.get("scale") is not None and state.get("bias") is not None:
        scale, bias = state["scale"], state["bias"]
    else:
        scale = np.float32(state.get("final_std", FINAL_STD)) / np.float32(state.get("raw_std", RAW_STD))
        raw_mean = np.float32(state.get("raw_mean", RAW_MEAN))
        bias = np.float32(state.get("final_mean", FINAL_MEAN)) - raw_mean * scale
    as_row = lambda v: np.asarray(v, dtype=np.float32).reshape(-1)  # noqa: E731
    return name, as_row(scale), as_row(bias)


def _weights_dir(path: Path) -> Path | None:
    for d in (path, path / "vae"):
        if (d / WEIGHTS).is_file() and (d / "config.json").is_file():
            return d
    return None


def _cache_dirs() -> list[str | None]:
    dnnlib_root = os.environ.get("DNNLIB_CACHE_DIR") or str(Path.home() / ".cache" / "dnnlib")
    return [None, str(Path(dnnlib_root) / "diffusers")]


def find_vae(vae: str | os.PathLike | None, vae_name: str = VAE_NAME) -> Path:
    """Directory holding the VAE's config.json + safetensors weights (downloaded on first use when allowed)."""
    explicit = vae if vae is not None else os.environ.get(VAE_ENV) or None
    if explicit is not None:
        d = _weights_dir(Path(explicit))
        if d is None:
            how = "--vae" if vae is not None else f"${VAE_ENV}"
            raise AmbientError(
                f"{how} '{explicit}' holds no AutoencoderKL: expected config.json and {WEIGHTS} in it "
                f"(or in its vae/ subfolder). Save one with AutoencoderKL.save_pretrained(DIR), or "
                f"download it once: huggingface-cli download {vae_name} config.json {WEIGHTS} "
                "--local-dir DIR.")
        return d
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None:
        for cache_dir in _cache_dirs():
            for filename in (WEIGHTS, f"vae/{WEIGHTS}"):       # a VAE repo, or a pipeline's vae/
                hit = try_to_load_from_cache(vae_name, filename, cache_dir=cache_dir)
                if isinstance(hit, str) and _weights_dir(Path(hit).parent) is not None:
                    return Path(hit).parent
    from ambient_eval.fetch.hf import fetch_hub_files

    return fetch_hub_files(vae_name, ["config.json", WEIGHTS], lambda reason: (
        f"This is an EDM2 latent model: its images are decoded with the VAE '{vae_name}', whose "
        f"weights ({WEIGHTS} + config.json) were not found (looked at --vae, ${VAE_ENV}, the Hugging "
        f"Face cache and ~/.cache/dnnlib/diffusers) and nothing was downloaded: {reason}. Get them once with "
        f"`huggingface-cli download {vae_name} config.json {WEIGHTS} --local-dir DIR` and pass --vae DIR."))


def load_vae(directory: Path):
    """Directory => diffusers AutoencoderKL in eval mode (safetensors only, local files only)."""
    try:
        from diffusers import AutoencoderKL
    except ImportError as e:
        raise AmbientError("Decoding EDM2 latent models needs the optional 'diffusers' package: "
                           "pip install 'ambient-eval[diffusers]'.") from e
    try:
        vae = AutoencoderKL.from_pretrained(str(directory), use_safetensors=True, local_files_only=True,
                                            low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise AmbientError(f"Cannot load the AutoencoderKL in '{directory}': "
                           f"{' '.join(str(e).split())[:300]}. The folder must hold a diffusers "
                           "AutoencoderKL (config.json + safetensors weights).") from e
    return vae.eval().requires_grad_(False)


class LatentDecoder(torch.nn.Module):
    """NCHW final latents (float) => NCHW uint8 RGB pixels, as EDM2's StabilityVAEEncoder.decode."""

    def __init__(self, vae, scale, bias, *, vae_name: str, vae_dir: str) -> None:
        super().__init__()
        self.vae = vae
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.vae_name, self.vae_dir = vae_name, vae_dir
        self.weights_sha256: str | None = None
        self.upscale = 2 ** (len(vae.config.block_out_channels) - 1)

    def describe(self) -> dict:
        return {"name": self.vae_name, "sha256": self.weights_sha256,
                "scale": self.scale.flatten().tolist(), "bias": self.bias.flatten().tolist(),
                "decode": "vae.decode((x - bias) / scale).clamp(0, 1) * 255 -> uint8 (EDM2)"}

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        x = (x - self.bias) / self.scale
        out = []
        for chunk in x.split(DECODE_BATCH):
            n = chunk.shape[0]
            if chunk.device.type == "cpu" and n < DECODE_BATCH:   # fixed shape => batch-independent bits
                chunk = torch.cat([chunk, chunk.new_zeros((DECODE_BATCH - n,) + chunk.shape[1:])])
            out.append(self.vae.decode(chunk).sample[:n])
        return torch.cat(out).clamp(0, 1).mul(255).to(torch.uint8)


def make_decoder(encoder_state: dict | None, vae=None) -> LatentDecoder:
    """Encoder record + VAE location => LatentDecoder (exit 2 naming the file when weights are absent)."""
    from ambient_eval.files.hashing import sha256_file

    name, scale, bias = whitening(encoder_state)
    directory = find_vae(vae, name)
    dec = LatentDecoder(load_vae(directory), scale, bias, vae_name=name, vae_dir=str(directory))
    if dec.vae.config.latent_channels != len(scale):
        raise AmbientError(f"The VAE in '{directory}' has {dec.vae.config.latent_channels} latent channels "
                           f"but the model's encoder record has {len(scale)}. Use {name}.")
    dec.weights_sha256 = sha256_file(directory / WEIGHTS)
    return dec
