"""The buffer pool: a page cache of one memory element's region, kept in one transport staging buffer.

The region is cut into *pages* of ``page_size`` bytes (page ``p`` covers ``[p*page_size,
(p+1)*page_size)``, the last one cut at the region's end); the staging buffer is cut into as many
*frames* as fit in ``capacity``. A resident page sits in exactly one frame. Rules:

1. **Ownership.** The pool registers the transport's staging buffer (``reg(capacity)``) and is its
   only user from then on. If someone else calls ``reg`` on the transport, the pool notices at its
   next call: with no unwritten data it drops its pages and registers again; with unwritten data it
   raises :class:`StagingBufferError` (those bytes may have been overwritten).
2. **Reads** copy from frames; missing pages are fetched first. Consecutive missing pages of one
   request go to consecutive frames and arrive in *one* transport read (at most ``max_transfer``
   bytes; a larger run is split), so a large request costs a few large transfers, not one per page.
3. **Writes** are write-back: bytes are copied into frames and the page is marked dirty with the
   hull of the bytes written to it. A page only partly covered by a write and not resident is read
   first (so every frame holds a whole valid page); fully covered pages are never read.
4. **Eviction** is LRU. A run of ``k`` missing pages needs ``k`` consecutive frames: the pool takes
   the window whose most recently used frame is the least recent (exactly LRU for ``k == 1``). Dirty
   frames in the window are written back first, consecutive ones in one transport write.
5. **Flush** (:meth:`flush`) writes back dirty bytes, per page only the hull of the bytes written
   through this pool, coalescing pages that are adjacent both in the region and in the buffer. Data
   written with :meth:`write` reaches the region only at a flush or an eviction: flush before the
   element returns (the high-level APIs of :mod:`scadrt.remote` flush after every call).
6. **Any size.** A request larger than the cache streams through it run by run; there is no size
   limit (Scad's pool aborted the process above 64 MiB, reference-notes §10.21).
7. **Aliasing.** Nothing the pool returns points into the staging buffer: :meth:`read` returns a
   fresh ``bytearray``, :meth:`readinto` copies into the caller's buffer, :meth:`write` copies the
   caller's bytes. A later pool call never changes data handed out before.
8. **Coherence.** The pool assumes nobody else writes the bytes it caches while it caches them (true
   for Scad elements sharing a memory element, which run one after the other, each with its own
   pool). With concurrent writers, :meth:`invalidate` drops cached pages so the next read fetches
   them again; rule 5 keeps a flush from overwriting bytes this pool did not write (outside the hulls).
9. Like a transport, a pool is used by one thread at a time.
"""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from scadrt.errors import (
    OutOfBoundsError,
    StagingBufferError,
    TransportClosedError,
    TransportConfigError,
)
from scadrt.transports.base import Transport, copy_bytes

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_MAX_TRANSFER",
    "DEFAULT_PAGE_SIZE",
    "BufferPool",
    "PoolStats",
    "StagingBufferError",
]

#: what the pool reads into and writes from: anything exporting a C-contiguous buffer
BytesLike = bytes | bytearray | memoryview | np.ndarray


def _byte_view(data: BytesLike) -> memoryview:
    # ndarray.data is memoryview(array); numpy's stubs declare ndarray a Buffer only on Python 3.12+
    return (data.data if isinstance(data, np.ndarray) else memoryview(data)).cast("B")

DEFAULT_PAGE_SIZE = 64 << 10
#: small on purpose: every memory element an element touches gets its own pool, and large values
#: stream through it, so the cache bounds the memory an element spends on staging
DEFAULT_CAPACITY = 8 << 20
#: largest single transport read or write of a run: big enough to amortise a round trip, small
#: enough that the copy out of the staging buffer still finds the bytes in the CPU caches
DEFAULT_MAX_TRANSFER = 8 << 20


@dataclass
class PoolStats:
    """Counters of one pool (pages, and transport operations)."""

    hits: int = 0
    misses: int = 0
    #: transport reads / writes issued (each one possibly many pages)
    fetches: int = 0
    write_backs: int = 0
    evictions: int = 0


class BufferPool:
    """A page cache of ``transport``'s region in its staging buffer; see the module docstring."""

    def __init__(self, transport: Transport, *, capacity: int = DEFAULT_CAPACITY,
                 page_size: int = DEFAULT_PAGE_SIZE, max_transfer: int = DEFAULT_MAX_TRANSFER) -> None:
        if page_size < 1 or capacity < page_size or max_transfer < 1:
            raise TransportConfigError(
                f"buffer pool for {transport}: need page_size >= 1, capacity >= page_size and max_transfer >= 1 "
                f"(got page_size {page_size}, capacity {capacity}, max_transfer {max_transfer})"
            )
        self.transport = transport
        self.page_size = page_size
        nframes = capacity // page_size
        self.capacity = nframes * page_size
        self._run_max = max(1, min(nframes, max_transfer // page_size))
        self.max_transfer = max_transfer
        self._buf: memoryview | None = transport.reg(self.capacity)
        self._frame_page = np.full(nframes, -1, dtype=np.int64)  # page held by each frame, -1: free
        self._stamp = np.zeros(nframes, dtype=np.int64)  # last use (LRU clock); 0: free, so chosen first
        self._clock = 0
        self._where: dict[int, int] = {}  # page -> frame
        self._dirty: dict[int, tuple[int, int]] = {}  # frame -> dirty hull [lo, hi) within its page
        self.stats = PoolStats()

    @property
    def size(self) -> int:
        """Size of the region in bytes."""
        return self.transport.size

    @property
    def resident_pages(self) -> int:
        return len(self._where)

    @property
    def dirty_pages(self) -> int:
        return len(self._dirty)

    # -- the interface ------------------------------------------------------------------------------

    def read(self, addr: int, nbytes: int) -> bytearray:
        """Return a fresh copy of region bytes ``[addr, addr+nbytes)``."""
        out = bytearray(_count("read size", nbytes))
        self.readinto(addr, out)
        return out

    def readinto(self, addr: int, dst: BytesLike) -> None:
        """Fill the writable C-contiguous buffer ``dst`` (all its bytes) from region bytes at ``addr``."""
        out = _byte_view(dst)
        if out.readonly:
            raise TypeError("readinto needs a writable buffer")
        addr = self._check_range("read", addr, len(out))
        if not len(out):
            return
        if self._direct(len(out)):
            # a large read bypasses the cache: one copy from the transport instead of two; flushing
            # first makes the region current, and clean cached pages stay valid
            self.flush(addr, len(out))
            for pos in range(0, len(out), self.max_transfer):
                self.transport.read_into(out[pos : pos + self.max_transfer], addr + pos)
            return
        buf = self._staging()
        for pos, offset, length in self._walk(addr, len(out), write=False):
            copy_bytes(out[pos : pos + length], buf[offset : offset + length])

    def write(self, addr: int, data: BytesLike) -> None:
        """Copy the C-contiguous buffer ``data`` to region bytes at ``addr`` (reaches the region at flush)."""
        src = _byte_view(data)
        addr = self._check_range("write", addr, len(src))
        if not len(src):
            return
        if self._direct(len(src)):
            # a large write goes straight to the region (written through, not at flush); cached
            # pages of the range would be stale, so they are written back and dropped first
            self.invalidate(addr, len(src))
            for pos in range(0, len(src), self.max_transfer):
                self.transport.write_from(src[pos : pos + self.max_transfer], addr + pos)
            return
        buf = self._staging()
        for pos, offset, length in self._walk(addr, len(src), write=True):
            copy_bytes(buf[offset : offset + length], src[pos : pos + length])

    def _direct(self, nbytes: int) -> bool:
        """A transfer larger than the whole cache skips it (it would only stream through, evicting
        everything), when the transport can move any buffer (not RDMA)."""
        return self.transport.direct_io and nbytes > self.capacity

    def flush(self, addr: int = 0, nbytes: int | None = None) -> None:
        """Write back the dirty bytes of the pages overlapping ``[addr, addr+nbytes)`` (default: all)."""
        if not self._dirty:
            return
        self._staging()
        first, last = self._pages(addr, nbytes)
        self._write_back(sorted(f for f in self._dirty if first <= self._frame_page[f] <= last))

    def invalidate(self, addr: int = 0, nbytes: int | None = None) -> None:
        """Flush, then forget the pages overlapping ``[addr, addr+nbytes)``: the next read fetches them."""
        self.flush(addr, nbytes)
        first, last = self._pages(addr, nbytes)
        held = self._frame_page
        for frame in np.flatnonzero((held >= first) & (held <= last)).tolist():
            self._drop(frame)

    def close(self) -> None:
        """Flush everything and stop using the staging buffer (the transport stays open). Idempotent."""
        if self._buf is None:
            return
        if not self.transport.closed:
            self.flush()
        self._buf = None
        self._where.clear()
        self._dirty.clear()

    @property
    def closed(self) -> bool:
        return self._buf is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<BufferPool on {self.transport}: {len(self._where)}/{len(self._stamp)} pages of "
                f"{self.page_size} B, {len(self._dirty)} dirty>")

    # -- internals ----------------------------------------------------------------------------------

    def _check_range(self, op: str, addr: int, nbytes: int) -> int:
        addr = _count(f"{op} address", addr)
        if addr + nbytes > self.size:
            raise OutOfBoundsError(
                f"buffer pool on {self.transport}: {op} of {nbytes} B at address {addr} overruns the region "
                f"({self.size} B)"
            )
        return addr

    def _staging(self) -> memoryview:
        """The staging buffer, registered again if someone else re-registered it (rule 1)."""
        if self._buf is None:
            raise TransportClosedError(f"buffer pool on {self.transport} is closed")
        if self.transport.buf is not self._buf:
            if self._dirty:
                raise StagingBufferError(
                    f"buffer pool on {self.transport}: the transport's staging buffer was re-registered (reg()) "
                    f"while {len(self._dirty)} page(s) were not yet written back; do not call reg() on a "
                    "transport a buffer pool uses, or flush the pool first"
                )
            for frame in list(self._where.values()):
                self._drop(frame)
            self._buf = self.transport.reg(self.capacity)
        return self._buf

    def _walk(self, addr: int, nbytes: int, *, write: bool) -> Iterator[tuple[int, int, int]]:
        """Make the pages of ``[addr, addr+nbytes)`` resident, run by run, and yield for each run
        ``(position in the request, staging offset, length)``; the caller copies before resuming."""
        size, where = self.page_size, self._where
        end = addr + nbytes
        page, last = addr // size, (end - 1) // size
        while page <= last:
            frame = where.get(page)
            if frame is not None:  # resident: as many following pages as sit in the following frames
                stop = page + 1
                while stop <= last and where.get(stop) == frame + stop - page:
                    stop += 1
                self.stats.hits += stop - page
            else:
                stop = page + 1
                while stop <= last and stop - page < self._run_max and stop not in where:
                    stop += 1
                self.stats.misses += stop - page
                frame = self._place(page, stop - page)
                if not write:
                    self._fetch(frame, page, stop - page)
                else:  # only pages the write covers partly need their old bytes (rule 3)
                    head_partial = addr > page * size
                    if head_partial:
                        self._fetch(frame, page, 1)
                    tail = stop - 1
                    if end < min((tail + 1) * size, self.size) and not (tail == page and head_partial):
                        self._fetch(frame + tail - page, tail, 1)
            self._clock += 1
            self._stamp[frame : frame + stop - page] = self._clock
            lo, hi = max(addr, page * size), min(end, stop * size)
            if write:
                for i in range(stop - page):
                    base = (page + i) * size
                    new_lo, new_hi = max(lo - base, 0), min(hi - base, size)
                    old = self._dirty.get(frame + i)
                    self._dirty[frame + i] = (new_lo, new_hi) if old is None else (min(old[0], new_lo),
                                                                                   max(old[1], new_hi))
            yield lo - addr, frame * size + lo - page * size, hi - lo
            page = stop

    def _place(self, page: int, count: int) -> int:
        """Give pages ``page … page+count-1`` consecutive frames (evicting the LRU window); return the first."""
        if count == 1:
            first = int(np.argmin(self._stamp))
        else:
            first = int(np.argmin(sliding_window_view(self._stamp, count).max(axis=1)))
        frames = range(first, first + count)
        self._write_back([f for f in frames if f in self._dirty])
        for frame in frames:
            if self._frame_page[frame] >= 0:
                self.stats.evictions += 1
                self._drop(frame)
            self._frame_page[frame] = page + frame - first
            self._where[page + frame - first] = frame
        return first

    def _drop(self, frame: int) -> None:
        """Forget the (clean) page in ``frame``."""
        page = int(self._frame_page[frame])
        if page >= 0:
            del self._where[page]
            self._frame_page[frame] = -1
            self._stamp[frame] = 0

    def _fetch(self, frame: int, page: int, count: int) -> None:
        remote = page * self.page_size
        length = min(count * self.page_size, self.size - remote)
        self.transport.read(length, remote, frame * self.page_size)
        self.stats.fetches += 1

    def _write_back(self, frames: list[int]) -> None:
        """Write the dirty hulls of ``frames`` (ascending), merging those adjacent in region and buffer."""
        if not frames:
            return
        size = self.page_size
        runs: list[list[int]] = []  # [region address, staging offset, length]
        for frame in frames:
            lo, hi = self._dirty[frame]
            remote, offset = int(self._frame_page[frame]) * size + lo, frame * size + lo
            if runs and runs[-1][0] + runs[-1][2] == remote and runs[-1][1] + runs[-1][2] == offset:
                runs[-1][2] += hi - lo
            else:
                runs.append([remote, offset, hi - lo])
        for remote, offset, length in runs:
            self.transport.write(length, remote, offset)
            self.stats.write_backs += 1
        for frame in frames:  # only once every write has succeeded
            del self._dirty[frame]

    def _pages(self, addr: int, nbytes: int | None) -> tuple[int, int]:
        """First and last page overlapping ``[addr, addr+nbytes)`` (None: to the region's end); last < first if none."""
        end = self.size if nbytes is None else _count("address", addr) + _count("size", nbytes)
        if end <= addr:
            return 0, -1
        return _count("address", addr) // self.page_size, (end - 1) // self.page_size


def _count(what: str, value: int) -> int:
    number = operator.index(value)
    if number < 0:
        raise OutOfBoundsError(f"buffer pool: {what} cannot be negative, got {number}")
    return number
