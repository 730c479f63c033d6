"""High-level remote data over any transport: what element code keeps in memory elements.

A memory element is a passive byte region reached through a transport
(:mod:`scadrt.transports`). This package puts structure on it::

    from scadrt.remote import RemoteArray, load_object, store_object

    def main(params, action):                       # a producer element
        ra = RemoteArray.store(action, "mem", np.arange(10**8).reshape(-1, 1000))
        meta = store_object(action, "mem", {"model": weights, "names": names})
        return {"data": ra.metadata(), "model": meta}     # small JSON, passed to the next element

    def main(params, action):                       # a consumer element, another process
        ra = RemoteArray.attach(action, params["data"])
        for chunk in ra.iter_chunks(100_000): ...        # or ra[5], ra[10:20, 3], ra[::7] = 0
        model = load_object(action, params["model"])

Modules, one concept each:

- :mod:`.pool`      BufferPool: an LRU page cache of a region in one transport staging buffer.
- :mod:`.allocator` Allocator: alloc/free of the region, its table kept in the region itself.
- :mod:`.memory`    RemoteMemory (transport + pool + allocator), one per transport, found or made
                    by :func:`remote_memory`; ``share``: large values mapped copy-on-write rather
                    than copied where the transport can (shm); the metadata header check.
- :mod:`.array`     RemoteArray: a numpy array in a memory element, read and written by rows.
- :mod:`.objects`   store_object/load_object/free_object: pickle protocol 5, out-of-band buffers.
- :mod:`.values`    pack/unpack: how generated elements pass the values live across a cut (inline
                    JSON or pickle, or a RemoteArray or remote object), and the random generators'
                    state (capture_rng/restore_rng).

RemoteArray and remote-object metadata are frozen dataclasses with ``to_json()``/``from_json()``;
what element code hands on is the JSON dict (kind- and version-tagged), never a pickle of it.
"""

from __future__ import annotations

from scadrt.errors import (
    AllocationError,
    HeapFormatError,
    RegionFullError,
    RemoteMetadataError,
    StagingBufferError,
)
from scadrt.remote.allocator import Allocator
from scadrt.remote.array import ArrayMeta, RemoteArray
from scadrt.remote.memory import RemoteMemory, remote_memory
from scadrt.remote.objects import ObjectMeta, free_object, load_object, store_object
from scadrt.remote.pool import BufferPool, PoolStats

__all__ = [
    "AllocationError",
    "Allocator",
    "ArrayMeta",
    "BufferPool",
    "HeapFormatError",
    "ObjectMeta",
    "PoolStats",
    "RegionFullError",
    "RemoteArray",
    "RemoteMemory",
    "RemoteMetadataError",
    "StagingBufferError",
    "free_object",
    "load_object",
    "remote_memory",
    "store_object",
]
