"""``scadc split``: analyse a monolithic program, partition it, write the element directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from scadrt.errors import UserError
from scadrt.sizes import parse_size

if TYPE_CHECKING:  # the compiler itself is imported when split runs (see _cmd_split)
    from scadc.analysis import Analysis
    from scadc.partition.plan import PartitionPlan

__all__ = ["add_split"]


def _explain(analysis: Analysis, plan: PartitionPlan) -> str:
    lines = [plan.format(), "decisions:"]
    lines += [f"  boundary {i}: {why}" for i, why in plan.decisions]
    if plan.loops:
        lines.append("loops:")
        lines += [f"  unit {i}: {why}" for i, why in plan.loops]
    from scadc.analysis.observed import explain_observed

    if observed := explain_observed(analysis.units):
        lines += ["observed by the profile:", *observed]
    lines.append("heavy objects:")
    for name, d in sorted(analysis.heavy.items()):
        lines.append(f"  {name}: {'heavy' if d.heavy else 'small'} ({d.reason})")
    return "\n".join(lines) + "\n"


def _cmd_split(args: argparse.Namespace) -> int:
    # imported here: libcst and friends take most of a second, which `scadc run` should not pay
    from scadc.analysis import analyze
    from scadc.analysis.program import deep_call
    from scadc.codegen.emit import check_output, write_program
    from scadc.partition.build import build_plan
    from scadc.partition.policies import make_policy

    try:
        heavy_bytes = parse_size(args.heavy_bytes)
    except ValueError as exc:
        raise UserError(f"--heavy-bytes: {exc}") from exc
    policy = make_policy(args.policy, max_elements=args.max_elements, min_element_ms=args.min_element_ms)
    check_output(args.output, args.program, force=args.force)  # before the work, and again when writing

    def compile_program() -> tuple[Path, PartitionPlan]:
        analysis = analyze(args.program, entry=args.entry, heavy_bytes=heavy_bytes, profile=args.profile)
        plan = build_plan(analysis, policy, parallel=args.parallel)
        if args.explain:
            sys.stderr.write(_explain(analysis, plan))
        return write_program(analysis, plan, args.output, force=args.force), plan

    out, plan = deep_call(compile_program)  # libcst recurses per level of nesting: a deep stack
    print(f"scadc: wrote {out}/ ({len(plan.computes)} compute, {len(plan.memories)} memory elements)",
          file=sys.stderr)
    return 0


def add_split(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "split", parents=[common], help="compile a monolithic Python program into an element directory",
        description="Analyse a monolithic Python program, cut it into compute elements where the heavy data "
                    "it works on changes, keep heavy values that cross a cut in memory elements, and write "
                    "the element directory (all of it, or nothing).",
        epilog="examples:\n  scadc split examples/monolithic/logreg_cv.py -o build/logreg\n"
               "  scadc split app.py -o prog --policy every --explain --force\n"
               "  scadc run build/logreg",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--heavy-bytes", default="1MiB", metavar="SIZE",
                   help="values at least this large are heavy (default 1 MiB)")
    p.add_argument("--profile", metavar="FILE", help="a profile from `scadc profile` for measured sizes")
    p.add_argument("--entry", metavar="NAME", help="the entry function (default main(), else the module body)")
    p.add_argument("--parallel", action=argparse.BooleanOptionalAction, default=True,
                   help="run each loop whose iterations are independent as one element with an instance per "
                        "iteration (default: on)")
    p.add_argument("--explain", action="store_true",
                   help="print every cut decision, loop and heavy object to stderr")
    p.set_defaults(run=_cmd_split)
