"""``scadc memory-server``: serve one memory element's region (the server is :mod:`scadrt.transports.memory_server`)."""

from __future__ import annotations

import argparse

from scadc.cli.command import Subparsers, add_command
from scadrt.transports.server_options import add_arguments

__all__ = ["add_memory_server"]


def _cmd_memory_server(args: argparse.Namespace) -> int:
    # the server (zmq) is imported only when it runs: the parser needs only its options
    from scadrt.transports.memory_server import run_from_args

    return run_from_args(args)


def add_memory_server(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "memory-server", help="serve one memory element's region over tcp",
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
        run=_cmd_memory_server,
    )
    add_arguments(p)
