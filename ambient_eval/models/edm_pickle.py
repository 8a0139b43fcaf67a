"""EDM / EDM2 / Ambient-Omni network pickles (network-snapshot-*.pkl holding {'ema': net, ...}).

Unpickling executes code stored in the file (EDM's `torch_utils.persistence` embeds the network's
Python source and imports it on load), so nothing is opened without trust_pickle=True.

When the user's environment has EDM's own `torch_utils` and `dnnlib` importable they do the work;
otherwise the stand-ins of ambient_eval.models.edm_compat (the protocol re-implemented, no EDM
code) are installed for the duration of the load. Only 'ema' (the network) and 'encoder' (EDM2's
latent/pixel encoder record) are used; the augment pipe, loss and configs may stay unloaded.
EDM2 latent models (a StabilityVAEEncoder record, or 4-channel nets without one) get a
LatentDecoder (ambient_eval.models.latent) that turns final latents into RGB pixels.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models.base import Denoiser
from ambient_eval.models.edm_compat import STAND_IN_MARK, Unloaded, edm_modules

REQUIRED_ATTRS = ("img_resolution", "img_channels", "label_dim")


class PickledDenoiser(Denoiser):
    """Wraps an unpickled net that already follows the EDM interface: net(x, sigma, class_labels)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__(img_resolution=net.img_resolution, img_channels=net.img_channels,
                         label_dim=net.label_dim, sigma_min=float(getattr(net, "sigma_min", 0.0)),
                         sigma_max=float(getattr(net, "sigma_max", float("inf"))))
        self.net = net

    def round_sigma(self, sigma):
        rs = getattr(self.net, "round_sigma", None)
        return torch.as_tensor(rs(torch.as_tensor(sigma)) if rs else sigma).cpu()

    def forward(self, x, sigma, class_labels=None):
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.reshape(1)
        elif sigma.numel() > 1 and bool((sigma == sigma[0]).all()):
            # One noise level for the batch: pass it once, as EDM's/EDM2's samplers do (a scalar).
            # The nets then embed sigma for 1 row and broadcast; embedding it per row runs the
            # embedding MLP as a batch-N GEMM, whose rounding can differ in the last bit and so
            # flip a pixel against EDM's generate.py (found by docs/verification-edm.md).
            sigma = sigma[:1]
        try:
            out = self.net(x, sigma, class_labels)
        except AttributeError as e:
            if STAND_IN_MARK not in str(e):
                raise
            raise AmbientError(f"The network's code calls {e}.") from e
        if not isinstance(out, torch.Tensor):
            raise AmbientError(f"The network ({type(self.net).__name__}) returned a {type(out).__name__}, "
                               "not a tensor: it is not a denoiser D(x, sigma, class_labels) (e.g. a "
                               "classifier snapshot). Pass the diffusion model's snapshot.")
        return out.to(torch.float32)


edm_compat_modules = edm_modules   # old name, kept for callers


def _unloaded_inside(obj, depth: int = 0) -> Unloaded | None:
    """First placeholder reachable from obj through module children and attributes (or None)."""
    if isinstance(obj, Unloaded):
        return obj
    if depth > 64:
        return None
    children = []
    if isinstance(obj, torch.nn.Module):
        children = list(obj._modules.values()) + [v for k, v in vars(obj).items() if k != "_modules"]
    elif isinstance(obj, (list, tuple)):
        children = list(obj)
    elif isinstance(obj, dict):
        children = list(obj.values())
    for child in children:
        found = _unloaded_inside(child, depth + 1)
        if found is not None:
            return found
    return None


def is_edm2(data, net) -> bool:
    """EDM2 snapshot: an 'encoder' entry (EDM2's training loop always saves one), or EDM2's
    Precond layout (a 'unet' plus the uncertainty head 'logvar_fourier')."""
    if isinstance(data, dict) and "encoder" in data:
        return True
    return hasattr(net, "unet") and hasattr(net, "logvar_fourier")


def _encoder_record(encoder) -> tuple[str | None, dict | None]:
    """EDM2 'encoder' entry (object or placeholder) => (class name, attributes)."""
    if encoder is None:
        return None, None
    if isinstance(encoder, Unloaded):
        return encoder.class_name, dict(encoder.state or {})
    return type(encoder).__name__, dict(vars(encoder))


def _is_latent(net, encoder_class: str | None, path: Path) -> bool:
    if encoder_class is None:
        return int(net.img_channels) == 4                  # EDM2 latents saved without a record
    if encoder_class in ("StabilityVAEEncoder", "StandardRGBEncoder"):
        return encoder_class == "StabilityVAEEncoder"
    raise AmbientError(f"'{path}' decodes its outputs with a {encoder_class!r}; ambient-eval knows EDM2's "
                       "StandardRGBEncoder (pixels) and StabilityVAEEncoder (Stable Diffusion VAE "
                       "latents) only. Export the model's images another way.")


def load_edm_pickle(path: Path, device: torch.device | str = "cpu", *,
                    trust_pickle: bool = False, vae=None) -> Denoiser:
    """network-snapshot-*.pkl => Denoiser; refuses (without opening the file) unless trusted.

    Latent models get `.decoder` (LatentDecoder); `vae` = directory of the AutoencoderKL weights.
    """
    from ambient_eval.files.hashing import sha256_file

    path = Path(path)
    if not trust_pickle:
        raise AmbientError(
            f"'{path}' is a pickle. Loading it executes code stored in the file, so it is refused by "
            "default. If you trust its source, pass --trust-pickle (Python: trust_pickle=True); "
            "otherwise convert it to a safe format first.")
    try:
        with edm_modules(), open(path, "rb") as f:
            data = pickle.load(f)  # noqa: S301 - explicit user opt-in above
    except AmbientError:
        raise
    except ModuleNotFoundError as e:
        raise AmbientError(f"Unpickling '{path}' needs the Python module '{e.name}', which is not "
                           "installed and has no stand-in in ambient-eval. Put the code the checkpoint "
                           "was trained with (e.g. the EDM / EDM2 / Ambient-Omni repository) on "
                           "PYTHONPATH and retry.") from e
    except Exception as e:  # noqa: BLE001 - any failure inside arbitrary unpickling
        raise AmbientError(f"Cannot unpickle '{path}': {type(e).__name__}: {e}. Check that it is a "
                           "complete EDM network-snapshot-*.pkl.") from e
    net = data.get("ema") if isinstance(data, dict) else data
    broken = _unloaded_inside(net)
    if broken is not None:
        raise AmbientError(f"The network in '{path}' ({broken.class_name}) cannot be rebuilt here: its "
                           f"code needs {broken.missing()}. Install that, or put the code the "
                           "checkpoint was trained with (EDM / EDM2 / Ambient-Omni repository) on "
                           "PYTHONPATH and retry.")
    if not isinstance(net, torch.nn.Module):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise AmbientError(f"'{path}' holds no network under 'ema' (found {keys}). Pass an EDM "
                           "network-snapshot-*.pkl.")
    missing = [a for a in REQUIRED_ATTRS if not hasattr(net, a)]
    if missing:
        raise AmbientError(f"The network in '{path}' ({type(net).__name__}) lacks {missing}; only "
                           "networks with EDM's interface net(x, sigma, class_labels) are supported.")
    model = PickledDenoiser(net)
    if is_edm2(data, net):   # sample as EDM2's generate_images does (ambient_eval.sampling.edm2_sampler)
        model.sampler_convention = "edm2"
    enc_class, enc_state = _encoder_record(data.get("encoder") if isinstance(data, dict) else None)
    if _is_latent(net, enc_class, path):
        from ambient_eval.models.latent import make_decoder

        model.decoder = make_decoder(enc_state, vae)
    model.weights_sha256 = sha256_file(path)
    model = model.eval().requires_grad_(False).to(device)
    _probe(model)
    return model


def _probe(model: PickledDenoiser) -> None:
    """One tiny network call at load time, so code problems surface before any output is written."""
    dev = next(iter(model.net.parameters()), torch.zeros(())).device
    r, c = model.img_resolution, model.img_channels
    labels = torch.zeros(1, model.label_dim, device=dev) if model.label_dim else None
    if labels is not None:
        labels[:, 0] = 1
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, c, r, r, device=dev), torch.ones(1, device=dev), labels)
    except AmbientError:
        raise
    except Exception as e:  # noqa: BLE001 - the pickle's own code failed
        raise AmbientError(f"The network ({type(model.net).__name__}) fails on a test call: "
                           f"{type(e).__name__}: {' '.join(str(e).split())[:300]}. Its code may need the "
                           "repository it was trained with on PYTHONPATH.") from e
    if tuple(out.shape) != (1, c, r, r):
        raise AmbientError(f"The network ({type(model.net).__name__}) returned shape {tuple(out.shape)} for "
                           f"a (1, {c}, {r}, {r}) input; a denoiser must return its input's shape.")
