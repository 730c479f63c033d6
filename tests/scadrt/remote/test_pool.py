"""BufferPool: a page cache that is always equivalent to the plain bytes of the region."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadrt.errors import OutOfBoundsError, TransportClosedError, TransportConfigError
from scadrt.remote import BufferPool, StagingBufferError
from scadrt.transports.local import LocalTransport
from tests.scadrt.remote.regions import Region


class CountingTransport(LocalTransport):
    """A local transport that records every transfer as (op, address, size)."""

    def __init__(self, region: object) -> None:
        super().__init__(region, name="counting")
        self.ops: list[tuple[str, int, int]] = []

    def _read(self, addr: int, dst: memoryview) -> None:
        self.ops.append(("read", addr, len(dst)))
        super()._read(addr, dst)

    def _write(self, addr: int, src: memoryview) -> None:
        self.ops.append(("write", addr, len(src)))
        super()._write(addr, src)


def pattern(size: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def test_read_write_flush_round_trip_on_every_transport(region: Region) -> None:
    # 1 MiB through a 64 KiB pool: streams through the cache, evicting and writing back on the way
    data = pattern(1 << 20, 1)
    with BufferPool(region.open(), capacity=64 << 10, page_size=4096) as pool:
        pool.write(1000, data)
        assert bytes(pool.read(1000, len(data))) == data  # read-your-writes, partly from the cache
    with BufferPool(region.open(), capacity=64 << 10, page_size=4096) as fresh:  # close() flushed
        assert bytes(fresh.read(1000, len(data))) == data
        assert bytes(fresh.read(999, 1)) == b"\0"


def test_missing_pages_are_fetched_in_one_transfer_and_dirty_ones_written_in_one() -> None:
    region = np.frombuffer(bytearray(pattern(64 * 1024, 2)), dtype=np.uint8)
    transport = CountingTransport(region)
    pool = BufferPool(transport, capacity=32 * 1024, page_size=1024)
    assert bytes(pool.read(1500, 5000)) == region[1500:6500].tobytes()
    assert transport.ops == [("read", 1024, 6 * 1024)]  # pages 1-6, one transport read
    transport.ops.clear()
    pool.read(2000, 100)  # resident: no transfer
    assert transport.ops == [] and pool.stats.hits >= 1
    pool.write(3072, b"x" * 3072)  # pages 3-5, resident
    pool.write(20 * 1024, b"y" * 2048)  # pages 20-21, missing but fully covered: not read
    assert transport.ops == []
    pool.flush()
    assert sorted(transport.ops) == [("write", 3072, 3072), ("write", 20 * 1024, 2048)]
    assert region[3072:6144].tobytes() == b"x" * 3072 and region[20480:22528].tobytes() == b"y" * 2048


def test_partial_page_writes_read_the_page_first_and_write_back_only_the_bytes_written() -> None:
    region = np.zeros(16 * 1024, dtype=np.uint8)
    transport = CountingTransport(region)
    pool = BufferPool(transport, capacity=8 * 1024, page_size=1024)
    pool.write(1030, b"abc")  # page 1, partly covered: read first
    assert transport.ops == [("read", 1024, 1024)]
    region[1024:1030] = 7  # someone else changes other bytes of that page meanwhile
    pool.flush()
    assert transport.ops[-1] == ("write", 1030, 3)  # only the hull of what was written
    assert region[1024:1030].tolist() == [7] * 6 and region[1030:1033].tobytes() == b"abc"


def test_lru_eviction_keeps_recently_used_pages() -> None:
    region = np.frombuffer(bytearray(pattern(64 * 1024, 3)), dtype=np.uint8)
    transport = CountingTransport(region)
    pool = BufferPool(transport, capacity=4 * 1024, page_size=1024)  # 4 frames
    for page in (0, 1, 2, 3):
        pool.read(page * 1024, 1)
    pool.read(0, 1)  # page 0 is now the most recent; page 1 the least
    transport.ops.clear()
    pool.read(10 * 1024, 1)  # evicts page 1
    pool.read(0, 1)
    pool.read(2 * 1024, 1)
    pool.read(3 * 1024, 1)
    assert transport.ops == [("read", 10 * 1024, 1024)]
    pool.read(1024, 1)
    assert transport.ops[-1] == ("read", 1024, 1024)


def test_eviction_writes_back_dirty_pages() -> None:
    region = np.zeros(64 * 1024, dtype=np.uint8)
    pool = BufferPool(CountingTransport(region), capacity=2048, page_size=1024)
    pool.write(0, b"\1" * 2048)
    assert not region[:2048].any()  # write-back: still only in the cache
    pool.read(8192, 2048)  # needs both frames: the dirty pages go out first
    assert region[:2048].tolist() == [1] * 2048 and pool.dirty_pages == 0


def test_requests_larger_than_the_cache_stream_through() -> None:
    region = np.zeros(4 << 20, dtype=np.uint8)
    transport = CountingTransport(region)
    pool = BufferPool(transport, capacity=64 << 10, page_size=4096, max_transfer=32 << 10)
    data = pattern(3 << 20, 4)
    pool.write(17, data)
    pool.flush()
    assert region[17 : 17 + len(data)].tobytes() == data
    transport.ops.clear()
    out = bytearray(len(data))
    pool.readinto(17, out)
    assert bytes(out) == data
    assert max(size for _, _, size in transport.ops) <= 32 << 10  # reads are cut at max_transfer


def test_region_tail_page_is_partial() -> None:
    region = np.frombuffer(bytearray(pattern(10_000, 5)), dtype=np.uint8)
    pool = BufferPool(LocalTransport(region), capacity=8192, page_size=4096)
    assert bytes(pool.read(9000, 1000)) == region[9000:].tobytes()
    pool.write(9998, b"zz")
    pool.flush()
    assert region[9998:].tobytes() == b"zz"


def test_results_do_not_alias_the_cache() -> None:
    pool = BufferPool(LocalTransport(size=1 << 16), capacity=4096, page_size=1024)
    pool.write(0, b"a" * 100)
    first = pool.read(0, 100)
    pool.write(0, b"b" * 100)
    pool.read(8192, 4096)  # every frame reused
    assert bytes(first) == b"a" * 100


def test_bounds_and_configuration_errors() -> None:
    transport = LocalTransport(size=4096)
    pool = BufferPool(transport, capacity=2048, page_size=1024)
    with pytest.raises(OutOfBoundsError, match="overruns the region"):
        pool.read(4000, 100)
    with pytest.raises(OutOfBoundsError, match="overruns the region"):
        pool.write(4095, b"ab")
    with pytest.raises(OutOfBoundsError, match="negative"):
        pool.read(-1, 1)
    assert pool.read(4096, 0) == bytearray()
    with pytest.raises(TransportConfigError, match="capacity"):
        BufferPool(transport, capacity=100, page_size=1024)
    pool.close()
    with pytest.raises(TransportClosedError):
        pool.read(0, 1)


def test_reg_by_someone_else_is_detected() -> None:
    transport = LocalTransport(size=1 << 16)
    pool = BufferPool(transport, capacity=4096, page_size=1024)
    pool.write(0, b"clean")
    pool.flush()
    transport.reg(8)[:] = b"garbage!"  # element code using the raw transport: the pool's pages are suspect
    assert bytes(pool.read(0, 5)) == b"clean"  # no unwritten data: the pool re-registers and re-reads
    pool.write(100, b"dirty")
    transport.reg(16)
    with pytest.raises(StagingBufferError, match="re-registered"):
        pool.flush()


# -- the model: any interleaving of operations behaves like a plain bytearray --------------------------

SIZE = 5000  # not a multiple of the page size: the last page is partial


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    ops = []
    for _ in range(draw(st.integers(1, 30))):
        op = draw(st.sampled_from(["read", "write", "write", "flush", "invalidate"]))
        addr = draw(st.integers(0, SIZE))
        length = draw(st.integers(0, min(SIZE - addr, draw(st.sampled_from([16, 300, 2000, SIZE])))))
        ops.append((op, addr, length, draw(st.integers(0, 255))))
    return ops


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations(), page_size=st.sampled_from([64, 256, 1000]), frames=st.integers(1, 6),
       max_transfer=st.sampled_from([1, 512, 1 << 20]))
def test_pool_behaves_like_a_bytearray(ops: list[tuple[str, int, int, int]], page_size: int, frames: int,
                                       max_transfer: int) -> None:
    initial = pattern(SIZE, 6)
    region = bytearray(initial)
    model = bytearray(initial)
    pool = BufferPool(LocalTransport(region), capacity=frames * page_size, page_size=page_size,
                      max_transfer=max_transfer)
    for op, addr, length, value in ops:
        if op == "read":
            assert pool.read(addr, length) == model[addr : addr + length]
        elif op == "write":
            data = bytes((value + i) % 256 for i in range(length))
            pool.write(addr, data)
            model[addr : addr + length] = data
        elif op == "flush":
            pool.flush(addr, length)
        else:
            pool.invalidate(addr, length)
        # what is not dirty in the cache is in the region already
        assert pool.resident_pages <= frames
    pool.flush()
    assert region == model
    assert pool.dirty_pages == 0


def test_transfers_larger_than_the_cache_go_direct_and_stay_coherent() -> None:
    region = np.zeros(1 << 20, dtype=np.uint8)
    transport = CountingTransport(region)
    pool = BufferPool(transport, capacity=16 << 10, page_size=4096)
    pool.write(100, b"\7" * 10)  # dirty in the cache only
    assert not region[100:110].any()
    big = bytearray(64 << 10)
    pool.readinto(0, big)  # larger than the cache: read straight from the region, after a flush
    assert big[100:110] == b"\7" * 10 and pool.dirty_pages == 0
    assert pool.read(96, 8) == b"\0" * 4 + b"\7" * 4  # now cached (clean)
    data = pattern(64 << 10, 9)
    pool.write(0, data)  # larger than the cache: written through at once, cached copies dropped
    assert region[: len(data)].tobytes() == data
    assert pool.read(96, 8) == data[96:104]
