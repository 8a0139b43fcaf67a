"""faiss-gpu install: the extra's metadata, mixed-install detection and the printed fix (CPU only)."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ambient_eval.runtime import faiss_dist as F
ROOT = Path(__file__).resolve().parents[2]


def _follow(recipe: str, installed: set[str]) -> set[str]:
    """Simulate pip on the `faiss/` files: uninstall deletes them for everyone; install writes them."""
    files_ok = {d: True for d in installed}
    for step in recipe.split("&&"):
        words = step.split()
        if words[:2] == ["pip", "uninstall"]:
            for d in words[3:]:
                if d in files_ok:
                    del files_ok[d]
                    files_ok = {k: False for k in files_ok}   # shared files are gone for the rest
        elif words[:2] == ["pip", "install"]:
            files_ok = {k: False for k in files_ok}           # overwritten by the new build
            files_ok[words[-1]] = True
    return {d for d, ok in files_ok.items() if ok} if len(files_ok) == 1 else set()


def test_gpu_extra_names_a_gpu_distribution_that_faiss_dist_knows():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~ ]", r)[0] for r in extras["gpu"]}
    assert names and all(F.is_gpu_dist(n) and n in F.FAISS_DISTS for n in names)
    assert not F.is_gpu_dist("faiss-cpu")


@pytest.mark.parametrize("mixed", [{"faiss-cpu": "1.15.1", "faiss-gpu": "1.15.1"},
                                   {"faiss-cpu": "1.15.1", "faiss-gpu-cu12": "1.14.1"}])
def test_printed_fix_leaves_exactly_one_working_build(mixed):
    msg = F.mixed_install_message(mixed)
    gpu_fix, cpu_fix = re.findall(r"(pip uninstall [^(]*?) \((?:GPU|CPU only)\)", msg)
    gpu = next(d for d in mixed if F.is_gpu_dist(d))
    assert _follow(gpu_fix, set(mixed)) == {gpu}
    assert _follow(cpu_fix, set(mixed)) == {"faiss-cpu"}
    # the old advice (uninstall only faiss-cpu) would leave nothing working: the simulation catches it
    assert _follow("pip uninstall -y faiss-cpu", set(mixed)) == set()


def test_docs_recipe_is_the_working_sequence():
    text = " ".join((ROOT / "docs" / "scaling.md").read_text().split())   # the GPU install recipe
    assert F.install_recipe() in text
    assert "then `pip uninstall -y faiss-cpu`" not in text


class _CpuFaiss:
    __version__ = "1.15.1"


class _GpuFaiss(_CpuFaiss):
    StandardGpuResources = object


@pytest.mark.parametrize("dists,module,state", [
    ({}, None, "none"),
    ({"faiss-cpu": "1"}, _CpuFaiss(), "cpu"),
    ({"faiss-gpu": "1"}, _GpuFaiss(), "gpu"),
    ({"faiss-cpu": "1", "faiss-gpu": "1"}, _CpuFaiss(), "broken"),   # GPU build shadowed
    ({"faiss-gpu": "1"}, _CpuFaiss(), "broken"),                     # files deleted / overwritten
])
def test_diagnose(monkeypatch, dists, module, state):
    if module is None:  # nothing installed and nothing importable
        import builtins

        real = builtins.__import__
        monkeypatch.setattr(builtins, "__import__", lambda n, *a, **k: (_ for _ in ()).throw(ImportError(n))
                            if n == "faiss" else real(n, *a, **k))
    got, msg = F.diagnose(dists, module)
    assert got == state
    if state == "broken":
        assert "pip uninstall -y" in msg and "pip install faiss-gpu" in msg
