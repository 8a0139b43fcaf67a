"""diffusers UNet2DModel + scheduler config => VPPrecond denoiser (epsilon / v / sample prediction).

Accepted layouts: DIR/{config.json, diffusion_pytorch_model.safetensors, scheduler_config.json}
(UNet and scheduler saved into one folder), DIR/unet/ + DIR/scheduler/ (pipeline layout), or
DIR/ (UNet) + DIR/scheduler/. Only safetensors weights are read (no unpickling).
diffusers is an optional extra: pip install 'ambient-eval[diffusers]'.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models.precond import VPPrecond

WEIGHTS = "diffusion_pytorch_model.safetensors"


class DiffusersUNet(torch.nn.Module):
    """Adapter: net(x_in, t, one-hot labels) => UNet2DModel(...).sample (first C channels)."""

    def __init__(self, unet, img_channels: int) -> None:
        super().__init__()
        self.unet = unet
        self.img_channels = img_channels

    def forward(self, x, t, class_labels=None):
        idx = None if class_labels is None else class_labels.argmax(dim=1)
        out = self.unet(x, t, class_labels=idx).sample
        return out[:, :self.img_channels]  # learned-variance models output 2C channels


def _find(path: Path) -> tuple[Path, Path]:
    unet_dir = path / "unet" if (path / "unet" / "config.json").is_file() else path
    for cand in (path / "scheduler" / "scheduler_config.json", path / "scheduler_config.json",
                 unet_dir / "scheduler_config.json"):
        if cand.is_file():
            return unet_dir, cand
    raise AmbientError(
        f"diffusers checkpoint '{path}' has no scheduler config (looked for scheduler/"
        "scheduler_config.json and scheduler_config.json). It is needed for the noise schedule and "
        "prediction type: save it with scheduler.save_pretrained(...) next to the UNet.")


def load_diffusers(path: Path, device: torch.device | str = "cpu") -> VPPrecond:
    """diffusers directory => VPPrecond in eval mode, weights_sha256 = sha256 of the weights file."""
    try:
        from diffusers import DDPMScheduler, UNet2DModel
    except ImportError as e:
        raise AmbientError("Loading diffusers checkpoints needs the optional 'diffusers' package: "
                           "pip install 'ambient-eval[diffusers]'.") from e
    from ambient_eval.hashing import sha256_file

    path = Path(path)
    unet_dir, sched_file = _find(path)
    try:
        unet_cfg = json.loads((unet_dir / "config.json").read_text())
        sched_cfg = json.loads(sched_file.read_text())
    except (OSError, ValueError) as e:
        raise AmbientError(f"Cannot read the diffusers configs in '{path}': {e}.") from e
    if unet_cfg.get("_class_name") != "UNet2DModel":
        raise AmbientError(f"'{unet_dir / 'config.json'}' describes a {unet_cfg.get('_class_name')!r}; "
                           "only UNet2DModel (pixel-space DDPM) checkpoints are supported.")
    weights = unet_dir / WEIGHTS
    if not weights.is_file():
        raise AmbientError(f"'{unet_dir}' has no {WEIGHTS}. Only safetensors weights are loaded; "
                           "re-save with unet.save_pretrained(dir, safe_serialization=True).")
    try:
        unet = UNet2DModel.from_pretrained(str(unet_dir), use_safetensors=True, local_files_only=True,
                                           low_cpu_mem_usage=False)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise AmbientError(f"Cannot load the UNet2DModel in '{unet_dir}': {' '.join(str(e).split())[:400]}. "
                           "The weights do not match its config.json or the file is damaged.") from e
    sched = DDPMScheduler.from_config(sched_cfg)
    prediction = sched_cfg.get("prediction_type", "epsilon")
    if prediction not in ("epsilon", "v_prediction", "sample"):
        raise AmbientError(f"Unsupported prediction_type {prediction!r} in '{sched_file}'. "
                           "Supported: epsilon, v_prediction, sample.")
    size = unet.config.sample_size
    size = size if isinstance(size, int) else int(size[0])
    channels = int(unet.config.in_channels)
    label_dim = int(unet.config.num_class_embeds or 0)
    model = VPPrecond(DiffusersUNet(unet, channels), sched.alphas_cumprod.to(torch.float64).numpy(),
                      img_resolution=size, img_channels=channels, label_dim=label_dim,
                      prediction_type=prediction)
    model.weights_sha256 = sha256_file(weights)
    return model.eval().requires_grad_(False).to(device)
