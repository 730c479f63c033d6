"""A bounded soak of one memory server (issue 10): many clients, mixed ops, data and RSS stay flat.

Runs only under ``make fuzz`` (slow). ``SCAD_SOAK_SECONDS`` sets the duration (default 30, at
most 600). Eight clients, each a thread with its own transport: small ops (stream channel) and
large ones (zmq, chunked), refused requests, reconnects, and writes racing reads on a shared
range. The server's connection cap is below the number of clients, so some clients are answered
BUSY and carry small ops over zmq. Every read is checked against what must be there; the server's
resident memory, threads and descriptors must not grow after the warm-up.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from scadrt.errors import OutOfBoundsError
from scadrt.transports.launcher import spawn_memory_server
from scadrt.transports.tcp import TcpTransport

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_leftovers")]

CLIENTS = 8
MAX_CONNECTIONS = 6
STRIPE = 4 << 20
SHARED = 48 << 10  # one range every client writes whole and reads whole
REGION = CLIENTS * STRIPE + SHARED
#: growth of the server's RSS after the warm-up that still counts as flat
RSS_SLACK = 24 << 20


def soak_seconds() -> float:
    return min(max(float(os.environ.get("SCAD_SOAK_SECONDS", "30")), 1.0), 600.0)


def client(index: int, url: str, deadline: float, errors: list[str], counts: list[int]) -> None:
    rng = np.random.default_rng(index)
    base = index * STRIPE
    shadow = np.zeros(STRIPE, dtype=np.uint8)
    transport = TcpTransport(url, timeout=30, chunk_size=512 << 10)
    ops = 0
    try:
        transport.reg(STRIPE)
        while time.monotonic() < deadline:
            kind = rng.integers(0, 100)
            large = kind % 2 == 0
            size = int(rng.integers(1, STRIPE // 2 if large else 64 << 10))
            addr = int(rng.integers(0, STRIPE - size))
            view = np.frombuffer(transport.buf, dtype=np.uint8)
            if kind < 35:
                data = rng.integers(0, 256, size, dtype=np.uint8)
                view[:size] = data
                transport.write(size, base + addr)
                shadow[addr : addr + size] = data
            elif kind < 70:
                view[:size] = 0xEE
                transport.read(size, base + addr)
                if not np.array_equal(view[:size], shadow[addr : addr + size]):
                    errors.append(f"client {index}: read {size} B at {addr} did not match")
                    return
            elif kind < 85:
                value = int(rng.integers(1, 256))
                view[:SHARED] = value
                transport.write(SHARED, CLIENTS * STRIPE)
            elif kind < 95:
                transport.read(SHARED, CLIENTS * STRIPE)
                if not (view[:SHARED] == view[0]).all():
                    errors.append(f"client {index}: a read of the shared range saw two writes at once")
                    return
            elif kind < 98:
                try:
                    transport.read(16, REGION - 8)
                except OutOfBoundsError:
                    pass
                else:
                    errors.append(f"client {index}: a read past the end was not refused")
                    return
            else:
                transport.close()
                transport = TcpTransport(url, timeout=30, chunk_size=512 << 10)
                transport.reg(STRIPE)
            ops += 1
    except Exception as exc:  # reported by the test, with the client's number
        errors.append(f"client {index}: {type(exc).__name__}: {exc}")
    finally:
        transport.close()
        counts[index] = ops


def test_soak_many_clients_data_and_memory_stay_flat(tmp_path: Path) -> None:
    seconds = soak_seconds()
    with open(tmp_path / "stderr", "wb") as log, \
            spawn_memory_server(REGION, extra_args=["--max-connections", str(MAX_CONNECTIONS)], stderr=log) as server:
        proc = psutil.Process(server.pid)
        with TcpTransport(server.url) as setup:  # touch every page now: the region is not growth
            setup.reg(1 << 20)
            for addr in range(0, REGION, 1 << 20):
                setup.write(min(1 << 20, REGION - addr), addr)
        start = time.monotonic()
        errors: list[str] = []
        counts = [0] * CLIENTS
        threads = [threading.Thread(target=client, args=(i, server.url, start + seconds, errors, counts))
                   for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(seconds * 0.25)  # warm-up: allocator pools, zmq buffers, the threads of the cap
        warm_rss, warm_fds = proc.memory_info().rss, proc.num_fds()
        peak_threads = 0
        while any(thread.is_alive() for thread in threads):
            peak_threads = max(peak_threads, proc.num_threads())
            threads[0].join(0.2)
        for thread in threads:
            thread.join()
        end_rss, end_fds = proc.memory_info().rss, proc.num_fds()
    assert not errors, errors[:5]
    assert min(counts) > 0, counts
    assert end_rss - warm_rss <= RSS_SLACK, f"RSS grew by {(end_rss - warm_rss) >> 20} MiB after the warm-up"
    assert end_fds <= warm_fds + 4, (warm_fds, end_fds)
    assert peak_threads <= MAX_CONNECTIONS + 12, peak_threads  # zmq's and ours, plus one per connection
    log_lines = (tmp_path / "stderr").read_text().splitlines()
    assert "Traceback" not in "\n".join(log_lines)
    assert len(log_lines) <= 8 * seconds + 20, f"{len(log_lines)} log lines in {seconds:g} s"
