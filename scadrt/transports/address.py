"""Addresses of memory servers: ``tcp://HOST:PORT``, as the server binds and the clients connect.

The server (:mod:`scadrt.transports.memory_server`) and its clients (:mod:`scadrt.transports.tcp`,
and the RDMA transport through it) parse addresses the same way; this module is where that
rule lives, so that neither side imports the other for it. Standard library only.

>>> parse_listen("tcp://[::1]:0")
('::1', '0')
>>> is_ipv6("::1"), is_loopback("127.0.0.1"), is_loopback("*")
(True, True, False)
"""

from __future__ import annotations

import ipaddress
import re
import socket

from scadrt.errors import TransportConfigError, clip

__all__ = ["is_ipv6", "is_loopback", "parse_listen"]

# HOST is a name, an IPv4 address or a bracketed IPv6 address; PORT a number or zmq's wildcard
_TCP_URL = re.compile(r"^tcp://(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>\d+|\*)$")


def parse_listen(url: str) -> tuple[str, str]:
    """Split ``tcp://HOST:PORT`` into host (IPv6 without brackets) and port; raise
    :class:`~scadrt.errors.TransportConfigError` otherwise."""
    match = _TCP_URL.match(url)
    if not match:
        raise TransportConfigError(f"listen address {clip(url)!r} is not tcp://HOST:PORT (e.g. tcp://127.0.0.1:2333)")
    host, port = match["host"], match["port"]
    if port != "*" and int(port) > 65535:
        raise TransportConfigError(f"listen address {clip(url)!r}: port {port} is out of range")
    return host.strip("[]"), port


def is_ipv6(host: str) -> bool:
    """True for an IPv6 address literal (zmq needs its IPV6 option set to bind or connect one)."""
    return ":" in host


def is_loopback(host: str) -> bool:
    """True if every address ``host`` stands for is a loopback address (``*`` is not)."""
    if host in ("*", ""):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)
