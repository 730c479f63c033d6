"""The tcp transport against the conformance suite, over a real memory server process."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from scadrt.errors import ConnectionLostError, TransportConfigError
from scadrt.transports import open_descriptor
from scadrt.transports.launcher import ServerProcess, spawn_memory_server
from scadrt.transports.tcp import TcpTransport
from tests.scadrt.transports.conformance import REGION, Endpoint, TransportConformance

# small chunks and a short window, so that the conformance sizes exercise chunking and pipelining
CHUNK, WINDOW = 64 << 10, 3


def stop_by_pid(server: ServerProcess) -> None:
    """SIGTERM the server by PID and check that it exits cleanly."""
    os.kill(server.pid, signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    server.stop()  # closes the pipe


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    srv = spawn_memory_server(REGION, max_request=256 << 10)
    try:
        yield srv
    finally:
        stop_by_pid(srv)


class TestTcp(TransportConformance):
    """Small ops over the stream channel, large ones over zmq (the default)."""

    @pytest.fixture
    def endpoint(self, server: ServerProcess) -> Endpoint:
        return Endpoint(
            open=lambda: TcpTransport(server.url, name="mem", chunk_size=CHUNK, window=WINDOW, timeout=10),
            descriptor=f"mem;rdma_tcp;url,{server.url};chunk_size,{CHUNK};window,{WINDOW};",
        )


class TestTcpZmqOnly(TransportConformance):
    """Everything over zmq, as with a server started with --no-stream."""

    @pytest.fixture
    def endpoint(self, server: ServerProcess) -> Endpoint:
        return Endpoint(
            open=lambda: TcpTransport(server.url, name="mem", chunk_size=CHUNK, window=WINDOW, stream=False),
            descriptor=f"mem;rdma_tcp;url,{server.url};chunk_size,{CHUNK};window,{WINDOW};stream,false;",
        )


def test_small_ops_take_the_stream_channel_and_large_ones_zmq(server: ServerProcess) -> None:
    with TcpTransport(server.url) as t:
        t.reg(1 << 20)
        t.read(1 << 20, 0)
        assert t._stream is None  # large: zmq only
        t.read(8, 0)
        assert t._stream is not None
    with TcpTransport(server.url, stream=False) as t:
        t.reg(8)
        t.read(8, 0)
        assert t._stream is None


def test_no_stream_server_serves_everything_over_zmq() -> None:
    srv = spawn_memory_server(4096, no_stream=True)
    try:
        with TcpTransport(srv.url) as t:
            t.reg(4)[:] = b"zmq!"
            t.write(4, 0)
            t.read(4, 0, 0)
            assert bytes(t.buf) == b"zmq!" and t._stream is None
    finally:
        stop_by_pid(srv)


def test_chunks_are_capped_by_the_servers_max_request(server: ServerProcess) -> None:
    with TcpTransport(server.url, chunk_size=1 << 30) as t:
        assert t.max_request == 256 << 10
        assert t.size == REGION
        t.reg(REGION)
        t.buf[:] = bytes(range(256)) * (REGION // 256)
        t.write(REGION, 0)  # 4 requests of the server's maximum
        t.buf[:] = bytes(REGION)
        t.read(REGION, 0)
        assert bytes(t.buf[:512]) == bytes(range(256)) * 2


def test_ping(server: ServerProcess) -> None:
    with TcpTransport(server.url) as t:
        t.ping()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nobody_listening_gives_connection_lost_within_the_connect_timeout() -> None:
    start = time.monotonic()
    with pytest.raises(ConnectionLostError, match="cannot reach"):
        TcpTransport(f"tcp://127.0.0.1:{_free_port()}", connect_timeout=0.5)
    assert time.monotonic() - start < 2.0


def test_a_server_started_late_is_found_within_the_connect_timeout() -> None:
    # the client retries while the server starts (engines start both at about the same time)
    port = _free_port()
    late: list[ServerProcess] = []

    import threading

    def start() -> None:
        time.sleep(0.3)
        late.append(spawn_memory_server(4096, listen=f"tcp://127.0.0.1:{port}"))

    starter = threading.Thread(target=start)
    starter.start()
    try:
        with TcpTransport(f"tcp://127.0.0.1:{port}", connect_timeout=20) as t:
            assert t.size == 4096
    finally:
        starter.join()
        for srv in late:
            stop_by_pid(srv)


@pytest.mark.parametrize("url", ["127.0.0.1:2333", "tcp://127.0.0.1", "ipc:///tmp/x", "tcp://host:99999"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(TransportConfigError):
        TcpTransport(url)


def test_from_config_validates(server: ServerProcess) -> None:
    with pytest.raises(TransportConfigError, match="needs url"):
        open_descriptor("m;tcp;")
    with pytest.raises(TransportConfigError, match="window"):
        open_descriptor(f"m;tcp;url,{server.url};window,many;")
    with pytest.raises(TransportConfigError, match="unknown key"):
        open_descriptor(f"m;tcp;url,{server.url};colour,blue;")
    with pytest.raises(TransportConfigError, match="bad stream"):
        open_descriptor(f"m;tcp;url,{server.url};stream,maybe;")
    with open_descriptor(f"m;tcp;url,{server.url};timeout,2.5;connect_timeout,3;stream,off;") as t:
        assert isinstance(t, TcpTransport) and t.timeout == 2.5 and t._stream_port is None


def test_connecting_to_a_listening_server_takes_no_fixed_wait(server: ServerProcess) -> None:
    # the handshake's first re-send comes after 1 ms, not after 50 ms (every instance paid that)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        TcpTransport(server.url, name="mem").close()
        times.append(time.perf_counter() - start)
    assert min(times) < 0.03, times
