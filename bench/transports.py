"""Benchmark the transports against the machine's own limits, measured in the same run.

Method (docs benchmarks.md): every number of ours sits next to a yardstick measured seconds
before or after it, and the table reports the ratio. Yardsticks:

- raw Python TCP request/response: blocking sockets, TCP_NODELAY, ``sendmsg`` + ``recv_into``,
  one request per transfer (no chunking): what one Python round trip over loopback costs;
- pyzmq DEALER/ROUTER echo: the floor of any pyzmq-based request/response;
- numpy ``copyto``: memcpy, the limit for shared memory.

Client and server (every thread of each, including zmq's I/O threads) are pinned to the same core,
then to different cores; both placements are reported. Latency: warm-up, then one op in flight,
p50/p99. Throughput: back-to-back ops until both a byte and a time budget are spent, repeated; the
median (min–max) in MiB/s of payload. The default budget keeps the run under a minute (``--quick``
about 10 s); ``--full`` uses the documented budget (≥ 5000 ops; ≥ 1 GiB and ≥ 1 s, 3 repeats).
It measures, it does not assert: the exit status is 0 whatever the numbers are.

    python bench/transports.py [--quick | --full]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial

import numpy as np
import zmq

from scadrt.transports.launcher import spawn_memory_server
from scadrt.transports.protocol import recv_exact, send_all
from scadrt.transports.shm import SharedRegion, ShmTransport
from scadrt.transports.tcp import TcpTransport

MiB = 1 << 20
REGION = 64 * MiB
_RAW_HEADER = struct.Struct("<QQQ")  # op, addr, length
_READ, _WRITE = 1, 2


@dataclass(frozen=True)
class Budget:
    lat_warm: int
    lat_ops: int
    tput_time: float
    tput_bytes: int
    repeats: int


BUDGETS = {
    "quick": Budget(lat_warm=200, lat_ops=1500, tput_time=0.15, tput_bytes=128 * MiB, repeats=1),
    "default": Budget(lat_warm=300, lat_ops=5000, tput_time=0.3, tput_bytes=256 * MiB, repeats=3),
    "full": Budget(lat_warm=500, lat_ops=5000, tput_time=1.0, tput_bytes=1024 * MiB, repeats=3),
}


# -- yardstick servers (run as child processes of this script) -------------------------------------


def raw_tcp_server() -> None:
    region = np.zeros(REGION, dtype=np.uint8).data
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    header = bytearray(_RAW_HEADER.size)
    while recv_exact(conn, memoryview(header)):
        op, addr, length = _RAW_HEADER.unpack(header)
        if op == _READ:
            send_all(conn, [memoryview(header), region[addr : addr + length]])
        else:
            recv_exact(conn, region[addr : addr + length])
            send_all(conn, [memoryview(header)])


def zmq_echo_server() -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind("tcp://127.0.0.1:0")
    print(sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
    while True:
        sock.send_multipart(sock.recv_multipart(copy=False), copy=False)


class RawTcpClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.header = bytearray(_RAW_HEADER.size)

    def read(self, buf: memoryview, addr: int) -> None:
        send_all(self.sock, [_RAW_HEADER.pack(_READ, addr, len(buf))])
        recv_exact(self.sock, memoryview(self.header))
        recv_exact(self.sock, buf)

    def write(self, buf: memoryview, addr: int) -> None:
        send_all(self.sock, [_RAW_HEADER.pack(_WRITE, addr, len(buf)), buf])
        recv_exact(self.sock, memoryview(self.header))


@contextmanager
def child(mode: str, cpus: set[int]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run this script in ``mode`` as a child pinned to ``cpus``; yield it and its first output line."""
    proc = subprocess.Popen([sys.executable, __file__, mode], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        pin(proc.pid, cpus)  # once it is ready, all its threads exist
        yield proc, line
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout:
            proc.stdout.close()


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process ``pid`` (affinity is per thread; zmq's I/O threads included)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with suppress(ProcessLookupError):  # a thread that just ended
            os.sched_setaffinity(int(tid), cpus)


# -- measuring ----------------------------------------------------------------------------------------


def sliced(op: Callable[[memoryview, int], None], buf: memoryview, size: int) -> Callable[[], None]:
    """``op(buf[:size], 0)``, the slice taken per call as the transports' own calls take theirs."""
    return lambda: op(buf[:size], 0)


def latency(op: Callable[[], object], budget: Budget) -> tuple[float, float]:
    """p50 and p99 in µs of ``op``, one in flight."""
    for _ in range(budget.lat_warm):
        op()
    times = []
    clock = time.perf_counter
    for _ in range(budget.lat_ops):
        start = clock()
        op()
        times.append(clock() - start)
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


def throughput(op: Callable[[], object], nbytes: int, budget: Budget) -> tuple[float, float, float]:
    """Median, min and max MiB/s over ``budget.repeats`` runs of back-to-back ``op``s."""
    op()  # touch the pages
    rates = []
    for _ in range(budget.repeats):
        moved, start = 0, time.perf_counter()
        while True:
            op()
            moved += nbytes
            elapsed = time.perf_counter() - start
            if moved >= budget.tput_bytes and elapsed >= budget.tput_time:
                break
        rates.append(moved / elapsed / MiB)
    return statistics.median(rates), min(rates), max(rates)


@dataclass(frozen=True)
class Row:
    placement: str
    what: str
    unit: str
    ours: float
    spread: str
    yardstick: float | None
    yardstick_name: str
    #: (direction, bound): ratio target "≥"/"≤" ours/yardstick, or "abs≤" on the value itself
    target: tuple[str, float] | None = None

    def ratio(self) -> float | None:
        return self.ours / self.yardstick if self.yardstick else None

    def verdict(self) -> str:
        if self.target is None:
            return ""
        kind, bound = self.target
        value = self.ours if kind == "abs≤" else self.ratio()
        if value is None:
            return ""
        ok = value <= bound if kind in ("≤", "abs≤") else value >= bound
        label = f"≤ {bound:g} µs" if kind == "abs≤" else f"{kind} {bound:g}×"
        return f"{label}: {'met' if ok else 'NOT met'}"


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def bench_tcp(placement: str, client_cpus: set[int], server_cpus: set[int], budget: Budget) -> list[Row]:
    rows: list[Row] = []
    pin(os.getpid(), client_cpus)
    server = spawn_memory_server(REGION)
    try:
        pin(server.pid, server_cpus)
        with child("--raw-server", server_cpus) as (_, port), child("--zmq-server", server_cpus) as (
                _, zmq_url), TcpTransport(server.url) as ours:
            raw = RawTcpClient(int(port))
            dealer: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(zmq_url)
            pin(os.getpid(), client_cpus)  # threads created since (zmq I/O) too
            buf = np.zeros(16 * MiB, dtype=np.uint8).data
            ours.reg(16 * MiB)

            def zmq_round_trip() -> None:
                dealer.send(b"x" * 40)
                dealer.recv()

            for size, label in ((8, "8 B"), (4096, "4 KiB")):
                o50, o99 = latency(partial(ours.read, size, 0), budget)
                r50, r99 = latency(sliced(raw.read, buf, size), budget)
                rows.append(Row(placement, f"tcp {label} read p50", "µs", o50, "", r50, "raw TCP", ("≤", 2.0)))
                rows.append(Row(placement, f"tcp {label} read p99", "µs", o99, "", r99, "raw TCP"))
            o50, _ = latency(lambda: ours.write(8, 0), budget)
            r50, _ = latency(lambda: raw.write(buf[:8], 0), budget)
            rows.append(Row(placement, "tcp 8 B write p50", "µs", o50, "", r50, "raw TCP", ("≤", 2.0)))
            z50, _ = latency(zmq_round_trip, budget)
            rows.append(Row(placement, "tcp 8 B read p50 vs pyzmq", "µs", rows[0].ours, "", z50,
                            "pyzmq DEALER/ROUTER"))
            for size, label in ((MiB, "1 MiB"), (16 * MiB, "16 MiB")):
                for op in ("read", "write"):
                    ours_op = getattr(ours, op)
                    raw_op = getattr(raw, op)
                    med, lo, hi = throughput(partial(ours_op, size, 0), size, budget)
                    rmed, _, _ = throughput(sliced(raw_op, buf, size), size, budget)
                    rows.append(Row(placement, f"tcp {label} {op}", "MiB/s", med, f"{lo:,.0f}–{hi:,.0f}", rmed,
                                    "raw TCP", ("≥", 0.6)))
            dealer.close()
            raw.sock.close()
    finally:
        server.stop()
    return rows


def bench_shm(cpus: set[int], budget: Budget) -> list[Row]:
    pin(os.getpid(), cpus)
    rows: list[Row] = []
    with SharedRegion(REGION) as region, ShmTransport(region.name) as shm:
        shm.reg(MiB)
        src = np.zeros(MiB, dtype=np.uint8)
        dst = np.zeros(MiB, dtype=np.uint8)
        memcpy, _, _ = throughput(lambda: np.copyto(dst, src), MiB, budget)
        for op in ("read", "write"):
            f = getattr(shm, op)
            med, lo, hi = throughput(partial(f, MiB, 0), MiB, budget)
            rows.append(Row("in-process", f"shm 1 MiB {op}", "MiB/s", med, f"{lo:,.0f}–{hi:,.0f}", memcpy,
                            "numpy copyto", ("≥", 0.7)))
        for op in ("read", "write"):
            f = getattr(shm, op)
            p50, p99 = latency(partial(f, 8, 64), budget)
            rows.append(Row("in-process", f"shm 8 B {op} p50 (p99 {p99:.2f})", "µs", p50, "", None, "",
                            ("abs≤", 3.0)))
    return rows


def print_table(rows: list[Row]) -> None:
    header = ("placement", "measurement", "unit", "ours", "(min–max)", "yardstick", "value", "ratio", "target")
    table = [header] + [
        (r.placement, r.what, r.unit, fmt(r.ours), r.spread, r.yardstick_name, fmt(r.yardstick),
         f"{r.ratio():.2f}×" if r.ratio() else "", r.verdict())
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    targets = [r for r in rows if r.target]
    met = sum("NOT" not in r.verdict() for r in targets)
    print(f"\ntargets met: {met}/{len(targets)} (ratios are ours / yardstick, measured in the same run)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about 10 s, one repeat")
    mode.add_argument("--full", action="store_true", help="the documented budget (slow)")
    mode.add_argument("--raw-server", action="store_true", help=argparse.SUPPRESS)
    mode.add_argument("--zmq-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_server:
        raw_tcp_server()
        return 0
    if args.zmq_server:
        zmq_echo_server()
        return 0
    budget = BUDGETS["quick" if args.quick else "full" if args.full else "default"]
    cpus = sorted(os.sched_getaffinity(0))
    start = time.perf_counter()
    placements = [("same-core", {cpus[-1]}, {cpus[-1]})]
    if len(cpus) > 1:
        placements.append(("cross-core", {cpus[0]}, {cpus[-1]}))
    rows: list[Row] = []
    try:
        for name, client_cpus, server_cpus in placements:
            rows += bench_tcp(name, client_cpus, server_cpus, budget)
        rows += bench_shm({cpus[-1]}, budget)
    finally:
        pin(os.getpid(), set(cpus))
    print_table(rows)
    print(f"({len(cpus)} CPUs; {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
