"""The conformance suite every transport must pass (the rules of scadrt.transports.base).

A transport's test class subclasses :class:`TransportConformance` and provides one fixture,
``endpoint``, returning an :class:`Endpoint`: how to open a new client on one region of
:data:`REGION` bytes, and (when the transport can cross processes) the descriptor another process
opens. The region may hold data from earlier tests: every test writes before it reads.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from scadrt.errors import OutOfBoundsError, TransportClosedError, TransportError
from scadrt.transports.base import Transport

__all__ = ["REGION", "Endpoint", "TransportConformance"]

#: size of the region every endpoint serves
REGION = 1 << 20

#: sizes from nothing, around word, page and copy-path boundaries, up to the whole region
SIZES = [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 4095, 4096, 4097, 65535, 65536, 65537, 200_003, REGION]


@dataclass(frozen=True)
class Endpoint:
    """One region, and how to reach it."""

    #: open a new client transport on the region
    open: Callable[[], Transport]
    #: a descriptor another process can open (``None``: the transport is in-process only)
    descriptor: str | None = None


def pattern(size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def put(transport: Transport, data: np.ndarray, addr: int, offset: int = 0) -> None:
    transport.reg(offset + len(data))
    np.frombuffer(transport.buf, dtype=np.uint8)[offset:] = data
    transport.write(len(data), addr, offset)


def get(transport: Transport, size: int, addr: int, offset: int = 0) -> np.ndarray:
    transport.reg(offset + size)
    transport.buf[:] = b"\xee" * len(transport.buf)  # so stale bytes cannot pass for the right ones
    transport.read(size, addr, offset)
    return np.frombuffer(transport.buf, dtype=np.uint8)[offset:].copy()


# A client in another process: writes its stripe, reads it back, reports OK.
_PROCESS_CLIENT = """
import sys
import numpy as np
from scadrt.transports import open_descriptor
descriptor, index, stripe, rounds = sys.argv[1], *map(int, sys.argv[2:])
with open_descriptor(descriptor) as t:
    t.reg(stripe)
    buf = np.frombuffer(t.buf, dtype=np.uint8)
    for r in range(rounds):
        buf[:] = (index * 31 + r) % 256
        t.write(stripe, index * stripe)
        buf[:] = 0
        t.read(stripe, index * stripe)
        assert (buf == (index * 31 + r) % 256).all(), f"client {index} round {r} read back other bytes"
print("OK")
"""


class TransportConformance:
    """The expectations; subclasses only provide the ``endpoint`` fixture."""

    # -- basics -----------------------------------------------------------------------------------

    def test_size_is_the_region(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            assert t.size == REGION
            assert not t.closed
            assert isinstance(t.kind, str) and str(t).startswith(t.kind)

    def test_buf_needs_reg(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            with pytest.raises(TransportError, match="reg"):
                _ = t.buf
            with pytest.raises(TransportError, match="reg"):
                t.read(1, 0)

    @pytest.mark.parametrize("size", SIZES)
    def test_round_trip(self, endpoint: Endpoint, size: int) -> None:
        data = pattern(size, seed=size)
        addr = (REGION - size) // 2
        with endpoint.open() as t:
            put(t, data, addr)
            assert np.array_equal(get(t, size, addr, offset=5), data)
            if size:
                # the bytes around the written range belong to someone else and stay as they were
                before = get(t, min(addr, 16), addr - min(addr, 16))
                put(t, data, addr)
                assert np.array_equal(get(t, min(addr, 16), addr - min(addr, 16)), before)

    def test_direct_io_round_trip_and_bounds(self, endpoint: Endpoint) -> None:
        """read_into/write_from move any buffer, staging buffer untouched (or refuse, e.g. RDMA)."""
        data = pattern(REGION // 2 + 3, seed=11)
        with endpoint.open() as t:
            if not t.direct_io:
                with pytest.raises(TransportError):
                    t.read_into(bytearray(8), 0)
                return
            t.reg(4)
            t.buf[:] = b"keep"
            t.write_from(data, 5)
            out = np.zeros(len(data), dtype=np.uint8)
            t.read_into(out, 5)
            assert np.array_equal(out, data) and bytes(t.buf) == b"keep"
            assert np.array_equal(get(t, 16, 5), data[:16])  # the staging path sees the same bytes
            with pytest.raises(OutOfBoundsError):
                t.read_into(bytearray(2), REGION - 1)
            with pytest.raises(TypeError):
                t.read_into(b"readonly", 0)
        with pytest.raises(TransportClosedError):
            t.write_from(b"x", 0)

    def test_writes_are_visible_to_other_clients(self, endpoint: Endpoint) -> None:
        data = pattern(10_000, seed=1)
        with endpoint.open() as writer, endpoint.open() as reader:
            put(writer, data, 12_345)
            assert np.array_equal(get(reader, 10_000, 12_345), data)

    @pytest.mark.parametrize("addr", [1, 3, 4093, 65_533, REGION - 70_001])
    @pytest.mark.parametrize("offset", [1, 3, 7])
    def test_unaligned(self, endpoint: Endpoint, addr: int, offset: int) -> None:
        with endpoint.open() as t:
            for size in (1, 5, 99, 70_001):  # the last one crosses 64 KiB (copy path, tcp chunks)
                data = pattern(size, seed=addr + offset + size)
                put(t, data, addr, offset)
                assert np.array_equal(get(t, size, addr, offset + 2), data)

    def test_region_boundaries(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            put(t, np.array([0xAB], dtype=np.uint8), REGION - 1)
            assert get(t, 1, REGION - 1)[0] == 0xAB
            tail = pattern(4096, seed=7)
            put(t, tail, REGION - 4096)
            assert np.array_equal(get(t, 4096, REGION - 4096), tail)
            head = pattern(4096, seed=8)
            put(t, head, 0)
            assert np.array_equal(get(t, 4096, 0), head)
            t.reg(8)
            t.read(0, REGION)  # an empty range at the very end is inside the region
            t.write(0, REGION, 8)  # …and at the very end of the buffer

    # -- out of bounds ----------------------------------------------------------------------------

    @pytest.mark.parametrize(("size", "addr"), [(1, REGION), (2, REGION - 1), (REGION + 1, 0), (0, REGION + 1),
                                                 (4096, REGION - 4095), (1, 2**63)])
    def test_remote_out_of_bounds(self, endpoint: Endpoint, size: int, addr: int) -> None:
        with endpoint.open() as t:
            t.reg(max(size, 1))
            with pytest.raises(OutOfBoundsError, match="region"):
                t.read(size, addr)
            with pytest.raises(OutOfBoundsError, match="region"):
                t.write(size, addr)
            put(t, pattern(16, seed=3), 0)  # and the transport still works
            assert np.array_equal(get(t, 16, 0), pattern(16, seed=3))

    @pytest.mark.parametrize(("size", "offset"), [(65, 0), (1, 64), (60, 5), (0, 65)])
    def test_buffer_out_of_bounds(self, endpoint: Endpoint, size: int, offset: int) -> None:
        with endpoint.open() as t:
            t.reg(64)
            with pytest.raises(OutOfBoundsError, match="staging buffer"):
                t.read(size, 0, offset)
            with pytest.raises(OutOfBoundsError, match="staging buffer"):
                t.write(size, 0, offset)

    def test_transfer_larger_than_the_staging_buffer_needs_a_bigger_reg(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            t.reg(1000)
            with pytest.raises(OutOfBoundsError):
                t.read(1001, 0)
            data = pattern(300_000, seed=4)
            put(t, data, 100)  # reg(300_000): grows
            assert np.array_equal(get(t, 300_000, 100), data)

    @pytest.mark.parametrize(("size", "addr", "offset"), [(-1, 0, 0), (1, -1, 0), (1, 0, -1)])
    def test_negative_values_are_rejected(self, endpoint: Endpoint, size: int, addr: int, offset: int) -> None:
        with endpoint.open() as t:
            t.reg(16)
            with pytest.raises(OutOfBoundsError, match="negative"):
                t.read(size, addr, offset)
            with pytest.raises(OutOfBoundsError, match="negative"):
                t.write(size, addr, offset)
            with pytest.raises(OutOfBoundsError, match="negative"):
                t.reg(-1)

    def test_non_integers_are_rejected_but_numpy_integers_work(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            t.reg(16)
            with pytest.raises(TypeError):
                t.read(1.5, 0)  # type: ignore[arg-type]
            t.buf[:4] = b"abcd"
            t.write(np.int64(4), np.uint32(100), np.int8(0))  # type: ignore[arg-type]
            t.read(np.int64(4), np.int64(100), np.int64(8))  # type: ignore[arg-type]
            assert bytes(t.buf[8:12]) == b"abcd"

    # -- reg ----------------------------------------------------------------------------------------

    def test_reg_gives_exactly_the_size_asked(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            first = t.reg(100)
            assert len(first) == len(t.buf) == 100 and not first.readonly
            first[:3] = b"xyz"
            assert len(t.reg(10)) == 10  # smaller: same storage, contents kept
            assert bytes(t.buf[:3]) == b"xyz"
            grown = t.reg(1 << 16)  # bigger: new zeroed storage, never the old small one
            assert len(grown) == 1 << 16 and bytes(grown[:3]) == b"\0\0\0"
            assert bytes(first[:3]) == b"xyz"  # old views still point at the old storage
            assert len(t.reg(0)) == 0

    # -- lifecycle ----------------------------------------------------------------------------------

    def test_use_after_close(self, endpoint: Endpoint) -> None:
        t = endpoint.open()
        t.reg(16)
        t.close()
        assert t.closed
        for call in (lambda: t.read(1, 0), lambda: t.write(1, 0), lambda: t.reg(8), lambda: t.buf):
            with pytest.raises(TransportClosedError):
                call()
        t.close()  # double close is fine

    def test_context_manager_closes(self, endpoint: Endpoint) -> None:
        with endpoint.open() as t:
            pass
        assert t.closed
        with pytest.raises(TransportClosedError):
            t.reg(1)

    # -- concurrency --------------------------------------------------------------------------------

    def test_concurrent_clients_in_threads(self, endpoint: Endpoint) -> None:
        clients, stripe, rounds = 4, 50_000, 10
        errors: list[BaseException] = []

        def client(index: int) -> None:
            try:
                with endpoint.open() as t:
                    for r in range(rounds):
                        data = pattern(stripe, seed=index * 100 + r)
                        put(t, data, index * stripe)
                        assert np.array_equal(get(t, stripe, index * stripe), data), f"client {index} round {r}"
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        with endpoint.open() as t:
            for i in range(clients):
                assert np.array_equal(get(t, stripe, i * stripe), pattern(stripe, seed=i * 100 + rounds - 1))

    def test_concurrent_clients_in_processes(self, endpoint: Endpoint) -> None:
        if endpoint.descriptor is None:
            pytest.skip("this transport does not cross processes")
        clients, stripe, rounds = 3, 100_000, 20
        procs = [
            subprocess.Popen([sys.executable, "-c", _PROCESS_CLIENT, endpoint.descriptor, str(i), str(stripe),
                              str(rounds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            for i in range(clients)
        ]
        results = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, results, strict=True):
            assert p.returncode == 0 and out.strip() == b"OK", err.decode()
        with endpoint.open() as t:
            for i in range(clients):
                assert (get(t, stripe, i * stripe) == (i * 31 + rounds - 1) % 256).all()
