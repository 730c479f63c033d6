"""The ``scadc`` command line: the parser, :func:`main` and its exit statuses.

Exit status (:class:`~scadc.cli.command.Exit`): 0 on success, 2 for a problem in the user's input
(printed without a traceback; ``--debug`` adds it), 130 on Ctrl-C, 143 on SIGTERM. Anything else
escaping (InternalError included) is a bug and shows its traceback.

Each command lives in its own module (``scadc.cli.split``, ``…run``, ``…run_element``, ``…profile``,
``…analyze``, ``…dag``, ``…gen``, ``…memory_server``, ``…serve_action``, ``…wsk``), which adds its
subparser; what they share is in the leaves ``command`` (exit statuses, argparse helpers), ``output``
(writing files), ``params`` (the run's input) and ``progress`` (a run's progress on stderr). None of
them imports this package's ``__init__``: the compiler and runtime they drive are
:mod:`scadc.pipeline` and :func:`scadrt.run`.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from scadc.cli.analyze import add_analyze
from scadc.cli.command import Exit, Subparsers
from scadc.cli.dag import add_dag
from scadc.cli.gen import add_gen
from scadc.cli.memory_server import add_memory_server
from scadc.cli.profile import add_profile
from scadc.cli.run import add_run
from scadc.cli.run_element import add_run_element
from scadc.cli.serve_action import add_serve_action
from scadc.cli.split import add_split
from scadc.cli.wsk import add_wsk
from scadrt import __version__
from scadrt.errors import Terminated, UserError

__all__ = ["build_parser", "main", "run_and_exit"]

#: in the order ``scadc --help`` lists them
_COMMANDS: tuple[Callable[[Subparsers, argparse.ArgumentParser], None], ...] = (
    add_split, add_profile, add_analyze, add_dag, add_gen, add_run, add_run_element, add_memory_server,
    add_serve_action, add_wsk,
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks for errors")
    parser = argparse.ArgumentParser(
        prog="scadc", parents=[common],
        description="Compile monolithic Python programs into Scad element directories, and work with them.",
    )
    parser.add_argument("--version", action="version", version=f"scadc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return _main(argv)[0]


def run_and_exit() -> NoReturn:
    """The ``scadc`` command (and ``python -m scadc``): :func:`main`, then exit.

    After ``scadc run`` the process exits at once (``os._exit``) once stdout and stderr are
    flushed: the interpreter's teardown of what a run leaves (its modules and objects, pages
    shared with the workers it forked) took 30-80 ms here and does nothing the run needs. The
    engine has stopped every process and removed every file and segment it made, and it never
    runs the user's code itself (instances run in forked children, which end with ``os._exit``
    too). Other commands may run the user's program in this process (``scadc profile``), whose
    exit hooks must run: they exit as usual.
    """
    code, at_once = _main(None)
    if at_once:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # the usual exit reports it
        else:
            os._exit(code)
    sys.exit(code)


def _main(argv: Sequence[str] | None) -> tuple[int, bool]:
    """The exit status, and whether the process may exit at once (see :func:`run_and_exit`)."""
    args = build_parser().parse_args(argv)
    return _run(args), getattr(args, "exit_at_once", False)


def _run(args: argparse.Namespace) -> int:
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args))
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"scadc: error: {exc}", file=sys.stderr)
        return Exit.USER_ERROR
    except KeyboardInterrupt as exc:
        # SIGTERM arrives as a KeyboardInterrupt subclass
        terminated = isinstance(exc, Terminated)
        print(f"scadc: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return Exit.TERMINATED if terminated else Exit.INTERRUPTED
    except BrokenPipeError:
        # `scadc dag prog | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK
