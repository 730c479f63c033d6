"""Benchmark RemoteArray over tcp against raw TCP throughput, measured in the same run.

Method (as bench/transports.py): our number sits next to a yardstick measured seconds before, and
the table reports the ratio. The workload is one consumer element materialising an array another
element stored: ``RemoteArray.attach(...).materialize()`` of ``--size`` MiB (default 256, ``--quick``
64) from a memory server on 127.0.0.1, through the buffer pool's default configuration, the pool
emptied before each run (a fresh consumer has nothing cached). Yardsticks:

- raw TCP: a Python socket server (a child process, like the memory server) answering one request
  with the same number of bytes, received with ``recv_into`` straight into a preallocated buffer: the
  best one Python request/response over loopback can do, with no protocol, chunking or copy;
- transport read: one ``TcpTransport.read`` of the whole array into a staging buffer of that size
  (what the transport alone does; the pool adds paging and one copy out of the staging buffer into
  the fresh result array). Materialise also runs over a transport tuned for bulk transfers.

Target: materialise ≥ 0.5× raw TCP. The median of ``--repeats`` runs (MiB/s, min–max). It measures,
it does not assert: the exit status is 0 whatever the numbers are.

    python bench/remote.py [--quick] [--size MIB] [--repeats N]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from scadrt.remote import RemoteArray, RemoteMemory
from scadrt.transports.launcher import spawn_memory_server
from scadrt.transports.protocol import recv_exact, send_all
from scadrt.transports.tcp import DEFAULT_CHUNK, DEFAULT_WINDOW, TcpTransport

MiB = 1 << 20
_REQUEST = struct.Struct("<Q")  # how many bytes to send back
#: a tcp transport configured for bulk transfers (larger chunks, more in flight), for comparison
_TUNED_CHUNK, _TUNED_WINDOW = 4 * MiB, 8


def raw_tcp_server(nbytes: int) -> None:
    """Child process: answer each 8-byte request ``n`` with ``n`` bytes of a region of ``nbytes``."""
    region = np.random.default_rng(1).integers(0, 256, nbytes, dtype=np.uint8).data
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = bytearray(_REQUEST.size)
    while recv_exact(conn, memoryview(request)):
        (length,) = _REQUEST.unpack(request)
        send_all(conn, [region[:length]])


def measure(run: Callable[[], object], nbytes: int, repeats: int) -> tuple[float, float, float]:
    """Median, min and max MiB/s of ``repeats`` runs (after one warm-up run)."""
    run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(nbytes / (time.perf_counter() - start) / MiB)
    return statistics.median(rates), min(rates), max(rates)


def bench_raw(nbytes: int, repeats: int) -> tuple[float, float, float]:
    proc = subprocess.Popen([sys.executable, __file__, "--raw-server", str(nbytes)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            out = np.empty(nbytes, dtype=np.uint8).data

            def run() -> None:
                send_all(conn, [_REQUEST.pack(nbytes)])
                recv_exact(conn, out)

            return measure(run, nbytes, repeats)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def materialize_rate(url: str, metadata: dict[str, Any], nbytes: int, repeats: int, *,
                     chunk_size: int = DEFAULT_CHUNK, window: int = DEFAULT_WINDOW) -> tuple[float, float, float]:
    """MiB/s of a consumer's ``RemoteArray.attach(...).materialize()``, nothing cached."""
    with TcpTransport(url, name="mem", chunk_size=chunk_size, window=window) as consumer:
        memory = RemoteMemory(consumer, "mem")
        array = RemoteArray.attach(memory, metadata)

        def materialize() -> None:
            memory.pool.invalidate()  # a fresh consumer has nothing cached
            array.materialize()

        rate = measure(materialize, nbytes, repeats)
        memory.close()
    return rate


def bench_remote(nbytes: int, repeats: int) -> dict[str, tuple[float, float, float]]:
    data = np.random.default_rng(2).integers(0, 256, nbytes, dtype=np.uint8).reshape(-1, 4096)
    results: dict[str, tuple[float, float, float]] = {}
    server = spawn_memory_server(nbytes + 4 * MiB)
    try:
        with TcpTransport(server.url, name="mem") as producer:
            start = time.perf_counter()
            array = RemoteArray.store(producer, "mem", data)
            store = nbytes / (time.perf_counter() - start) / MiB
            results["RemoteArray.store (fresh region: page faults)"] = (store, store, store)

            def store_again() -> None:  # the allocator hands out the same, now touched, bytes
                RemoteArray.store(producer, "mem", data).free()

            array.free()
            results["RemoteArray.store + free"] = measure(store_again, nbytes, repeats)
            array = RemoteArray.store(producer, "mem", data)
            assert np.array_equal(array[len(array) // 2], data[len(data) // 2])
            metadata = array.metadata()
        results["RemoteArray.materialize"] = materialize_rate(server.url, metadata, nbytes, repeats)
        results[f"  same, tcp chunk_size {_TUNED_CHUNK // MiB} MiB window {_TUNED_WINDOW}"] = (
            materialize_rate(server.url, metadata, nbytes, repeats, chunk_size=_TUNED_CHUNK, window=_TUNED_WINDOW))
        with TcpTransport(server.url, name="mem") as plain:
            plain.reg(nbytes)
            results["TcpTransport.read (one buffer, no pool)"] = measure(
                lambda: plain.read(nbytes, metadata["addr"]), nbytes, repeats)
            results["TcpTransport.write (one buffer, no pool)"] = measure(
                lambda: plain.write(nbytes, metadata["addr"]), nbytes, repeats)
    finally:
        server.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB (about 10 s)")
    parser.add_argument("--size", type=int, default=256, help="array size in MiB (default 256)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--raw-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        raw_tcp_server(args.raw_server)
        return 0
    size, repeats = (64, args.repeats) if args.quick else (args.size, args.repeats)
    nbytes = size * MiB
    print(f"RemoteArray over tcp (127.0.0.1), {size} MiB, median of {repeats} (min–max), MiB/s")
    raw = bench_raw(nbytes, repeats)
    ours = bench_remote(nbytes, repeats)
    rows = [("raw TCP (yardstick)", raw), *ours.items()]
    width = max(len(name) for name, _ in rows)
    for name, (median, low, high) in rows:
        versus = f"{median / raw[0]:.2f}× raw" if name != rows[0][0] else ""
        print(f"  {name:<{width}}  {median:8,.0f}  ({low:,.0f}–{high:,.0f})  {versus}")
    ratio = ours["RemoteArray.materialize"][0] / raw[0]
    print(f"materialize / raw TCP = {ratio:.3f}× (target ≥ 0.5×: {'met' if ratio >= 0.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
