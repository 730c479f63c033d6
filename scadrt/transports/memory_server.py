"""The memory server: one memory element's region, served over tcp (pyzmq ROUTER) to many clients.

Run it as ``scadc memory-server --listen tcp://127.0.0.1:2333 --size 512MiB`` or
``python -m scadrt.transports.memory_server …`` (the same options); engines and tests start it
as a child process with :mod:`scadrt.transports.launcher`. When it is ready it prints exactly
one line to stdout, ``listening on tcp://HOST:PORT`` (with the real port when asked for port 0),
and logs to stderr.

Behaviour (the wire format is in :mod:`scadrt.transports.protocol`):

1. The region is ``--size`` zeroed bytes (allocated lazily by the OS: untouched pages cost nothing).
   A size the machine cannot allocate is a user error ("cannot allocate the region of N: …").
2. Binding to anything but a loopback address requires a shared token; with a token set, every
   request must carry it. The token comes from ``$SCAD_TOKEN`` or ``--token-file FILE`` (a file
   only its owner can read, mode 0600), never from the command line, where every user of the
   machine can read it (``/proc/PID/cmdline``): ``--token VALUE`` is refused.
3. Every request gets a reply: malformed or truncated frames, unknown ops, out-of-bounds ranges,
   oversize requests and wrong tokens get an error reply, and the server keeps serving.
   (A single frame larger than twice ``--max-request`` is refused by zmq itself, which drops that
   client's connection instead; that bounds the memory one request can pin.) Refusals are logged
   at most ``_LOG_BURST`` a second; then one line says how many were not logged.
4. **Order and atomicity.** One thread serves the zmq socket for all clients, one request at a
   time, in arrival order per client. Requests on one connection take effect in the order they
   were sent: a READ never sees a WRITE sent after it. Every READ and WRITE request, on either
   channel, is atomic against all others (one lock, held only while bytes are copied to or from
   the region): a READ sees each concurrent WRITE entirely or not at all. That is why READ replies
   are copied out of the region under that lock (into reused buffers, see ``_ReplyBuffers``)
   rather than sent zero-copy from it: zmq sends them later, from its I/O thread, and a WRITE
   that came behind could change them meanwhile. (Waiting for zmq to finish sending before such
   a WRITE would let one client that stops reading stall every writer.) The copy costs about
   40% more server CPU per byte read. A client transfer larger than one request is atomic only
   request by request. Writes made behind the server's back (an embedding process writing
   ``region``, one-sided RDMA) are not covered. Copies go through numpy or libzmq with the GIL
   released, so a server embedded in another process (a Ray actor, an engine) does not stall
   that process's other threads.
5. The *stream channel* (small ops over a plain TCP connection, see the protocol docstring) listens
   on the same host, on a port of its own that INFO reports; one thread per connection, each
   blocked in ``recv`` (GIL released) until its client sends. Same checks, same region. At most
   ``--max-connections`` connections (and so threads) at once: one more is answered BUSY and
   closed, and its client uses zmq. A connection that stops for ``--idle-timeout`` seconds in the
   middle of a request, or stops reading its replies, is closed; idle *between* requests is fine.
   When the process runs out of file descriptors, accepting pauses (logged once, retried with a
   back-off up to 1 s) and resumes when descriptors are free again.
6. SIGTERM and SIGINT stop it cleanly (exit status 0) within about 0.1 s. With
   ``--exit-with-stdin`` it also stops when its stdin reaches end of file (the process that
   started it holds the pipe's write end and died, even by SIGKILL); with
   ``--exit-with-parent PID`` it asks the kernel for SIGTERM when its parent dies
   (``PR_SET_PDEATHSIG``). :func:`~scadrt.transports.launcher.launch_memory_server` sets both
   (the second only when called from the main thread: the kernel sends the signal when the
   parent *thread* exits).
7. IPv6: ``--listen tcp://[::1]:0`` works (zmq's IPV6 option is set for IPv6 addresses).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import hmac
import json
import logging
import math
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Self

import zmq

from scadrt.errors import TransportConfigError, TransportError, UserError, clip
from scadrt.sizes import format_size, parse_size
from scadrt.transports.address import is_ipv6, is_loopback, parse_listen
from scadrt.transports.protocol import (
    HEADER_SIZE,
    MAX_TOKEN,
    STREAM_MAX,
    FrameError,
    Header,
    Op,
    Status,
    map_zmq_errors,
    read_token_file,
    recv_exact,
    send_all,
)
from scadrt.transports.server_options import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_REQUEST,
    add_arguments,
)

# numpy (through scadrt.transports.base) is imported where the region and reply buffers are made
# and copied, not here: `--help`, argument errors and `scadc`'s parser stay without it
if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MemoryServer",
    "ServerConfig",
    "main",
    "run_from_args",
]

log = logging.getLogger("scadrt.memory_server")

_POLL_MS = 100  # how often the loop checks for stop(): bounds the shutdown latency
_KNOWN_OPS = frozenset(int(op) for op in Op)
_LOG_BURST = 5  # refusals logged per second (rule 3); the rest are counted
#: errnos of accept() that mean "out of descriptors or memory now", not "this connection failed"
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_MAX_BACKOFF = 1.0
#: refused connections kept open at once until their client has read the BUSY reply
_MAX_REFUSED = 64
_PR_SET_PDEATHSIG = 1
#: READ replies this large are copied into pooled buffers (smaller ones: bytes; pyzmq copies those anyway)
_POOLED_MIN = 64 << 10
#: free reply buffers kept for reuse
_POOL_BYTES = 64 << 20
#: the frames of a reply, as zmq sends them: ``[identity, header, payload?]``
_Reply = list[zmq.Frame | bytes | memoryview]
_TOKEN_ON_ARGV = ("--token puts the secret on the command line, where every user of this machine can read it "
                  "(/proc/PID/cmdline); set SCAD_TOKEN in the environment, or use --token-file FILE "
                  "(a file only you can read: chmod 600 FILE)")


def _size_text(nbytes: int) -> str:
    text = format_size(nbytes)
    return text if len(text) <= 40 else f"a {len(str(nbytes))}-digit number of bytes"


@dataclass(frozen=True)
class ServerConfig:
    """What a memory server serves and where."""

    #: region size in bytes
    size: int
    #: zmq endpoint to bind, ``tcp://HOST:PORT``; port 0 picks a free port
    listen: str = DEFAULT_LISTEN
    #: shared secret every request must carry; required for a non-loopback ``listen``
    token: str | None = field(default=None, repr=False)
    #: the largest READ or WRITE one request may move (clients chunk to this)
    max_request: int = DEFAULT_MAX_REQUEST
    #: open the stream channel for small ops (see the protocol docstring)
    stream: bool = True
    #: its TCP port (0: any free one; INFO tells clients which)
    stream_port: int = 0
    #: stream connections served at once (rule 5)
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: seconds a stream connection may stall mid-request (rule 5)
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT

    def __post_init__(self) -> None:
        if self.size < 1:
            raise TransportConfigError(f"the region size must be at least 1 byte, got {_size_text(self.size)}")
        if not 0 <= self.stream_port <= 65535:
            raise TransportConfigError(f"--stream-port {self.stream_port} is out of range")
        if self.max_request < 1:
            raise TransportConfigError(f"--max-request must be at least 1 byte, got {_size_text(self.max_request)}")
        if self.max_connections < 1:
            raise TransportConfigError(f"--max-connections must be at least 1, got {self.max_connections}")
        if not (math.isfinite(self.idle_timeout) and 0 < self.idle_timeout <= 86400):
            raise TransportConfigError(f"--idle-timeout must be more than 0 and at most 86400 seconds, "
                                       f"got {self.idle_timeout}")
        if self.token is not None and not 0 < len(self.token.encode()) <= MAX_TOKEN:
            raise TransportConfigError(f"the token must be 1 to {MAX_TOKEN} bytes long")
        host, _ = parse_listen(self.listen)
        if not is_loopback(host) and not self.token:
            raise TransportConfigError(
                f"refusing to serve memory on non-loopback address {self.listen} without a token: "
                "anyone who can reach it could read and write the region; set SCAD_TOKEN or --token-file"
            )


class _Throttled:
    """Log warnings at most ``burst`` a second; count the rest and say how many (rule 3)."""

    def __init__(self, burst: int = _LOG_BURST, period: float = 1.0) -> None:
        self._burst, self._period = burst, period
        self._lock = threading.Lock()
        self._window_end = 0.0
        self._logged = 0
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> None:
        with self._lock:
            now = time.monotonic()
            suppressed = self._roll(now)
            self._logged += 1
            emit = self._logged <= self._burst
            if not emit:
                self._suppressed += 1
        if suppressed:
            log.warning("%d more refused requests or dropped connections were not logged", suppressed)
        if emit:
            log.warning(message, *args)

    def flush(self, final: bool = False) -> None:
        """Log the count of a finished window (the server calls this when idle), or of the current
        one too (``final``: when it stops). At most one count line a second either way."""
        with self._lock:
            suppressed = self._roll(time.monotonic(), force=final)
        if suppressed:
            log.warning("%d more refused requests or dropped connections were not logged", suppressed)

    def _roll(self, now: float, force: bool = False) -> int:
        """Start a new window if this one is over; return the count to report."""
        if now >= self._window_end:
            self._window_end, self._logged = now + self._period, 0
        elif not force:
            return 0
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed


class _ReplyBuffers:
    """Buffers for copies of large READ replies, reused once zmq has sent them (rule 4).

    Fresh memory for every reply would cost a page fault per 4 KiB: the allocator gives freed
    megabytes back to the OS, and that doubled the server's CPU time per byte read. A buffer's
    capacity is the next power of two; at most ``limit`` bytes of free buffers are kept.
    """

    def __init__(self, limit: int = _POOL_BYTES) -> None:
        self._limit = limit
        self._free: dict[int, list[np.ndarray]] = {}
        self._kept = 0  # bytes in self._free
        self._lent: list[tuple[zmq.MessageTracker, np.ndarray]] = []

    def take(self, nbytes: int) -> np.ndarray:
        """A buffer of at least ``nbytes``, not in use by any reply zmq has still to send."""
        self._collect()
        capacity = 1 << (nbytes - 1).bit_length()
        free = self._free.get(capacity)
        if free:
            self._kept -= capacity
            return free.pop()
        import numpy as np

        return np.empty(capacity, dtype=np.uint8)

    def lend(self, buffer: np.ndarray, tracker: zmq.MessageTracker) -> None:
        self._lent.append((tracker, buffer))

    def _collect(self) -> None:
        if not self._lent:
            return
        lent = []
        for tracker, buffer in self._lent:
            if not tracker.done:
                lent.append((tracker, buffer))
            elif self._kept + buffer.nbytes <= self._limit:
                self._free.setdefault(buffer.nbytes, []).append(buffer)
                self._kept += buffer.nbytes
        self._lent = lent


class MemoryServer:
    """Serves ``region`` (or ``config.size`` fresh bytes) at ``config.listen``.

    ``bind()`` returns the real endpoint; ``serve_forever()`` runs until ``stop()`` (callable from any
    thread or a signal handler). ``rdma_accept``, if given, answers RDMA_CONNECT requests: it takes
    the client's encoded connection info and returns the server's.
    """

    def __init__(self, config: ServerConfig, region: memoryview | None = None,
                 rdma_accept: Callable[[bytes], bytes] | None = None) -> None:
        self.config = config
        if region is not None and len(region) != config.size:
            raise TransportConfigError(f"region of {len(region)} B given for a server of size {config.size}")
        self.region = region if region is not None else _allocate(config.size)
        self._token = config.token.encode() if config.token else None
        self._rdma_accept = rdma_accept
        self._stop = threading.Event()
        self._socket: zmq.Socket[bytes] | None = None
        self.endpoint: str | None = None
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        #: held while bytes move to or from the region: makes every request atomic (rule 4)
        self._region_lock = threading.Lock()
        self._refusals = _Throttled()
        self._replies = _ReplyBuffers()
        self._lent: np.ndarray | None = None  # the pool buffer of the reply handle() just made
        self._stream_max = min(STREAM_MAX, config.max_request)
        #: port of the stream channel once bound (None: no stream channel)
        self.stream_port: int | None = None
        self._info = b""

    def bind(self) -> str:
        """Bind the listening socket; return the endpoint actually bound (``tcp://127.0.0.1:PORT``)."""
        with map_zmq_errors(f"memory server {self.config.listen}"):
            sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
            try:
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.config.max_request + 4096)
                if is_ipv6(parse_listen(self.config.listen)[0]):
                    sock.setsockopt(zmq.IPV6, 1)
                sock.bind(self.config.listen)
                endpoint: str = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            except BaseException:
                sock.close(linger=0)
                raise
        self._socket, self.endpoint = sock, endpoint
        if self.config.stream:
            try:
                self._start_stream()
            except BaseException:
                self.close()
                raise
        self._info = json.dumps({"size": self.config.size, "max_request": self.config.max_request,
                                 "rdma": self._rdma_accept is not None, "version": 1,
                                 "stream_port": self.stream_port, "stream_max": self._stream_max}).encode()
        return endpoint

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        if self._socket is None:
            self.bind()
        sock = self._socket
        assert sock is not None
        log.info("serving %s on %s%s", format_size(self.config.size), self.endpoint,
                 " (token required)" if self._token else "")
        # a blocking receive with a short timeout (rather than poll, then receive) keeps the request
        # path to one zmq call: measurably lower latency, and stop() is still seen within _POLL_MS
        sock.setsockopt(zmq.RCVTIMEO, _POLL_MS)
        with map_zmq_errors(f"memory server {self.endpoint}"):
            while not self._stop.is_set():
                try:
                    frames = sock.recv_multipart(copy=False)
                except zmq.Again:
                    self._refusals.flush()
                    continue
                reply = self.handle(frames)
                lent, self._lent = self._lent, None
                # ROUTER never blocks on send: a reply to a vanished client is dropped by zmq
                if lent is None:
                    sock.send_multipart(reply, copy=False)
                else:  # only the payload is tracked (the identity frame is zmq's, untracked)
                    sock.send_multipart(reply[:-1], zmq.SNDMORE, copy=False)
                    self._replies.lend(lent, sock.send(reply[-1], copy=False, track=True))
        self._refusals.flush(final=True)
        log.info("stopped")

    def close(self) -> None:
        self._stop.set()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:  # wakes their threads, blocked in recv
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- one request ------------------------------------------------------------------------------

    def handle(self, frames: Sequence[zmq.Frame]) -> _Reply:
        """Answer one request ``[identity, header, payload?]`` with ``[identity, header, payload?]``.

        A READ's payload is a private copy of the range (rule 4). A large one is a buffer of a pool
        (left in ``self._lent``), which :meth:`serve_forever` sends zero-copy and gets back once
        zmq has sent it.
        """
        identity = frames[0]
        try:
            if len(frames) < 2:
                raise FrameError(Status.BAD_FRAME, "message without a header frame")
            header = Header.decode(frames[1].buffer)
        except FrameError as exc:
            return self._error(identity, Header(exc.op, exc.request_id), exc.status, str(exc))
        try:
            return self._dispatch(identity, header, frames[2:])
        except FrameError as exc:
            return self._error(identity, header, exc.status, str(exc))
        except Exception as exc:  # a bug: report it to the client and keep serving the others
            log.exception("internal error on %s", Op(header.op).name if header.op in _KNOWN_OPS else header.op)
            return self._error(identity, header, Status.INTERNAL, f"internal server error: {exc}")

    def _check_request(self, header: Header, limit: int | None = None) -> None:
        """The checks both channels make before touching the region: token, then size and range."""
        if self._token is not None and not hmac.compare_digest(header.token, self._token):
            raise FrameError(Status.UNAUTHORIZED, "wrong token" if header.token else "this server requires a token")
        if header.op in (Op.READ, Op.WRITE):
            if header.length > self.config.max_request:
                raise FrameError(Status.TOO_LARGE, f"{Op(header.op).name} of {header.length} B exceeds the "
                                 f"server's max request of {self.config.max_request} B; split it")
            if limit is not None and header.length > limit:
                raise FrameError(Status.TOO_LARGE, f"{Op(header.op).name} of {header.length} B exceeds the "
                                 f"stream channel's maximum of {limit} B; use the zmq socket")
            if header.addr + header.length > self.config.size:
                raise FrameError(Status.OUT_OF_BOUNDS, f"{Op(header.op).name} of {header.length} B at address "
                                 f"{header.addr} overruns the region ({self.config.size} B)")
        elif header.op not in _KNOWN_OPS:
            raise FrameError(Status.UNKNOWN_OP, f"unknown op {header.op}")

    def _dispatch(self, identity: zmq.Frame, header: Header, payload: Sequence[zmq.Frame]) -> _Reply:
        self._check_request(header)
        op = header.op
        if op == Op.READ:
            self._check_frames(header, payload, 0)
            view = self.region[header.addr : header.addr + header.length]
            if len(view) < _POOLED_MIN:
                with self._region_lock:
                    data: bytes | memoryview = bytes(view)
            else:
                buffer = self._replies.take(len(view))
                pooled = buffer.data[: len(view)]
                from scadrt.transports.base import copy_bytes  # loaded with the region: a dict look-up

                with self._region_lock:
                    copy_bytes(pooled, view)
                data, self._lent = pooled, buffer
            return [identity, header.encode_reply(), data]
        if op == Op.WRITE:
            self._check_frames(header, payload, 1)
            data = payload[0].buffer
            if len(data) != header.length:
                raise FrameError(Status.BAD_FRAME, f"WRITE header says {header.length} B, payload has {len(data)} B")
            from scadrt.transports.base import copy_bytes

            with self._region_lock:
                copy_bytes(self.region[header.addr : header.addr + header.length], data)
            return [identity, header.encode_reply()]
        if op == Op.PING:
            self._check_frames(header, payload, 0)
            return [identity, header.encode_reply()]
        if op == Op.INFO:
            self._check_frames(header, payload, 0)
            return [identity, header.encode_reply(length=self.config.size), self._info]
        if op == Op.RDMA_CONNECT:
            self._check_frames(header, payload, 1)
            if self._rdma_accept is None:
                raise FrameError(Status.UNSUPPORTED, "this memory server does not serve RDMA (start it with --rdma)")
            return [identity, header.encode_reply(), self._rdma_accept(payload[0].bytes)]
        raise FrameError(Status.UNKNOWN_OP, f"unknown op {op}")

    @staticmethod
    def _check_frames(header: Header, payload: Sequence[zmq.Frame], expected: int) -> None:
        if len(payload) != expected:
            name = Op(header.op).name
            raise FrameError(Status.BAD_FRAME, f"{name} takes {expected} payload frame(s), got {len(payload)}")

    def _error(self, identity: zmq.Frame, header: Header, status: Status, message: str) -> _Reply:
        self._refusals.warning("request %d refused: %s", header.request_id, message)
        return [identity, header.reply(status, length=0).encode(), message.encode()]

    # -- the stream channel -------------------------------------------------------------------------

    def _start_stream(self) -> None:
        host, _ = parse_listen(self.config.listen)
        host = "0.0.0.0" if host == "*" else host
        family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
        try:
            listener = socket.create_server((host, self.config.stream_port), family=family)
        except OSError as exc:
            raise TransportConfigError(f"cannot open the stream channel on {host}:{self.config.stream_port}: "
                                       f"{exc.strerror}") from exc
        listener.setblocking(False)
        self._listener, self.stream_port = listener, int(listener.getsockname()[1])
        threading.Thread(target=self._accept_loop, args=(listener,), name="scad-stream-accept", daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        """Accept stream connections until stop(); never gives up on a transient failure (rule 5)."""
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        refused: dict[socket.socket, float] = {}  # connections answered BUSY -> when to close them anyway
        backoff, paused_until, failures = 0.0, 0.0, 0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                wait = _POLL_MS / 1000 if not paused_until else max(0.0, min(_POLL_MS / 1000, paused_until - now))
                for key, _ in selector.select(wait):
                    if key.fileobj is not listener and isinstance(key.fileobj, socket.socket):  # a refused one
                        _drain_refused(selector, refused, key.fileobj)
                now = time.monotonic()
                for conn in [c for c, deadline in refused.items() if deadline <= now]:
                    _forget_refused(selector, refused, conn)
                if paused_until:
                    if now < paused_until:
                        continue
                    paused_until = 0.0
                    try:
                        selector.register(listener, selectors.EVENT_READ)
                    except (ValueError, OSError):
                        return  # closed by close() meanwhile
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if self._stop.is_set() or listener.fileno() < 0:
                        return  # the listener was closed
                    if exc.errno not in _EXHAUSTED:
                        continue  # that one connection failed (ECONNABORTED…); the next may not
                    if not failures:
                        log.error("cannot accept stream connections: %s; retrying every %g s at most until "
                                  "descriptors are free (raise the limit: ulimit -n)", exc.strerror, _MAX_BACKOFF)
                    failures += 1
                    backoff = min(max(2 * backoff, 0.05), _MAX_BACKOFF)
                    paused_until = time.monotonic() + backoff
                    selector.unregister(listener)  # it stays readable: do not spin on it meanwhile
                    continue
                if failures:
                    log.warning("accepting stream connections again, after %d failed attempts", failures)
                    backoff, failures = 0.0, 0
                self._admit(conn, selector, refused)
        finally:
            for conn in list(refused):
                _forget_refused(selector, refused, conn)
            selector.close()

    def _admit(self, conn: socket.socket, selector: selectors.BaseSelector,
               refused: dict[socket.socket, float]) -> None:
        """Serve ``conn`` on a thread of its own, or answer it BUSY if the server is at its cap."""
        with self._lock:
            full = len(self._connections) >= self.config.max_connections
            if not full:
                self._connections.add(conn)
        if not full:
            try:
                # the kernel's timeouts, not settimeout(): Python's own timeout adds a poll() before
                # every recv and send (~3 µs a round trip); these cost nothing until they expire
                # and make a stalled recv or send fail with EAGAIN (BlockingIOError)
                conn.settimeout(None)
                seconds = self.config.idle_timeout
                timeval = struct.pack("@ll", int(seconds), int(seconds % 1 * 1e6))
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                threading.Thread(target=self._serve_stream, args=(conn,), name="scad-stream", daemon=True).start()
                return
            except (OSError, RuntimeError) as exc:  # RuntimeError: "can't start new thread"
                with self._lock:
                    self._connections.discard(conn)
                reason = f"cannot serve it: {exc}"
        else:
            reason = f"already serving {self.config.max_connections} connections (--max-connections)"
        self._refusals.warning("stream connection refused: %s", reason)
        message = f"memory server busy: {reason}; use the zmq socket".encode()
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            conn.send(Header(Op.PING, 0, status=Status.BUSY, length=len(message)).encode() + message)
            conn.shutdown(socket.SHUT_WR)
            if len(refused) < _MAX_REFUSED:
                # closing now, with the client's request unread, would reset the connection and could
                # destroy the reply: close when the client has closed (it does on BUSY), or in 1 s
                selector.register(conn, selectors.EVENT_READ)
                refused[conn] = time.monotonic() + 1.0
                return
        conn.close()

    def _serve_stream(self, conn: socket.socket) -> None:
        """Serve one stream connection until the client leaves, sends something wrong or stalls."""
        head = bytearray(HEADER_SIZE)
        scratch = memoryview(bytearray(self._stream_max))  # the payload stops here: atomic copies (rule 4)
        region = self.region
        try:
            while self._recv_head(conn, memoryview(head)):
                header = Header(0, 0)
                try:
                    token_len = int.from_bytes(head[32:34], "little")
                    if token_len > MAX_TOKEN:
                        raise FrameError(Status.BAD_FRAME, f"token length {token_len} exceeds {MAX_TOKEN}")
                    token = bytearray(token_len)
                    if not recv_exact(conn, memoryview(token)):
                        return
                    header = Header.decode(bytes(head) + token)
                    self._check_request(header, self._stream_max)
                    addr, length = header.addr, header.length
                    if header.op == Op.READ:
                        with self._region_lock:
                            scratch[:length] = region[addr : addr + length]
                        send_all(conn, [header.encode_reply(), scratch[:length]])
                    elif header.op == Op.WRITE:
                        if not recv_exact(conn, scratch[:length]):
                            return  # the client left mid-payload: nothing of it lands
                        with self._region_lock:
                            region[addr : addr + length] = scratch[:length]
                        send_all(conn, [header.encode_reply()])
                    elif header.op == Op.PING:
                        send_all(conn, [header.encode_reply()])
                    else:
                        raise FrameError(Status.UNSUPPORTED, f"{Op(header.op).name} is not served on the stream "
                                         "channel; use the zmq socket")
                except FrameError as exc:
                    # the rest of the stream cannot be trusted to be in step: answer, then hang up
                    message = str(exc).encode()
                    self._refusals.warning("stream request %d refused: %s", exc.request_id or header.request_id, exc)
                    reply = Header(exc.op or header.op, exc.request_id or header.request_id, header.addr,
                                   len(message), exc.status)
                    send_all(conn, [reply.encode(), message])
                    _lingering_close(conn)
                    return
        except (BlockingIOError, TimeoutError):
            self._refusals.warning("stream connection closed: it stalled mid-request or stopped reading for %g s "
                                   "(--idle-timeout)", self.config.idle_timeout)
        except OSError:
            pass  # the client went away mid-request
        except Exception:  # a bug: this connection ends, the server and its other clients go on
            log.exception("internal error on a stream connection")
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _recv_head(self, conn: socket.socket, view: memoryview) -> bool:
        """Wait as long as it takes for a request to start, then for its header to be complete
        (BlockingIOError if that stalls); False if the client closed the connection."""
        while True:
            try:
                received = conn.recv_into(view)
            except BlockingIOError:  # SO_RCVTIMEO expired
                if self._stop.is_set():
                    return False
                continue  # idle between requests is fine
            if not received:
                return False
            return recv_exact(conn, view[received:])


def _allocate(size: int) -> memoryview:
    from scadrt.transports.base import allocate_buffer

    try:
        return allocate_buffer(size)
    except (MemoryError, OverflowError, ValueError) as exc:  # numpy's _ArrayMemoryError is a MemoryError
        raise TransportConfigError(f"cannot allocate the region of {_size_text(size)}: {clip(str(exc))}") from exc


def _drain_refused(selector: selectors.BaseSelector, refused: dict[socket.socket, float], conn: socket.socket) -> None:
    try:
        if conn.recv(1 << 16):
            return
    except BlockingIOError:
        return
    except OSError:
        pass
    _forget_refused(selector, refused, conn)


def _forget_refused(selector: selectors.BaseSelector, refused: dict[socket.socket, float], conn: socket.socket) -> None:
    refused.pop(conn, None)
    with contextlib.suppress(KeyError, ValueError, OSError):
        selector.unregister(conn)
    conn.close()


def _lingering_close(conn: socket.socket) -> None:
    """Send FIN after the error reply, then discard what the client still sends, until it closes.

    Closing a socket with unread input makes the kernel send RST, and an RST can destroy the error
    reply before the client has read it (e.g. the payload of a refused WRITE is still in flight).
    """
    scratch = memoryview(bytearray(1 << 16))
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(1.0)
        for _ in range(1024):  # at most 64 MiB, at most ~1 s of silence
            if not conn.recv_into(scratch):
                break


# -- command line ----------------------------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    if args.token is not None:
        raise TransportConfigError(_TOKEN_ON_ARGV)
    try:
        size = parse_size(args.size)
        max_request = parse_size(args.max_request)
    except (ValueError, OverflowError) as exc:
        raise TransportConfigError(clip(str(exc))) from exc
    if args.token_file is not None:
        token: str | None = read_token_file(args.token_file)
    else:
        token = os.environ.get("SCAD_TOKEN") or None
    return ServerConfig(size=size, listen=args.listen, token=token, max_request=max_request,
                        stream=not args.no_stream, stream_port=args.stream_port,
                        max_connections=args.max_connections, idle_timeout=args.idle_timeout)


def _exit_with_parent(pid: int) -> bool:
    """Ask for SIGTERM when the parent dies; False if it is already gone (we were reparented)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == pid  # checked after prctl: a death in between is not missed


def _watch_stdin(server: MemoryServer) -> None:
    with contextlib.suppress(OSError):
        while os.read(0, 4096):
            pass
    log.info("stdin closed (the process that started this server is gone): shutting down")
    server.stop()


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT (or end of stdin, or the parent's death); return the exit status (0)."""
    config = config_from_args(args)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s memory-server %(levelname)s %(message)s")
    if args.exit_with_parent is not None and not _exit_with_parent(args.exit_with_parent):
        log.info("the parent process %d is already gone: not starting", args.exit_with_parent)
        return 0
    rdma = None
    try:
        if args.rdma is not None:
            from scadrt.transports.rdma import RdmaServerEndpoint

            try:
                rdma = RdmaServerEndpoint(config.size, device=None if args.rdma == "auto" else args.rdma)
            except (MemoryError, OverflowError) as exc:
                raise TransportConfigError(f"cannot allocate the region of {_size_text(config.size)}: "
                                           f"{clip(str(exc))}") from exc
        server = MemoryServer(config, region=rdma.region if rdma else None, rdma_accept=rdma.accept if rdma else None)
        endpoint = server.bind()
    except (TransportError, UserError) as exc:  # address in use, no RDMA device...: the user's to fix
        if rdma is not None:
            rdma.close()
        if isinstance(exc, UserError):
            raise
        raise TransportConfigError(str(exc)) from exc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("got %s, shutting down", signal.Signals(signum).name)
        server.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    if args.exit_with_stdin:
        threading.Thread(target=_watch_stdin, args=(server,), name="scad-stdin", daemon=True).start()
    try:
        print(f"listening on {endpoint}", flush=True)
        server.serve_forever()
    finally:
        server.close()
        if rdma is not None:
            rdma.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scadrt.transports.memory_server",
                                     description="Serve one memory element's region over tcp.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except UserError as exc:
        print(f"memory-server: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
