"""Models: the Denoiser interface (EDM convention), preconditioning, our U-Net, checkpoint loaders."""
from __future__ import annotations

from ambient_eval.models.base import Denoiser
from ambient_eval.models.load import FORMATS, detect_format, load_model
from ambient_eval.models.native import build_native_model, native_config, save_native
from ambient_eval.models.precond import EDMPrecond, VEPrecond, VPPrecond
from ambient_eval.models.unet import UNet, UNetConfig

__all__ = ["Denoiser", "EDMPrecond", "VEPrecond", "VPPrecond", "UNet", "UNetConfig",
           "build_native_model", "native_config", "save_native", "load_model", "detect_format",
           "FORMATS"]
