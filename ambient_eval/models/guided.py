"""EDM2 guidance with a second network (--gnet PKL --guidance W), as EDM2's generate_images.py.

Classifier-free guidance (Karras et al. 2024, EDM2 Sec. 5: the guiding net is the unconditional
model) and autoguidance (Karras et al. 2024, "Guiding a Diffusion Model with a Bad Version of
Itself", Eq. 1: the guiding net is a smaller / less-trained conditional model) share one formula:

    D_w(x; sigma, c) = D_0(x; sigma, c) + w * (D_1(x; sigma, c) - D_0(x; sigma, c))

with D_1 the main net and D_0 the guiding net. EDM2 evaluates it as `D_0.lerp(D_1, w)` on the
float32 outputs (torch's lerp, whose rounding differs from the written form, so it is used here
too), calls the guiding net with the main net's labels (an unconditional net ignores them) and
the same noise level, and with w = 1 never evaluates or loads the guiding net.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models.base import Denoiser

GNET_FLAG = "--gnet"
GUIDANCE_FLAG = "--guidance"
PASSED_THROUGH = ("sampler_convention", "decoder", "weights_sha256", "checkpoint_format",
                  "checkpoint_path")


class GuidedDenoiser(Denoiser):
    """D_w = D_0.lerp(D_1, w): main net D_1, guiding net D_0 (same interface and image shape)."""

    def __init__(self, net: Denoiser, gnet: Denoiser, w: float) -> None:
        super().__init__(img_resolution=net.img_resolution, img_channels=net.img_channels,
                         label_dim=net.label_dim, sigma_min=net.sigma_min, sigma_max=net.sigma_max)
        self.net, self.gnet, self.w = net, gnet, float(w)
        for name in PASSED_THROUGH:
            if hasattr(net, name):
                setattr(self, name, getattr(net, name))

    def round_sigma(self, sigma):
        return self.net.round_sigma(sigma)

    def forward(self, x, sigma, class_labels=None):  # NCHW float32, (N,)|scalar, NC|None => NCHW float32
        # Karras et al. 2024 (autoguidance) Eq. 1: D_w = D_0 + w (D_1 - D_0), evaluated as EDM2's
        # generate_images.py does: ref_Dx.lerp(Dx, w) on float32 outputs, both nets with the same labels
        D_1 = self.net(x, sigma, class_labels).to(torch.float32)
        D_0 = self.gnet(x, sigma, class_labels).to(torch.float32)
        return D_0.lerp(D_1, self.w)

    def guidance_provenance(self) -> dict:
        """Recorded with every output and in the samples' fingerprint (they determine the pixels)."""
        return {"guidance": self.w, "gnet_sha256": getattr(self.gnet, "weights_sha256", None),
                "gnet": getattr(self.gnet, "checkpoint_path", None),
                "gnet_label_dim": self.gnet.label_dim,
                "guidance_rule": "EDM2 generate_images: gnet(x, t, labels).lerp(net(x, t, labels), W), "
                                 "float32"}


def guidance_info(denoiser) -> dict:
    """Guidance settings of a (possibly guided) denoiser; {} when unguided."""
    return denoiser.guidance_provenance() if isinstance(denoiser, GuidedDenoiser) else {}


def guidance_note(denoiser) -> str:
    """', guidance W, gnet NAME' for sample descriptions; '' when unguided."""
    if not isinstance(denoiser, GuidedDenoiser):
        return ""
    return f", guidance {denoiser.w:g}, gnet {Path(str(guidance_info(denoiser)['gnet'])).name}"


def non_pipeline_flags(cond, fmt: str, path: Path) -> list[str]:
    """Validate --gnet / --guidance for a non-pipeline checkpoint => pipeline-only flags left over."""
    gnet, w = cond.gnet, cond.guidance
    if gnet is not None and fmt != "edm-pickle":
        raise AmbientError(f"{GNET_FLAG} guides EDM2 network snapshots (.pkl); '{path}' is a {fmt} "
                           f"checkpoint. Drop {GNET_FLAG}.")
    if fmt == "edm-pickle":
        if gnet is not None and w is None:
            raise AmbientError(f"{GNET_FLAG} was given without {GUIDANCE_FLAG}: pass the guidance "
                               f"weight W (e.g. {GUIDANCE_FLAG} 1.4; W = 1 is no guidance, as EDM2's "
                               f"generate_images.py), or drop {GNET_FLAG}.")
        if gnet is None and w is not None and w != 1:
            raise AmbientError(f"{GUIDANCE_FLAG} {w} on an EDM2 snapshot needs the guiding network: "
                               f"pass {GNET_FLAG} PKL (the unconditional net for classifier-free "
                               "guidance, or a smaller / less-trained net for autoguidance, as EDM2's "
                               f"presets), or drop {GUIDANCE_FLAG}.")
        return [f for f in cond.pipeline_only if f != GUIDANCE_FLAG]
    return cond.pipeline_only


def apply_guidance(model: Denoiser, cond, *, device, trust_pickle: bool, vae=None) -> Denoiser:
    """Main EDM2 network => GuidedDenoiser with cond.gnet (unchanged when W is None or 1)."""
    if cond is None or cond.gnet is None or cond.guidance in (None, 1):
        return model                              # EDM2: W = 1 drops the guiding net unloaded
    from ambient_eval.models.edm_pickle import load_edm_pickle
    from ambient_eval.sampling.edm2_sampler import EDM2, convention

    if convention(model) != EDM2:
        raise AmbientError(f"{GNET_FLAG} / {GUIDANCE_FLAG} guide EDM2 snapshots (EDM2's "
                           "generate_images.py); this is an EDM network snapshot, whose generate.py "
                           f"has no guidance. Drop {GNET_FLAG} and {GUIDANCE_FLAG}.")
    p = Path(cond.gnet)
    if not p.is_file():
        raise AmbientError(f"Guiding network '{p}' ({GNET_FLAG}) does not exist. Check the path; it "
                           "is an EDM2 network-snapshot .pkl.")
    gnet = load_edm_pickle(p, device, trust_pickle=trust_pickle, vae=vae)
    gnet.checkpoint_path = str(p)
    mine = (model.img_channels, model.img_resolution)
    theirs = (gnet.img_channels, gnet.img_resolution)
    if mine != theirs:
        raise AmbientError(f"Guiding network '{p}' works on {theirs[0]}x{theirs[1]}x{theirs[1]} "
                           f"inputs, the main network on {mine[0]}x{mine[1]}x{mine[1]}: guidance needs "
                           "two nets of one space. Pass a guiding net trained on the same data "
                           "(pixels or latents, same resolution).")
    if gnet.label_dim not in (0, model.label_dim):
        raise AmbientError(f"Guiding network '{p}' has {gnet.label_dim} classes, the main network "
                           f"{model.label_dim}. Pass the unconditional net (classifier-free guidance) "
                           "or a net with the same classes (autoguidance).")
    return GuidedDenoiser(model, gnet, cond.guidance)
