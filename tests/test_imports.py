"""No import cycles inside the package: the modules' imports of each other form a DAG.

A cycle (a imports b, b imports a) works only by the luck of which runs first and hides a piece that belongs
to neither, so imports inside functions count too (they are how the cycles used to be hidden); only
``if TYPE_CHECKING:`` blocks, which never run, are left out, and a module's own parent packages, which Python
has always imported before it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import dsslic

SRC = Path(dsslic.__file__).resolve().parent


def _module_name(path: Path, src: Path) -> str:
    parts = ["dsslic", *path.relative_to(src).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(node: ast.AST):
    """Every import statement under ``node`` that can run (not under ``if TYPE_CHECKING:``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]))
            continue
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        yield from _imports(child)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the package's modules it imports (``from . import x`` names module x, not the package)."""
    files = {_module_name(p, src): p for p in src.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parents = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        deps: set[str] = set()
        for node in _imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: package.count(".") + 2 - node.level]
                    base = ".".join([*up, base] if base else up)
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            deps |= {t for t in targets if t in files and t != name and t not in parents}
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path a -> ... -> a, or None (depth-first search, colouring the nodes)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m) :] + [m]
            if m not in state and (c := visit(m)):
                return c
        state[n] = 2
        path.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_imports_and_cycles(tmp_path) -> None:
    pkg = tmp_path / "dsslic"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .errors import E\n")
    (pkg / "errors.py").write_text("E = 1\n")
    (pkg / "a.py").write_text("from . import b\n")  # the module b, not the package
    (pkg / "b.py").write_text("def f():\n    from .sub.c import g\n")  # inside a function: counts
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n"
                                      "else:\n    import dsslic.errors\nfrom ..a import x\n")
    g = import_graph(pkg)
    assert g["dsslic"] == {"dsslic.errors"} and g["dsslic.a"] == {"dsslic.b"} and g["dsslic.b"] == {"dsslic.sub.c"}
    assert g["dsslic.sub.c"] == {"dsslic.errors", "dsslic.a"}  # TYPE_CHECKING skipped, its else kept
    assert find_cycle(g) == ["dsslic.a", "dsslic.b", "dsslic.sub.c", "dsslic.a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_packages_are_checked_and_light_where_they_must_be() -> None:
    """The subpackages are in the graph, and what ``dsslic info``, ``--layers seg`` and ``index`` use (the codec
    registry, the segmenter dispatcher and ``none``/``file``, the label spaces) imports no torch."""
    import subprocess
    import sys

    g = import_graph()
    assert {"dsslic.codecs.base", "dsslic.codecs.hevc"} <= g["dsslic.codecs"]
    assert "dsslic.codecs.base" in g["dsslic.codecs.pillow"] and "dsslic.segmenters.base" in g["dsslic.segmenters"]
    assert {"dsslic.training.data", "dsslic.training.loop"} <= g["dsslic.training.recnet"]
    code = ("import sys; from dsslic import bitstream, codecs, segmenters; from dsslic.segmenters import labelspace; "
            "segmenters.get('none'); codecs.get('hevc'); labelspace.by_name('photo').palette; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
