"""Exports of a loaded :class:`~scadrt.dag.Program`: DOT, graph JSON, Scad's OpenWhisk JSON.

Every export is a pure function of the program and deterministic: elements in name order,
edges sorted, JSON with a fixed key order, so re-running gives byte-identical output and
golden files can pin it. :func:`render_graphviz` draws DOT as SVG or PNG with graphviz's ``dot``
program (a system tool, not a Python dependency).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from scadrt.dag import ElementSpec, Program, thaw, to_json_ready
from scadrt.errors import InternalError, MissingToolError
from scadrt.sizes import format_size

__all__ = ["MEMORY_ELEMENT_CODE", "RENDERED_FORMATS", "render_graphviz", "to_dot", "to_graph_json", "to_openwhisk"]

#: formats that need graphviz's ``dot`` program
RENDERED_FORMATS = ("png", "svg")
_MiB = 1024**2

#: what Scad's platform runs for a memory element (the ``code`` of its object): serve the region
#: over its transport; ``scadc serve-action`` recognises it
MEMORY_ELEMENT_CODE = (
    "def main(params, action):\n"
    "    transport = action.get_transport('memory', 'rdma_server')\n"
    "    transport.serve()\n"
)


def _edges(program: Program) -> list[tuple[str, str, str]]:
    return sorted((a, b, data["kind"]) for a, b, data in program.graph().edges(data=True))


def _label(spec: ElementSpec) -> str:
    title = spec.name if spec.parallelism == 1 else f"{spec.name} ×{spec.parallelism}"
    if spec.kind == "memory":
        return f"{title}\\n{format_size(spec.limits.mem)}"
    return f"{title}\\ncpu {spec.limits.cpu:g} · mem {format_size(spec.limits.mem)}"


def to_dot(program: Program) -> str:
    """Graphviz DOT: compute boxes, memory cylinders, dependent solid, corunning dashed."""
    lines = [
        f'digraph "{program.name}" {{',
        '  graph [rankdir=TB, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for spec in program.elements.values():
        shape = "cylinder" if spec.kind == "memory" else "box"
        lines.append(f'  "{spec.name}" [shape={shape}, label="{_label(spec)}"];')
    for a, b, kind in _edges(program):
        style = "solid" if kind == "dependent" else "dashed, dir=none, constraint=false"
        lines.append(f'  "{a}" -> "{b}" [style={style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_graph_json(program: Program) -> str:
    """The DAG as JSON: ``{"name", "elements": [...], "edges": [{"from", "to", "kind"}]}``."""
    document = {
        "name": program.name,
        "elements": [to_json_ready(spec) for spec in program.elements.values()],
        "edges": [{"from": a, "to": b, "kind": kind} for a, b, kind in _edges(program)],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _openwhisk_size(nbytes: int) -> str:
    # OpenWhisk parses sizes as "<n> B|KB|MB" with binary multiples, as Scad's headers did.
    if nbytes % _MiB == 0:
        return f"{nbytes // _MiB} MB"
    if nbytes % 1024 == 0:
        return f"{nbytes // 1024} KB"
    return f"{nbytes} B"


def _openwhisk_object(spec: ElementSpec) -> dict[str, Any]:
    porus: dict[str, Any] = {
        "runtimeType": spec.kind,
        "relationships": {
            "corunning": list(spec.corunning_names),
            "dependents": list(spec.dependents),
            "parents": list(spec.parents),
        },
        "withMerged": thaw(spec.with_merged),
    }
    if spec.parallelism != 1:
        porus["parallelism"] = spec.parallelism
    return {
        "annotations": [{"key": "exec", "value": "python"}],
        "exec": {
            "kind": "python:3",
            "code": spec.code if spec.code is not None else MEMORY_ELEMENT_CODE,
            "binary": False,
            "main": "main",
        },
        "limits": {
            "concurrency": 1,
            "logs": 10,
            "resources": {
                "cpu": spec.limits.cpu,
                "mem": _openwhisk_size(spec.limits.mem),
                "storage": _openwhisk_size(spec.limits.storage),
            },
            "timeout": 60000,
        },
        "name": spec.name,
        "parameters": [],
        "porusParams": porus,
        "publish": False,
        "version": "0.0.1",
    }


def to_openwhisk(program: Program) -> str:
    """Scad's OpenWhisk application JSON (the ``wskgen`` shape), objects sorted by name."""
    document = {
        "functions": [{
            "name": program.name,
            "objects": [_openwhisk_object(spec) for spec in program.elements.values()],
            "publish": True,
        }],
        "publish": True,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_graphviz(dot: str, fmt: str) -> bytes:
    """Render DOT text to ``fmt`` (``svg`` or ``png``) with graphviz's ``dot`` program."""
    if fmt not in RENDERED_FORMATS:
        raise InternalError(f"render_graphviz cannot render {fmt!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise MissingToolError(
            "graphviz's 'dot' program (needed for --format svg/png)",
            "install graphviz (Debian/Ubuntu: 'apt-get install graphviz', macOS: 'brew install graphviz'), "
            "or use --format dot or json",
        )
    done = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise InternalError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout
