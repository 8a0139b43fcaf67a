"""EDM / EDM2 / Ambient-Omni network pickles (network-snapshot-*.pkl holding {'ema': net, ...}).

Unpickling executes code stored in the file (EDM's `torch_utils.persistence` embeds the network's
Python source and imports it on load), so nothing is opened without trust_pickle=True.

EDM pickles reference `torch_utils.persistence._reconstruct_persistent_obj(meta)`, meta =
{version, type: 'class', module_src, class_name, state}. When the user's environment has EDM's
own `torch_utils` importable we let it do the work; otherwise a small stand-in written here
(EDM's protocol re-implemented, no EDM code) is installed in sys.modules for the duration of the
load: it imports `module_src` as a fresh module and rebuilds the object from `state`.
"""
from __future__ import annotations

import contextlib
import pickle
import sys
import types
import uuid
from pathlib import Path

import torch

from ambient_eval.errors import AmbientError
from ambient_eval.models.base import Denoiser

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
            sigma = sigma.expand(x.shape[0])
        return self.net(x, sigma, class_labels).to(torch.float32)


class _EasyDict(dict):
    """dnnlib.EasyDict stand-in: a dict with attribute access."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def __setattr__(self, name, value):
        self[name] = value


def _persistent_class(cls):
    # Inside a trusted load the decorator only needs to return a usable class.
    return cls


def _reconstruct_persistent_obj(meta):
    """Rebuild an object pickled by EDM's persistence protocol (import module_src, set state)."""
    meta = dict(meta)
    if meta.get("type") != "class":
        raise AmbientError(f"Unsupported persistent object type {meta.get('type')!r} in the pickle.")
    module = types.ModuleType(f"_ambient_imported_{uuid.uuid4().hex}")
    sys.modules[module.__name__] = module
    exec(compile(meta["module_src"], f"<pickled {meta['class_name']}>", "exec"), module.__dict__)  # noqa: S102
    cls = module.__dict__[meta["class_name"]]
    obj = cls.__new__(cls)
    state = meta.get("state")
    if callable(getattr(obj, "__setstate__", None)):
        obj.__setstate__(state)
    else:
        obj.__dict__.update(state)
    return obj


@contextlib.contextmanager
def edm_compat_modules():
    """Provide torch_utils.persistence / dnnlib stand-ins unless the real ones are importable."""
    added = []
    try:
        import torch_utils.persistence  # noqa: F401  (user's own EDM checkout wins)
    except ImportError:
        tu = types.ModuleType("torch_utils")
        pers = types.ModuleType("torch_utils.persistence")
        pers.persistent_class = _persistent_class

        def reconstruct(meta):  # registered under EDM's name so pickles can refer to it
            return _reconstruct_persistent_obj(meta)

        reconstruct.__module__, reconstruct.__qualname__ = pers.__name__, "_reconstruct_persistent_obj"
        reconstruct.__name__ = "_reconstruct_persistent_obj"
        pers._reconstruct_persistent_obj = reconstruct
        tu.persistence = pers
        dn = types.ModuleType("dnnlib")
        dn.EasyDict = _EasyDict
        for name, mod in (("torch_utils", tu), ("torch_utils.persistence", pers), ("dnnlib", dn)):
            if name not in sys.modules:
                sys.modules[name] = mod
                added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def load_edm_pickle(path: Path, device: torch.device | str = "cpu", *,
                    trust_pickle: bool = False) -> Denoiser:
    """network-snapshot-*.pkl => Denoiser; refuses (without opening the file) unless trusted."""
    from ambient_eval.hashing import sha256_file

    path = Path(path)
    if not trust_pickle:
        raise AmbientError(
            f"'{path}' is a pickle. Loading it executes code stored in the file, so it is refused by "
            "default. If you trust its source, pass --trust-pickle (Python: trust_pickle=True); "
            "otherwise convert it to a safe format first.")
    try:
        with edm_compat_modules(), open(path, "rb") as f:
            data = pickle.load(f)  # noqa: S301 - explicit user opt-in above
    except AmbientError:
        raise
    except ModuleNotFoundError as e:
        raise AmbientError(f"Unpickling '{path}' needs the Python module '{e.name}', which is not "
                           "installed. Put the code the checkpoint was trained with (e.g. the EDM / "
                           "Ambient-Omni repository) on PYTHONPATH and retry.") from e
    except Exception as e:  # noqa: BLE001 - any failure inside arbitrary unpickling
        raise AmbientError(f"Cannot unpickle '{path}': {type(e).__name__}: {e}. Check that it is a "
                           "complete EDM network-snapshot-*.pkl.") from e
    net = data.get("ema") if isinstance(data, dict) else data
    if not isinstance(net, torch.nn.Module):
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise AmbientError(f"'{path}' holds no network under 'ema' (found {keys}). Pass an EDM "
                           "network-snapshot-*.pkl.")
    missing = [a for a in REQUIRED_ATTRS if not hasattr(net, a)]
    if missing:
        raise AmbientError(f"The network in '{path}' ({type(net).__name__}) lacks {missing}; only "
                           "networks with EDM's interface net(x, sigma, class_labels) are supported.")
    model = PickledDenoiser(net)
    model.weights_sha256 = sha256_file(path)
    return model.eval().requires_grad_(False).to(device)
