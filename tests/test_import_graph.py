"""The pase package's modules import each other without a cycle.

Every import counts, including those under ``if TYPE_CHECKING:`` and inside functions: a
cycle hidden there still ties the modules together and turns into an import-time failure as
soon as one of those imports moves.
"""
from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

PASE = Path(__file__).resolve().parents[1] / "pase"


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``root`` (a package dir)."""
    out = {}
    for f in sorted(root.rglob("*.py")):
        parts = f.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def imported_modules(module: str, path: Path, modules: Collection[str]) -> set[str]:
    """The ``modules`` that ``module`` (file ``path``) imports. ``from a import b`` imports
    module ``a.b`` when there is one, else ``a``; ``import a.b`` imports ``a.b``. A package's
    ``__init__`` is no implicit target of its submodules' imports (Python runs it first)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + [base] if base else parent)
            out |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names}
    return {m for m in out if m in modules and m != module}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the package at ``root`` it imports."""
    files = module_files(root)
    return {module: imported_modules(module, path, files) for module, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_cycle_finder_sees_type_checking_and_function_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from pkg.sub.b import B\n")
    (pkg / "sub" / "b.py").write_text("import os\nfrom pkg.sub import c\n")
    (pkg / "sub" / "c.py").write_text("def f():\n    from ..a import A\n")
    graph = import_graph(pkg)
    assert graph == {"pkg": set(), "pkg.sub": {"pkg.sub.b"}, "pkg.a": {"pkg.sub.b"},
                     "pkg.sub.b": {"pkg.sub.c"}, "pkg.sub.c": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]
    (pkg / "sub" / "c.py").write_text("import pkg\n")
    assert find_cycle(import_graph(pkg)) is None


def test_pase_import_graph_has_no_cycle():
    graph = import_graph(PASE)
    assert {"pase.asr.gmm", "pase.asr.gmm_train", "pase.bin.decode"} <= set(graph)
    assert "pase.asr.align" in graph["pase.asr.gmm_train"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
