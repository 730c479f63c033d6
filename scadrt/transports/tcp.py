"""The ``tcp`` transport: a pyzmq DEALER talking to a memory server (``scadc memory-server``).

Wire format: :mod:`scadrt.transports.protocol`. What this client adds on top of it:

- **Connecting**: zmq connects in the background; ``TcpTransport(url)`` sends INFO (which also
  checks the token and learns the region size) and re-sends it at intervals doubling from 1 ms
  until a reply arrives or ``connect_timeout`` passes, then raises :class:`~scadrt.errors.ConnectionLostError`.
- **No hangs**: every send and receive has a deadline (``timeout``, the longest wait for *one*
  reply); a dead server, a lost connection or a stopped process gives ``ConnectionLostError``
  instead of blocking forever (Scad's transports waited without timeout, reference-notes §10.12).
  zmq reconnects on its own, so the same transport works again once the server is back.
- **Small ops** (at most ``STREAM_MAX`` bytes) go over the server's stream channel, a plain TCP
  connection opened on first use, when the server offers one (``stream=False`` turns it off):
  pyzmq's I/O threads cost two thread hops per round trip, which dominate small ops. If that
  connection cannot be opened, or the server answers it BUSY (at its connection cap: nothing sent
  on it took effect), the zmq socket carries small ops too, and the stream is tried again after
  ``_STREAM_RETRY`` seconds.
- **Tokens**: ``token`` from the descriptor, else the file ``token_file`` (mode 0600, see
  :func:`~scadrt.transports.protocol.read_token_file`), else ``$SCAD_TOKEN``.
- **IPv6**: ``tcp://[::1]:PORT`` works (zmq's IPV6 option is set for an IPv6 address).
- **Large transfers**: over zmq, split into chunks of at most the server's ``max_request`` (and
  ``chunk_size``), with up to ``window`` chunks in flight; write payloads are sent zero-copy from
  ``buf``, read payloads are received straight into ``buf`` (``recv_into``).
- **Order and atomicity** (the server's rules, see :mod:`scadrt.transports.protocol`): every op
  waits for its replies, so this client's ops take effect in program order; each request is atomic
  against other clients', so a read or write of at most ``chunk_size`` (and the server's
  ``max_request``) bytes is too, a larger one only chunk by chunk.
- **Late replies**: every request has a fresh id; a reply whose id is not awaited (the answer to a
  request given up on after a timeout) is dropped.
- pyzmq errors never escape: :func:`~scadrt.transports.protocol.map_zmq_errors` maps them.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import zmq

from scadrt.errors import ConnectionLostError, ProtocolError, TransportConfigError
from scadrt.sizes import parse_size
from scadrt.transports.address import is_ipv6, parse_listen
from scadrt.transports.base import Transport
from scadrt.transports.protocol import (
    HEADER_SIZE,
    MAX_TOKEN,
    STREAM_MAX,
    FrameError,
    Header,
    Op,
    Status,
    map_zmq_errors,
    pack_request,
    read_token_file,
    recv_exact,
    send_all,
    status_error,
)

__all__ = ["DEFAULT_CHUNK", "DEFAULT_TIMEOUT", "DEFAULT_WINDOW", "TcpTransport"]

DEFAULT_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CHUNK = 1 << 20
DEFAULT_WINDOW = 4
_STREAM_RETRY = 1.0  # seconds on zmq only after the server answered a stream connection BUSY


class TcpTransport(Transport):
    """A transport to the memory server at ``url`` (``tcp://HOST:PORT``).

    ``token`` defaults to the file ``token_file``, then to the ``SCAD_TOKEN`` environment
    variable, when opened from a descriptor.
    ``timeout`` bounds the wait for each reply, ``connect_timeout`` the initial handshake.
    """

    kind = "tcp"
    config_keys: ClassVar[tuple[str, ...]] = ("url", "token", "token_file", "timeout", "connect_timeout",
                                              "chunk_size", "window", "stream")

    def __init__(self, url: str, *, name: str = "tcp", token: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, chunk_size: int = DEFAULT_CHUNK,
                 window: int = DEFAULT_WINDOW, stream: bool = True) -> None:
        super().__init__(name)
        self._host = parse_listen(url)[0]  # validates tcp://HOST:PORT
        if timeout <= 0 or connect_timeout <= 0:
            raise TransportConfigError(f"{self}: timeouts must be positive")
        if chunk_size < 1 or window < 1:
            raise TransportConfigError(f"{self}: chunk_size and window must be at least 1")
        self.url = url
        self._token = token.encode() if token else b""
        if len(self._token) > MAX_TOKEN:
            raise TransportConfigError(f"{self}: the token is longer than {MAX_TOKEN} bytes")
        self.timeout = timeout
        self._window = window
        self._head = memoryview(bytearray(HEADER_SIZE))  # reply headers on the stream channel land here
        # random start (from secrets: the global `random` is the user program's state, never ours):
        # ids of a new transport never match late replies meant for an older one
        self._ids = itertools.count(secrets.randbits(48))
        self._where = f"{self} at {url}"
        with map_zmq_errors(self._where):
            sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
            try:
                sock.setsockopt(zmq.LINGER, 0)
                # queue messages only on a completed connection: with no server, sends time out
                # (and we say so) instead of piling up in a queue that is never delivered
                sock.setsockopt(zmq.IMMEDIATE, 1)
                sock.setsockopt(zmq.RECONNECT_IVL, 50)
                sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
                sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
                sock.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
                if is_ipv6(self._host):
                    sock.setsockopt(zmq.IPV6, 1)
                sock.connect(url)
            except BaseException:
                sock.close(linger=0)
                raise
        self._sock: zmq.Socket[bytes] = sock
        try:
            info = self._handshake(connect_timeout)
        except BaseException:
            sock.close(linger=0)
            raise
        self._size = int(info["size"])
        self.max_request = int(info["max_request"])
        self.server_rdma = bool(info.get("rdma", False))
        self._chunk = min(chunk_size, self.max_request)
        port, limit = info.get("stream_port"), info.get("stream_max")
        self._stream_port: int | None = int(port) if stream and port else None
        self._stream_max = min(int(limit or 0), STREAM_MAX, self.max_request)
        self._stream: socket.socket | None = None
        self._stream_retry = 0.0  # monotonic time before which the stream is not tried (after BUSY)
        self._connect_timeout = connect_timeout

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, str]) -> TcpTransport:
        cls.check_config_keys(name, config)
        if "url" not in config:
            raise TransportConfigError(f"transport {name!r} (tcp): needs url,tcp://HOST:PORT")
        if "token" in config and "token_file" in config:
            raise TransportConfigError(f"transport {name!r} (tcp): give token or token_file, not both")
        token = config.get("token") or None
        if "token_file" in config:
            token = read_token_file(config["token_file"])
        options: dict[str, Any] = {"token": token or os.environ.get("SCAD_TOKEN") or None}
        convert: dict[str, Any] = {"timeout": float, "connect_timeout": float, "chunk_size": parse_size, "window": int,
                                   "stream": _boolean}
        for key, to_value in convert.items():
            if key in config:
                try:
                    options[key] = to_value(config[key])
                except ValueError as exc:
                    raise TransportConfigError(f"transport {name!r} (tcp): bad {key} {config[key]!r}: {exc}") from exc
        return cls(config["url"], name=name, **options)

    @property
    def size(self) -> int:
        return self._size

    def ping(self) -> None:
        """One round trip to the server; raises if it does not answer within ``timeout``."""
        self._check_open()
        self.request(Op.PING)

    def request(self, op: Op, payload: bytes | None = None) -> bytes:
        """Send one control request (PING, INFO, RDMA_CONNECT) and return the reply's payload."""
        self._check_open()
        rid = next(self._ids)
        frames = [Header(op, rid, token=self._token).encode()]
        if payload is not None:
            frames.append(payload)
        with map_zmq_errors(self._where):
            self._send(frames)
            while True:
                header, more = self._recv_header()
                if header.request_id != rid:
                    self._drain(more)
                    continue
                body = self._sock.recv() if more else b""
                self._drain(self._more())
                if header.status != Status.OK:
                    raise status_error(header.status, f"{self._where}: {body.decode(errors='replace')}")
                return body

    # -- data path --------------------------------------------------------------------------------

    def _read(self, addr: int, dst: memoryview) -> None:
        if not (len(dst) <= self._stream_max and self._stream_ready() and self._stream_op(Op.READ, addr, dst)):
            self._transfer(Op.READ, addr, dst)

    def _write(self, addr: int, src: memoryview) -> None:
        if not (len(src) <= self._stream_max and self._stream_ready() and self._stream_op(Op.WRITE, addr, src)):
            self._transfer(Op.WRITE, addr, src)

    # -- the stream channel (small ops) -------------------------------------------------------------

    def _stream_ready(self) -> bool:
        """True if the stream connection is open (opening it if needed); False: use zmq."""
        if self._stream is not None:
            return True
        if self._stream_port is None or time.monotonic() < self._stream_retry:
            return False
        try:
            conn = socket.create_connection((self._host, self._stream_port), timeout=self._connect_timeout)
        except OSError:
            # a restarted server listens on a new stream port: ask (over zmq, with its timeout) and
            # retry once; if that fails too (a firewall passing only zmq's port?), zmq does it all
            info = json.loads(self.request(Op.INFO))
            self._size, port = int(info["size"]), info.get("stream_port")
            self._stream_port = None
            if not port:
                return False
            try:
                conn = socket.create_connection((self._host, int(port)), timeout=self._connect_timeout)
            except OSError:
                return False
            self._stream_port = int(port)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(self.timeout)
        self._stream = conn
        return True

    def _stream_op(self, op: Op, addr: int, view: memoryview) -> bool:
        """Do one op on the stream connection; False if the server refused the connection (BUSY)
        before reading anything from it, so the op did not happen: the caller sends it over zmq."""
        conn = self._stream
        assert conn is not None
        rid = next(self._ids)
        header = pack_request(op, rid, addr, len(view), self._token)
        head = self._head
        try:
            send_all(conn, [header, view] if op == Op.WRITE else [header])
            if not recv_exact(conn, head):
                raise ConnectionLostError(f"{self._where}: the memory server closed the connection")
            _, reply_id, status, length = Header.decode_reply(head)
            if status == Status.BUSY:
                self._stream = None
                self._stream_retry = time.monotonic() + _STREAM_RETRY
                conn.close()
                return False
            if reply_id != rid:
                raise ProtocolError(f"{self._where}: reply to request {reply_id}, expected {rid}")
            if status != Status.OK:
                message = bytearray(min(length, 1 << 16))
                recv_exact(conn, memoryview(message))
                raise status_error(status, f"{self._where}: {message.decode(errors='replace')}")
            if op == Op.READ and not (length == len(view) and recv_exact(conn, view)):
                raise ProtocolError(f"{self._where}: READ reply of {length} B, expected {len(view)} B")
            return True
        except BaseException as exc:
            # after any failure the stream may be out of step: drop it; the next op reconnects
            self._stream = None
            conn.close()
            if isinstance(exc, FrameError):
                raise ProtocolError(f"{self._where}: malformed reply: {exc}") from exc
            if isinstance(exc, TimeoutError):
                raise ConnectionLostError(
                    f"{self._where}: no reply from the memory server within {self.timeout:g} s"
                ) from exc
            if isinstance(exc, OSError):
                raise ConnectionLostError(f"{self._where}: {exc.strerror or exc}") from exc
            raise

    def _transfer(self, op: Op, addr: int, view: memoryview) -> None:
        chunk, total = self._chunk, len(view)
        pending: dict[int, memoryview] = {}
        pos = 0
        with map_zmq_errors(self._where):
            while pos < total or pending:
                while pos < total and len(pending) < self._window:
                    part = view[pos : pos + chunk]
                    rid = next(self._ids)
                    header = pack_request(op, rid, addr + pos, len(part), self._token)
                    self._send([header, part] if op == Op.WRITE else [header])
                    pending[rid] = part
                    pos += len(part)
                self._complete_one(pending)

    def _complete_one(self, pending: dict[int, memoryview]) -> None:
        """Receive replies until one of ``pending`` completes; raise if it is an error."""
        while True:
            header, more = self._recv_header()
            part = pending.pop(header.request_id, None)
            if part is None:  # a late reply to a request we gave up on
                self._drain(more)
                continue
            if header.status != Status.OK:
                message = self._sock.recv().decode(errors="replace") if more else "(no message)"
                self._drain(self._more())
                raise status_error(header.status, f"{self._where}: {message}")
            if header.op == Op.READ:
                if not more:
                    raise ProtocolError(f"{self._where}: READ reply without payload")
                received = self._sock.recv_into(part)
                if received != len(part) or self._more():
                    self._drain(self._more())
                    raise ProtocolError(f"{self._where}: READ reply of {received} B, expected {len(part)} B")
            elif more:
                self._drain(more)
                raise ProtocolError(f"{self._where}: unexpected payload in a {Op(header.op).name} reply")
            return

    # -- socket helpers (inside map_zmq_errors) -------------------------------------------------------

    def _send(self, frames: list[Any]) -> None:
        try:
            self._sock.send_multipart(frames, copy=False)
        except zmq.Again:
            raise ConnectionLostError(
                f"{self._where}: not connected to the memory server for {self.timeout:g} s (is it running?)"
            ) from None

    def _recv_header(self) -> tuple[Header, bool]:
        try:
            raw = self._sock.recv()
        except zmq.Again:
            raise ConnectionLostError(
                f"{self._where}: no reply from the memory server within {self.timeout:g} s"
            ) from None
        more = self._more()
        try:
            return Header.decode(raw), more
        except FrameError as exc:
            self._drain(more)
            raise ProtocolError(f"{self._where}: malformed reply: {exc}") from exc

    def _more(self) -> bool:
        """Whether more frames of the message last received follow (pyzmq types RCVMORE loosely)."""
        return bool(self._sock.rcvmore)

    def _drain(self, more: bool) -> None:
        while more:
            self._sock.recv()
            more = self._more()

    def _handshake(self, connect_timeout: float) -> dict[str, Any]:
        """INFO, re-sent until answered or ``connect_timeout`` passes (see the module docstring)."""
        deadline = time.monotonic() + connect_timeout
        # from a millisecond: zmq's connect to a local server is done in well under one, and the
        # first send, made before it is, used to wait 50 ms for nothing (in every instance)
        interval = 0.001
        sent: set[int] = set()
        with map_zmq_errors(self._where):
            while True:
                rid = next(self._ids)
                try:
                    self._sock.send(Header(Op.INFO, rid, token=self._token).encode(), zmq.NOBLOCK)
                    sent.add(rid)
                except zmq.Again:
                    pass  # not connected yet: zmq keeps trying in the background
                wait = min(interval, deadline - time.monotonic())
                while wait > 0 and sent and self._sock.poll(int(wait * 1000) + 1, zmq.POLLIN):
                    header, more = self._recv_header()
                    if header.request_id not in sent:
                        self._drain(more)
                    else:
                        body = self._sock.recv() if more else b""
                        self._drain(self._more())
                        if header.status != Status.OK:
                            raise status_error(header.status, f"{self._where}: {body.decode(errors='replace')}")
                        try:
                            info: dict[str, Any] = json.loads(body)
                            int(info["size"]), int(info["max_request"])
                        except (ValueError, KeyError, TypeError) as exc:
                            raise ProtocolError(f"{self._where}: malformed INFO reply {body[:80]!r}") from exc
                        return info
                    wait = min(interval, deadline - time.monotonic())
                if time.monotonic() >= deadline:
                    raise ConnectionLostError(
                        f"{self._where}: cannot reach the memory server within {connect_timeout:g} s (is it running?)"
                    )
                if wait > 0 and not sent:
                    time.sleep(wait)
                interval = min(interval * 2, 1.0)

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._sock.close(linger=0)


def _boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")
