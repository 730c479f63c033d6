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
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from scadc.cli.command import Exit, Subparsers
from scadrt import __version__
from scadrt.errors import Terminated, UserError

__all__ = ["build_parser", "main", "run_and_exit"]

#: command → the module that adds it (``add_<command>``), in the order ``scadc --help`` lists them.
#: Imported when needed: a command's run pays for its own imports only (``scadc run`` of a
#: one-element program runs in this process, and the others' took a third of the CLI's import time)
_COMMANDS: dict[str, str] = {
    "split": "split", "profile": "profile", "analyze": "analyze", "dag": "dag", "gen": "gen", "run": "run",
    "run-element": "run_element", "memory-server": "memory_server", "serve-action": "serve_action", "wsk": "wsk",
}


def _adder(command: str) -> Callable[[Subparsers, argparse.ArgumentParser], None]:
    module = importlib.import_module(f"scadc.cli.{_COMMANDS[command]}")
    add: Callable[[Subparsers, argparse.ArgumentParser], None] = getattr(module, f"add_{_COMMANDS[command]}")
    return add


def _command_of(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, if its first word that is not an option is one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in _COMMANDS else None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` only (what parsing its command line needs)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks for errors")
    parser = argparse.ArgumentParser(
        prog="scadc", parents=[common],
        description="Compile monolithic Python programs into Scad element directories, and work with them.",
    )
    parser.add_argument("--version", action="version", version=f"scadc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in [command] if command is not None else _COMMANDS:
        _adder(name)(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return _main(argv)[0]


def run_and_exit() -> NoReturn:
    """The ``scadc`` command (and ``python -m scadc``): :func:`main`, then exit.

    After ``scadc run`` the process exits at once (``os._exit``) once stdout and stderr are
    flushed: the interpreter's teardown of what a run leaves (its modules and objects, pages
    shared with the workers it forked) took 30-80 ms here and does nothing the run needs. The
    engine has stopped every process and removed every file and segment it made, and its
    instances ran in forked children, which end as the program's interpreter would
    (:func:`scadrt.element.end_program`) before their own ``os._exit``. A program of one element
    runs in this process (:func:`scadrt.runner.runs_inline`); then, as after the other commands
    that may run the user's program here (``scadc profile``), its exit handlers must run and its
    open files be flushed: the process exits as usual.
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
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_of(words)).parse_args(words)
    return _run(args), getattr(args, "exit_at_once", False)


def _run(args: argparse.Namespace) -> int:
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args))
    except UserError as exc:
        if debug:
            import traceback

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
