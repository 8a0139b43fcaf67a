"""Dependencies: every third-party import is declared; faiss mixed installs are named; the faiss build
is recorded; a missing scikit-learn is a clear exit 2 for builtin:digits."""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest

from ambient_eval.runtime import faiss_dist
ROOT = Path(__file__).resolve().parents[2]


def _declared() -> set[str]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(proj["dependencies"]) + [r for extra in proj["optional-dependencies"].values() for r in extra]
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def _imports() -> set[str]:
    mods = set()
    for f in (ROOT / "ambient_eval").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.add(node.module.split(".")[0])
    return mods - set(sys.stdlib_module_names) - {"ambient_eval", "__future__"}


# Imported only inside `try: ... except ImportError` (used when present, never required).
OPTIONAL = {"click": "cli/app.py: typer's vendored click is used otherwise",
            "threadpoolctl": "demo/run.py: thread limits when available"}


def test_every_third_party_import_is_declared():
    dists = md.packages_distributions()
    declared = _declared()
    missing = []
    for mod in sorted(_imports() - set(OPTIONAL)):
        names = {d.lower().replace("_", "-") for d in dists.get(mod, [])}
        if not names:
            continue  # not installed here (an optional GPU/extra module); cannot map it
        if not names & declared:
            missing.append(f"{mod} ({', '.join(sorted(names))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert "timm" in declared


def test_mixed_faiss_install_is_named_with_the_fix(monkeypatch):
    msg = faiss_dist.mixed_install_message({"faiss-cpu": "1.8.0", "faiss-gpu": "1.7.2"})
    assert "faiss-cpu 1.8.0" in msg and "faiss-gpu 1.7.2" in msg
    assert "pip uninstall -y faiss-cpu faiss-gpu && pip install faiss-gpu" in msg
    assert faiss_dist.mixed_install_message({"faiss-cpu": "1.8.0"}) is None
    monkeypatch.setattr(faiss_dist, "installed", lambda: {"faiss-cpu": "1", "faiss-gpu-cu12": "1"})
    monkeypatch.setattr(faiss_dist, "_warned", False)
    with pytest.warns(faiss_dist.FaissInstallWarning, match="faiss-gpu-cu12"):
        faiss_dist.check_faiss()


def test_results_record_the_faiss_distribution():
    pytest.importorskip("faiss")  # third-party: the CPU build is a required dependency
    import faiss  # noqa: F401

    from ambient_eval.results.envelope import library_versions

    v = library_versions()["faiss"]
    assert "faiss-cpu" in v or "faiss-gpu" in v
    assert "build" in v


def test_missing_scikit_learn_is_exit_2(cli, tmp_path, monkeypatch):
    from ambient_eval.data import builtin

    builtin._digits.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    r = cli(["stats", "builtin:digits", "--output", tmp_path / "s.npz", "--features", "pixel-8",
             "--device", "cpu"])
    builtin._digits.cache_clear()
    assert r.exit_code == 2, r.output
    assert "scikit-learn" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "s.npz").exists()
