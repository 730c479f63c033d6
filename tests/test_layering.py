"""Imports go one way: scadrt never imports scadc; analysis never reaches partition or codegen; the
partitioner works on the analysis's frozen facts, never on the syntax tree (no libcst)."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]

# package prefix → prefixes of the modules it must not import (this project's or third-party)
FORBIDDEN = {
    "scadrt": ("scadc",),
    "scadc.analysis": ("scadc.partition", "scadc.codegen", "scadc.cli"),
    "scadc.partition": ("scadc.codegen", "scadc.cli", "libcst"),
    "scadc.codegen": ("scadc.cli",),
    # the library door: the commands call it, never the reverse
    "scadc.pipeline": ("scadc.cli",),
}


def imports_of(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, anywhere in it (under ``TYPE_CHECKING`` or in a
    function too), third-party ones included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def module_name(root: Path, path: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def violations(root: Path = ROOT) -> list[str]:
    found = []
    for package in ("scadrt", "scadc"):
        for path in sorted((root / package).rglob("*.py")):
            module = module_name(root, path)
            for prefix, banned in FORBIDDEN.items():
                if module == prefix or module.startswith(prefix + "."):
                    found += [f"{module} imports {name}" for name in sorted(imports_of(path))
                              if any(name == b or name.startswith(b + ".") for b in banned)]
    return found


def test_imports_follow_the_layers() -> None:
    assert violations() == []


def test_the_check_catches_violations(tmp_path: Path) -> None:
    (tmp_path / "scadrt" / "engines").mkdir(parents=True)
    (tmp_path / "scadrt" / "engines" / "x.py").write_text("import os\nfrom scadc.cli import main\n")
    (tmp_path / "scadc" / "analysis").mkdir(parents=True)
    (tmp_path / "scadc" / "analysis" / "__init__.py").write_text("import scadc.partition.plan as p\n")
    (tmp_path / "scadc" / "partition").mkdir(parents=True)
    (tmp_path / "scadc" / "partition" / "loops.py").write_text(
        "import networkx\nimport libcstx\ndef f():\n    from libcst.metadata import Scope\n")
    assert violations(tmp_path) == [
        "scadrt.engines.x imports scadc.cli", "scadc.analysis imports scadc.partition.plan",
        "scadc.partition.loops imports libcst.metadata",
    ]


# -- no import cycles inside the packages ------------------------------------------------------------


def import_graph(root: Path = ROOT) -> nx.DiGraph[str]:
    """Module -> the project modules it imports, anywhere in its code: at module level, in functions
    (a deferred import still makes the two modules depend on each other) and under TYPE_CHECKING (a
    type-only import is a dependency of the design too). ``from P import x`` is an edge to ``P.x`` when
    that is a module, else to ``P``; ``from . import x`` resolves against the importing module's package;
    ``import P.Q`` is an edge to ``P.Q`` alone (its parent packages are not its dependencies here)."""
    files = {module_name(root, p): p for package in ("scadrt", "scadc") for p in sorted((root / package).rglob("*.py"))}
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(files)
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base for alias in node.names]
            else:
                continue
            for name in targets:
                target = name
                while target and target not in files:  # `import scadrt.dag.x`: the module part
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph.add_edge(module, target)
    return graph


def import_cycles(root: Path = ROOT) -> list[list[str]]:
    """Some import cycles (at most 20, each from its smallest module), sorted; [] when there are none."""
    found = itertools.islice(nx.simple_cycles(import_graph(root)), 20)
    return sorted(cycle[cycle.index(min(cycle)):] + cycle[: cycle.index(min(cycle))] for cycle in found)


def test_no_import_cycles() -> None:
    assert import_cycles() == []


def test_the_cycle_check_catches_cycles(tmp_path: Path) -> None:
    (tmp_path / "scadrt" / "engines").mkdir(parents=True)
    (tmp_path / "scadrt" / "__init__.py").write_text("")
    (tmp_path / "scadrt" / "engines" / "__init__.py").write_text("from . import a\n")
    (tmp_path / "scadrt" / "engines" / "a.py").write_text("def f():\n    from scadrt.engines.b import g\n")
    (tmp_path / "scadrt" / "engines" / "b.py").write_text("import scadrt.errors\nfrom .. import engines\n")
    (tmp_path / "scadrt" / "errors.py").write_text("import os\n")
    (tmp_path / "scadc").mkdir()
    (tmp_path / "scadc" / "x.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    from scadc import y\n")
    (tmp_path / "scadc" / "y.py").write_text("from scadc.x import thing\nimport scadrt.engines.a\n")
    assert import_cycles(tmp_path) == [
        ["scadc.x", "scadc.y"], ["scadrt.engines", "scadrt.engines.a", "scadrt.engines.b"],
    ]
