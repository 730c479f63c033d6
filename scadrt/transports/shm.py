"""The ``shm`` transport: the region is a POSIX shared-memory segment on this host.

The memory element owns the segment (:class:`SharedRegion` creates it and unlinks it); compute
elements attach by name (:class:`ShmTransport`) and copy with plain memcpy, no server round trip.

Lifetime of a segment: created by ``SharedRegion(size)``; its name disappears from ``/dev/shm`` at
``close()``/``unlink()``, at the end of a ``with`` block, when the owner object is garbage-collected,
and at interpreter exit (``weakref.finalize`` runs at exit). A SIGTERM kills Python without running
exit hooks, so the owner's process must turn SIGTERM into a normal exit (the engines do), and an
engine that SIGKILLs a memory element calls :func:`unlink_segment` with the name it handed out.
Nothing runs at a SIGKILL of the owner; the local engine names each segment (:func:`new_segment_name`)
to a watcher process before creating it, which removes it then (:mod:`scadrt.engines.watcher`).
Mappings that are still open keep working after the name is gone (POSIX semantics).

Why not :class:`multiprocessing.shared_memory.SharedMemory`: on Python 3.11 every process that
*attaches* to a segment registers it with multiprocessing's resource tracker, which then unlinks
the segment when that client exits (destroying the owner's region while it is in use) and warns
about a "leak"; it also starts a tracker process. Un-registering after attaching is racy and, in
processes sharing one tracker, also drops the owner's registration. So both sides call
``shm_open(3)`` through ``_posixshmem`` (the same call SharedMemory makes, without the tracker) and
``mmap`` the descriptor; the owner's cleanup is explicit, as described above.

Large transfers (of at least :data:`SYSCALL_COPY_BYTES`, one buffer-pool page: by
:meth:`ShmTransport.read_into`/:meth:`~ShmTransport.write_from`, and by ``read``/``write`` of the
staging buffer the pool moves its pages with) use ``pread``/``pwrite`` on the segment instead of the mapping: the
kernel copies the bytes, and the segment's pages never enter the compute element's resident set.
They belong to the memory element; counting them in the compute element too would count the
same pages twice (and a compute element on another host would not hold them at all).

Loading a large value whole need not copy it at all: :meth:`ShmTransport.map_private` maps the
value's bytes of the segment *copy-on-write* (``MAP_PRIVATE``), so the element reads the segment's
own pages (held once on the host, whichever processes read them) and gets a private copy of only
the pages it writes, which never reach the segment. Rules of a private mapping:

1. It is the caller's alone: its writes change neither the segment nor any other mapping, so the
   memory element keeps the original for a retry and for siblings reading it at the same time.
2. It is a snapshot as far as this process goes: before this process writes bytes of the segment
   (through any of its shm transports) that a live mapping shows, the pages whose bytes would
   change are made private first (a page written onto itself, as by a write-back of the mapping
   itself, changes nothing and stays shared). Writes by *other* processes to a block while a
   mapping of it lives do show through its pages not yet written here; Scad elements never do
   that (the compiler orders an element that changes a value after every element that reads it),
   and the owner's writes through :attr:`SharedRegion.buf` are not watched either.
3. It holds no file descriptor, lives exactly as long as the memoryview it is handed out as (and
   every view and array made from it), and outlives the transport and the segment's name.
"""

from __future__ import annotations

# CPython's private module behind multiprocessing.shared_memory (no stub: see pyproject's mypy overrides)
import _posixshmem
import contextlib
import ctypes
import itertools
import mmap
import os
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from scadrt.errors import ConnectionLostError, OutOfBoundsError, TransportClosedError, TransportConfigError
from scadrt.sizes import parse_size
from scadrt.transports.base import InProcessRegionTransport

__all__ = ["SEGMENT_PREFIX", "SharedRegion", "ShmTransport", "new_segment_name", "unlink_segment"]

#: transfers at least this large (one buffer-pool page) go through pread/pwrite rather than the mapping
SYSCALL_COPY_BYTES = 64 << 10
#: Linux moves at most this much in one read/write call
_MAX_SYSCALL = 0x7FFFF000

#: every segment scadrt creates is named ``scad-…`` (so leftovers are easy to find in /dev/shm)
SEGMENT_PREFIX = "scad-"


def _posix_name(name: str) -> str:
    # shm_open wants exactly one leading slash and no other; names are shown without it (as in /dev/shm)
    bare = name.lstrip("/")
    if not bare or "/" in bare:
        raise TransportConfigError(f"invalid shared-memory segment name {name!r}")
    return "/" + bare


def new_segment_name() -> str:
    """A fresh segment name: ``scad-<this pid>-<12 random hex digits>``."""
    return f"{SEGMENT_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"


def unlink_segment(name: str) -> bool:
    """Remove segment ``name`` from the system; return False if it did not exist."""
    try:
        _posixshmem.shm_unlink(_posix_name(name))
    except FileNotFoundError:
        return False
    return True


def _map(name: str, flags: int, size: int | None) -> tuple[mmap.mmap | None, int]:
    fd = _posixshmem.shm_open(_posix_name(name), flags, mode=0o600)
    try:
        if size is not None:
            os.ftruncate(fd, size)
        length = os.fstat(fd).st_size
        # mmap cannot map 0 bytes; an empty segment is a valid (useless) region of size 0
        return (mmap.mmap(fd, length) if length else None), length
    finally:
        os.close(fd)


def _release(mapping: mmap.mmap | None, view: memoryview | None) -> None:
    if view is not None:
        view.release()
    if mapping is not None:
        # BufferError: someone still holds a view of the mapping; it is unmapped when that view goes
        with contextlib.suppress(BufferError):
            mapping.close()


# -- private (copy-on-write) mappings of a segment's bytes ---------------------------------------------

# mmap(2) through libc rather than the mmap module: mmap.mmap keeps a duplicate of the descriptor
# open for as long as the mapping lives (one per loaded value), and cannot be told where to map
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_MAP_FAILED = ctypes.c_void_p(-1).value
_PAGE = mmap.PAGESIZE
#: bytes compared at a time when deciding which pages of a mapping a write would change (whole pages)
_COMPARE_BYTES = 256 * _PAGE

#: a segment as this process knows it: (st_dev, st_ino) of its descriptor, so two names of one
#: segment (or one name reused by a later segment) are never confused
_SegmentKey = tuple[int, int]


@dataclass(frozen=True)
class _Mapped:
    """One live private mapping: region bytes ``[start, stop)`` at virtual address ``address``."""

    start: int
    stop: int
    address: int
    #: the whole mapping (from ``base``, page-aligned), alive while any view of it is
    owner: weakref.ref[ctypes.Array[ctypes.c_ubyte]]
    base: int


#: the live private mappings of each segment in this process (rule 2), by a token of their own
_mapped: dict[_SegmentKey, dict[int, _Mapped]] = {}
_tokens = itertools.count()


def _unmap(key: _SegmentKey, token: int, base: int, length: int) -> None:
    """The last view of a mapping is gone: forget it and give its pages back (rule 3)."""
    entries = _mapped.get(key)
    if entries is not None:
        entries.pop(token, None)
        if not entries:
            _mapped.pop(key, None)
    _libc.munmap(base, length)


def _address(view: memoryview) -> int:
    """Virtual address of a byte view's first byte."""
    import numpy as np  # here, as below: the engine imports this module, and needs numpy only if a worker does

    interface: dict[str, Any] = np.frombuffer(view, dtype=np.uint8).__array_interface__
    address: int = interface["data"][0]
    return address


def _keep_snapshots(key: _SegmentKey, addr: int, src: memoryview) -> None:
    """``src`` is about to be written at region ``addr``: give every live mapping of the bytes it
    covers a private copy of each page whose bytes would change (rule 2)."""
    entries = _mapped.get(key)
    if not entries:
        return
    import numpy as np

    end = addr + len(src)
    for entry in list(entries.values()):  # a copy: a mapping may die (and be forgotten) meanwhile
        lo, hi = max(addr, entry.start), min(end, entry.stop)
        owner = entry.owner() if lo < hi else None
        if owner is None:
            continue
        new = src[lo - addr : hi - addr]
        first = entry.address - entry.base + lo - entry.start  # offset of ``lo`` in the mapping
        if entry.base + first == _address(new):
            continue  # the mapping written onto itself: every byte stays as it is
        pages = np.frombuffer(memoryview(owner), dtype=np.uint8)
        pos, stop = first, first + hi - lo  # in the mapping, which starts on a page
        while pos < stop:
            head = pos % _PAGE
            upto = min(stop, pos - head + _COMPARE_BYTES)  # page-aligned chunks (but the first and last)
            changed = np.zeros(-(-(upto - pos + head) // _PAGE) * _PAGE, dtype=np.bool_)
            np.not_equal(pages[pos:upto], np.frombuffer(new[pos - first : upto - first], dtype=np.uint8),
                         out=changed[head : head + upto - pos])
            # a byte of each page with a change, written onto itself: that makes the kernel copy the page
            touch = np.maximum(np.flatnonzero(changed.reshape(-1, _PAGE).any(axis=1)) * _PAGE + pos - head, pos)
            pages[touch] = pages[touch]
            pos = upto
        del pages


def _map_private(key: _SegmentKey, fd: int, addr: int, nbytes: int) -> memoryview:
    """Region bytes ``[addr, addr+nbytes)`` (``nbytes`` > 0) of the segment open as ``fd``, as a
    writable byte view of a private mapping."""
    base_offset = addr - addr % _PAGE  # mmap maps whole pages from a page-aligned offset
    length = -(-(addr + nbytes - base_offset) // _PAGE) * _PAGE
    base = _libc.mmap(None, length, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE, fd, base_offset)
    if base is None or base == _MAP_FAILED:
        errno = ctypes.get_errno()
        raise OSError(errno, f"cannot map {nbytes} B of the segment: {os.strerror(errno)}")
    token = next(_tokens)
    try:
        owner = (ctypes.c_ubyte * length).from_address(base)
        # not at interpreter exit: an array still alive then (a daemon thread's) must stay readable;
        # the process's end unmaps everything anyway
        weakref.finalize(owner, _unmap, key, token, base, length).atexit = False
    except BaseException:
        _libc.munmap(base, length)
        raise
    _mapped.setdefault(key, {})[token] = _Mapped(addr, addr + nbytes, base + addr - base_offset,
                                                  weakref.ref(owner), base)
    head = addr - base_offset
    # the views keep ``owner`` alive, and its finalizer unmaps once the last of them is gone
    return memoryview(owner).cast("B")[head : head + nbytes]


class SharedRegion:
    """Owner of a shared-memory segment of ``size`` bytes (zero-filled), named ``name`` or ``scad-…``.

    Use as a context manager, or call :meth:`close` (unmap and unlink). Clients attach with
    ``ShmTransport(region.name)``; ``buf`` gives the owner direct access to the bytes.
    """

    def __init__(self, size: int, name: str | None = None) -> None:
        if size < 1:
            raise TransportConfigError(f"a shared-memory region needs at least 1 byte, got {size}")
        self.name = (name or new_segment_name()).lstrip("/")
        try:
            self._mmap, self.size = _map(self.name, os.O_CREAT | os.O_EXCL | os.O_RDWR, size)
        except FileExistsError as exc:
            raise TransportConfigError(f"shared-memory segment {self.name!r} already exists") from exc
        except OSError:
            unlink_segment(self.name)  # created but could not size or map it (e.g. /dev/shm full)
            raise
        self._view: memoryview | None = memoryview(self._mmap) if self._mmap is not None else memoryview(b"")
        # runs on close(), on garbage collection, and at interpreter exit, whichever comes first
        self._finalizer = weakref.finalize(self, unlink_segment, self.name)

    @property
    def buf(self) -> memoryview:
        if self._view is None:
            raise TransportClosedError(f"shared-memory region {self.name!r} is closed")
        return self._view

    @property
    def closed(self) -> bool:
        return self._view is None

    def unlink(self) -> None:
        """Remove the segment's name (new clients can no longer attach); mappings stay valid."""
        self._finalizer()

    def close(self) -> None:
        """Unlink the segment and unmap it here. Idempotent."""
        self.unlink()
        view, self._view = self._view, None
        _release(self._mmap, view)
        self._mmap = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SharedRegion {self.name!r} {self.size} B{' closed' if self.closed else ''}>"


class ShmTransport(InProcessRegionTransport):
    """A transport to the shared-memory segment ``segment`` (created by a :class:`SharedRegion`)."""

    kind = "shm"
    # shm_id is the key Scad's rdma_shared used for the segment name
    config_keys: ClassVar[tuple[str, ...]] = ("segment", "shm_id", "size")

    def __init__(self, segment: str, *, name: str = "shm") -> None:
        super().__init__(name)
        try:
            self._mmap, self._size = _map(segment, os.O_RDWR, None)
        except FileNotFoundError as exc:
            raise ConnectionLostError(
                f"{self}: shared-memory segment {segment!r} does not exist (is the memory element running?)"
            ) from exc
        self.segment = segment
        self._region: memoryview | None = memoryview(self._mmap) if self._mmap is not None else memoryview(b"")
        self._fd = _posixshmem.shm_open(_posix_name(segment), os.O_RDWR, mode=0o600)
        stat = os.fstat(self._fd)
        self._key: _SegmentKey = (stat.st_dev, stat.st_ino)

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, str]) -> ShmTransport:
        cls.check_config_keys(name, config)
        segment = config.get("segment") or config.get("shm_id")
        if not segment:
            raise TransportConfigError(f"transport {name!r} (shm): needs segment,<name>")
        transport = cls(segment, name=name)
        if "size" in config:  # optional consistency check: the descriptor's size must match the segment
            try:
                expected = parse_size(config["size"])
            except ValueError as exc:
                transport.close()
                raise TransportConfigError(f"transport {name!r} (shm): {exc}") from exc
            if expected != transport.size:
                transport.close()
                raise TransportConfigError(
                    f"transport {name!r} (shm): segment {segment!r} has {transport.size} B, descriptor says {expected}"
                )
        return transport

    @property
    def size(self) -> int:
        return self._size

    def map_private(self, addr: int, nbytes: int) -> memoryview:
        """Region bytes ``[addr, addr+nbytes)`` as a writable byte view of a private copy-on-write
        mapping of the segment: no bytes are copied, and writes to the view stay in this process
        (module docstring, rules 1-3). Counted in :attr:`bytes_read` as if they had been read."""
        self._check_open()
        if type(addr) is not int or type(nbytes) is not int or addr < 0 or nbytes < 0:
            raise OutOfBoundsError(f"{self}: cannot map {nbytes!r} B at address {addr!r}")
        if addr + nbytes > self._size:
            raise OutOfBoundsError(f"{self}: mapping {nbytes} B at address {addr} overruns the region ({self._size} B)")
        if not nbytes:
            return memoryview(bytearray())
        try:
            view = _map_private(self._key, self._fd, addr, nbytes)
        except OSError as exc:
            raise ConnectionLostError(f"{self}: {exc.strerror}") from exc
        self.bytes_read += nbytes
        return view

    # The buffer pool's staging path (read/write of its frames) and read_into/write_from alike:
    # from SYSCALL_COPY_BYTES on, the kernel copies. A pool flushing a stored frame page by page
    # through the mapping put every page it wrote into this process's resident set (59 MB of a
    # 62 MB frame stored by tpcds_pandas's first element).
    def _read(self, addr: int, dst: memoryview) -> None:
        if len(dst) < SYSCALL_COPY_BYTES:
            super()._read(addr, dst)
        else:
            self._syscall(dst, addr, "read")

    def _write(self, addr: int, src: memoryview) -> None:
        _keep_snapshots(self._key, addr, src)
        if len(src) < SYSCALL_COPY_BYTES:
            super()._write(addr, src)
        else:
            self._syscall(src, addr, "write")

    def _direct(self, view: memoryview, addr: int, move: Any, op: str) -> None:
        """read_into/write_from: from :data:`SYSCALL_COPY_BYTES` on, the kernel copies."""
        if len(view) < SYSCALL_COPY_BYTES:
            super()._direct(view, addr, move, op)  # through _read/_write
            return
        if op == "write":
            _keep_snapshots(self._key, addr, view)
        self._syscall(view, addr, op)

    def _syscall(self, view: memoryview, addr: int, op: str) -> None:
        syscall = os.preadv if op == "read" else os.pwritev
        done = 0
        while done < len(view):
            moved = syscall(self._fd, [view[done : done + _MAX_SYSCALL]], addr + done)
            if moved <= 0:
                raise ConnectionLostError(f"{self}: the segment ended at {addr + done} (was it truncated?)")
            done += moved

    def _close(self) -> None:
        region, self._region = self._region, None
        _release(self._mmap, region)
        self._mmap = None
        os.close(self._fd)
