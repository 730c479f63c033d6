"""Imports go one way: scadrt never imports scadc; analysis never reaches partition or codegen; the
partitioner works on the analysis's frozen facts, never on the syntax tree (no libcst)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package prefix → prefixes of the modules it must not import (this project's or third-party)
FORBIDDEN = {
    "scadrt": ("scadc",),
    "scadc.analysis": ("scadc.partition", "scadc.codegen", "scadc.cli"),
    "scadc.partition": ("scadc.codegen", "scadc.cli", "libcst"),
    "scadc.codegen": ("scadc.cli",),
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
