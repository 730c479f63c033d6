"""``scadc profile``: run a program once and measure each unit (the profiler is :mod:`scadc.profile`)."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from scadc.cli.command import Subparsers, add_command, add_inline
from scadc.cli.output import write_output
from scadrt.errors import UserError

__all__ = ["add_profile"]


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
    from scadc.profile import dumps, profile_program

    output = args.output or str(Path(args.program).with_suffix(".profile.json"))
    if output == "-":
        raise UserError("the program's own output goes to stdout; pass -o FILE for the profile")
    _check_profile_output(output, args.program)
    profile, status = profile_program(args.program, entry=args.entry, inline=args.inline)
    _check_profile_output(output, args.program)
    write_output(output, dumps(profile).encode())
    print(f"scadc: profile written to {output}", file=sys.stderr)
    for line in _unpredicted_warnings(args.program, args.entry, profile, args.inline):
        print(line, file=sys.stderr)
    return status


def _unpredicted_warnings(program: str, entry: str | None, profile: dict[str, Any], inline: bool = True) -> list[str]:
    """One warning per (unit, local) the run saw changed in place that the static analysis of the same
    source did not predict (:func:`scadc.analysis.observed.unpredicted`); in unit order, then by name.
    None for a program split would refuse, or whose file changed while it ran (nothing to compare)."""
    from scadc.analysis.observed import check_source, unpredicted
    from scadc.errors import CompileError
    from scadc.pipeline import analyze_program

    try:
        analysis = analyze_program(program, entry=entry, inline=inline)
        check_source(analysis.program, profile)
    except CompileError:
        return []
    return [f"scadc: warning: {unit.span}: the unit changed `{name}` in place, which the analysis did not "
            f"predict (the profile corrects this for split --profile)"
            for unit, name in unpredicted(analysis.units, profile, analysis.program)]


def add_profile(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "profile", help="run a program once and measure each unit",
        description="Run a monolithic program once, tracing its entry region: wall and CPU time per unit, "
                    "bytes of each local after every unit, process RSS, and which locals each unit changed "
                    "in place (fingerprinted at every unit boundary). The program's own output goes to "
                    "stdout as usual; the profile (stable JSON keyed by unit line:col) goes to -o. A change "
                    "the static analysis did not predict is named in a warning on stderr; split --profile "
                    "counts it as a mutation.",
        epilog="example:\n  scadc profile examples/monolithic/logreg_cv.py -o logreg.profile.json\n"
               "  scadc split examples/monolithic/logreg_cv.py --profile logreg.profile.json\n"
               "exit status: the program's own",
        run=_cmd_profile,
    )
    p.add_argument("program", help="the Python program")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="where to write the profile (default: PROGRAM.profile.json); replaces only an earlier profile")
    p.add_argument("--entry", metavar="NAME", help="the entry function (default: main() or the module body)")
    add_inline(p, "as scadc split does (default: on; split with the same choice)")
