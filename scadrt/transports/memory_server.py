"""The memory server: one memory element's region, served over tcp (pyzmq ROUTER) to many clients.

Run it as ``scadc memory-server --listen tcp://127.0.0.1:2333 --size 512MiB`` or
``python -m scadrt.transports.memory_server …`` (the same options); engines and tests use
:func:`spawn_memory_server`. When it is ready it prints exactly one line to stdout,
``listening on tcp://HOST:PORT`` (with the real port when asked for port 0), and logs to stderr.

Behaviour (the wire format is in :mod:`scadrt.transports.protocol`):

1. The region is ``--size`` zeroed bytes (allocated lazily by the OS: untouched pages cost nothing).
2. Binding to anything but a loopback address requires a shared token (``--token`` or ``SCAD_TOKEN``);
   with a token set, every request must carry it.
3. Every request gets a reply: malformed or truncated frames, unknown ops, out-of-bounds ranges,
   oversize requests and wrong tokens get an error reply, and the server keeps serving.
   (A single frame larger than twice ``--max-request`` is refused by zmq itself, which drops that
   client's connection instead; that bounds the memory one request can pin.)
4. One thread serves the zmq socket for all clients, one request at a time, in arrival order per
   client. Copies of large payloads go through numpy, which releases the GIL, so a server embedded
   in another process (a Ray actor, an engine) does not stall that process's other threads.
5. The *stream channel* (small ops over a plain TCP connection, see the protocol docstring) listens
   on the same host, on a port of its own that INFO reports; one thread per connection, each
   blocked in ``recv`` (GIL released) until its client sends. Same checks, same region.
6. SIGTERM and SIGINT stop it cleanly (exit status 0) within about 0.1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Self

import zmq

from scadrt.errors import TransportConfigError, TransportError, UserError
from scadrt.sizes import format_size, parse_size
from scadrt.transports.base import allocate_buffer, copy_bytes
from scadrt.transports.protocol import (
    HEADER_SIZE,
    MAX_TOKEN,
    STREAM_MAX,
    FrameError,
    Header,
    Op,
    Status,
    map_zmq_errors,
    recv_exact,
    send_all,
)

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_REQUEST",
    "MemoryServer",
    "ServerConfig",
    "ServerProcess",
    "add_arguments",
    "main",
    "run_from_args",
    "spawn_memory_server",
]

log = logging.getLogger("scadrt.memory_server")

DEFAULT_LISTEN = "tcp://127.0.0.1:2333"
DEFAULT_MAX_REQUEST = 16 << 20
_POLL_MS = 100  # how often the loop checks for stop(): bounds the shutdown latency
_KNOWN_OPS = frozenset(int(op) for op in Op)
_TCP_URL = re.compile(r"^tcp://(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<port>\d+|\*)$")


def parse_listen(url: str) -> tuple[str, str]:
    """Split ``tcp://HOST:PORT`` into host and port; raise TransportConfigError otherwise."""
    match = _TCP_URL.match(url)
    if not match:
        raise TransportConfigError(f"listen address {url!r} is not tcp://HOST:PORT (e.g. {DEFAULT_LISTEN})")
    host, port = match["host"], match["port"]
    if port != "*" and int(port) > 65535:
        raise TransportConfigError(f"listen address {url!r}: port {port} is out of range")
    return host.strip("[]"), port


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

    def __post_init__(self) -> None:
        if self.size < 1:
            raise TransportConfigError(f"the region size must be at least 1 byte, got {self.size}")
        if not 0 <= self.stream_port <= 65535:
            raise TransportConfigError(f"--stream-port {self.stream_port} is out of range")
        if self.max_request < 1:
            raise TransportConfigError(f"--max-request must be at least 1 byte, got {self.max_request}")
        if self.token is not None and not 0 < len(self.token.encode()) <= MAX_TOKEN:
            raise TransportConfigError(f"the token must be 1 to {MAX_TOKEN} bytes long")
        host, _ = parse_listen(self.listen)
        if not is_loopback(host) and not self.token:
            raise TransportConfigError(
                f"refusing to serve memory on non-loopback address {self.listen} without a token: "
                "anyone who can reach it could read and write the region; set --token or SCAD_TOKEN"
            )


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
        self.region = region if region is not None else allocate_buffer(config.size)
        self._token = config.token.encode() if config.token else None
        self._rdma_accept = rdma_accept
        self._stop = threading.Event()
        self._socket: zmq.Socket[bytes] | None = None
        self.endpoint: str | None = None
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        #: port of the stream channel once bound (None: no stream channel)
        self.stream_port: int | None = None
        self._info = b""

    def bind(self) -> str:
        """Bind the listening socket; return the endpoint actually bound (``tcp://127.0.0.1:PORT``)."""
        with map_zmq_errors(f"memory server {self.config.listen}"):
            sock = zmq.Context.instance().socket(zmq.ROUTER)
            try:
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.MAXMSGSIZE, 2 * self.config.max_request + 4096)
                sock.bind(self.config.listen)
                endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
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
                                 "stream_port": self.stream_port, "stream_max": STREAM_MAX}).encode()
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
                    continue
                reply = self.handle(frames)
                # ROUTER never blocks on send: a reply to a vanished client is dropped by zmq
                sock.send_multipart(reply, copy=False)
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

    def handle(self, frames: Sequence[zmq.Frame]) -> list[object]:
        """Answer one request ``[identity, header, payload?]`` with ``[identity, header, payload?]``."""
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

    def _check_request(self, header: Header) -> None:
        """The checks both channels make before touching the region: token, then size and range."""
        if self._token is not None and not hmac.compare_digest(header.token, self._token):
            raise FrameError(Status.UNAUTHORIZED, "wrong token" if header.token else "this server requires a token")
        if header.op in (Op.READ, Op.WRITE):
            if header.length > self.config.max_request:
                raise FrameError(Status.TOO_LARGE, f"{Op(header.op).name} of {header.length} B exceeds the "
                                 f"server's max request of {self.config.max_request} B; split it")
            if header.addr + header.length > self.config.size:
                raise FrameError(Status.OUT_OF_BOUNDS, f"{Op(header.op).name} of {header.length} B at address "
                                 f"{header.addr} overruns the region ({self.config.size} B)")
        elif header.op not in _KNOWN_OPS:
            raise FrameError(Status.UNKNOWN_OP, f"unknown op {header.op}")

    def _dispatch(self, identity: zmq.Frame, header: Header, payload: Sequence[zmq.Frame]) -> list[object]:
        self._check_request(header)
        op = header.op
        if op == Op.READ:
            self._check_frames(header, payload, 0)
            view = self.region[header.addr : header.addr + header.length]
            return [identity, header.encode_reply(), view]
        if op == Op.WRITE:
            self._check_frames(header, payload, 1)
            data = payload[0].buffer
            if len(data) != header.length:
                raise FrameError(Status.BAD_FRAME, f"WRITE header says {header.length} B, payload has {len(data)} B")
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

    def _error(self, identity: zmq.Frame, header: Header, status: Status, message: str) -> list[object]:
        log.warning("request %d refused: %s", header.request_id, message)
        return [identity, header.reply(status, length=0).encode(), message.encode()]

    # -- the stream channel -------------------------------------------------------------------------

    def _start_stream(self) -> None:
        host, _ = parse_listen(self.config.listen)
        host = "0.0.0.0" if host == "*" else host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            listener = socket.create_server((host, self.config.stream_port), family=family)
        except OSError as exc:
            raise TransportConfigError(f"cannot open the stream channel on {host}:{self.config.stream_port}: "
                                       f"{exc.strerror}") from exc
        listener.settimeout(_POLL_MS / 1000)  # so the accept loop sees stop()
        self._listener, self.stream_port = listener, int(listener.getsockname()[1])
        threading.Thread(target=self._accept_loop, args=(listener,), name="scad-stream-accept", daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # the listener was closed
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._connections.add(conn)
            threading.Thread(target=self._serve_stream, args=(conn,), name="scad-stream", daemon=True).start()

    def _serve_stream(self, conn: socket.socket) -> None:
        """Serve one stream connection until the client leaves or sends something wrong."""
        head = bytearray(HEADER_SIZE)
        try:
            while recv_exact(conn, memoryview(head)):
                header = Header(0, 0)
                try:
                    token_len = int.from_bytes(head[32:34], "little")
                    if token_len > MAX_TOKEN:
                        raise FrameError(Status.BAD_FRAME, f"token length {token_len} exceeds {MAX_TOKEN}")
                    token = bytearray(token_len)
                    if not recv_exact(conn, memoryview(token)):
                        return
                    header = Header.decode(bytes(head) + token)
                    self._check_request(header)
                    span = self.region[header.addr : header.addr + header.length]
                    if header.op == Op.READ:
                        send_all(conn, [header.encode_reply(), span])
                    elif header.op == Op.WRITE:  # straight from the socket into the region
                        if not recv_exact(conn, span):
                            return
                        send_all(conn, [header.encode_reply()])
                    elif header.op == Op.PING:
                        send_all(conn, [header.encode_reply()])
                    else:
                        raise FrameError(Status.UNSUPPORTED, f"{Op(header.op).name} is not served on the stream "
                                         "channel; use the zmq socket")
                except FrameError as exc:
                    # the rest of the stream cannot be trusted to be in step: answer, then hang up
                    message = str(exc).encode()
                    log.warning("stream request %d refused: %s", exc.request_id or header.request_id, exc)
                    reply = Header(exc.op or header.op, exc.request_id or header.request_id, header.addr,
                                   len(message), exc.status)
                    send_all(conn, [reply.encode(), message])
                    _lingering_close(conn)
                    return
        except OSError:
            pass  # the client went away mid-request
        except Exception:  # a bug: this connection ends, the server and its other clients go on
            log.exception("internal error on a stream connection")
        finally:
            with self._lock:
                self._connections.discard(conn)
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the memory server's options to ``parser`` (shared by ``scadc memory-server`` and ``-m``)."""
    parser.add_argument("--listen", default=DEFAULT_LISTEN, metavar="URL",
                        help=f"zmq endpoint to bind (default {DEFAULT_LISTEN}; port 0 picks a free port)")
    parser.add_argument("--size", default="1 GiB",
                        help="region size, e.g. 512MiB or '512 MB' (default 1 GiB, allocated lazily)")
    parser.add_argument("--token", default=None,
                        help="shared secret required in every request (default: $SCAD_TOKEN); "
                             "required to listen on a non-loopback address")
    parser.add_argument("--max-request", default=format_size(DEFAULT_MAX_REQUEST),
                        help="largest single READ/WRITE accepted (default %(default)s)")
    parser.add_argument("--stream-port", type=int, default=0, metavar="PORT",
                        help="TCP port of the stream channel for small ops (default: any free port; "
                             "clients learn it from the server)")
    parser.add_argument("--no-stream", action="store_true",
                        help="no stream channel: small ops go over zmq too")
    parser.add_argument("--rdma", nargs="?", const="auto", default=None, metavar="DEVICE",
                        help="also serve the region by one-sided RDMA (needs pyverbs and a device; "
                             "DEVICE defaults to the first one)")
    parser.add_argument("--log-level", default="warning",
                        choices=("debug", "info", "warning", "error"), help="stderr log level")


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    try:
        size = parse_size(args.size)
        max_request = parse_size(args.max_request)
    except ValueError as exc:
        raise TransportConfigError(str(exc)) from exc
    token = args.token if args.token is not None else (os.environ.get("SCAD_TOKEN") or None)
    return ServerConfig(size=size, listen=args.listen, token=token, max_request=max_request,
                        stream=not args.no_stream, stream_port=args.stream_port)


def run_from_args(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; return the exit status (0)."""
    config = config_from_args(args)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s memory-server %(levelname)s %(message)s")
    rdma = None
    try:
        if args.rdma is not None:
            from scadrt.transports.rdma import RdmaServerEndpoint

            rdma = RdmaServerEndpoint(config.size, device=None if args.rdma == "auto" else args.rdma)
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


# -- starting one as a child process ---------------------------------------------------------------


@dataclass
class ServerProcess:
    """A memory server running as a child process (see :func:`spawn_memory_server`)."""

    process: subprocess.Popen[bytes]
    #: the endpoint clients connect to, with the real port
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait for the "listening on" line and learn the url; TransportError (and the server
        stopped) if it exits or stays silent for ``timeout`` seconds."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("listening on "):
            status = self.stop(timeout=1.0)
            raise TransportError(f"memory server did not start (exit status {status}, said {line!r})")
        self.url = line.removeprefix("listening on ")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, wait up to ``timeout`` s (then SIGKILL); return the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def spawn_memory_server(size: int | str, *, listen: str = "tcp://127.0.0.1:0", token: str | None = None,
                        max_request: int | None = None, rdma: str | None = None, no_stream: bool = False,
                        log_level: str = "warning", ready_timeout: float = 20.0) -> ServerProcess:
    """Start ``python -m scadrt.transports.memory_server`` and wait for its "listening on" line.

    The token travels in the environment (``SCAD_TOKEN``), not on the command line, where other
    users could read it in the process list. Raise :class:`TransportError` if the server exits or
    stays silent for ``ready_timeout`` seconds.
    """
    server = launch_memory_server(size, listen=listen, token=token, max_request=max_request, rdma=rdma,
                                  no_stream=no_stream, log_level=log_level)
    server.wait_ready(ready_timeout)
    return server


def launch_memory_server(size: int | str, *, listen: str = "tcp://127.0.0.1:0", token: str | None = None,
                         max_request: int | None = None, rdma: str | None = None, no_stream: bool = False,
                         log_level: str = "warning") -> ServerProcess:
    """Start a memory server without waiting for it (:meth:`ServerProcess.wait_ready` does), so
    that several can start at once; see :func:`spawn_memory_server`."""
    argv = [sys.executable, "-m", "scadrt.transports.memory_server", "--listen", listen,
            "--size", str(size), "--log-level", log_level]
    if max_request is not None:
        argv += ["--max-request", str(max_request)]
    if rdma is not None:  # a device name, or "auto"
        argv += ["--rdma", rdma]
    if no_stream:
        argv.append("--no-stream")
    env = dict(os.environ)
    env.pop("SCAD_TOKEN", None)
    if token is not None:
        env["SCAD_TOKEN"] = token
    return ServerProcess(subprocess.Popen(argv, stdout=subprocess.PIPE, env=env), url="")


if __name__ == "__main__":
    sys.exit(main())
