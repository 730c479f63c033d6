"""Transports to memory elements, and how they are named and configured.

Kinds (one module each, imported only when used, so pyzmq/pyverbs load only when needed):

    local  the region is a buffer in this process          scadrt.transports.local
    shm    a POSIX shared-memory segment on this host      scadrt.transports.shm
    tcp    a memory server reached with pyzmq              scadrt.transports.tcp
    rdma   one-sided RDMA to a memory server (pyverbs)     scadrt.transports.rdma

Beside them: ``base`` (the interface every kind implements), ``protocol`` (the memory server's
wire format), ``address`` (``tcp://HOST:PORT``, for the server and its clients alike),
``memory_server`` (the server and its command line), ``server_options`` (that command line's
options, without the server) and ``launcher`` (running one as a child process). Imports go one
way: the server and its clients share ``protocol`` and ``address``, and no client imports the
server.

Scad's implementation names are accepted as aliases: ``rdma_local``, ``rdma_shared``,
``rdma_tcp``, ``rdma_uverbs`` (reference-notes §5.1).

**Descriptors** (Scad's "durl", reference-notes §4.3) say which transport reaches which memory
element: ``NAME;IMPL;KEY,VALUE;KEY,VALUE;``. Every field, the last pair included, ends with ``;``;
a key ends at the first ``,`` and its value runs to the next ``;`` (values may hold ``,`` and ``:``
but not ``;``). Unlike Scad, a repeated key is an error (Scad silently kept the first), as is any
trailing text. Example: ``mem1;rdma_tcp;url,tcp://127.0.0.1:2333;``.

**Short form** (``-m`` on the command line, after Scad's ``rundisagg``, §3.2.1):
``[N@]NAME:PORT[:IMPL[:KEY,VALUE…]]`` or ``[N@]NAME:HOST:PORT[:IMPL[:KEY,VALUE…]]`` (IPv6 hosts in
brackets). The host defaults to 127.0.0.1, the implementation to tcp. With ``N@`` (N > 1) it
stands for N memory instances ``NAME@0 … NAME@N-1`` on ports ``PORT … PORT+N-1``. It may not
carry a ``token``: a command line is readable by every user of the machine (``/proc/PID/cmdline``),
so tokens come from ``$SCAD_TOKEN`` or a file only its owner can read (``--token-file``).

Error messages never quote a token: :func:`redact_tokens` replaces its value first.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scadrt.errors import TransportConfigError

if TYPE_CHECKING:
    from scadrt.transports.base import Transport

__all__ = [
    "KINDS",
    "REDACTED",
    "TRANSPORT_CHOICES",
    "Descriptor",
    "Transport",
    "canonical_kind",
    "open_descriptor",
    "open_transport",
    "parse_descriptor",
    "parse_memory_spec",
    "redact_tokens",
]

#: kind → (module, class)
KINDS: Mapping[str, tuple[str, str]] = {
    "local": ("scadrt.transports.local", "LocalTransport"),
    "shm": ("scadrt.transports.shm", "ShmTransport"),
    "tcp": ("scadrt.transports.tcp", "TcpTransport"),
    "rdma": ("scadrt.transports.rdma", "RdmaTransport"),
}
#: what ``scadc run --transport`` and :func:`scadrt.run` accept (``auto``: shm on this host, or tcp)
TRANSPORT_CHOICES = ("auto", *KINDS)
_ALIASES = {
    "rdma_local": "local",
    "rdma_shared": "shm",
    "shared": "shm",
    "rdma_tcp": "tcp",
    "rdma_uverbs": "rdma",
    "uverbs": "rdma",
}
_SERVER_IMPLS = {"rdma_tcp_server", "rdma_uverbs_server", "tcp_server", "uverbs_server"}
_NAME = re.compile(r"^[A-Za-z0-9_-]+(@\d+)?$")
# a token's value runs to the next ';' (in a -m spec, which has none, to the end: what follows is hidden too)
_TOKEN_VALUE = re.compile(r"(token,)[^;]*")
REDACTED = "<redacted>"


def __getattr__(name: str) -> Any:
    # Transport is imported on first use: base needs numpy, which the names here (redact_tokens for
    # reports, descriptors for the memory server's clients) do not, and `import scadrt` must stay light
    if name == "Transport":
        from scadrt.transports.base import Transport

        return Transport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def redact_tokens(text: str, limit: int | None = 200) -> str:
    """``text`` (a descriptor or ``-m`` spec) with every token's value replaced by :data:`REDACTED`,
    cut to ``limit`` characters (None: not cut), for messages and reports.

    >>> redact_tokens("mem1;tcp;url,tcp://10.0.0.5:2333;token,SECRET;")
    'mem1;tcp;url,tcp://10.0.0.5:2333;token,<redacted>;'
    """
    shown = _TOKEN_VALUE.sub(rf"\1{REDACTED}", text)
    return shown if limit is None or len(shown) <= limit else shown[: limit - 1] + "…"


def canonical_kind(impl: str) -> str:
    """Map an implementation name (ours or Scad's) to a kind; raise TransportConfigError if unknown."""
    kind = _ALIASES.get(impl, impl)
    if kind in KINDS:
        return kind
    if impl in _SERVER_IMPLS:
        raise TransportConfigError(
            f"{impl!r} is the server side of a memory element; start it with `scadc memory-server`"
        )
    known = ", ".join([*KINDS, *_ALIASES])
    raise TransportConfigError(f"unknown transport {impl!r}; known: {known}")


def _transport_class(kind: str) -> type[Transport]:
    module, cls = KINDS[canonical_kind(kind)]
    result: type[Transport] = getattr(importlib.import_module(module), cls)
    return result


def open_transport(kind: str, /, **config: Any) -> Transport:
    """Open a transport of ``kind`` with the implementation's keyword arguments.

    >>> t = open_transport("local", size=64)
    >>> t.reg(4)[:] = b"scad"; t.write(4, 60); t.read(4, 60, 0); bytes(t.buf)
    b'scad'
    >>> t.close()
    """
    return _transport_class(kind)(**config)


@dataclass(frozen=True)
class Descriptor:
    """A parsed transport descriptor ``NAME;IMPL;KEY,VALUE;…``."""

    #: the memory element (instance) it reaches: ``mem`` or ``mem@3``
    name: str
    #: implementation as written (``rdma_tcp``, ``tcp``, ``shm``…)
    impl: str
    #: the ``KEY,VALUE`` pairs, in order
    config: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        return canonical_kind(self.impl)

    def get(self, key: str, default: str | None = None) -> str | None:
        return dict(self.config).get(key, default)

    def format(self) -> str:
        """The descriptor text; ``parse_descriptor(d.format()) == d``."""
        return f"{self.name};{self.impl};" + "".join(f"{k},{v};" for k, v in self.config)

    def open(self) -> Transport:
        """Open the transport this descriptor describes."""
        return open_descriptor(self)


def parse_descriptor(text: str) -> Descriptor:
    """Parse ``NAME;IMPL;KEY,VALUE;…`` (grammar in the module docstring).

    >>> parse_descriptor("mem1;rdma_tcp;url,tcp://127.0.0.1:2333;size,65536;")
    Descriptor(name='mem1', impl='rdma_tcp', config=(('url', 'tcp://127.0.0.1:2333'), ('size', '65536')))
    """
    def bad(why: str) -> TransportConfigError:
        return TransportConfigError(f"invalid transport descriptor {redact_tokens(text)!r}: {why} "
                                    "(expected NAME;IMPL;KEY,VALUE;… with every field ending in ';')")

    if not text.endswith(";"):
        raise bad("it does not end with ';'")
    fields = text[:-1].split(";")
    if len(fields) < 2:
        raise bad("it needs at least a name and an implementation")
    name, impl, *pairs = fields
    if not _NAME.match(name):
        raise bad(f"element name {name!r} is not letters, digits, '_', '-' (with an optional @INDEX)")
    if not impl:
        raise bad("the implementation is empty")
    config: list[tuple[str, str]] = []
    for pair in pairs:
        key, comma, value = pair.partition(",")
        if not comma or not key:
            raise bad(f"{pair!r} is not KEY,VALUE")
        if any(key == k for k, _ in config):
            raise bad(f"key {key!r} is given twice")
        config.append((key, value))
    return Descriptor(name, impl, tuple(config))


_SPEC = re.compile(
    r"^(?:(?P<count>\d+)@)?(?P<name>[A-Za-z0-9_-]+)"
    r":(?:(?P<host>\[[^\]]+\]|[^:\[\]]*[^:\[\]\d][^:\[\]]*):)?(?P<port>\d+)"  # a host is not all digits
    r"(?::(?P<impl>[A-Za-z0-9_]+)(?P<rest>(?::[^:]*)*))?$"
)


def parse_memory_spec(spec: str) -> tuple[Descriptor, ...]:
    """Expand a ``-m`` short form into descriptors (grammar in the module docstring).

    >>> [d.format() for d in parse_memory_spec("mem1:2333")]
    ['mem1;rdma_tcp;url,tcp://127.0.0.1:2333;']
    >>> [d.name for d in parse_memory_spec("2@mem:9000:tcp:timeout,5")]
    ['mem@0', 'mem@1']
    """
    shown = redact_tokens(spec)
    match = _SPEC.match(spec)
    if not match:
        raise TransportConfigError(
            f"invalid memory spec {shown!r}; expected [N@]NAME:PORT or [N@]NAME:HOST:PORT, optionally "
            "followed by :IMPL and :KEY,VALUE pairs (e.g. mem1:2333 or mem1:10.0.0.5:2333:tcp:timeout,5)"
        )
    host = match["host"] or "127.0.0.1"
    port = int(match["port"])
    impl = match["impl"] or "tcp"
    kind = canonical_kind(impl)
    if kind not in ("tcp", "rdma"):
        raise TransportConfigError(f"memory spec {shown!r}: {impl} is not reached by host and port; use a descriptor")
    extra: list[tuple[str, str]] = []
    for pair in filter(None, (match["rest"] or "").split(":")):
        key, comma, value = pair.partition(",")
        if not comma or not key:
            raise TransportConfigError(f"memory spec {shown!r}: {redact_tokens(pair)!r} is not KEY,VALUE")
        if key == "token":
            raise TransportConfigError(
                f"memory spec {shown!r}: a token on the command line can be read by every user of this machine "
                "(/proc/PID/cmdline); put it in $SCAD_TOKEN, or in a file only you can read and pass "
                "--token-file FILE (chmod 600 FILE)"
            )
        extra.append((key, value))
    count = int(match["count"] or 1)
    names = [match["name"]] if count <= 1 else [f"{match['name']}@{i}" for i in range(count)]
    if port + len(names) - 1 > 65535:
        raise TransportConfigError(f"memory spec {shown!r}: ports run past 65535")
    impl_name = {"tcp": "rdma_tcp", "rdma": "rdma_uverbs", "uverbs": "rdma_uverbs"}.get(impl, impl)  # Scad's names
    return tuple(
        parse_descriptor(Descriptor(n, impl_name, (("url", f"tcp://{host}:{port + i}"), *extra)).format())
        for i, n in enumerate(names)
    )


def open_descriptor(descriptor: Descriptor | str) -> Transport:
    """Open the transport a descriptor (or its text) describes; the transport is named after it."""
    if isinstance(descriptor, str):
        descriptor = parse_descriptor(descriptor)
    return _transport_class(descriptor.kind).from_config(descriptor.name, dict(descriptor.config))
