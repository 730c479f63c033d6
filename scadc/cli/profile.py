"""``scadc profile`` and ``scadc analyze``: measure a program, print what analysis finds in it."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from scadrt.errors import UserError
from scadrt.sizes import parse_size

__all__ = ["add_analyze", "add_profile"]


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _check_profile_output(output: str, program: str) -> None:
    """``-o`` may replace only an earlier profile: never the program, a directory, a link, a device or
    any other file. Checked before the program runs (its side effects happen once) and again after."""
    from scadc.codegen.emit import check_parent, quote_path, refuse_input
    from scadc.profile import PROFILE_FORMAT

    target = Path(output)
    shown = quote_path(output)
    try:
        info = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except OSError as exc:
        raise UserError(f"cannot write {shown}: {exc.strerror}") from exc
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UserError(f"cannot write {shown}: is a directory")
    if info is not None and stat.S_ISLNK(info.st_mode):
        raise UserError(f"cannot write {shown}: is a symbolic link; pass the file itself")
    refuse_input(target, program)
    check_parent(target)
    if info is None:
        return
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"cannot write {shown}: not a regular file")
    try:
        data = json.loads(target.read_bytes()) if info.st_size <= 256 * 2**20 else None
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
        raise UserError(f"{shown} exists and is not a scadc profile; remove it or pass another -o")


def _cmd_profile(args: argparse.Namespace) -> int:
    from scadc.cli import write_output
    from scadc.profile import dumps, profile_program

    output = args.output or str(Path(args.program).with_suffix(".profile.json"))
    if output == "-":
        raise UserError("the program's own output goes to stdout; pass -o FILE for the profile")
    _check_profile_output(output, args.program)
    profile, status = profile_program(args.program, entry=args.entry)
    _check_profile_output(output, args.program)
    write_output(output, dumps(profile).encode())
    print(f"scadc: profile written to {output}", file=sys.stderr)
    for line in _unpredicted_warnings(args.program, args.entry, profile):
        print(line, file=sys.stderr)
    return status


def _unpredicted_warnings(program: str, entry: str | None, profile: dict[str, Any]) -> list[str]:
    """One warning per (unit, local) the run saw changed in place that the static analysis of the same
    source did not predict (:func:`scadc.analysis.observed.unpredicted`); in unit order, then by name.
    None for a program split would refuse, or whose file changed while it ran (nothing to compare)."""
    from scadc.analysis import analyze
    from scadc.analysis.observed import check_source, unpredicted
    from scadc.analysis.program import deep_call
    from scadc.errors import CompileError

    def check() -> list[str]:  # on a deep stack: libcst recurses per level of nesting
        try:
            analysis = analyze(program, entry=entry)
            check_source(analysis.program, profile)
        except CompileError:
            return []
        return [f"scadc: warning: {unit.span}: the unit changed `{name}` in place, which the analysis did not "
                f"predict (the profile corrects this for split --profile)"
                for unit, name in unpredicted(analysis.units, profile, analysis.program)]

    return deep_call(check)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from scadc.analysis import analyze
    from scadc.analysis.program import deep_call

    def report() -> str:  # on a deep stack: libcst recurses per level of nesting
        result = analyze(args.program, entry=args.entry, heavy_bytes=args.heavy_bytes, profile=args.profile)
        return result.format(explain=args.explain)

    sys.stdout.write(deep_call(report))
    return 0


def add_profile(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "profile", parents=[common], help="run a program once and measure each unit",
        description="Run a monolithic program once, tracing its entry region: wall and CPU time per unit, "
                    "bytes of each local after every unit, process RSS, and which locals each unit changed "
                    "in place (fingerprinted at every unit boundary). The program's own output goes to "
                    "stdout as usual; the profile (stable JSON keyed by unit line:col) goes to -o. A change "
                    "the static analysis did not predict is named in a warning on stderr; split --profile "
                    "counts it as a mutation.",
        epilog="example:\n  scadc profile examples/monolithic/logreg_cv.py -o logreg.profile.json\n"
               "  scadc split examples/monolithic/logreg_cv.py --profile logreg.profile.json\n"
               "exit status: the program's own",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("program", help="the Python program")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write the profile (default: PROGRAM.profile.json); replaces only an earlier profile")
    p.add_argument("--entry", metavar="NAME", help="the entry function (default: main() or the module body)")
    p.set_defaults(run=_cmd_profile)


def add_analyze(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "analyze", parents=[common], help="print what the compiler's analysis finds (debugging)",
        description="Analyse a monolithic program and print, per unit, its defs, uses, in-place mutations, "
                    "hidden state, live values at every boundary, and the heavy-object decisions.",
        epilog="example:\n  scadc analyze examples/monolithic/mutate_helpers.py --explain",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("program", help="the Python program")
    p.add_argument("--entry", metavar="NAME", help="the entry function (default: main() or the module body)")
    p.add_argument("--heavy-bytes", type=_size, default=1 << 20, metavar="SIZE",
                   help="values at least this large are heavy (default 1 MiB)")
    p.add_argument("--profile", metavar="FILE", help="a profile from `scadc profile` (measured sizes)")
    p.add_argument("--explain", action="store_true", help="show the reason behind each mutation and heavy decision")
    p.set_defaults(run=_cmd_analyze)
