"""The memory server's command-line options and their defaults, apart from the server itself.

``scadc``'s parser adds these options for ``scadc memory-server`` on every run of ``scadc``;
importing them from here keeps zmq and the server (:mod:`scadrt.transports.memory_server`) out of
every other command.
"""

from __future__ import annotations

import argparse

from scadrt.sizes import format_size

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_REQUEST",
    "add_arguments",
]

DEFAULT_LISTEN = "tcp://127.0.0.1:2333"
DEFAULT_MAX_REQUEST = 16 << 20
#: stream connections (one thread each) served at once
DEFAULT_MAX_CONNECTIONS = 256
#: seconds a stream connection may stall in the middle of a request (or not read its reply)
DEFAULT_IDLE_TIMEOUT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the memory server's options to ``parser`` (shared by ``scadc memory-server`` and ``-m``)."""
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="URL",
                        help=f"zmq endpoint to bind (default {DEFAULT_LISTEN}; port 0 picks a free port; "
                             "IPv6 as tcp://[::1]:PORT)")
    parser.add_argument("--size", default="1 GiB",
                        help="region size, e.g. 512MiB or '512 MB' (default 1 GiB, allocated lazily)")
    parser.add_argument("--token-file", default=None, metavar="FILE",
                        help="read the shared secret every request must carry from FILE, which only its owner "
                             "may read (chmod 600) (default: $SCAD_TOKEN); a token is required to listen on a "
                             "non-loopback address")
    # refused (rule 2): kept so that the refusal can say what to do instead
    parser.add_argument("--token", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-request", default=format_size(DEFAULT_MAX_REQUEST),
                        help="largest single READ/WRITE accepted (default %(default)s)")
    parser.add_argument("--stream-port", type=int, default=0, metavar="PORT",
                        help="TCP port of the stream channel for small ops (default: any free port; "
                             "clients learn it from the server)")
    parser.add_argument("--no-stream", action="store_true",
                        help="no stream channel: small ops go over zmq too")
    parser.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                        help="stream connections (one thread each) served at once; more are refused and "
                             "their clients use zmq (default %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT, metavar="SECONDS",
                        help="close a stream connection that stalls this long in the middle of a request or "
                             "stops reading its replies (default %(default)g)")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="stop when stdin reaches end of file (the starting process holds the pipe)")
    parser.add_argument("--exit-with-parent", type=int, default=None, metavar="PID",
                        help="stop when the parent process PID dies (Linux: PR_SET_PDEATHSIG)")
    parser.add_argument("--rdma", nargs="?", const="auto", default=None, metavar="DEVICE",
                        help="also serve the region by one-sided RDMA (needs pyverbs and a device; "
                             "DEVICE defaults to the first one)")
    parser.add_argument("--log-level", default="warning",
                        choices=("debug", "info", "warning", "error"), help="stderr log level")
