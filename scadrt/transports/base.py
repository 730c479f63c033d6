"""The transport interface: how element code reaches a memory element.

A *memory element* is a passive region of ``size`` bytes, addressed ``0 … size-1`` (the *remote*
side, wherever it lives). A *transport* connects one compute element to one memory element (or to
one instance ``name@i`` of a parallel memory element). Element code uses exactly this::

    mem = action.get_transport("mem", "rdma")   # "rdma": the memory-access interface, whatever carries it
    mem.reg(nbytes)                              # allocate the local staging buffer, exposed as mem.buf
    mem.read(size, addr, offset=0)               # region[addr:addr+size] -> buf[offset:offset+size]
    mem.write(size, addr, offset=0)              # buf[offset:offset+size] -> region[addr:addr+size]
    mem.close()

Rules every implementation follows (checked here, once, before the implementation is called):

1. Calls are synchronous: when ``read``/``write`` return, the bytes have arrived.
2. Failures raise :class:`~scadrt.errors.TransportError` subclasses, never status codes.
3. Both sides are bounds-checked: ``addr + size <= self.size`` and ``offset + size <= len(buf)``;
   negative values are rejected (:class:`~scadrt.errors.OutOfBoundsError`). A zero-byte transfer
   at ``addr == size`` is valid and moves nothing.
4. Use after ``close()`` raises :class:`~scadrt.errors.TransportClosedError`; ``close()`` is
   idempotent; transports are context managers.
5. ``reg(n)`` called again gives a buffer of exactly ``n`` bytes: it reuses the current storage
   (keeping its contents) when ``n`` fits in it, and allocates new zeroed storage otherwise. A
   smaller old buffer is never silently reused (Scad's ``reg`` did that, see reference-notes §10.13).
   ``reg(n, other)`` makes ``buf`` the first ``n`` bytes of ``other``'s staging buffer, the same
   memory (Scad's ``reg(size, other)``: one buffer pool over several memory elements); ``other``
   must have one of at least ``n`` bytes.
6. Sizes, addresses and offsets are integers; a float with an integral value (``4.0 * n``, which
   Scad's Cython layer converted) is taken as that integer, any other float is a TypeError.

Who owns what: the transport owns its staging buffer. ``buf`` (and numpy arrays made from it) stay
valid until the next ``reg`` that must grow, or ``close()``; after either, old views still point at
the old storage, which lives on until the last view is dropped, but the transport no longer uses
it. The remote region belongs to the memory element; a transport never frees it.

A transport is meant to be used by one thread at a time (like a socket): concurrent clients open
one transport each. Who calls this: element code through :class:`~scadrt.action.Action`, and the
engines when they set up an element's transports; nobody else needs to.
"""

from __future__ import annotations

import abc
import operator
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Self

from scadrt.errors import OutOfBoundsError, TransportClosedError, TransportConfigError, TransportError

__all__ = ["Transport", "allocate_buffer", "copy_bytes"]

#: below this many bytes a memoryview slice assignment is faster than numpy (no array objects to build);
#: above it numpy's copy wins and releases the GIL, so other threads run during large copies
_NUMPY_COPY_MIN = 1 << 16


def copy_bytes(dst: memoryview, src: memoryview | bytes) -> None:
    """Copy ``src`` into ``dst`` (same length, byte format), releasing the GIL for large copies."""
    if len(dst) >= _NUMPY_COPY_MIN:
        import numpy as np  # here: the engine imports this module, and needs numpy only if a worker does

        np.copyto(np.frombuffer(dst, dtype=np.uint8), np.frombuffer(src, dtype=np.uint8))
    else:
        dst[:] = src


def allocate_buffer(nbytes: int) -> memoryview:
    """Return ``nbytes`` zeroed, writable bytes as a 1-D byte memoryview.

    numpy's zeros comes from calloc, so a large buffer costs no RSS until it is touched.
    """
    import numpy as np

    return np.zeros(nbytes, dtype=np.uint8).data.cast("B")


def _non_negative(what: str, value: Any) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        if isinstance(value, float) and value.is_integer():  # rule 6
            number = int(value)
        else:
            got = f"{value!r}" if isinstance(value, float) else type(value).__name__
            raise TypeError(f"{what} must be an integer, got {got}") from None
    if number < 0:
        raise OutOfBoundsError(f"{what} cannot be negative, got {number}")
    return number


class Transport(abc.ABC):
    """Synchronous access to one memory element's region; see the module docstring for the rules.

    Subclasses implement :attr:`size`, :meth:`_read`, :meth:`_write` and :meth:`_close`, and may
    override :meth:`_allocate` when the staging buffer must be special (RDMA-registered memory).
    """

    #: the kind name used by :func:`scadrt.transports.open_transport` ("local", "shm", "tcp", "rdma")
    kind: ClassVar[str]

    def __init__(self, name: str) -> None:
        #: the memory element (instance) this transport reaches, e.g. ``mem`` or ``mem@2``
        self.name = name
        self._closed = False
        self._storage: memoryview | None = None
        self._buf: memoryview | None = None
        #: payload bytes moved so far (for run reports)
        self.bytes_read = 0
        self.bytes_written = 0

    # -- the interface ----------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Size of the remote region in bytes."""

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def buf(self) -> memoryview:
        """The staging buffer: a writable 1-D byte memoryview of the size given to :meth:`reg`."""
        self._check_open()
        if self._buf is None:
            raise TransportError(f"{self}: call reg(nbytes) before using buf, read or write")
        return self._buf

    def reg(self, nbytes: int, other: Transport | None = None) -> memoryview:
        """Make ``buf`` a staging buffer of exactly ``nbytes`` bytes and return it; with ``other``, the
        first ``nbytes`` of ``other``'s buffer, shared (rule 5)."""
        self._check_open()
        n = _non_negative("reg size", nbytes)
        if other is not None:
            if not isinstance(other, Transport):
                raise TypeError(f"reg's second argument must be another transport, not {type(other).__name__}")
            shared = other.buf  # raises if other has none
            if n > len(shared):
                raise OutOfBoundsError(f"{self}: reg({n}) shares {other}'s buffer, which has only {len(shared)} B")
            self._storage = self._share(shared)
            self._buf = self._storage[:n]
            return self._buf
        if self._storage is None or n > len(self._storage):
            self._storage = self._allocate(n)
        self._buf = self._storage[:n]
        return self._buf

    def read(self, size: int, addr: int, offset: int = 0) -> None:
        """Copy ``size`` bytes from remote ``addr`` into ``buf[offset:offset+size]``."""
        view, addr = self._span("read", size, addr, offset)
        if len(view):
            self._read(addr, view)
            self.bytes_read += len(view)

    def write(self, size: int, addr: int, offset: int = 0) -> None:
        """Copy ``buf[offset:offset+size]`` to remote ``addr``."""
        view, addr = self._span("write", size, addr, offset)
        if len(view):
            self._write(addr, view)
            self.bytes_written += len(view)

    #: whether :meth:`read_into`/:meth:`write_from` move bytes straight between any buffer and the
    #: region; False where only registered memory works (RDMA), so they go through ``buf``
    direct_io: ClassVar[bool] = True

    def read_into(self, dst: Any, addr: int) -> None:
        """Copy ``len(dst)`` bytes from remote ``addr`` into the writable buffer ``dst`` (any size).

        Not part of Scad's API: for large transfers by the remote-data layer, which would
        otherwise copy every byte once more through the staging buffer.
        """
        out = self._direct_span("read", dst, addr)
        if len(out):
            self._direct(out, addr, self._read, "read")
            self.bytes_read += len(out)

    def write_from(self, src: Any, addr: int) -> None:
        """Copy the buffer ``src`` (any size) to remote ``addr``; see :meth:`read_into`."""
        data = self._direct_span("write", src, addr)
        if len(data):
            self._direct(data, addr, self._write, "write")
            self.bytes_written += len(data)

    def _direct_span(self, op: str, data: Any, addr: int) -> memoryview:
        self._check_open()
        view = memoryview(data).cast("B")
        if op == "read" and view.readonly:
            raise TypeError("read_into needs a writable buffer")
        addr = _non_negative(f"{op} address", addr)
        if addr + len(view) > self.size:
            raise OutOfBoundsError(f"{self}: {op} of {len(view)} B at address {addr} overruns the region "
                                   f"({self.size} B)")
        return view

    def _direct(self, view: memoryview, addr: int, move: Any, op: str) -> None:
        if not self.direct_io:
            raise TransportError(f"{self} moves only registered memory: use reg() and {op}() instead")
        move(addr, view)

    def close(self) -> None:
        """Release the connection (or mapping). Idempotent; the remote region is not affected."""
        if self._closed:
            return
        self._closed = True
        self._buf = self._storage = None
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} {self.name!r} {state}>"

    def __str__(self) -> str:
        return f"{self.kind} transport {self.name!r}"

    # -- construction from a descriptor -------------------------------------------------------------

    #: descriptor keys :meth:`from_config` accepts (used for the "unknown key" message)
    config_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, str]) -> Transport:
        """Build a transport from a descriptor's ``key,value`` pairs (strings)."""
        raise TransportConfigError(f"the {cls.kind} transport cannot be opened from a descriptor")

    @classmethod
    def check_config_keys(cls, name: str, config: Mapping[str, str]) -> None:
        unknown = sorted(set(config) - set(cls.config_keys))
        if unknown:
            known = ", ".join(cls.config_keys) or "none"
            raise TransportConfigError(
                f"transport {name!r} ({cls.kind}): unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}; {cls.kind} accepts: {known}"
            )

    # -- for implementations ----------------------------------------------------------------------

    @abc.abstractmethod
    def _read(self, addr: int, dst: memoryview) -> None:
        """Fill ``dst`` (non-empty, already bounds-checked) from remote ``addr``."""

    @abc.abstractmethod
    def _write(self, addr: int, src: memoryview) -> None:
        """Store ``src`` (non-empty, already bounds-checked) at remote ``addr``."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release resources; called once."""

    def _allocate(self, nbytes: int) -> memoryview:
        return allocate_buffer(nbytes)

    def _share(self, view: memoryview) -> memoryview:
        """The storage to use when ``reg`` shares another transport's buffer ``view`` (rule 5)."""
        return view

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosedError(f"{self} is closed")

    def _span(self, op: str, size: int, addr: int, offset: int) -> tuple[memoryview, int]:
        buf = self._buf
        if buf is None or self._closed:
            buf = self.buf  # raises the right error
        # fast path for plain non-negative ints (an OR of ints is negative iff one of them is);
        # small ops are dominated by this bookkeeping, so it matters (benchmarks.md: shm 8 B op)
        if type(size) is not int or type(addr) is not int or type(offset) is not int or (size | addr | offset) < 0:
            size = _non_negative(f"{op} size", size)
            addr = _non_negative(f"{op} address", addr)
            offset = _non_negative(f"{op} offset", offset)
        if offset + size > len(buf):
            raise OutOfBoundsError(
                f"{self}: {op} of {size} B at buffer offset {offset} overruns the staging buffer "
                f"({len(buf)} B; call reg() with a larger size)"
            )
        if addr + size > self.size:
            raise OutOfBoundsError(
                f"{self}: {op} of {size} B at address {addr} overruns the region ({self.size} B)"
            )
        return buf[offset : offset + size], addr


class InProcessRegionTransport(Transport):
    """A transport whose region is mapped into this process (a local buffer or a shared mapping):
    reads and writes are plain memcpy on ``self._region``, which subclasses set (None once closed)."""

    _region: memoryview | None

    def _read(self, addr: int, dst: memoryview) -> None:
        assert self._region is not None
        copy_bytes(dst, self._region[addr : addr + len(dst)])

    def _write(self, addr: int, src: memoryview) -> None:
        assert self._region is not None
        copy_bytes(self._region[addr : addr + len(src)], src)
