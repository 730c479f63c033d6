"""The ``scadc`` command line.

Exit status: 0 on success, 2 for a problem in the user's input (printed without a traceback;
``--debug`` adds it), 130 on Ctrl-C. Anything else escaping (InternalError included) is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from scadc.cli.profile import add_analyze, add_profile
from scadc.cli.run import add_run, add_run_element
from scadc.cli.split import add_split
from scadrt import __version__, load_program
from scadrt.dag import DEFAULT_MAX_PARALLELISM
from scadrt.errors import UserError
from scadrt.export import RENDERED_FORMATS, render_graphviz, to_dot, to_graph_json, to_openwhisk
from scadrt.transports import memory_server

__all__ = ["main"]

_DAG_FORMATS = ("dot", "json", *RENDERED_FORMATS)


def write_output(target: str | None, data: bytes, *, binary: bool = False) -> None:
    """Write ``data`` to ``target`` atomically, or to stdout when ``target`` is None or '-'."""
    if target in (None, "-"):
        if binary and sys.stdout.isatty():
            raise UserError("refusing to write binary output to a terminal; pass -o FILE")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    path = Path(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {target}: {exc.strerror}") from exc


def _cmd_dag(args: argparse.Namespace) -> int:
    fmt = args.format
    if fmt is None:  # infer from -o's extension, else DOT
        suffix = Path(args.output).suffix.lstrip(".").lower() if args.output else ""
        fmt = suffix if suffix in _DAG_FORMATS else "dot"
    program = load_program(args.program, max_parallelism=args.max_parallelism)
    if fmt == "json":
        write_output(args.output, to_graph_json(program).encode())
    elif fmt == "dot":
        write_output(args.output, to_dot(program).encode())
    else:
        write_output(args.output, render_graphviz(to_dot(program), fmt), binary=fmt == "png")
    return 0


def _cmd_gen(args: argparse.Namespace) -> int:
    program = load_program(args.program, max_parallelism=args.max_parallelism)
    write_output(args.output, to_openwhisk(program).encode())
    return 0


def _add_dag(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "dag", parents=[common], help="validate an element directory and draw its DAG",
        description="Validate an element directory and draw its DAG: compute elements as boxes, memory "
                    "elements as cylinders, dependent edges solid, corunning edges dashed.",
        epilog="examples:\n  scadc dag examples/elements/fanout\n"
               "  scadc dag examples/elements/fanout -o fanout.svg\n"
               "  scadc dag prog/ --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("program", help="the element directory")
    p.add_argument("--format", "-f", choices=_DAG_FORMATS,
                   help="output format (default: from -o's extension, else dot); svg and png need graphviz")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--max-parallelism", type=int, default=DEFAULT_MAX_PARALLELISM, metavar="N",
                   help=f"largest parallelism an element may ask for (default {DEFAULT_MAX_PARALLELISM})")
    p.set_defaults(run=_cmd_dag)


def _add_gen(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "gen", parents=[common], help="export Scad's OpenWhisk application JSON",
        description="Validate an element directory and write Scad's OpenWhisk application JSON "
                    "(the shape of Scad's wskgen), objects sorted by name.",
        epilog="example:\n  scadc gen examples/elements/chain -o chain.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("program", help="the element directory")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--max-parallelism", type=int, default=DEFAULT_MAX_PARALLELISM, metavar="N",
                   help=f"largest parallelism an element may ask for (default {DEFAULT_MAX_PARALLELISM})")
    p.set_defaults(run=_cmd_gen)


def _add_memory_server(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "memory-server", parents=[common], help="serve one memory element's region over tcp",
        description="Serve one memory element's region (--size bytes, zeroed, allocated lazily) over tcp to "
                    "any number of clients, until SIGTERM or Ctrl-C. Prints 'listening on tcp://HOST:PORT' "
                    "when ready. A non-loopback --listen address requires a token, from $SCAD_TOKEN or "
                    "--token-file FILE (mode 0600); a token is never given on the command line, where every "
                    "user can read it. At most --max-connections stream connections are served at once (more "
                    "use zmq); one that stalls mid-request for --idle-timeout seconds is closed.",
        epilog="examples:\n  scadc memory-server --size 512MiB\n"
               "  scadc memory-server --listen tcp://127.0.0.1:0 --size 64MiB --log-level info\n"
               "  scadc memory-server --listen 'tcp://[::1]:0' --size 64MiB\n"
               "  SCAD_TOKEN=secret scadc memory-server --listen tcp://0.0.0.0:2333 --size 1GiB\n"
               "  scadc memory-server --token-file ~/.scad-token --listen tcp://0.0.0.0:2333 --size 1GiB",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    memory_server.add_arguments(p)
    p.set_defaults(run=memory_server.run_from_args)


_COMMANDS: tuple[Callable[..., None], ...] = (
    add_split, add_profile, add_analyze, _add_dag, _add_gen, add_run, add_run_element, _add_memory_server,
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
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        return int(args.run(args))
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"scadc: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # SIGTERM arrives as a KeyboardInterrupt subclass (scadrt.engines.local.Terminated)
        terminated = type(exc).__name__ == "Terminated"
        print(f"scadc: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        # `scadc dag prog | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
