"""``scadc dag``: validate an element directory and draw its DAG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scadc.cli.command import Exit, Subparsers, add_command, add_max_parallelism
from scadc.cli.output import write_output
from scadrt import load_program
from scadrt.export import RENDERED_FORMATS, render_graphviz, to_dot, to_graph_json

__all__ = ["add_dag"]

_FORMATS = ("dot", "json", *RENDERED_FORMATS)


def _cmd_dag(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt is None:  # infer from -o's extension, else DOT
        suffix = Path(args.output).suffix.lstrip(".").lower() if args.output else ""
        fmt = suffix if suffix in _FORMATS else "dot"
    program = load_program(args.program, max_parallelism=args.max_parallelism)
    if args.strict and program.warnings:
        for warning in program.warnings:
            print(f"warning: {warning.format()}", file=sys.stderr)
        print(f"scadc: {len(program.warnings)} warning(s) under --strict", file=sys.stderr)
        return Exit.USER_ERROR
    if fmt == "json":
        write_output(args.output, to_graph_json(program).encode())
    elif fmt == "dot":
        write_output(args.output, to_dot(program).encode())
    else:
        write_output(args.output, render_graphviz(to_dot(program), fmt), binary=fmt == "png")
    return Exit.OK


def add_dag(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "dag", help="validate an element directory and draw its DAG",
        description="Validate an element directory and draw its DAG: compute elements as boxes, memory "
                    "elements as cylinders, dependent edges solid, corunning edges dashed.",
        epilog="examples:\n  scadc dag examples/elements/fanout\n"
               "  scadc dag examples/elements/fanout -o fanout.svg\n"
               "  scadc dag prog/ --format json",
        run=_cmd_dag,
    )
    p.add_argument("program", help="the element directory")
    p.add_argument("--format", "-f", choices=_FORMATS,
                   help="output format (default: from -o's extension, else dot); svg and png need graphviz")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--strict", action="store_true",
                   help="list what the loader accepts but finds odd (as Scad did: a memory element among "
                        "dependents, corunning listed on one side only) and exit 2 if there is any")
    add_max_parallelism(p, "largest parallelism an element may ask for")
