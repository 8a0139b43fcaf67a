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

# Distributions that install the `faiss` module (PyPI names); any with "gpu"/"cuda" is a GPU build.
FAISS_DISTS = ("faiss-cpu", "faiss-gpu", "faiss-gpu-cu11", "faiss-gpu-cu12", "faiss-gpu-cu12-cuvs",
               "faiss-gpu-cu13-cuvs", "faiss-gpu-cuvs", "faiss-cuda", "faiss")


def is_gpu_dist(name: str) -> bool:
    """Whether a faiss distribution is a GPU build (by its PyPI name)."""
    return "gpu" in name or "cuda" in name


def install_recipe(gpu_dist: str = "faiss-gpu", dists=("faiss-cpu",)) -> str:
    """The command sequence that leaves exactly one faiss build: uninstall all, then install one.

    Uninstalling only the other distribution is not enough: pip deletes the files both installed
    (the shared faiss/ package), breaking the one that remains.
    """
    every = " ".join(dict.fromkeys([*dists, gpu_dist]))
    return f"pip uninstall -y {every} && pip install {gpu_dist}"


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
    gpu = [d for d in dists if is_gpu_dist(d)]
    return (f"Several faiss distributions are installed ({names}); they provide the same 'faiss' module "
            "and the one installed last wins, so the GPU build may be shadowed, and uninstalling one of "
            "them deletes files the other needs. Keep exactly one: "
            f"{install_recipe(gpu[0] if gpu else 'faiss-gpu', list(dists))} (GPU) or "
            f"{install_recipe('faiss-cpu', list(dists))} (CPU only).")


def diagnose(dists: dict[str, str] | None = None, module=None) -> tuple[str, str]:
    """(state, message) of the faiss install; state in none | cpu | gpu | broken.

    `broken`: a GPU distribution is installed but `import faiss` fails or has no GPU support (a
    mixed install shadowed it, or uninstalling another build deleted its files); the message gives
    the fix. `module`: the imported faiss (imported here when None).
    """
    dists = installed() if dists is None else dists
    gpu = [d for d in dists if is_gpu_dist(d)]
    if module is None:
        try:
            import faiss as module
        except Exception as e:  # noqa: BLE001 - ImportError, or a broken shared library
            if not dists:
                return "none", "no faiss distribution is installed"
            return "broken", (f"'import faiss' fails ({type(e).__name__}: {e}) although {', '.join(dists)} "
                              f"is installed. Reinstall one build: {install_recipe(gpu[0] if gpu else 'faiss-cpu', list(dists))}.")
    has_gpu = hasattr(module, "StandardGpuResources")
    if gpu and not has_gpu:
        return "broken", (f"{', '.join(gpu)} is installed but the imported faiss is a CPU build "
                          f"({mixed_install_message(dists) or 'its files were overwritten or deleted'}). "
                          f"Fix: {install_recipe(gpu[0], list(dists))}.")
    return ("gpu" if has_gpu else "cpu"), f"faiss {getattr(module, '__version__', '?')} ({' + '.join(dists) or 'unknown distribution'})"


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
