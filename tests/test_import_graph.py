"""The package's shape, read from its source: no import cycle anywhere in src/, no module over 600 lines.

The graph is built with `ast`, without importing anything. Every `import` / `from ... import`
statement counts, wherever it sits: at module level, inside a function (a lazy import), or under
`if TYPE_CHECKING:`. A lazy import cannot fail at run time the way a circular module-level import
does, but it is a dependency all the same, and a circle of them is what keeps a reader from telling
which way data flows. An edge goes to the module the statement names: `from pkg import mod` names
`pkg.mod` when that is a module, `from pkg import name` names `pkg`. The parent packages Python runs
on the way to a module are not drawn: the package `__init__`s that re-export import the heavy parts
lazily (PEP 562), and `test_opening_a_backend_loads_no_exporter` checks at run time that opening a
backend module loads no exporter.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "instructembed"
MAX_LINES = 600


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file under `package` (a package is its __init__)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Every dotted name an import statement anywhere in `tree` asks for (relative ones made absolute)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from . import x` inside module `a.b.c` means `a.b`
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (the longest known prefix of each imported name)."""
    modules = module_files(package)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for name in imported_names(tree, module, path.name == "__init__.py"):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph is acyclic (depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                stack.pop()
                continue
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done and nxt in graph:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_find_cycle_finds_one_and_only_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"a"}, "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_graph_reads_lazy_type_checking_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import f\n"
    )
    graph = import_graph(pkg)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.sub.b"}, "pkg.sub": {"pkg.sub.b"}, "pkg.sub.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 50 and "instructembed.export.manifest" in graph["instructembed.backends.onnx_backend"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_backends_see_only_the_manifest_of_an_export() -> None:
    graph = import_graph(PACKAGE)
    reachable, todo = set(), [m for m in graph if m.startswith("instructembed.backends")]
    while todo:
        module = todo.pop()
        if module not in reachable:
            reachable.add(module)
            todo += graph[module]
    exporters = {
        m for m in graph if m.startswith("instructembed.export") and m != "instructembed.export.manifest"
    }
    assert not reachable & (exporters | {"instructembed.embedder"})
    assert "instructembed.export.manifest" in reachable


def test_opening_a_backend_loads_no_exporter() -> None:
    """At run time too (parent packages included): importing the backends loads only the manifest."""
    script = (
        "import sys, instructembed.backends.onnx_backend, instructembed.backends.openvino_backend\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('instructembed'))))"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    loaded = set(proc.stdout.split())
    assert "instructembed.export.manifest" in loaded
    assert not {m for m in loaded if m.startswith("instructembed.export.") and not m.endswith(".manifest")}
    assert "instructembed.embedder" not in loaded


def test_no_module_over_600_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"
