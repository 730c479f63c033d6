"""``scadc gen``: export Scad's OpenWhisk application JSON."""

from __future__ import annotations

import argparse

from scadc.cli.command import Exit, Subparsers, add_command, add_max_parallelism
from scadc.cli.output import write_output
from scadrt import load_program
from scadrt.export import to_openwhisk

__all__ = ["add_gen"]


def _cmd_gen(args: argparse.Namespace) -> int:
    program = load_program(args.program, max_parallelism=args.max_parallelism)
    write_output(args.output, to_openwhisk(program).encode())
    return Exit.OK


def add_gen(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "gen", help="export Scad's OpenWhisk application JSON",
        description="Validate an element directory and write Scad's OpenWhisk application JSON "
                    "(the shape of Scad's wskgen), objects sorted by name.",
        epilog="example:\n  scadc gen examples/elements/chain -o chain.json",
        run=_cmd_gen,
    )
    p.add_argument("program", help="the element directory")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    add_max_parallelism(p, "largest parallelism an element may ask for")
