"""A memory element as the high-level APIs use it: its transport, a buffer pool over the
transport's staging buffer, and the allocator of its region.

:func:`remote_memory` finds or makes the one handle of a transport, so that one pool owns each
staging buffer (pool rule 1); RemoteArray, remote objects and packed values all go through it.

:meth:`RemoteMemory.share` is how a large value is loaded without a copy where the transport can
map the region into this process (shm): the element then reads the memory element's own pages,
copy-on-write, instead of holding the value a second time.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from scadrt.action import Action
from scadrt.errors import RemoteMetadataError, UserError
from scadrt.remote.allocator import Allocator
from scadrt.remote.pool import DEFAULT_CAPACITY, DEFAULT_MAX_TRANSFER, DEFAULT_PAGE_SIZE, BufferPool
from scadrt.transports.base import Transport

__all__ = ["SHARE_MIN_BYTES", "RemoteMemory", "Target", "check_metadata_header", "remote_memory"]

#: values smaller than this are copied even where they could be shared: a mapping costs system
#: calls and a page per end, which a small copy does not, and saves little
SHARE_MIN_BYTES = 1 << 20


@runtime_checkable
class _Mappable(Protocol):
    """A transport that can hand out region bytes as a private copy-on-write mapping (shm)."""

    def map_private(self, addr: int, nbytes: int) -> memoryview: ...


class RemoteMemory:
    """One memory element as the high-level APIs use it: its transport, a buffer pool over the
    transport's staging buffer, and the allocator of its region. Get one with :func:`remote_memory`.

    ``name`` is the memory element's name as element code asks for it (``action.get_transport(name)``);
    it is recorded in the metadata of the data stored here. A new RemoteMemory becomes the handle
    :func:`remote_memory` returns for its transport. :meth:`close` flushes the pool (the transport
    stays open: whoever opened it closes it).
    """

    def __init__(self, transport: Transport, name: str | None = None, *, capacity: int = DEFAULT_CAPACITY,
                 page_size: int = DEFAULT_PAGE_SIZE, max_transfer: int = DEFAULT_MAX_TRANSFER) -> None:
        self.transport = transport
        self.name = name or transport.name
        self.pool = BufferPool(transport, capacity=capacity, page_size=page_size, max_transfer=max_transfer)
        self.allocator = Allocator(self.pool)
        _handles[id(transport)] = self  # the transport's handle from now on (one pool per staging buffer)

    @property
    def closed(self) -> bool:
        return self.pool.closed or self.transport.closed

    def share(self, addr: int, nbytes: int) -> memoryview | None:
        """Region bytes ``[addr, addr+nbytes)`` as a writable view of a private copy-on-write mapping,
        when the transport can map them and they are at least :data:`SHARE_MIN_BYTES`; None: copy them.

        The view is the caller's like a copy is: its writes stay in this process, and later writes
        to the region by this process leave it as it was (:mod:`scadrt.transports.shm`, rules 1-2).
        """
        if nbytes < SHARE_MIN_BYTES or not isinstance(self.transport, _Mappable):
            return None
        self.pool.flush(addr, nbytes)  # what this process wrote but the pool still holds reaches the region
        return self.transport.map_private(addr, nbytes)

    def close(self) -> None:
        self.pool.close()

    def __repr__(self) -> str:
        return f"<RemoteMemory {self.name!r} via {self.transport!r}>"


#: the handle of each transport, while someone holds it (keyed by id: the handle keeps its transport alive)
_handles: weakref.WeakValueDictionary[int, RemoteMemory] = weakref.WeakValueDictionary()

#: what the high-level APIs accept as "where": see :func:`remote_memory`
Target = Action | Transport | RemoteMemory


def remote_memory(target: Target, name: str | None = None, **options: Any) -> RemoteMemory:
    """The :class:`RemoteMemory` of ``target``: an Action (with the memory element ``name``), a
    transport, or a RemoteMemory (returned as is).

    One transport has one handle at a time (so one pool owns its staging buffer, pool rule 1): the
    handle is reused while anyone holds it. ``options`` (``capacity``, ``page_size``,
    ``max_transfer``) apply when a handle is made.
    """
    if isinstance(target, RemoteMemory):
        return target
    if isinstance(target, Action):
        if not name:
            raise UserError(f"element {target.name!r}: say which memory element to use (a transport name)")
        transport = target.get_transport(name)
    elif isinstance(target, Transport):
        transport = target
    else:
        raise TypeError(f"expected an Action, a Transport or a RemoteMemory, got {type(target).__name__}")
    handle = _handles.get(id(transport))
    if handle is None or handle.transport is not transport or handle.closed:
        handle = RemoteMemory(transport, name, **options)
    return handle


def check_metadata_header(data: Any, kind: str, version: int, what: str) -> Mapping[str, Any]:
    """``data`` as metadata of ``kind`` (e.g. ``scad.remote_array``) at ``version``, or a clear error."""
    if not isinstance(data, Mapping) or data.get("kind") != kind:
        raise RemoteMetadataError(f"not {what} metadata (kind {kind!r} expected): {data!r:.200}")
    if data.get("version") != version:
        raise RemoteMetadataError(f"{what} metadata version {data.get('version')!r}; "
                                  f"this scadrt reads version {version}")
    return data
