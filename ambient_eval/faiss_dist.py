"""Which faiss distribution provides `import faiss`, and a clear warning for a mixed install.

faiss-cpu and faiss-gpu (faiss-gpu-cu11, faiss-gpu-cu12) all install the same `faiss` module: with
two of them installed, whichever was installed last silently wins, so a GPU build can be shadowed by
the CPU one (or the reverse). `check_faiss()` warns once, naming the installed distributions and the
fix; `faiss_version()` is what results.json records under versions.faiss.
"""
from __future__ import annotations

import importlib.metadata as md
import sys
import warnings

FAISS_DISTS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu11", "faiss-gpu-cu12", "faiss")


class FaissInstallWarning(UserWarning):
    """More than one faiss distribution is installed."""


def installed() -> dict[str, str]:
    """{distribution: version} of the faiss distributions present."""
    out = {}
    for d in FAISS_DISTS:
        try:
            out[d] = md.version(d)
        except md.PackageNotFoundError:
            pass
    return out


def mixed_install_message(dists: dict[str, str]) -> str | None:
    """The warning for a mixed install, or None when at most one faiss distribution is present."""
    if len(dists) < 2:
        return None
    names = ", ".join(f"{k} {v}" for k, v in dists.items())
    gpu = [d for d in dists if "gpu" in d]
    fix = (f"pip uninstall -y {' '.join(dists)} && pip install {gpu[0]}" if gpu else
           f"pip uninstall -y {' '.join(dists)} && pip install faiss-cpu")
    return (f"Several faiss distributions are installed ({names}); they provide the same 'faiss' module "
            "and the one installed last wins, so the GPU build may be shadowed. Keep exactly one: "
            f"{fix} (GPU) or pip uninstall -y {' '.join(gpu) or 'faiss-gpu'} (CPU only).")


def _gpu_build() -> bool | None:
    faiss = sys.modules.get("faiss")
    return None if faiss is None else hasattr(faiss, "StandardGpuResources")


def faiss_version() -> str | None:
    """'1.8.0 (faiss-cpu)' or '1.8.0 (faiss-cpu + faiss-gpu: GPU build)'; None without faiss."""
    dists = installed()
    if not dists:
        return None
    ver = next(iter(dists.values()))
    gpu = _gpu_build()
    build = "" if gpu is None else (": GPU build" if gpu else ": CPU build")
    return f"{ver} ({' + '.join(dists)}{build})"


_warned = False


def check_faiss() -> None:
    """Warn once per process about a mixed faiss install (never raises)."""
    global _warned
    msg = mixed_install_message(installed())
    if msg and not _warned:
        _warned = True
        warnings.warn(msg, FaissInstallWarning, stacklevel=2)
