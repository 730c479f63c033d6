"""``scadc split``: compile a monolithic program into an element directory (:func:`scadc.split_program`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scadc.cli.command import Exit, Subparsers, add_command, add_inline
from scadrt.errors import UserError
from scadrt.sizes import parse_size

__all__ = ["add_split"]


def _cmd_split(args: argparse.Namespace) -> int:
    from scadc.pipeline import split_program  # the compiler: only when the command runs

    try:
        heavy_bytes = parse_size(args.heavy_bytes)
    except ValueError as exc:
        raise UserError(f"--heavy-bytes: {exc}") from exc
    plan = split_program(args.program, args.output, force=args.force, policy=args.policy,
                         max_elements=args.max_elements, min_element_ms=args.min_element_ms, cores=args.cores,
                         heavy_bytes=heavy_bytes, profile=args.profile, entry=args.entry, parallel=args.parallel,
                         explain=sys.stderr.write if args.explain else None, from_report=args.from_report,
                         inline=args.inline)
    print(f"scadc: wrote {Path(args.output)}/ ({len(plan.computes)} compute, {len(plan.memories)} memory elements)",
          file=sys.stderr)
    return Exit.OK


def add_split(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "split", help="compile a monolithic Python program into an element directory",
        description="Analyse a monolithic Python program, cut it into compute elements where the heavy data "
                    "it works on changes, keep heavy values that cross a cut in memory elements, and write "
                    "the element directory (all of it, or nothing).",
        epilog="examples:\n  scadc split examples/monolithic/logreg_cv.py -o build/logreg\n"
               "  scadc split app.py -o prog --policy every --explain --force\n"
               "  scadc split app.py -o prog --profile prof.json --from-report run.json --force\n"
               "  scadc run build/logreg",
        run=_cmd_split,
    )
    p.add_argument("program", help="the Python program to split")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the element directory to write")
    p.add_argument("--force", action="store_true",
                   help="replace DIR if an earlier `scadc split` wrote it (never any other directory)")
    p.add_argument("--policy", default="resource", metavar="NAME",
                   help="how to choose cuts: resource (default), every, single")
    p.add_argument("--max-elements", type=int, default=None, metavar="N",
                   help="at most N compute elements (resource policy; default 8)")
    p.add_argument("--min-element-ms", type=float, default=None, metavar="MS",
                   help="with --profile: merge elements that would run shorter than MS milliseconds")
    p.add_argument("--cores", type=int, default=None, metavar="N",
                   help="with --profile: the cores of the machine the program will run on, which the cost model "
                        "weighs parallel loops against (resource policy; default: this machine's)")
    p.add_argument("--heavy-bytes", default="1MiB", metavar="SIZE",
                   help="values at least this large are heavy (default 1 MiB)")
    p.add_argument("--profile", metavar="FILE", help="a profile from `scadc profile` for measured sizes")
    p.add_argument("--from-report", metavar="FILE",
                   help="with --profile: re-split DIR (-o) using what `scadc run DIR --report FILE` measured of "
                        "each element (its peak and time replace the profile's estimates for its units)")
    p.add_argument("--entry", metavar="NAME", help="the entry function (default main(), else the module body)")
    p.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=True,
                   help="run each loop whose iterations are independent as one element with an instance per "
                        "iteration (default: on; with a profile, only where the cost model finds it cheaper)")
    add_inline(p, "so cuts may fall inside them; a --profile must be taken with the same choice (default: on)")
    p.add_argument("--explain", action="store_true",
                   help="print every cut decision, the costs compared (with a profile), every loop and heavy "
                        "object to stderr")
