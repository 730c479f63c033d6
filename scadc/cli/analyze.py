"""``scadc analyze``: print what the compiler's analysis finds in a program (:func:`scadc.analyze_program`)."""

from __future__ import annotations

import argparse
import sys

from scadc.cli.command import Exit, Subparsers, add_command, add_inline, size

__all__ = ["add_analyze"]


def _cmd_analyze(args: argparse.Namespace) -> int:
    from scadc.pipeline import analyze_program  # the compiler: only when the command runs

    analysis = analyze_program(args.program, entry=args.entry, heavy_bytes=args.heavy_bytes, profile=args.profile,
                              inline=args.inline)
    sys.stdout.write(analysis.format(explain=args.explain))
    return Exit.OK


def add_analyze(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "analyze", help="print what the compiler's analysis finds (debugging)",
        description="Analyse a monolithic program and print, per unit, its defs, uses, in-place mutations, "
                    "hidden state, live values at every boundary, and the heavy-object decisions.",
        epilog="example:\n  scadc analyze examples/monolithic/mutate_helpers.py --explain",
        run=_cmd_analyze,
    )
    p.add_argument("program", help="the Python program")
    p.add_argument("--entry", metavar="NAME", help="the entry function (default: main() or the module body)")
    add_inline(p, "as scadc split does (default: on; split with the same choice)")
    p.add_argument("--heavy-bytes", type=size, default=1 << 20, metavar="SIZE",
                   help="values at least this large are heavy (default 1 MiB)")
    p.add_argument("--profile", metavar="FILE", help="a profile from `scadc profile` (measured sizes)")
    p.add_argument("--explain", action="store_true", help="show the reason behind each mutation and heavy decision")
