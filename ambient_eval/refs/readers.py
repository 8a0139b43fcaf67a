"""Safe readers of the publishers' statistics formats => (mu (D,), sigma (D, D)).

EDM2's dataset-refs are pickles and torch-fidelity's cached statistics are torch.save'd pickles, both
of plain dicts of numpy arrays. They are read with an unpickler that resolves nothing but numpy's
array/dtype reconstructors and plain containers: any other global (os.system, builtins.eval, ...) is
refused before it can run.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

from ambient_eval.errors import AmbientError

# (module, name) pairs a statistics pickle may name: numpy arrays, dtypes, scalars, and the byte codec
# numpy uses for array data in protocol-2 pickles.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed in a statistics pickle")

    def persistent_load(self, pid):  # noqa: D102 - torch tensors (persistent ids) are not plain arrays
        raise pickle.UnpicklingError("torch tensors are not allowed in a statistics pickle")


def safe_unpickle(data: bytes, path: Path):
    """Plain containers of numpy arrays from pickle bytes; AmbientError for anything else."""
    try:
        return _ArraysOnly(io.BytesIO(data)).load()
    except Exception as e:  # noqa: BLE001 - any failure means "not a plain statistics pickle"
        raise AmbientError(f"'{path}' is not a plain pickle of numpy arrays ({type(e).__name__}: {e}); it is "
                           "refused without running it. Check that it is the official statistics file.") from None


def _mu_sigma(d, path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(d, dict) or "mu" not in d or "sigma" not in d:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise AmbientError(f"'{path}' has no mu/sigma {where} (found {keys}). Check the file.")
    return np.asarray(d["mu"]), np.asarray(d["sigma"])


def read_edm2_pkl(path: Path, key: str) -> tuple[np.ndarray, np.ndarray]:
    """EDM2 dataset-refs: {'num_images': n, 'fid': {mu, sigma}, 'fd_dinov2': {mu, sigma}} => stats[key]."""
    d = safe_unpickle(path.read_bytes(), path)
    if not isinstance(d, dict) or key not in d:
        found = sorted(k for k in d) if isinstance(d, dict) else type(d).__name__
        raise AmbientError(f"'{path}' holds no '{key}' statistics (found {found}).")
    return _mu_sigma(d[key], path, f"under '{key}'")


def read_torch_fidelity_pt(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """torch-fidelity's cached statistics: a torch.save zip (or legacy pickle) of {'mu', 'sigma'}."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if not names:
                raise AmbientError(f"'{path}' is a zip without data.pkl: not a torch.save file.")
            data = z.read(names[0])
    else:
        data = path.read_bytes()
    return _mu_sigma(safe_unpickle(data, path), path, "in its dict")
