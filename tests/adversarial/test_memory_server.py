"""The memory server under abuse (issue 10): secrets, exhaustion, stalls, ordering, orphaning.

Every server here is a real process on loopback. Tests that need its log give it a stderr file.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest
import zmq

from scadc.cli import main as scadc_main
from scadrt.errors import AccessDeniedError, TransportConfigError
from scadrt.transports import open_descriptor
from scadrt.transports.launcher import ServerProcess, spawn_memory_server
from scadrt.transports.memory_server import MemoryServer, ServerConfig
from scadrt.transports.protocol import HEADER_SIZE, Header, Op, Status
from scadrt.transports.tcp import TcpTransport

pytestmark = pytest.mark.usefixtures("no_leftovers")

SERVER = [sys.executable, "-m", "scadrt.transports.memory_server"]


@contextmanager
def server(*args: str, size: str = "4MiB", listen: str = "tcp://127.0.0.1:0", stderr: Path | None = None,
           env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A memory server process with exactly these options, stopped (and checked) afterwards."""
    err = open(stderr, "wb") if stderr else None  # noqa: SIM115 - closed in finally
    try:
        proc = subprocess.Popen([*SERVER, "--listen", listen, "--size", size, *args], stdout=subprocess.PIPE,
                                stderr=err, env=env)
        srv = ServerProcess(proc, url="")
        srv.wait_ready()
        try:
            yield srv
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            srv.stop()
    finally:
        if err:
            err.close()


def stream_port(url: str, **kw: object) -> int:
    with TcpTransport(url, **kw) as t:  # type: ignore[arg-type]
        assert t._stream_port
        return t._stream_port


def stream_ping(port: int, rid: int = 1, timeout: float = 5.0) -> socket.socket:
    """A new stream connection that has had one PING answered."""
    conn = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        conn.sendall(Header(Op.PING, rid).encode())
        head = recv_n(conn, HEADER_SIZE)
        assert Header.decode(head).status == Status.OK
    except BaseException:
        conn.close()
        raise
    return conn


def recv_n(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- item 3: no secrets on the command line ------------------------------------------------------------


def test_token_on_the_command_line_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    result = subprocess.run([*SERVER, "--token", "hunter2", "--size", "4KiB", "--listen", "tcp://127.0.0.1:0"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "SCAD_TOKEN" in result.stderr and "--token-file" in result.stderr
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr
    assert scadc_main(["memory-server", "--token", "hunter2", "--size", "4KiB"]) == 2
    err = capsys.readouterr().err
    assert "--token-file" in err and "hunter2" not in err


def test_token_file_must_be_private_and_is_then_required(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    secret.chmod(0o640)
    result = subprocess.run([*SERVER, "--token-file", str(secret), "--size", "4KiB", "--listen", "tcp://0.0.0.0:0"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and f"chmod 600 {secret}" in result.stderr, result.stderr
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr
    secret.chmod(0o600)
    with server("--token-file", str(secret), listen="tcp://0.0.0.0:0") as srv:
        url = "tcp://127.0.0.1:" + srv.url.rsplit(":", 1)[1]
        with pytest.raises(AccessDeniedError):
            TcpTransport(url, connect_timeout=5)
        with TcpTransport(url, token="s3cret") as t:  # the trailing newline is not part of it
            t.reg(4)[:] = b"safe"
            t.write(4, 0)


def test_tcp_descriptor_reads_the_token_from_a_private_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    with server(env={**os.environ, "SCAD_TOKEN": "s3cret"}) as srv:
        with open_descriptor(f"m;tcp;url,{srv.url};token_file,{secret};") as t:
            t.reg(3)[:] = b"abc"
            t.write(3, 0)
        secret.chmod(0o604)
        with pytest.raises(TransportConfigError, match="chmod 600"):
            open_descriptor(f"m;tcp;url,{srv.url};token_file,{secret};")
        with pytest.raises(TransportConfigError, match="not both"):
            open_descriptor(f"m;tcp;url,{srv.url};token,x;token_file,{secret};")
        with pytest.raises(TransportConfigError, match="token file"):
            open_descriptor(f"m;tcp;url,{srv.url};token_file,{tmp_path / 'missing'};")


# -- item 4: denial of service ---------------------------------------------------------------------


def test_accept_loop_survives_running_out_of_descriptors(tmp_path: Path) -> None:
    log = tmp_path / "stderr"
    with server(stderr=log) as srv:
        port = stream_port(srv.url)
        limit = len(os.listdir(f"/proc/{srv.pid}/fd")) + 6
        resource.prlimit(srv.pid, resource.RLIMIT_NOFILE, (limit, limit))
        held: list[socket.socket] = []
        try:
            for i in range(40):  # until a new connection is not served any more
                conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                held.append(conn)
                conn.settimeout(1.0)
                conn.sendall(Header(Op.PING, i).encode())
                try:
                    if recv_n(conn, HEADER_SIZE):
                        continue
                except TimeoutError:
                    break
            else:
                pytest.fail("the server never ran out of descriptors")
            wait_for(lambda: "accept" in log.read_text(), "the server to log that it cannot accept")
        finally:
            for conn in held:
                conn.close()
        # the descriptors are released: small ops (the stream channel) work again
        with TcpTransport(srv.url, timeout=10) as t:
            t.reg(8)[:] = b"survived"
            t.write(8, 0)
            t.buf[:] = bytes(8)
            t.read(8, 0)
            assert bytes(t.buf) == b"survived" and t._stream is not None
        # logged once per episode, not once per attempt (on a loaded machine a descriptor the
        # server frees by itself can end one episode before the next begins)
        text = log.read_text()
        episodes = text.count("cannot accept")
        attempts = [int(n) for n in re.findall(r"after (\d+) failed attempts", text)]
        assert episodes == len(attempts) >= 1, text


def test_a_client_that_stops_mid_request_is_disconnected_after_the_idle_timeout() -> None:
    with server("--idle-timeout", "0.5") as srv:
        port = stream_port(srv.url)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
            stalled.sendall(Header(Op.PING, 1).encode()[:20])  # half a header, then nothing
            assert stalled.recv(100) == b""  # the server hung up (a timeout here raises instead)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as payload_short:
            payload_short.sendall(Header(Op.WRITE, 2, 0, 1000).encode() + bytes(10))
            assert payload_short.recv(100) == b""
        # idle *between* requests is not stalling: such a connection stays
        with stream_ping(port) as idle:
            time.sleep(1.5)
            idle.sendall(Header(Op.PING, 3).encode())
            assert Header.decode(recv_n(idle, HEADER_SIZE)).request_id == 3


def test_a_client_that_stops_reading_its_replies_is_disconnected() -> None:
    with server("--idle-timeout", "0.5", size="1MiB") as srv:
        port = stream_port(srv.url)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as greedy:
            greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            requests = 400  # 25 MiB of replies: more than both socket buffers hold
            greedy.sendall(b"".join(Header(Op.READ, i, 0, 64 << 10).encode() for i in range(requests)))
            time.sleep(2.0)  # read nothing for longer than the idle timeout
            received = 0
            with contextlib.suppress(ConnectionResetError):  # reset: our unread requests were discarded
                while chunk := greedy.recv(1 << 20):
                    received += len(chunk)
            assert received < requests * (HEADER_SIZE + (64 << 10))
        with TcpTransport(srv.url) as t:  # and the server goes on
            t.ping()


def test_connections_over_the_cap_are_refused_cleanly() -> None:
    with server("--max-connections", "2") as srv:
        port = stream_port(srv.url)
        first, second = stream_ping(port, 1), stream_ping(port, 2)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
                third.sendall(Header(Op.WRITE, 3, 0, 4).encode() + b"lost")
                reply = Header.decode(recv_n(third, HEADER_SIZE))
                assert reply.status == Status.BUSY
                assert b"connections" in recv_n(third, reply.length)
                assert third.recv(100) == b""
            for conn in (first, second):  # the ones already in keep working
                conn.sendall(Header(Op.READ, 9, 0, 4).encode())
                assert recv_n(conn, HEADER_SIZE + 4)[HEADER_SIZE:] == bytes(4), "the refused WRITE did not land"
            with TcpTransport(srv.url) as t:  # a client at the cap falls back to zmq, unharmed
                t.reg(4)[:] = b"zmq!"
                t.write(4, 0)
                t.read(4, 0)
                assert bytes(t.buf) == b"zmq!" and t._stream is None
        finally:
            first.close()
        wait_for(lambda: _served(port), "a freed slot to be given to a new connection")
        second.close()


def _served(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(Header(Op.PING, 1).encode())
        return Header.decode(recv_n(conn, HEADER_SIZE)).status == Status.OK


def test_refused_requests_are_logged_at_a_bounded_rate(tmp_path: Path) -> None:
    log = tmp_path / "stderr"
    refused = 300
    with server(stderr=log) as srv:
        raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(srv.url)
        try:
            for i in range(refused):
                raw.send(Header(Op.PING, i, version=9).encode())
                assert raw.poll(5000)
                assert Header.decode(raw.recv_multipart()[0]).status == Status.BAD_VERSION
        finally:
            raw.close()
    lines = log.read_text().splitlines()
    logged = sum("refused" in line and "not logged" not in line for line in lines)
    suppressed = sum(int(m[1]) for line in lines if (m := re.search(r"(\d+) more .* not logged", line)))
    assert logged + suppressed == refused
    assert len(lines) < 60, f"{len(lines)} lines for {refused} refusals"


# -- item 5: order on one connection, atomicity across connections -------------------------------------


def test_a_read_sent_before_a_write_never_sees_that_write() -> None:
    size = 1 << 20
    with server() as srv:
        raw: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(srv.url)
        try:
            previous = 0
            for i in range(1, 41):
                raw.send(Header(Op.READ, 2 * i, 0, size).encode())  # pipelined: no wait in between
                raw.send_multipart([Header(Op.WRITE, 2 * i + 1, 0, size).encode(), bytes([i]) * size])
                replies = {}
                for _ in range(2):
                    assert raw.poll(10000)
                    frames = raw.recv_multipart()
                    replies[Header.decode(frames[0]).op] = frames
                data = np.frombuffer(replies[Op.READ][1], dtype=np.uint8)
                assert (data == previous).all(), f"round {i}: the READ saw bytes of the WRITE sent after it"
                previous = i
        finally:
            raw.close()


#: reads per case: tearing, where it can happen, shows within a few hundred
READS = 2000

_WRITER = """
import sys
from scadrt.transports.tcp import TcpTransport
url, size, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
with TcpTransport(url, stream=stream, timeout=30) as t:
    t.reg(size)
    print("ready", flush=True)
    value = 0
    while True:
        value = value % 255 + 1
        t.buf[:] = bytes([value]) * size
        t.write(size, 4096)
"""


@pytest.mark.parametrize(("size", "writer_stream", "reader_stream"), [
    (32 << 10, True, True), (64 << 10, True, True), (64 << 10, True, False), (64 << 10, False, True),
    (1 << 20, False, False),
])
def test_each_request_is_atomic_across_connections(size: int, writer_stream: bool, reader_stream: bool) -> None:
    """A READ concurrent with WRITEs of the same range (from another process, another connection)
    sees one WRITE's bytes, never a mix."""
    with server() as srv:
        writer = subprocess.Popen([sys.executable, "-c", _WRITER, srv.url, str(size), str(int(writer_stream))],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
            torn = 0
            with TcpTransport(srv.url, stream=reader_stream) as reader:
                reader.reg(size)
                data = np.frombuffer(reader.buf, dtype=np.uint8)
                for _ in range(READS):
                    reader.read(size, 4096)
                    torn += int((data != data[0]).any())
            assert writer.poll() is None, "the writer failed"
        finally:
            writer.kill()
            writer.wait()
            if writer.stdout:
                writer.stdout.close()
        assert torn == 0, f"{torn} of {READS} READs saw a mix of two WRITEs"


# -- item 10: a server dies with the process that started it ---------------------------------------


def test_server_stops_when_its_stdin_closes() -> None:
    srv = spawn_memory_server(4096)
    try:
        assert srv.process.stdin is not None
        srv.process.stdin.close()
        assert srv.process.wait(timeout=10) == 0
    finally:
        srv.stop()


_PARENT = """
import os, sys, threading, time
from scadrt.transports.launcher import spawn_memory_server
servers = []
if sys.argv[1] == "thread":  # launched from a thread that lives on: no PDEATHSIG, stdin EOF does it
    t = threading.Thread(target=lambda: servers.append(spawn_memory_server(4096)))
    t.start(); t.join()
else:
    servers.append(spawn_memory_server(4096))
worker = os.fork() if sys.argv[1] == "fork" else 0  # a forked worker inherits the pipe's write end
if worker == 0 and sys.argv[1] == "fork":
    time.sleep(600); os._exit(0)
print(servers[0].pid, worker, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", ["main", "thread", "fork"])
def test_server_dies_when_the_process_that_started_it_is_killed(how: str) -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, how], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    server_pid, worker_pid = (int(x) for x in parent.stdout.readline().split())
    try:
        assert not gone(server_pid)
        parent.kill()
        parent.wait(timeout=10)
        wait_for(lambda: gone(server_pid), "the orphaned server to exit")
    finally:
        parent.stdout.close()
        for pid in (server_pid, worker_pid):
            if pid and not gone(pid):
                os.kill(pid, signal.SIGKILL)


# -- item 12: sizes that cannot be allocated -------------------------------------------------------


def test_a_region_that_cannot_be_allocated_is_a_clear_error() -> None:
    result = subprocess.run([*SERVER, "--size", "999999TB", "--listen", "tcp://127.0.0.1:0"],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot allocate the region of" in result.stderr
    with pytest.raises(TransportConfigError, match="cannot allocate the region of") as info:
        MemoryServer(ServerConfig(size=10**400))
    assert len(str(info.value)) < 300


# -- item 17: IPv6 loopback ------------------------------------------------------------------------


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
def test_ipv6_loopback_serves_both_channels() -> None:
    with server(listen="tcp://[::1]:0") as srv:
        assert srv.url.startswith("tcp://[::1]:")
        with TcpTransport(srv.url) as t:
            t.reg(1 << 20)
            t.buf[:] = bytes(range(256)) * 4096
            t.write(1 << 20, 0)  # zmq
            t.read(8, 4, 0)  # stream
            assert bytes(t.buf[:8]) == bytes(range(4, 12)) and t._stream is not None
