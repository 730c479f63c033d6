"""Wire format between the tcp transport (pyzmq DEALER) and the memory server (pyzmq ROUTER).

Every message is a zmq multipart message: one *header* frame, then at most one *payload* frame.
(The ROUTER side also sees the client's identity frame first; it is zmq's, not ours.)

Header frame (little-endian, 40 bytes, then the token)::

    offset size field       meaning
    0      4    magic       b"SCAD"
    4      1    version     1 (a server answers BAD_VERSION to anything else)
    5      1    op          Op below; a reply echoes the request's op
    6      2    status      requests: 0; replies: Status below
    8      8    request id  chosen by the client, echoed in the reply (matches pipelined replies
                            and lets a client drop late replies of a request it gave up on)
    16     8    addr        byte address in the region (READ, WRITE); 0 otherwise
    24     8    length      bytes to read or write; in replies, the bytes moved (INFO: the region size)
    32     2    token len   T, the length of the token that follows (0 = none; always 0 in replies)
    34     6    reserved    zero
    40     T    token       the shared secret, when the server requires one (≤ 1024 bytes)

Operations and their frames (request → reply):

    PING           [hdr]                         → [hdr]
    INFO           [hdr]                         → [hdr, JSON {"size", "max_request", "rdma", "version",
                                                         "stream_port", "stream_max"}]
    READ           [hdr(addr, length)]           → [hdr, payload of `length` bytes]
    WRITE          [hdr(addr, length), payload]  → [hdr]
    RDMA_CONNECT   [hdr, client ConnInfo]        → [hdr, server ConnInfo]   (see scadrt.transports.rdma)

An error reply has a non-zero status and a payload frame with a UTF-8 message. The server answers
every request it can attribute to a client, including malformed ones (BAD_FRAME: short header,
wrong magic, wrong frame count, payload length ≠ header length), and keeps serving. ``length``
above the server's ``max_request`` gets TOO_LARGE; clients split large transfers into chunks of at
most that size and keep several chunks in flight. Payload frames are sent zero-copy
(``copy=False``), which pyzmq turns into a copy below its threshold (64 KiB) where that is cheaper.

**The stream channel** (small ops, low latency). pyzmq's I/O threads add two thread hops to every
round trip (≈3× a plain TCP round trip, docs benchmarks.md), so ops of at most ``STREAM_MAX``
bytes may instead go over a plain TCP connection (TCP_NODELAY) to the port INFO reports as
``stream_port``. Same header, same checks, framed as a byte stream:

    request  = header (40 B + token) [+ payload of `length` bytes, WRITE only]
    reply    = header [+ payload of `length` bytes: READ data, or the UTF-8 message of an error]

Only READ, WRITE and PING are served there, of at most ``stream_max`` bytes. After an error reply
the server closes the connection (the stream cannot be trusted to be in step any more); the client
reconnects on its next op. A server at its connection cap answers a new connection at once with a
BUSY reply (request id 0) and closes it, before reading any request: nothing sent on it took
effect, and the client carries its ops over zmq instead.

**Order and atomicity** (what the server guarantees; docs in :mod:`scadrt.transports.memory_server`):
requests on one connection (one zmq socket, or one stream connection) take effect in the order
they were sent, and each reply reflects exactly the requests before it. Each READ and WRITE request
is atomic against every other request, on any connection or channel: a READ returns the range as it
was between two WRITEs, never part of a concurrent one. A client transfer larger than one request
(the tcp client splits at ``chunk_size`` and ``max_request``) is atomic only chunk by chunk.

**Tokens** never travel on a command line: :func:`read_token_file` reads one from a file only its
owner can read (mode 0600), the other way is the ``SCAD_TOKEN`` environment variable.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum

import zmq

from scadrt.errors import (
    AccessDeniedError,
    ConnectionLostError,
    OutOfBoundsError,
    ProtocolError,
    TransportClosedError,
    TransportConfigError,
    TransportError,
    clip,
)

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_TOKEN",
    "STREAM_MAX",
    "VERSION",
    "FrameError",
    "Header",
    "Op",
    "Status",
    "map_zmq_errors",
    "pack_request",
    "read_token_file",
    "recv_exact",
    "send_all",
    "status_error",
]

MAGIC = b"SCAD"
VERSION = 1
MAX_TOKEN = 1024
_HEADER = struct.Struct("<4sBBHQQQH6x")
HEADER_SIZE = _HEADER.size  # 40
_U64 = (1 << 64) - 1
#: the largest op a client sends over the stream channel (larger ones go over zmq, zero-copy)
STREAM_MAX = 64 << 10


class Op(IntEnum):
    PING = 0
    INFO = 1
    READ = 2
    WRITE = 3
    RDMA_CONNECT = 4


class Status(IntEnum):
    OK = 0
    BAD_FRAME = 1
    BAD_VERSION = 2
    UNKNOWN_OP = 3
    OUT_OF_BOUNDS = 4
    TOO_LARGE = 5
    UNAUTHORIZED = 6
    UNSUPPORTED = 7
    INTERNAL = 8
    #: the server is at its connection cap (stream channel): nothing on that connection took effect
    BUSY = 9


class FrameError(Exception):
    """A frame could not be decoded; ``status`` is what the server answers, ``request_id`` if known."""

    def __init__(self, status: Status, message: str, request_id: int = 0, op: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id
        self.op = op


@dataclass(frozen=True, slots=True)
class Header:
    """One decoded header frame (see the module docstring for the layout)."""

    op: int
    request_id: int
    addr: int = 0
    length: int = 0
    status: int = Status.OK
    token: bytes = b""
    version: int = VERSION

    def encode(self) -> bytes:
        return _HEADER.pack(MAGIC, self.version, self.op, self.status, self.request_id & _U64,
                            self.addr, self.length, len(self.token)) + self.token

    @classmethod
    def decode_reply(cls, data: bytes | memoryview) -> tuple[int, int, int, int]:
        """``(op, request_id, status, length)`` of a reply header (hot path: no Header object)."""
        if len(data) != HEADER_SIZE:
            raise FrameError(Status.BAD_FRAME, f"reply header of {len(data)} B, expected {HEADER_SIZE}")
        magic, version, op, status, request_id, _, length, _ = _HEADER.unpack(data)
        if magic != MAGIC or version != VERSION:
            raise FrameError(Status.BAD_FRAME, f"bad magic or version in a reply ({bytes(magic)!r}, {version})")
        return op, request_id, status, length

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Header:
        """Decode a header frame; raise :class:`FrameError` for anything malformed."""
        if len(data) < HEADER_SIZE:
            raise FrameError(Status.BAD_FRAME, f"header frame of {len(data)} B, expected at least {HEADER_SIZE}")
        magic, version, op, status, request_id, addr, length, token_len = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise FrameError(Status.BAD_FRAME, f"bad magic {bytes(magic)!r}, expected {MAGIC!r}")
        if version != VERSION:
            raise FrameError(Status.BAD_VERSION, f"protocol version {version}, this side speaks {VERSION}",
                             request_id, op)
        if token_len > MAX_TOKEN or len(data) != HEADER_SIZE + token_len:
            raise FrameError(Status.BAD_FRAME, f"header frame of {len(data)} B does not match its token "
                             f"length {token_len}", request_id, op)
        token = bytes(data[HEADER_SIZE:]) if token_len else b""
        return cls(op, request_id, addr, length, status, token, version)

    def reply(self, status: Status = Status.OK, length: int | None = None) -> Header:
        """The header of the reply to this request."""
        return Header(self.op, self.request_id, self.addr, self.length if length is None else length, status)

    def encode_reply(self, length: int | None = None) -> bytes:
        """``self.reply(Status.OK, length).encode()``, without building a Header (hot path)."""
        return _HEADER.pack(MAGIC, VERSION, self.op, Status.OK, self.request_id & _U64, self.addr,
                            self.length if length is None else length, 0)


def pack_request(op: int, request_id: int, addr: int, length: int, token: bytes) -> bytes:
    """``Header(op, request_id, addr, length, token=token).encode()``, without building a Header (hot path)."""
    return _HEADER.pack(MAGIC, VERSION, op, 0, request_id & _U64, addr, length, len(token)) + token


def recv_exact(sock: socket.socket, view: memoryview) -> bool:
    """Fill ``view`` from ``sock``; False if the peer closed the connection first."""
    while len(view):
        received = sock.recv_into(view)
        if not received:
            return False
        view = view[received:]
    return True


def send_all(sock: socket.socket, parts: list[bytes | memoryview]) -> None:
    """Send ``parts`` back to back with as few system calls as possible (``sendmsg``)."""
    views = [memoryview(part) for part in parts]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


def read_token_file(path: str) -> str:
    """The token in the file ``path`` (a trailing newline is not part of it).

    Raise :class:`TransportConfigError` if the file is readable or writable by group or others
    (``chmod 600`` fixes that), is not a regular file, cannot be read, is empty, longer than
    ``MAX_TOKEN`` bytes or not UTF-8. The mode is checked on the opened file, not on the name.
    """
    shown = clip(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise TransportConfigError(f"cannot read the token file {shown}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TransportConfigError(f"the token file {shown} is not a regular file")
        if info.st_mode & 0o077:
            raise TransportConfigError(f"the token file {shown} is accessible to other users (mode "
                                       f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 {shown}")
        data = os.read(fd, MAX_TOKEN + 3)
    except OSError as exc:
        raise TransportConfigError(f"cannot read the token file {shown}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    token = data.removesuffix(b"\n").removesuffix(b"\r")
    if not 0 < len(token) <= MAX_TOKEN:
        raise TransportConfigError(f"the token in {shown} must be 1 to {MAX_TOKEN} bytes long")
    try:
        return token.decode()
    except UnicodeDecodeError as exc:
        raise TransportConfigError(f"the token in {shown} is not UTF-8 text") from exc


def status_error(status: int, message: str) -> TransportError:
    """The scadrt error a client raises for an error reply."""
    if status == Status.OUT_OF_BOUNDS:
        return OutOfBoundsError(message)
    if status == Status.UNAUTHORIZED:
        return AccessDeniedError(message)
    try:
        name = Status(status).name
    except ValueError:
        name = f"status {status}"
    return ProtocolError(f"{message} ({name})")


# errno values that mean "the address/endpoint you gave is wrong" rather than "the network failed"
_CONFIG_ERRNOS = {errno.EINVAL, errno.EADDRINUSE, errno.EADDRNOTAVAIL, zmq.EPROTONOSUPPORT, zmq.ENOCOMPATPROTO}


@contextmanager
def map_zmq_errors(where: str) -> Iterator[None]:
    """Turn pyzmq exceptions raised inside the block into scadrt errors (``raise … from exc``).

    ``where`` names the endpoint for the message. Nothing from zmq leaves this block.
    """
    try:
        yield
    except zmq.Again as exc:
        raise ConnectionLostError(f"{where}: timed out ({exc.strerror})") from exc
    except zmq.ContextTerminated as exc:
        raise TransportClosedError(f"{where}: the zmq context was terminated") from exc
    except zmq.ZMQError as exc:
        if exc.errno in _CONFIG_ERRNOS:
            raise TransportConfigError(f"{where}: {exc.strerror}") from exc
        if exc.errno == zmq.ENOTSOCK:
            raise TransportClosedError(f"{where}: the socket is closed") from exc
        raise ConnectionLostError(f"{where}: {exc.strerror}") from exc
