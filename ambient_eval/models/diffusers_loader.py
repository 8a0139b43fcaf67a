"""diffusers UNet2DModel + scheduler config => VPPrecond denoiser (epsilon / v / sample prediction).

Accepted layouts: DIR/{config.json, diffusion_pytorch_model.safetensors, scheduler_config.json}
(UNet and scheduler saved into one folder), DIR/unet/ + DIR/scheduler/ (pipeline layout, e.g. a
DDPMPipeline / DDIMPipeline / PNDMPipeline saved with save_pretrained: model_index.json), or
DIR/ (UNet) + DIR/scheduler/. Only safetensors weights are read (no unpickling).
The scheduler only supplies the training noise schedule (betas), the prediction type and, for ddim,
clip_sample / clip_sample_range (thresholding is refused); images are sampled with ambient-eval's own
heun / euler / ddim. Schedulers whose schedule is not a discrete
DDPM beta schedule (VE, flow matching, consistency, ...) are refused.
diffusers is an optional extra: pip install 'ambient-eval[diffusers]'.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models.precond import VPPrecond

WEIGHTS = "diffusion_pytorch_model.safetensors"
PIPELINES = ("DDPMPipeline", "DDIMPipeline", "PNDMPipeline")
SCHEDULERS = ("DDPMScheduler", "DDIMScheduler", "PNDMScheduler", "EulerDiscreteScheduler",
              "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler", "LMSDiscreteScheduler",
              "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler",
              "DEISMultistepScheduler")   # all defined by the same DDPM betas (beta_schedule / trained_betas)


_DDPM_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
              "prediction_type")


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


def _check_pipeline(path: Path) -> None:
    index = path / "model_index.json"
    if not index.is_file():
        return
    try:
        name = json.loads(index.read_text()).get("_class_name")
    except (OSError, ValueError) as e:
        raise AmbientError(f"Cannot read '{index}': {e}.") from e
    if name not in PIPELINES:
        raise AmbientError(f"'{path}' is a diffusers {name}; supported pipelines are {', '.join(PIPELINES)} "
                           "(pixel-space UNet2DModel + DDPM noise schedule) and DiTPipeline, "
                           "StableDiffusionPipeline, StableDiffusionXLPipeline, "
                           "LatentConsistencyModelPipeline (sampled by diffusers itself); other "
                           "pipelines are not supported.")


def _check_scheduler(cfg: dict, sched_file: Path) -> None:
    name = cfg.get("_class_name")
    if name is not None and name not in SCHEDULERS:
        raise AmbientError(f"'{sched_file}' is a {name}, whose noise schedule ambient-eval cannot use. "
                           f"Supported schedulers (same DDPM training schedule): {', '.join(SCHEDULERS)}. "
                           "If the model was trained with a DDPM schedule, save a DDPMScheduler config "
                           "with its betas next to the UNet.")
    if cfg.get("rescale_betas_zero_snr"):
        raise AmbientError(f"'{sched_file}' sets rescale_betas_zero_snr (infinite noise at the last "
                           "step); such schedules are not supported.")


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
    from ambient_eval.files.hashing import sha256_file

    path = Path(path)
    _check_pipeline(path)
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
    _check_scheduler(sched_cfg, sched_file)
    sched = DDPMScheduler.from_config({k: v for k, v in sched_cfg.items() if k in _DDPM_KEYS})
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
    # What diffusers' DDIMPipeline does with this scheduler config (DDIMScheduler.from_config: clip_sample
    # defaults to true, as DDPMScheduler saves it); used by --sampler ddim only.
    model.ddim_clip_x0 = float(sched_cfg.get("clip_sample_range", 1.0)) if sched_cfg.get("clip_sample", True) else None
    model.ddim_thresholding = bool(sched_cfg.get("thresholding", False))
    return model.eval().requires_grad_(False).to(device)
