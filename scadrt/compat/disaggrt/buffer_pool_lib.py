"""Scad's ``disaggrt.buffer_pool_lib``: remote space per memory element, and the bytes moved to it.

What Scad's programs rely on, kept (reference-notes §6.1)::

    trans = action.get_transport("mem1", "rdma")
    trans.reg(buffer_pool_lib.buffer_size)
    pool = buffer_pool_lib.buffer_pool({"mem1": trans}, parent_bp_metadata)   # or no metadata
    ... remote_array(pool, input_ndarray=a, transport_name="mem1") ...
    return {"bp": pool.get_buffer_metadata(), ...}                            # hand it on

- ``trans_metadata`` (what :meth:`buffer_pool.get_buffer_metadata` returns and a child passes
  back in) is *memory element name → next free byte address*: a bump allocator per memory
  element, so a child allocates after its parent's data. It is a plain dict of ints and pickles.
- Several transports in one pool may share one staging buffer (``reg(size, other)``).
- Scad's older form, ``buffer_pool(trans)`` with one transport and ``remote_array(pool,
  input_ndarray=a)`` without a transport name, which its later code no longer took, works: the
  pool's only transport is meant.

What differs, on purpose:

- Writes go to the memory element when they are made (write-through), not at
  :meth:`buffer_pool.get_buffer_metadata`; a program that forgets that call loses nothing.
- What :meth:`buffer_pool.read` returns is a copy the program owns, not a view of staging pages
  that a later read may overwrite (Scad's wrap-around path crashed anyway, §10). Arrays of any size
  work: transfers go straight to the region where the transport can (local, shm, tcp) and through
  the staging buffer in pieces over RDMA, where Scad exited for anything over 64 MiB.
- No debug prints ("fetch from …"), and errors are exceptions that say what is wrong instead of
  a message and ``exit(1)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scadrt.errors import RegionFullError
from scadrt.transports.base import Transport

__all__ = ["buffer_pool", "buffer_size", "metadata_reserve_mem", "page_buffer_size", "page_size"]

#: Scad's page size (bytes); kept for programs that compute with it
page_size = 256
#: the staging buffer size Scad's programs register on every transport of a pool
page_buffer_size = buffer_size = 64 * 1024 * 1024
#: bytes kept free at the start of each memory element before the first allocation
metadata_reserve_mem = 0

Extent = list[Any]  # [memory element name, remote byte address, size in bytes], as Scad's lists are


class buffer_pool:
    """Remote space and transfers over the memory elements of ``trans_map`` (name → transport)."""

    def __init__(self, trans_map: Mapping[str, Transport] | Transport,
                 trans_metadata: Mapping[str, int] | None = None) -> None:
        if isinstance(trans_map, Transport):  # Scad's older API (slice_unit_test): one transport
            trans_map = {trans_map.name: trans_map}
        if not isinstance(trans_map, Mapping):
            raise TypeError(f"buffer_pool takes a dict {{name: transport}}, not {type(trans_map).__name__}")
        self.trans_map: dict[str, Transport] = {}
        for name, trans in trans_map.items():
            self.add_transport(name, trans)
        if trans_metadata is not None and not isinstance(trans_metadata, Mapping):
            raise TypeError("buffer_pool's metadata is the dict get_buffer_metadata() returned, "
                            f"not {type(trans_metadata).__name__}")
        self.trans_metadata: dict[str, int] = {str(k): int(v) for k, v in (trans_metadata or {}).items()}

    def add_transport(self, name: str, trans: Transport) -> None:
        if not isinstance(trans, Transport):
            raise TypeError(f"buffer_pool: {name!r} maps to {type(trans).__name__}, not a transport "
                            "(action.get_transport(name, 'rdma'))")
        self.trans_map[name] = trans

    # -- remote space ------------------------------------------------------------------------------

    def reserve_remote_mem(self, transport: str, nbytes: int) -> int:
        """Reserve ``nbytes`` in memory element ``transport``; returns their first address."""
        trans = self._transport(transport)
        addr = self.trans_metadata.get(transport, metadata_reserve_mem)
        nbytes = int(nbytes)
        if nbytes < 0:
            raise ValueError(f"cannot reserve {nbytes} bytes")
        if addr + nbytes > trans.size:
            raise RegionFullError(f"memory element {transport!r} has {trans.size - addr} B free after address "
                                  f"{addr}, not the {nbytes} B asked for (raise its limits.mem)")
        self.trans_metadata[transport] = addr + nbytes
        return addr

    def get_buffer_metadata(self) -> dict[str, int]:
        """The pool's allocation state, to hand to a child's ``buffer_pool`` (everything is written)."""
        return dict(self.trans_metadata)

    # -- transfers ---------------------------------------------------------------------------------

    def write(self, transport: str, data_bytes: Any) -> list[Extent]:
        """Store ``data_bytes`` in new space of ``transport``; returns ``[[transport, address, size]]``."""
        data = memoryview(data_bytes).cast("B")
        addr = self.reserve_remote_mem(transport, len(data))
        self.put(transport, addr, data)
        return [[transport, addr, len(data)]]

    def read(self, extents: list[Extent], nbytes: int) -> tuple[bool, memoryview]:
        """Fetch ``extents`` (``[[transport, address, size], …]``) one after another: ``(True, bytes)``."""
        out = bytearray(int(nbytes))
        view = memoryview(out)
        at = 0
        for name, addr, size in extents:
            self.get(name, int(addr), view[at:at + int(size)])
            at += int(size)
        if at != len(out):
            raise ValueError(f"buffer_pool.read: the extents hold {at} B, not the {len(out)} B asked for")
        return True, view

    def request_mem_on_buffer_for_array(self, transport: str, nbytes: int) -> tuple[Transport, int]:
        """Room for ``nbytes`` in ``transport``'s staging buffer: ``(transport, offset)``. The whole
        buffer is the program's until its next request (no other data of this pool lives there)."""
        trans = self._transport(transport)
        if int(nbytes) > len(trans.buf):
            raise ValueError(f"{transport!r}'s staging buffer has {len(trans.buf)} B, not {nbytes} "
                             "(reg() a larger one)")
        return trans, 0

    def flush_to_remote(self, transport: str, remote_addr: int, local_offset: int, nbytes: int) -> None:
        """Write ``nbytes`` of ``transport``'s staging buffer at ``local_offset`` to ``remote_addr``."""
        self._transport(transport).write(nbytes, remote_addr, local_offset)

    def update_buffer_to_remote(self, transport: str, remote_addr: int, local_offset: int, nbytes: int) -> None:
        self.flush_to_remote(transport, remote_addr, local_offset, nbytes)

    # -- the byte movers the arrays use --------------------------------------------------------------

    def put(self, transport: str, addr: int, data_bytes: Any) -> None:
        """Copy ``data_bytes`` (any contiguous buffer) to ``addr`` of memory element ``transport``."""
        data = memoryview(data_bytes).cast("B")
        trans = self._transport(transport)
        if trans.direct_io:
            trans.write_from(data, addr)
            return
        staging = self._staging(trans)
        for at in range(0, len(data), len(staging)):
            piece = data[at:at + len(staging)]
            staging[:len(piece)] = piece
            trans.write(len(piece), addr + at, 0)

    def get(self, transport: str, addr: int, out_bytes: Any) -> None:
        """Fill ``out_bytes`` (any writable contiguous buffer) from ``addr`` of memory element ``transport``."""
        out = memoryview(out_bytes).cast("B")
        trans = self._transport(transport)
        if trans.direct_io:
            trans.read_into(out, addr)
            return
        staging = self._staging(trans)
        for at in range(0, len(out), len(staging)):
            n = min(len(staging), len(out) - at)
            trans.read(n, addr + at, 0)
            out[at:at + n] = staging[:n]

    def only_transport(self) -> str:
        """The name of the pool's one transport (for callers that name none, as Scad's oldest did)."""
        if len(self.trans_map) != 1:
            raise ValueError(f"this buffer_pool has {len(self.trans_map)} transports: name one "
                             "(transport_name=…)")
        return next(iter(self.trans_map))

    def _transport(self, name: str) -> Transport:
        trans = self.trans_map.get(name)
        if trans is None:
            known = ", ".join(repr(n) for n in self.trans_map) or "none"
            raise KeyError(f"this buffer_pool has no transport {name!r} (it has {known})")
        return trans

    @staticmethod
    def _staging(trans: Transport) -> memoryview:
        staging = trans.buf  # says "call reg(nbytes)" when there is none
        if not len(staging):
            raise ValueError(f"{trans}: its staging buffer is empty; reg(buffer_pool_lib.buffer_size) first")
        return staging

    def __repr__(self) -> str:
        return f"buffer_pool({sorted(self.trans_map)}, next free address {self.trans_metadata})"
