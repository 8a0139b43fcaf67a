"""Stand-ins for the modules EDM / EDM2 / Ambient-Omni pickles reference, written from the protocol.

A network-snapshot-*.pkl refers to code by name: `torch_utils.persistence._reconstruct_persistent_obj`
rebuilds every "persistent" object from meta = {type: 'class', version, module_src, class_name,
state}; `dnnlib.util.EasyDict` holds configs; the stored module sources import `torch_utils.misc`
helpers (EDM2's networks call `misc.const_like`). When the user's environment has none of this,
`edm_modules()` installs the stand-ins below in sys.modules for the duration of a (trusted) load.

Protocol points that matter for correctness:
  * one module per source text, for the whole process (as EDM's own persistence does): all the
    objects of a snapshot whose classes come from one file share that file's module, so the
    network's own `isinstance(block, UNetBlock)` checks hold;
  * objects whose code cannot be imported here (the augment pipe, the loss, the training loop's
    classes) are not needed for sampling: they become `Unloaded` placeholders, and the loader
    refuses only when the network itself (or something inside it) is one.
No code of EDM/EDM2 is copied; only the names the pickles refer to are reproduced.
"""
from __future__ import annotations

import contextlib
import hashlib
import sys
import types
import uuid

import numpy as np
import torch

PROTOCOL_VERSIONS = (6,)          # torch_utils.persistence._version in EDM and EDM2
STAND_IN_MARK = "is not provided by ambient-eval's stand-in"

_modules: dict[str, types.ModuleType] = {}   # sha256(module_src) => module (process lifetime)
_failed: dict[str, BaseException] = {}       # sha256(module_src) => why it could not be imported


class EasyDict(dict):
    """dnnlib.util.EasyDict: a dict whose keys are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e

    def __setattr__(self, name, value):
        self[name] = value

    def __delattr__(self, name):
        del self[name]


EasyDict.__module__ = "dnnlib.util"


class Unloaded:
    """Placeholder for a persistent object whose code could not be imported (not needed to sample)."""

    def __init__(self, class_name: str, state, error: BaseException) -> None:
        self.class_name, self.state, self.error = class_name, state, error

    def __repr__(self) -> str:
        return f"<Unloaded {self.class_name}: {type(self.error).__name__}: {self.error}>"

    def missing(self) -> str:
        """Name of what is missing (module or attribute) for the error message."""
        if isinstance(self.error, ModuleNotFoundError) and self.error.name:
            return f"the Python module '{self.error.name}'"
        if isinstance(self.error, ImportError):
            return (f"something ambient-eval's stand-ins do not provide ({self.error}; they cover "
                    "torch_utils.persistence, torch_utils.misc and dnnlib.util)")
        return f"{type(self.error).__name__}: {self.error}"


def persistent_class(cls):
    """Decorator used by the stored sources; inside a load the class itself is all that is needed."""
    return cls


def _module_for(src: str) -> types.ModuleType:
    key = hashlib.sha256(src.encode("utf-8")).hexdigest()
    if key in _failed:
        raise _failed[key]
    mod = _modules.get(key)
    if mod is None:
        mod = types.ModuleType(f"_ambient_imported_module_{uuid.uuid4().hex}")
        sys.modules[mod.__name__] = mod
        try:
            code = compile(src, f"<pickled module {key[:12]}>", "exec")
            exec(code, mod.__dict__)  # noqa: S102 - trusted load
        except Exception as e:  # noqa: BLE001 - remember why, do not retry for every object
            sys.modules.pop(mod.__name__, None)
            _failed[key] = e
            raise
        _modules[key] = mod
    return mod


def reconstruct_persistent_obj(meta):
    """Rebuild a persistent object: the class from module_src (shared per source), then its state."""
    meta = EasyDict(meta)
    state = meta.get("state")
    state = EasyDict(state) if isinstance(state, dict) else state
    if meta.get("type") != "class" or meta.get("version") not in PROTOCOL_VERSIONS:
        return Unloaded(str(meta.get("class_name")), state, ValueError(
            f"unsupported persistence record (type {meta.get('type')!r}, version {meta.get('version')!r})"))
    try:
        cls = _module_for(meta["module_src"]).__dict__[meta["class_name"]]
    except Exception as e:  # noqa: BLE001 - code this environment cannot import
        return Unloaded(meta["class_name"], state, e)
    obj = cls.__new__(cls)
    setstate = getattr(obj, "__setstate__", None)
    if callable(setstate):
        setstate(state)
    else:
        obj.__dict__.update(state)
    return obj


reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
reconstruct_persistent_obj.__name__ = reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"


# torch_utils.misc: the helpers network code calls at run time.
def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    """Tensor of `value` (broadcast to `shape`), of dtype (default: torch default) on device."""
    t = torch.as_tensor(np.array(value, copy=True),
                        dtype=dtype if dtype is not None else torch.get_default_dtype(), device=device)
    if shape is not None:
        t = t.expand(tuple(shape))
    return t.contiguous(memory_format=memory_format or torch.contiguous_format)


def const_like(ref, value, shape=None, dtype=None, device=None, memory_format=None):
    """constant() with ref's dtype and device unless given."""
    return constant(value, shape=shape, dtype=ref.dtype if dtype is None else dtype,
                    device=ref.device if device is None else device, memory_format=memory_format)


def assert_shape(tensor, ref_shape):
    """Check tensor.shape against ref_shape (None entries match anything)."""
    if tensor.ndim != len(ref_shape) or any(r is not None and int(s) != int(r)
                                            for s, r in zip(tensor.shape, ref_shape)):
        raise AssertionError(f"wrong shape {list(tensor.shape)}, expected {list(ref_shape)}")


def _missing_attr(module_name: str):
    def __getattr__(name):
        raise AttributeError(f"'{module_name}.{name}', which {STAND_IN_MARK} for {module_name}; put "
                             "the code the checkpoint was trained with (EDM / EDM2 / Ambient-Omni "
                             "repository) on PYTHONPATH")
    return __getattr__


def _stand_ins() -> dict[str, types.ModuleType]:
    names = ("torch_utils", "torch_utils.persistence", "torch_utils.misc")
    tu, pers, misc = (types.ModuleType(n) for n in names)
    tu.__path__ = []                                   # a package: `from torch_utils import x`
    pers._reconstruct_persistent_obj = reconstruct_persistent_obj
    pers.persistent_class = persistent_class
    pers.is_persistent = lambda obj: False
    pers.import_hook = lambda hook: hook
    misc.constant, misc.const_like, misc.assert_shape = constant, const_like, assert_shape
    misc.suppress_tracer_warnings = contextlib.nullcontext
    tu.persistence, tu.misc = pers, misc
    dn, util = types.ModuleType("dnnlib"), types.ModuleType("dnnlib.util")
    dn.__path__ = []
    util.EasyDict = dn.EasyDict = EasyDict
    dn.util = util
    for m in (tu, pers, misc, dn, util):
        m.__getattr__ = _missing_attr(m.__name__)
    return {m.__name__: m for m in (tu, pers, misc, dn, util)}


def real_edm_code_available() -> bool:
    """True when the user's own EDM/EDM2 checkout (torch_utils.persistence, dnnlib) is importable."""
    try:
        import dnnlib  # noqa: F401
        import torch_utils.persistence  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def edm_modules():
    """Install the stand-ins in sys.modules unless the real EDM code is importable; remove afterwards."""
    added = []
    if not real_edm_code_available():
        for name, mod in _stand_ins().items():
            if name not in sys.modules:
                sys.modules[name] = mod
                added.append(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)
