"""``scadc serve-action``: run one element as an OpenWhisk action (the runtime is :mod:`scadrt.openwhisk.server`)."""

from __future__ import annotations

import argparse
import sys

from scadc.cli.command import Subparsers, add_command

__all__ = ["add_serve_action"]

_DEFAULT_LISTEN = "127.0.0.1:8080"  # scadrt.openwhisk.server.DEFAULT_LISTEN, without importing the server


def _cmd_serve_action(args: argparse.Namespace) -> int:
    from scadrt.errors import UserError
    from scadrt.openwhisk.server import serve

    if not 0 < args.transport_timeout <= 86400:
        raise UserError("--transport-timeout must be more than 0 and at most 86400 seconds")
    return serve(args.listen, transport_timeout=args.transport_timeout,
                 ready=lambda url: print(f"listening on {url}", file=sys.stderr, flush=True))


def add_serve_action(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = add_command(
        sub, common, "serve-action", help="run one element as an OpenWhisk action (the action runtime)",
        description="Serve OpenWhisk's action protocol for one Scad element, as a runtime container does: "
                    "POST /init loads the element (once), POST /run runs it with the transports the invoker "
                    "names, PUT /action/<aid>/transport/<name> completes a transport's address, GET "
                    "/action/<aid>/messages tells the addresses of the regions this action serves, DELETE "
                    "/action/<aid> ends a memory element's activation. Prints 'listening on URL' to stderr when "
                    "ready; stops on SIGTERM or Ctrl-C. Every activation ends with "
                    "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX on stdout and stderr.",
        epilog="examples:\n  scadc serve-action\n  scadc serve-action --listen 0.0.0.0:8080   "
               "# in a container (see runtimes/python)\n"
               "  curl -s -XPOST localhost:8080/init -d '{\"value\": {\"name\": \"first\", \"code\": \"...\"}}'",
        run=_cmd_serve_action,
    )
    p.add_argument("--listen", default=_DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {_DEFAULT_LISTEN}; port 0 picks a free one; IPv6 as [::1]:PORT)")
    p.add_argument("--transport-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long an element waits for a transport's address (PUT …/transport/<name>) before it "
                        "fails (default %(default)g; a run's deadline shortens it)")
