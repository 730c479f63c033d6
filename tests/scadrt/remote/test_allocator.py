"""Allocator: alloc/free with reuse, a clear error when full, state kept in the region."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadrt.errors import TransportError, UserError
from scadrt.remote import (
    AllocationError,
    Allocator,
    BufferPool,
    HeapFormatError,
    RegionFullError,
    RemoteMemory,
    remote_memory,
)
from scadrt.remote.allocator import GRANULE, HEADER_SIZE, heap_size
from scadrt.transports.local import LocalTransport
from tests.scadrt.remote.regions import Region


def allocator(region: object, **pool: int) -> Allocator:
    return Allocator(BufferPool(LocalTransport(region), **({"capacity": 8192, "page_size": 1024} | pool)))


def test_addresses_are_aligned_disjoint_and_reused_after_free() -> None:
    heap = allocator(np.zeros(1 << 20, dtype=np.uint8))
    a, b, c = heap.alloc(100), heap.alloc(1), heap.alloc(5000)
    assert all(addr % GRANULE == 0 and addr >= HEADER_SIZE for addr in (a, b, c))
    spans = sorted((addr, heap.size_of(addr)) for addr in (a, b, c))
    assert all(x + n <= y for (x, n), (y, _) in itertools.pairwise(spans))
    assert heap.size_of(a) == 128 and heap.size_of(b) == GRANULE  # sizes round up to the granule
    heap.free(b)
    assert heap.alloc(10) == b  # best fit: the hole b left
    assert heap.alloc(0) not in (a, b, c)  # a zero-byte allocation is a real block
    page = heap.alloc(10, align=4096)
    assert page % 4096 == 0


def test_adjacent_free_blocks_coalesce() -> None:
    heap = allocator(np.zeros(64 << 10, dtype=np.uint8))
    blocks = [heap.alloc(1024) for _ in range(4)]
    heap.free(blocks[1])
    heap.free(blocks[2])
    assert heap.alloc(2048) == blocks[1]  # the two holes are one gap now


def test_a_full_region_raises_with_the_sizes() -> None:
    heap = allocator(np.zeros(16 << 10, dtype=np.uint8))
    heap.alloc(10_000)
    message = r"cannot allocate 8 KiB \(8192 B\).* 5248 B free.*largest free gap is 5248 B"
    with pytest.raises(RegionFullError, match=message) as info:
        heap.alloc(8192)
    assert isinstance(info.value, UserError)
    heap.alloc(4096)  # what does fit still works


def test_bad_free_and_alignment() -> None:
    heap = allocator(np.zeros(64 << 10, dtype=np.uint8))
    addr = heap.alloc(10)
    heap.free(addr)
    with pytest.raises(AllocationError, match="not an allocated block"):
        heap.free(addr)
    with pytest.raises(AllocationError, match="not an allocated block"):
        heap.free(HEADER_SIZE)  # the allocator's own table
    with pytest.raises(AllocationError, match="power of two"):
        heap.alloc(10, align=96)
    with pytest.raises(AllocationError, match="negative"):
        heap.alloc(-1)


def test_state_lives_in_the_region_on_every_transport(region: Region) -> None:
    first = region.memory().allocator
    kept = [first.alloc(1000 * (i + 1)) for i in range(5)]
    first.free(kept.pop(2))
    second = region.memory().allocator  # another transport, as a later element would open
    assert [a for a, _ in second.blocks()] == kept
    new = second.alloc(3000)
    assert new not in kept
    assert [a for a, _ in first.blocks()] == sorted([*kept, new])  # the first one reloads as well
    first.free(new)
    assert new not in [a for a, _ in second.blocks()]


def test_the_table_grows_past_its_first_block_and_persists() -> None:
    storage = np.zeros(1 << 20, dtype=np.uint8)
    heap = allocator(storage)
    addrs = [heap.alloc(64) for _ in range(300)]
    for addr in addrs[::3]:
        heap.free(addr)
    live = sorted(set(addrs) - set(addrs[::3]))
    assert [a for a, _ in allocator(storage).blocks()] == live


def test_foreign_or_corrupt_regions_are_refused_not_overwritten() -> None:
    storage = np.zeros(64 << 10, dtype=np.uint8)
    storage[:5] = list(b"hello")
    heap = allocator(storage)
    with pytest.raises(HeapFormatError, match="does not hold a scadrt heap") as info:
        heap.alloc(1)
    assert isinstance(info.value, TransportError)
    assert storage[:5].tobytes() == b"hello"
    heap.format()
    addr = heap.alloc(1)
    storage[HEADER_SIZE + 3] ^= 0xFF  # damage the table
    with pytest.raises(HeapFormatError, match="checksum"):
        allocator(storage).free(addr)


def test_a_region_too_small_for_a_heap() -> None:
    with pytest.raises(RegionFullError, match="too small"):
        allocator(np.zeros(80, dtype=np.uint8), capacity=64, page_size=64).alloc(1)


def test_remote_memory_is_one_handle_per_transport() -> None:
    transport = LocalTransport(size=1 << 16)
    memory = remote_memory(transport, capacity=4096, page_size=1024)
    assert remote_memory(transport) is memory and remote_memory(memory) is memory
    assert memory.name == "local" and memory.pool.capacity == 4096
    other = remote_memory(LocalTransport(size=1 << 16))
    assert other is not memory
    memory.close()
    assert remote_memory(transport) is not memory  # a closed handle is replaced
    with pytest.raises(TypeError, match="expected an Action"):
        remote_memory("mem")  # type: ignore[arg-type]
    direct = RemoteMemory(other.transport, "mem")  # made directly: it becomes the transport's handle
    assert remote_memory(other.transport) is direct and direct.name == "mem"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(0, 3000), st.sampled_from([64, 64, 256, 1024])),
                      max_size=40))
def test_random_alloc_free_never_overlaps(steps: list[tuple[bool, int, int]]) -> None:
    storage = np.zeros(32 << 10, dtype=np.uint8)
    heap = allocator(storage)
    live: dict[int, int] = {}
    for is_alloc, size, align in steps:
        if is_alloc or not live:
            try:
                addr = heap.alloc(size, align)
            except RegionFullError:
                continue
            assert addr % align == 0
            live[addr] = size
        else:
            addr = sorted(live)[size % len(live)]
            heap.free(addr)
            del live[addr]
        spans = heap.blocks()
        assert [a for a, _ in spans] == sorted(live)
        assert all(a + n <= b for (a, n), (b, _) in itertools.pairwise(spans))
        assert all(n >= live[a] for a, n in spans) and (not spans or spans[-1][0] + spans[-1][1] <= len(storage))
    assert allocator(storage).blocks() == heap.blocks()


def test_heap_size_is_the_smallest_region_that_holds_the_blocks() -> None:
    """What scadc split sizes a memory element with (a profiled split): the blocks fit exactly,
    and a region one granule smaller cannot hold them all (over 8 KiB, where the block table has
    its full 64 entries, as every region split declares does)."""
    blocks = [1, 100, 5000, 64, 20_000]
    need = heap_size(blocks)
    heap = allocator(np.zeros(need, dtype=np.uint8))
    for n in blocks:
        heap.alloc(n)
    tight = allocator(np.zeros(need - GRANULE, dtype=np.uint8))
    with pytest.raises(RegionFullError):
        for n in blocks:
            tight.alloc(n)
