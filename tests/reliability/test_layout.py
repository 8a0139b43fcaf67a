"""Issue 26, layout: the package root holds only the entry points, and no module imports itself back.

The import graph is read from the source (every `import`/`from ... import` of an ambient_eval module,
including those inside functions, except under `if TYPE_CHECKING:`), so a cycle hidden behind a lazy
import fails here too.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "ambient_eval"
ROOT_MODULES = {"__init__", "__main__", "api", "errors"}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """ambient_eval modules `name` imports (a `from pkg import sub` names the submodule when it is one)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for n in ast.iter_child_nodes(node):
            if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
                continue
            if isinstance(n, ast.Import):
                for a in n.names:
                    m = a.name
                    while m and m not in mods:
                        m = m.rpartition(".")[0]
                    if m:
                        out.add(m)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    anchor = package
                    for _ in range(n.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                for a in n.names:
                    if f"{base}.{a.name}" in mods:
                        out.add(f"{base}.{a.name}")
                    elif base in mods:
                        out.add(base)
            visit(n)

    visit(ast.parse(path.read_text()))
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_package_root_keeps_only_the_entry_points():
    loose = {p.stem for p in PKG.glob("*.py")}
    assert loose <= ROOT_MODULES, f"modules at the package root besides the entry points: {sorted(loose - ROOT_MODULES)}"


def test_no_import_cycle_between_modules():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    assert graph["ambient_eval.metrics.fid_run"], "the import reader found no imports: it is broken"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    """The oracle itself: a two-module and a three-module cycle are found, a chain is not."""
    g = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}, "x": set()}
    assert sorted(_cycles(g)) == [["a", "b"], ["c", "d", "e"]]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_every_ambient_eval_import_resolves():
    """Each `from ambient_eval.X import name` in the package, tests, benchmarks and experiments (inside
    functions too, where a moved module would only fail at run time) names a module or an attribute."""
    import importlib

    bad = []
    for folder in ("ambient_eval", "tests", "benchmarks", "experiments"):
        for path in sorted((PKG.parent / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                        and node.module.split(".")[0] == "ambient_eval"):
                    continue
                try:
                    mod = importlib.import_module(node.module)
                except ImportError as e:
                    bad.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.module} ({e})")
                    continue
                for a in node.names:
                    if a.name != "*" and not hasattr(mod, a.name):
                        try:
                            importlib.import_module(f"{node.module}.{a.name}")
                        except ImportError:
                            bad.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.module}.{a.name}")
    assert bad == []
