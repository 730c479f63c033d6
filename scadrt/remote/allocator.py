"""The allocator: which bytes of a memory element's region are in use, recorded in the region itself.

**Design choice: the state lives in the region, not in metadata passed between elements.** The
region is then the single source of truth: any element, in any process, with a new ``Action``,
continues allocating where the last one stopped, without anything threading allocator state
through the elements' JSON results. State carried in metadata (Scad's "bp" dict, reference-notes
§6.1) breaks on DAG shapes: two siblings given the same state hand out the same free bytes, a join
must merge states, and a forgotten hand-over clobbers live data. The price is a few small transport
operations per ``alloc``/``free``, negligible next to moving the data itself.

Layout (little-endian; version 1)::

    address 0   header, 64 B:  magic "SCADHEAP" | u32 version | u32 crc32 of the table bytes |
                               u64 heap id | u64 generation | u64 table address |
                               u64 table capacity (entries) | u64 entry count
    table       ``count`` entries (u64 address, u64 size), sorted by address, in a block of the
                heap that is itself an entry; it moves to a block twice as large when it is full.

Rules:

1. Addresses are multiples of ``align`` (a power of two, at least :data:`GRANULE` = 64 B); sizes are
   rounded up to a multiple of :data:`GRANULE`; ``alloc(0)`` gives a valid (minimal) block.
2. Free space is the gaps between live blocks, so freeing coalesces with free neighbours by
   construction; ``alloc`` takes the smallest gap that fits (best fit), the lowest address on ties.
3. A region whose header is all zero bytes (a fresh memory element) is formatted on first use. Any
   other content that is not a heap is refused (:class:`HeapFormatError`), never overwritten, unless
   :meth:`Allocator.format` is called explicitly.
4. ``alloc``/``free`` re-read the header (one small read), reload the table if another allocator
   changed it (another heap id or generation), then write the table and the header (generation + 1)
   through to the region before returning: the region is always up to date.
5. One allocator at a time per memory element. Elements sharing a memory element run one after the
   other in a DAG; elements running *concurrently* must not allocate in the same memory element
   (transports offer no atomic operation to lock with): give each its own instance (``mem@i``).
6. The table's CRC detects a torn update (a crash between writing the table and the header).
"""

from __future__ import annotations

import secrets
import struct
import zlib
from collections.abc import Iterable

import numpy as np

from scadrt.errors import AllocationError, HeapFormatError, RegionFullError
from scadrt.remote.pool import BufferPool
from scadrt.sizes import format_size

__all__ = ["GRANULE", "HEADER_SIZE", "Allocator", "heap_size"]

MAGIC = b"SCADHEAP"
VERSION = 1
HEADER_SIZE = 64
GRANULE = 64
_HEADER = struct.Struct("<8sIIQQQQQ")
_ENTRY = np.dtype([("addr", "<u8"), ("size", "<u8")])
_INITIAL_TABLE = 64  # entries


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def heap_size(blocks: Iterable[int]) -> int:
    """The bytes a region's heap needs to hold blocks of these sizes at once: the header, the first
    block table (64 entries, enough for fewer than 64 blocks) and each block rounded as rule 1 says;
    for sizing a memory element ahead of time. Exact for a region of 8 KiB or more; a smaller one
    starts with a smaller table, so this is an upper bound there.

    >>> heap_size([]), heap_size([1, 64, 65])
    (1088, 1344)
    """
    return HEADER_SIZE + _INITIAL_TABLE * _ENTRY.itemsize + sum(_round_up(max(n, 1), GRANULE) for n in blocks)


class Allocator:
    """The heap of one region, reached through ``pool``; see the module docstring."""

    def __init__(self, pool: BufferPool) -> None:
        self._pool = pool
        self._key: tuple[int, int] | None = None  # (heap id, generation) of the state below
        self._blocks: dict[int, int] = {}  # address -> size, the table block included
        self._table = (0, 0)  # (address, capacity in entries)

    @property
    def region_size(self) -> int:
        return self._pool.size

    # -- the interface ------------------------------------------------------------------------------

    def alloc(self, nbytes: int, align: int = GRANULE) -> int:
        """Reserve ``nbytes`` bytes aligned to ``align``; return their address."""
        if nbytes < 0:
            raise AllocationError(f"cannot allocate a negative size ({nbytes} B)")
        if align < GRANULE or align & (align - 1):
            raise AllocationError(f"alignment must be a power of two of at least {GRANULE}, got {align}")
        self._sync()
        blocks = dict(self._blocks)
        size = _round_up(max(nbytes, 1), GRANULE)
        addr = self._carve(blocks, size, align, nbytes)
        table_addr, capacity = self._table
        if len(blocks) > capacity:  # the table is full: move it to a block twice as large
            del blocks[table_addr]
            capacity = max(2 * capacity, len(blocks) + 1)
            table_addr = self._carve(blocks, capacity * _ENTRY.itemsize, GRANULE, nbytes)
        self._store(blocks, (table_addr, capacity))
        return addr

    def free(self, addr: int) -> None:
        """Return the block at ``addr`` to the free space."""
        self._sync()
        if addr not in self._blocks or addr == self._table[0]:
            raise AllocationError(
                f"{self._where()}: address {addr} is not an allocated block (freed already, or an address "
                "from another memory element?)"
            )
        blocks = dict(self._blocks)
        del blocks[addr]
        self._store(blocks, self._table)

    def size_of(self, addr: int) -> int:
        """Size of the live block at ``addr``; raise :class:`AllocationError` if there is none."""
        self._sync()
        size = self._blocks.get(addr)
        if size is None or addr == self._table[0]:
            raise AllocationError(f"{self._where()}: no allocated block at address {addr}")
        return size

    def blocks(self) -> list[tuple[int, int]]:
        """The live blocks ``(address, size)`` in address order (the allocator's own table excluded)."""
        self._sync()
        return [(a, s) for a, s in sorted(self._blocks.items()) if a != self._table[0]]

    def free_bytes(self) -> int:
        self._sync()
        return self.region_size - HEADER_SIZE - sum(self._blocks.values())

    def format(self) -> None:
        """Make the region an empty heap, whatever it held (live data is forgotten, not erased)."""
        capacity = min(_INITIAL_TABLE, max(2, (self.region_size - HEADER_SIZE) // (8 * _ENTRY.itemsize)))
        if HEADER_SIZE + capacity * _ENTRY.itemsize > self.region_size:
            raise RegionFullError(f"{self._where()}: a region of {self.region_size} B is too small for a heap "
                                  f"(it needs at least {HEADER_SIZE + capacity * _ENTRY.itemsize} B)")
        self._key = (secrets.randbits(63), 0)
        self._store({HEADER_SIZE: capacity * _ENTRY.itemsize}, (HEADER_SIZE, capacity))

    # -- internals ----------------------------------------------------------------------------------

    def _where(self) -> str:
        return f"heap of {self._pool.transport}"

    def _carve(self, blocks: dict[int, int], size: int, align: int, asked: int) -> int:
        """Add a block of ``size`` bytes to ``blocks`` in the best-fitting gap; return its address."""
        best: tuple[int, int] | None = None  # (gap size, address)
        cursor, largest = HEADER_SIZE, 0
        for start, length in [*sorted(blocks.items()), (self.region_size, 0)]:
            gap = start - cursor
            largest = max(largest, gap)
            addr = _round_up(cursor, align)
            if addr + size <= start and (best is None or gap < best[0]):
                best = (gap, addr)
            cursor = max(cursor, start + length)
        if best is None:
            free, live = self.region_size - HEADER_SIZE - sum(blocks.values()), len(blocks) - 1
            raise RegionFullError(
                f"{self._where()}: cannot allocate {format_size(asked)} ({asked} B): the region of "
                f"{format_size(self.region_size)} has {format_size(free)} free, the largest free gap is "
                f"{format_size(largest)} ({live} block{'' if live == 1 else 's'} live); "
                "free unused data or give the memory element more memory"
            )
        blocks[best[1]] = size
        return best[1]

    def _store(self, blocks: dict[int, int], table: tuple[int, int]) -> None:
        """Write ``blocks`` and a header pointing at them (generation + 1), then adopt them (rule 4)."""
        assert self._key is not None
        table_addr, capacity = table
        entries = np.array(sorted(blocks.items()), dtype=_ENTRY).reshape(-1)
        raw = entries.tobytes()
        heap_id, generation = self._key[0], self._key[1] + 1
        header = _HEADER.pack(MAGIC, VERSION, zlib.crc32(raw), heap_id, generation, table_addr, capacity,
                              len(entries))
        pool = self._pool
        pool.write(table_addr, raw)
        pool.write(0, header)  # after the table: a crash in between leaves a CRC mismatch (rule 6)
        pool.flush(table_addr, len(raw))
        pool.flush(0, HEADER_SIZE)
        self._blocks, self._table, self._key = blocks, table, (heap_id, generation)

    def _sync(self) -> None:
        """Load the heap from the region unless our copy is current; format a fresh (all-zero) region."""
        pool = self._pool
        if pool.size < HEADER_SIZE:
            raise RegionFullError(f"{self._where()}: a region of {pool.size} B is too small for a heap")
        pool.invalidate(0, HEADER_SIZE)
        raw = bytes(pool.read(0, HEADER_SIZE))
        if raw == bytes(HEADER_SIZE):
            self.format()
            return
        magic, version, crc, heap_id, generation, table_addr, capacity, count = _HEADER.unpack_from(raw)
        if magic != MAGIC:
            raise HeapFormatError(
                f"{self._where()}: the region does not hold a scadrt heap (it starts with {raw[:8]!r}, not "
                f"{MAGIC!r}); it was written without the allocator. Allocator.format() makes it an empty heap"
            )
        if version != VERSION:
            raise HeapFormatError(f"{self._where()}: heap version {version}; this scadrt reads version {VERSION}")
        if self._key == (heap_id, generation):
            return
        end = table_addr + count * _ENTRY.itemsize
        if count > capacity or table_addr < HEADER_SIZE or end > pool.size:
            raise HeapFormatError(f"{self._where()}: corrupt header (table of {count}/{capacity} entries at "
                                  f"{table_addr}, region {pool.size} B)")
        pool.invalidate(table_addr, count * _ENTRY.itemsize)
        table = pool.read(table_addr, count * _ENTRY.itemsize)
        if zlib.crc32(table) != crc:
            raise HeapFormatError(f"{self._where()}: the allocation table does not match its checksum "
                                  "(an interrupted update, or the region was overwritten)")
        entries = np.frombuffer(table, dtype=_ENTRY)
        blocks = {int(a): int(s) for a, s in zip(entries["addr"], entries["size"], strict=True)}
        if blocks.get(table_addr, 0) < capacity * _ENTRY.itemsize:
            raise HeapFormatError(f"{self._where()}: corrupt table (its own block is missing)")
        self._blocks, self._table, self._key = blocks, (table_addr, capacity), (heap_id, generation)
