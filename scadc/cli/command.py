"""What every command module shares: exit statuses, the subparser boilerplate, argument types.

A leaf of :mod:`scadc.cli`: the command modules import it, never the package itself.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Callable
from typing import TypeAlias

from scadrt.dag import DEFAULT_MAX_PARALLELISM
from scadrt.sizes import parse_size

__all__ = ["Exit", "Subparsers", "add_command", "add_inline", "add_max_parallelism", "size"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Exit(enum.IntEnum):
    """The exit statuses of ``scadc`` (``scadc profile`` exits with the program's own)."""

    OK = 0
    #: an element failed (run, run-element)
    FAILED = 1
    #: a problem in the user's input (printed without a traceback), or an output that could not be written
    USER_ERROR = 2
    #: Ctrl-C
    INTERRUPTED = 130
    #: SIGTERM
    TERMINATED = 143


def add_command(sub: Subparsers, common: argparse.ArgumentParser, name: str, *, help: str, description: str,
                epilog: str, run: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """A subcommand whose description and epilog keep their line breaks; ``run(args)`` is its exit status."""
    p = sub.add_parser(name, parents=[common], help=help, description=description, epilog=epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(run=run)
    return p


def add_max_parallelism(p: argparse.ArgumentParser, help: str) -> None:
    """``--max-parallelism N``, the loader's bound on an element's instances; ``help`` names N."""
    p.add_argument("--max-parallelism", type=int, default=DEFAULT_MAX_PARALLELISM, metavar="N",
                   help=f"{help} (default {DEFAULT_MAX_PARALLELISM})")


def add_inline(p: argparse.ArgumentParser, effect: str) -> None:
    """``--inline/--no-inline`` (default on), the compiler's inlining of the program's own helpers;
    ``effect`` ends the help: what the choice does for this command."""
    p.add_argument("--inline", action=argparse.BooleanOptionalAction, default=True,
                   help=f"inline the entry function's calls of the program's own helpers where that is safe, {effect}")


def size(text: str) -> int:
    """An argparse type: a size such as ``64MiB`` in bytes."""
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
