"""Test helper: write snapshots in EDM's pickle protocol, written here from the protocol only.

The writer side of `torch_utils.persistence`: a decorated class pickles as
`torch_utils.persistence._reconstruct_persistent_obj(meta)` with meta = {type: 'class', version: 6,
module_src: <source of the class's whole module>, class_name, state: <the object's __dict__>};
configs are `dnnlib.util.EasyDict`. The fake modules exist only while a snapshot is built and
dumped, so the loader under test sees nothing of them (as on a machine without EDM's code).
"""
from __future__ import annotations

import contextlib
import pickle
import sys
import textwrap
import types

import torch

NET_SRC = textwrap.dedent('''
    import numpy as np
    import torch
    from torch_utils import persistence
    from torch_utils import misc

    @persistence.persistent_class
    class Block(torch.nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.conv = torch.nn.Conv2d(ch, ch, 3, padding=1)

        def forward(self, x, emb):
            return x + self.conv(torch.tanh(x)) * emb

    @persistence.persistent_class
    class TinyPrecond(torch.nn.Module):
        def __init__(self, img_resolution, img_channels, label_dim=0, sigma_data=0.5):
            super().__init__()
            self.img_resolution, self.img_channels, self.label_dim = img_resolution, img_channels, label_dim
            self.sigma_min, self.sigma_max, self.sigma_data = 0, float("inf"), sigma_data
            self.blocks = torch.nn.ModuleList([Block(img_channels), Block(img_channels)])
            self.label = torch.nn.Linear(max(label_dim, 1), img_channels, bias=False)

        def forward(self, x, sigma, class_labels=None):
            for b in self.blocks:      # EDM's networks check block types like this
                if not isinstance(b, Block):
                    raise TypeError(f"{type(b)} is not this module's Block")
            x = x.to(torch.float32)
            sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1)
            sd = misc.const_like(x, self.sigma_data)
            c_skip, c_in = sd ** 2 / (sigma ** 2 + sd ** 2), 1 / (sd ** 2 + sigma ** 2).sqrt()
            c_out = sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
            h = c_in * x
            emb = (sigma.log() / 4).cos()
            if self.label_dim:
                h = h + self.label(class_labels.to(torch.float32))[:, :, None, None]
            for b in self.blocks:
                h = b(h, emb)
            return c_skip * x + c_out * h

        def round_sigma(self, sigma):
            return torch.as_tensor(sigma)
''')

AUGMENT_SRC = textwrap.dedent('''
    import torch
    from torch_utils import persistence
    from torch_utils import misc
    from torch_utils import training_stats    # not provided by ambient-eval: must be skipped

    @persistence.persistent_class
    class AugmentPipe:
        def __init__(self, p=0.12):
            self.p = p
            self.xflip = misc.constant(1.0)
''')

LOSS_SRC = textwrap.dedent('''
    from torch_utils import persistence

    @persistence.persistent_class
    class EDMLoss:
        def __init__(self, P_mean=-1.2, P_std=1.2, sigma_data=0.5):
            self.P_mean, self.P_std, self.sigma_data = P_mean, P_std, sigma_data
''')

ENCODER_SRC = textwrap.dedent('''
    import numpy as np
    from torch_utils import persistence
    from torch_utils import misc

    @persistence.persistent_class
    class StabilityVAEEncoder:
        def __init__(self, vae_name, raw_mean=(5.81, 3.25, 0.12, -2.15), raw_std=(4.17, 4.62, 3.71, 3.28),
                     final_mean=0, final_std=0.5, batch_size=8):
            self.vae_name = vae_name
            self.scale = np.float32(final_std) / np.float32(raw_std)
            self.bias = np.float32(final_mean) - np.float32(raw_mean) * self.scale
            self.batch_size = int(batch_size)
            self._vae = None
''')


def _writer_modules() -> dict[str, types.ModuleType]:
    tu, pers, misc, stats = (types.ModuleType(n) for n in (
        "torch_utils", "torch_utils.persistence", "torch_utils.misc", "torch_utils.training_stats"))
    tu.__path__ = []

    def _reconstruct_persistent_obj(meta):  # the name pickles refer to; never called here
        raise RuntimeError("writer side only")

    _reconstruct_persistent_obj.__module__ = pers.__name__
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"

    def persistent_class(cls):
        src = sys.modules[cls.__module__].__source__

        class Decorator(cls):
            def __reduce__(self):
                meta = dict(type="class", version=6, module_src=src, class_name=cls.__name__,
                            state=dict(self.__dict__))
                return _reconstruct_persistent_obj, (meta,)

        Decorator.__name__ = Decorator.__qualname__ = cls.__name__
        Decorator.__module__ = cls.__module__
        return Decorator

    pers._reconstruct_persistent_obj, pers.persistent_class = _reconstruct_persistent_obj, persistent_class
    misc.constant = lambda v, dtype=None, device=None: torch.as_tensor(v, dtype=dtype or torch.float32,
                                                                       device=device)
    misc.const_like = lambda ref, v: torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
    tu.persistence, tu.misc, tu.training_stats = pers, misc, stats
    dn, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")
    dn.__path__ = []

    class EasyDict(dict):
        __getattr__ = dict.__getitem__

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = dn.EasyDict = EasyDict
    dn.util = util
    return {m.__name__: m for m in (tu, pers, misc, stats, dn, util)}


@contextlib.contextmanager
def edm_writer():
    """Fake EDM modules in sys.modules => ns with .build(src, class_name, *args) and .EasyDict."""
    mods = _writer_modules()
    assert not set(mods) & set(sys.modules), "real EDM code is importable; these tests need it absent"
    sys.modules.update(mods)
    built = []

    def build(src, class_name, *args, **kwargs):
        mod = types.ModuleType(f"_edm_writer_src_{len(built)}_{class_name}")
        mod.__source__ = src
        sys.modules[mod.__name__] = mod
        built.append(mod.__name__)
        exec(src, mod.__dict__)  # noqa: S102 - the test's own source
        return getattr(mod, class_name)(*args, **kwargs)

    try:
        yield types.SimpleNamespace(build=build, EasyDict=mods["dnnlib.util"].EasyDict)
    finally:
        for name in list(mods) + built:
            sys.modules.pop(name, None)


def write_snapshot(path, *, img_resolution=8, img_channels=3, label_dim=0, encoder_vae=None,
                   net_src=NET_SRC, seed=0, encoder_class="StabilityVAEEncoder") -> torch.nn.Module:
    """Write an EDM (or, with encoder_vae, EDM2 latent) training snapshot => the network built directly."""
    with edm_writer() as w:
        torch.manual_seed(seed)
        net = w.build(net_src, "TinyPrecond", img_resolution, img_channels, label_dim).eval()
        data = {"ema": net, "loss_fn": w.build(LOSS_SRC, "EDMLoss"),
                "augment_pipe": w.build(AUGMENT_SRC, "AugmentPipe"),
                "dataset_kwargs": w.EasyDict(class_name="training.dataset.ImageFolderDataset",
                                             path="datasets/x.zip", xflip=False)}
        if encoder_vae is not None:
            data["encoder"] = w.build(ENCODER_SRC.replace("StabilityVAEEncoder", encoder_class),
                                      encoder_class, encoder_vae)
            del data["augment_pipe"]
        blob = pickle.dumps(data)
    for name in (b"torch_utils.persistence", b"_reconstruct_persistent_obj", b"dnnlib.util", b"EasyDict"):
        assert name in blob
    path.write_bytes(blob)
    return net
