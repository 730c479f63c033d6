"""The memory server: it answers everything, refuses what it must, and keeps serving correct data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from scadc.cli import main as scadc_main
from scadrt.errors import AccessDeniedError, ConnectionLostError, TransportConfigError
from scadrt.transports.launcher import ServerProcess, spawn_memory_server
from scadrt.transports.memory_server import ServerConfig
from scadrt.transports.protocol import HEADER_SIZE, MAGIC, VERSION, Header, Op, Status
from scadrt.transports.tcp import TcpTransport

REGION, MAX_REQUEST = 64 << 10, 8 << 10


def stop_by_pid(server: ServerProcess, sig: signal.Signals = signal.SIGTERM) -> int:
    os.kill(server.pid, sig)
    status = server.process.wait(timeout=10)
    server.stop()
    return status


@dataclass
class Served:
    """A running server, a raw DEALER on it, and what the region must hold (the shadow)."""

    server: ServerProcess
    raw: zmq.Socket[bytes]
    shadow: bytearray

    def call(self, frames: list[bytes]) -> list[bytes]:
        self.raw.send_multipart(frames)
        assert self.raw.poll(5000), "the server did not answer"
        return self.raw.recv_multipart()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = spawn_memory_server(REGION, max_request=MAX_REQUEST, log_level="error")
    raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(server.url)
    try:
        yield Served(server, raw, bytearray(REGION))
    finally:
        raw.close()
        assert stop_by_pid(server) == 0


# -- a stream of requests, well-formed or not --------------------------------------------------------

_OPS = st.sampled_from([*Op, *[Op.READ, Op.WRITE] * 4, 5, 99, 255])
_ADDRS = st.one_of(st.integers(0, REGION - 300), st.integers(0, REGION),
                   st.sampled_from([REGION - 1, REGION + 1, 2**63, 2**64 - 1]))
_LENGTHS = st.one_of(st.integers(0, 300), st.integers(0, 300), st.sampled_from([MAX_REQUEST, MAX_REQUEST + 1, 2**40]))


@st.composite
def requests(draw: st.DrawFn) -> list[bytes]:
    """Mostly well-formed requests, with every kind of damage mixed in."""
    op, addr, length = draw(_OPS), draw(_ADDRS), draw(_LENGTHS)
    header = Header(op, draw(st.integers(0, 2**64 - 1)), addr, length,
                    version=draw(st.sampled_from([VERSION] * 8 + [0, 2, 255]))).encode()
    mangle = draw(st.sampled_from(["none"] * 8 + ["truncate", "magic", "extend", "token_len"]))
    if mangle == "truncate":
        header = header[: draw(st.integers(0, HEADER_SIZE - 1))]
    elif mangle == "magic":
        header = draw(st.binary(min_size=4, max_size=4).filter(lambda m: m != MAGIC)) + header[4:]
    elif mangle == "extend":
        header += draw(st.binary(min_size=1, max_size=8))
    elif mangle == "token_len":
        header = header[:32] + draw(st.integers(1, 3000)).to_bytes(2, "little") + header[34:]
    payload_length = length if length <= MAX_REQUEST + 1 else 16
    fitting = [[payload_length]] * 4 if op in (Op.WRITE, Op.RDMA_CONNECT) else [[]] * 4
    payloads = draw(st.sampled_from([*fitting, [], [payload_length], [draw(st.integers(0, 50))], [1, 1]]))
    return [header, *(draw(st.binary(min_size=n, max_size=n)) for n in payloads)]


def expected_status(frames: list[bytes]) -> tuple[Status, int]:
    """What the server must answer (status, echoed request id): protocol.py's rules, written again."""
    raw, payload = frames[0], frames[1:]
    if len(raw) < HEADER_SIZE or raw[:4] != MAGIC:
        return Status.BAD_FRAME, 0
    rid = int.from_bytes(raw[8:16], "little")
    if raw[4] != VERSION:
        return Status.BAD_VERSION, rid
    token_len = int.from_bytes(raw[32:34], "little")
    if token_len > 1024 or len(raw) != HEADER_SIZE + token_len:
        return Status.BAD_FRAME, rid
    op, addr, length = raw[5], int.from_bytes(raw[16:24], "little"), int.from_bytes(raw[24:32], "little")
    frames_wanted = {Op.READ: 0, Op.WRITE: 1, Op.PING: 0, Op.INFO: 0, Op.RDMA_CONNECT: 1}
    if op not in frames_wanted:
        return Status.UNKNOWN_OP, rid
    if op in (Op.READ, Op.WRITE):
        if length > MAX_REQUEST:
            return Status.TOO_LARGE, rid
        if addr + length > REGION:
            return Status.OUT_OF_BOUNDS, rid
    if len(payload) != frames_wanted[Op(op)]:
        return Status.BAD_FRAME, rid
    if op == Op.WRITE and len(payload[0]) != length:
        return Status.BAD_FRAME, rid
    if op == Op.RDMA_CONNECT:
        return Status.UNSUPPORTED, rid
    return Status.OK, rid


@settings(max_examples=60, deadline=None)
@given(stream=st.lists(requests(), min_size=1, max_size=12))
def test_any_request_stream_gets_answers_and_leaves_correct_data(served: Served, stream: list[list[bytes]]) -> None:
    for frames in stream:
        status, rid = expected_status(frames)
        reply = served.call(frames)
        header = Header.decode(reply[0])
        assert (header.status, header.request_id) == (status, rid), frames
        if status != Status.OK:
            assert len(reply) == 2 and reply[1], "an error reply carries a message"
            continue
        if header.op == Op.WRITE:
            served.shadow[header.addr : header.addr + header.length] = frames[1]
        elif header.op == Op.READ:
            assert reply[1] == served.shadow[header.addr : header.addr + header.length]
    with TcpTransport(served.server.url) as client:  # and a well-behaved client still sees the truth
        client.reg(REGION)
        client.read(REGION, 0)
        assert bytes(client.buf) == served.shadow


def test_oversize_requests_are_refused_with_a_reply(served: Served) -> None:
    read = Header(Op.READ, 7, 0, MAX_REQUEST + 1).encode()
    assert Header.decode(served.call([read])[0]).status == Status.TOO_LARGE
    write = Header(Op.WRITE, 8, 0, MAX_REQUEST + 1).encode()
    reply = served.call([write, bytes(MAX_REQUEST + 1)])
    assert Header.decode(reply[0]).status == Status.TOO_LARGE and b"max request" in reply[1]


def test_many_clients_at_once(served: Served) -> None:
    clients = [TcpTransport(served.server.url) for _ in range(20)]
    try:
        for i, c in enumerate(clients):
            c.reg(8)
            c.buf[:] = i.to_bytes(8, "little")
            c.write(8, 8 * i)
            served.shadow[8 * i : 8 * i + 8] = i.to_bytes(8, "little")
        for i, c in enumerate(reversed(clients)):
            c.read(8, 8 * i)
            assert int.from_bytes(c.buf, "little") == i
    finally:
        for c in clients:
            c.close()


# -- tokens and binding ------------------------------------------------------------------------------


def test_token_is_required_in_every_request_when_set() -> None:
    server = spawn_memory_server(4096, token="s3cret")
    try:
        with pytest.raises(AccessDeniedError, match="requires a token"):
            TcpTransport(server.url, connect_timeout=5)
        with pytest.raises(AccessDeniedError, match="wrong token"):
            TcpTransport(server.url, token="guess", connect_timeout=5)
        with TcpTransport(server.url, token="s3cret") as t:
            t.reg(4)[:] = b"safe"
            t.write(4, 0)
            t.read(4, 0)
            assert bytes(t.buf) == b"safe"
        raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(server.url)
        raw.send(Header(Op.READ, 1, 0, 4).encode())
        assert raw.poll(5000)
        assert Header.decode(raw.recv_multipart()[0]).status == Status.UNAUTHORIZED
        raw.close()
    finally:
        assert stop_by_pid(server) == 0


def test_non_loopback_bind_needs_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SCAD_TOKEN"}
    result = subprocess.run([sys.executable, "-m", "scadrt.transports.memory_server", "--listen", "tcp://0.0.0.0:0",
                             "--size", "4KiB"], check=False, capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 2
    assert "without a token" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    server = spawn_memory_server(4096, listen="tcp://0.0.0.0:0", token="t0k3n")
    try:
        port = server.url.rsplit(":", 1)[1]
        with TcpTransport(f"tcp://127.0.0.1:{port}", token="t0k3n") as t:
            assert t.size == 4096
    finally:
        assert stop_by_pid(server) == 0


def test_server_config_validation() -> None:
    with pytest.raises(TransportConfigError, match="without a token"):
        ServerConfig(size=1, listen="tcp://*:2333")
    with pytest.raises(TransportConfigError, match="at least 1 byte"):
        ServerConfig(size=0)
    with pytest.raises(TransportConfigError, match="tcp://HOST:PORT"):
        ServerConfig(size=1, listen="ipc:///tmp/mem")
    assert ServerConfig(size=1, listen="tcp://localhost:0").size == 1
    assert "s3cret" not in repr(ServerConfig(size=1, token="s3cret"))


@pytest.mark.parametrize(("argv", "message"), [
    (["--listen", "tcp://0.0.0.0:1"], "without a token"),
    (["--size", "0"], "at least 1 byte"),
    (["--size", "lots"], "expected a size"),
    (["--listen", "udp://127.0.0.1:1"], "tcp://HOST:PORT"),
])
def test_cli_user_errors_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCAD_TOKEN", raising=False)
    assert scadc_main(["memory-server", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_serves() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "memory-server", "--listen", "tcp://127.0.0.1:0",
                             "--size", "1 MiB"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout
    line = proc.stdout.readline().strip()
    try:
        assert line.startswith("listening on tcp://127.0.0.1:")
        with TcpTransport(line.removeprefix("listening on ")) as t:
            assert t.size == 1 << 20
    finally:
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()


# -- shutdown and death ------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_it_cleanly(sig: signal.Signals) -> None:
    server = spawn_memory_server(4096)
    with TcpTransport(server.url) as t:
        t.ping()
    start = time.monotonic()
    assert stop_by_pid(server, sig) == 0
    assert time.monotonic() - start < 2.0


def test_a_killed_server_gives_connection_lost_within_the_timeout_and_a_restart_heals() -> None:
    server = spawn_memory_server(4096)
    url = server.url
    client = TcpTransport(url, timeout=1.0)
    try:
        client.reg(16)
        client.ping()
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        server.stop()
        calls: tuple[Callable[[], object], ...] = (lambda: client.read(16, 0), lambda: client.write(16, 0), client.ping)
        for call in calls:
            start = time.monotonic()
            with pytest.raises(ConnectionLostError):
                call()
            assert time.monotonic() - start < 3.0
        server = spawn_memory_server(4096, listen=url)  # same port: zmq reconnects by itself
        deadline = time.monotonic() + 10
        while True:
            try:
                client.write(16, 0)
                break
            except ConnectionLostError:
                assert time.monotonic() < deadline, "the client did not reconnect"
        client.read(16, 0)
        assert bytes(client.buf) == bytes(16)
    finally:
        client.close()
        if server.process.poll() is None:
            assert stop_by_pid(server) == 0


def test_region_is_zeroed_and_large_transfers_round_trip() -> None:
    with spawn_memory_server("32 MiB") as server, TcpTransport(server.url) as t:
        t.reg(32 << 20)
        t.read(32 << 20, 0)
        assert not np.frombuffer(t.buf, dtype=np.uint8).any()
        data = np.random.default_rng(0).integers(0, 256, 32 << 20, dtype=np.uint8)
        np.frombuffer(t.buf, dtype=np.uint8)[:] = data
        t.write(32 << 20, 0)  # 2 chunks of the 16 MiB default maximum, pipelined
        t.buf[:] = bytes(32 << 20)
        t.read(32 << 20, 0)
        assert np.array_equal(np.frombuffer(t.buf, dtype=np.uint8), data)


# -- the stream channel ------------------------------------------------------------------------------


def _stream_port(served: Served) -> int:
    with TcpTransport(served.server.url) as t:
        assert t._stream_port
        return t._stream_port


def _stream_call(port: int, data: bytes) -> tuple[Header | None, bytes]:
    """Send raw bytes on a fresh stream connection; return the reply header and everything after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return (Header.decode(received[:HEADER_SIZE]) if len(received) >= HEADER_SIZE else None), received[HEADER_SIZE:]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"JUNK" + bytes(36), Status.BAD_FRAME),
    (Header(Op.READ, 1, REGION - 1, 2).encode(), Status.OUT_OF_BOUNDS),
    (Header(Op.WRITE, 2, 0, MAX_REQUEST + 1).encode() + bytes(10), Status.TOO_LARGE),
    (Header(Op.INFO, 3).encode(), Status.UNSUPPORTED),
    (Header(77, 4).encode(), Status.UNKNOWN_OP),
    (Header(Op.PING, 5, version=9).encode(), Status.BAD_VERSION),
    (Header(Op.PING, 6).encode()[:32] + (2000).to_bytes(2, "little") + bytes(6), Status.BAD_FRAME),
])
def test_stream_errors_are_answered_then_the_connection_closes(served: Served, request_bytes: bytes,
                                                               status: Status) -> None:
    header, message = _stream_call(_stream_port(served), request_bytes + Header(Op.PING, 99).encode())
    assert header is not None and header.status == status
    assert message and len(message) == header.length  # the message, and no reply to the PING after it


def test_stream_serves_several_requests_on_one_connection(served: Served) -> None:
    write = Header(Op.WRITE, 1, 100, 4).encode() + b"abcd"
    read = Header(Op.READ, 2, 100, 4).encode()
    header, rest = _stream_call(_stream_port(served), write + read + Header(Op.PING, 3).encode())
    served.shadow[100:104] = b"abcd"
    assert header is not None and (header.op, header.status, header.request_id) == (Op.WRITE, Status.OK, 1)
    second = Header.decode(rest[:HEADER_SIZE])
    assert (second.op, second.request_id, rest[HEADER_SIZE : HEADER_SIZE + 4]) == (Op.READ, 2, b"abcd")
    third = Header.decode(rest[HEADER_SIZE + 4 :])
    assert (third.op, third.request_id, third.status) == (Op.PING, 3, Status.OK)


@settings(max_examples=40, deadline=None)
@given(garbage=st.binary(min_size=HEADER_SIZE, max_size=200))
def test_stream_garbage_never_breaks_the_server(served: Served, garbage: bytes) -> None:
    header, _ = _stream_call(_stream_port(served), garbage)
    if header is not None and header.status == Status.OK and header.op == Op.WRITE:
        # garbage that happens to be a valid WRITE (vanishingly rare): keep the shadow true
        served.shadow[header.addr : header.addr + header.length] = garbage[HEADER_SIZE : HEADER_SIZE + header.length]
    with TcpTransport(served.server.url) as client:
        client.reg(REGION)
        client.read(REGION, 0)
        assert bytes(client.buf) == served.shadow


def test_stream_client_leaving_mid_payload_does_not_hurt(served: Served) -> None:
    port = _stream_port(served)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(Header(Op.WRITE, 1, 0, 1000).encode() + bytes(10))  # 990 bytes short
    with TcpTransport(served.server.url) as client:
        client.reg(4)[:] = b"okay"
        client.write(4, 0)
        client.read(4, 0)
        served.shadow[0:4] = b"okay"  # nothing of the partial write landed (it stopped in the scratch buffer)
        assert bytes(client.buf) == b"okay"


def test_stream_requires_the_token_too() -> None:
    server = spawn_memory_server(4096, token="s3cret")
    try:
        with TcpTransport(server.url, token="s3cret") as t:
            port = t._stream_port
            t.reg(4)
            t.read(4, 0)  # over the stream, with the token
            t._token = b"forged"  # a refused WRITE: its reply must not be lost to a connection reset
            with pytest.raises(AccessDeniedError, match="wrong token"):
                t.write(4, 0)
        assert port
        header, message = _stream_call(port, Header(Op.READ, 1, 0, 4).encode())
        assert header is not None and header.status == Status.UNAUTHORIZED and b"requires a token" in message
    finally:
        assert stop_by_pid(server) == 0


def test_server_embedded_in_a_thread_stops_and_closes_cleanly() -> None:
    import threading

    from scadrt.transports.memory_server import MemoryServer

    server = MemoryServer(ServerConfig(size=1 << 20, listen="tcp://127.0.0.1:0"))
    url = server.bind()
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        with TcpTransport(url) as t:
            t.reg(1 << 20)
            t.buf[:3] = b"abc"
            t.write(1 << 20, 0)  # zmq
            t.read(3, 0, 10)  # stream
            assert bytes(t.buf[10:13]) == b"abc"
            assert bytes(server.region[:3]) == b"abc"  # the embedding process sees the same bytes
    finally:
        server.stop()
        thread.join(timeout=5)
        server.close()
    assert not thread.is_alive()
