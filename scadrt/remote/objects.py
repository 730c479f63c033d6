"""Remote objects: any picklable Python object stored in a memory element.

``store_object(action, "mem", obj)`` pickles ``obj`` with protocol 5 and out-of-band buffers
(:class:`pickle.PickleBuffer`): the bytes of numpy arrays (and other objects exporting buffers
that way) inside lists, dicts, dataclasses… are not copied into the pickle stream; each buffer is
written to the memory element as is, next to the (small) stream. (A strided numpy array, which
numpy would pickle in band, is made contiguous first and goes out of band too.) It returns JSON-serialisable
metadata; ``load_object(action, metadata)`` in a later element (another process) rebuilds the
object, ``free_object`` gives the space back.

Rules:

1. One block per object (one allocation): the pickle stream at offset 0, then each out-of-band
   buffer at the next multiple of 64 bytes, so arrays rebuilt from it are aligned.
2. Loading reads the block in one request and rebuilds the object from it without copying the
   buffers again: arrays in the result are views of one fresh bytes block owned by the result
   (writable, independent of the pool and of every other load).
3. The block reaches the region before ``store_object`` returns (write-through, like RemoteArray).
4. Unpickling runs code chosen by whoever pickled: load only metadata your own program produced
   (the same trust as Scad's pickled metadata, reference-notes §7.8).
"""

from __future__ import annotations

import io
import operator
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from scadrt.errors import AllocationError, RemoteMetadataError
from scadrt.remote.allocator import GRANULE
from scadrt.remote.memory import RemoteMemory, Target, check_metadata_header, remote_memory

__all__ = ["ObjectMeta", "free_object", "load_object", "store_object"]


def _align(value: int) -> int:
    return -(-value // GRANULE) * GRANULE


@dataclass(frozen=True)
class ObjectMeta:
    """Where a remote object is: its block, and the pieces of the block (offset, length)."""

    KIND: ClassVar[str] = "scad.remote_object"
    VERSION: ClassVar[int] = 1

    memory: str
    addr: int
    nbytes: int
    #: the pickle stream
    stream: tuple[int, int]
    #: the out-of-band buffers, in the order pickle asked for them
    buffers: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.KIND, "version": self.VERSION, "memory": self.memory, "addr": self.addr,
                "nbytes": self.nbytes, "stream": list(self.stream), "buffers": [list(b) for b in self.buffers]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ObjectMeta:
        check_metadata_header(data, cls.KIND, cls.VERSION, "remote-object")
        try:
            def piece(pair: Any) -> tuple[int, int]:
                offset, length = pair
                return operator.index(offset), operator.index(length)

            meta = cls(str(data["memory"]), operator.index(data["addr"]), operator.index(data["nbytes"]),
                       piece(data["stream"]), tuple(piece(b) for b in data["buffers"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RemoteMetadataError(f"malformed remote-object metadata {data!r:.200}: {exc!r}") from exc
        if any(o < 0 or n < 0 or o + n > meta.nbytes for o, n in (meta.stream, *meta.buffers)):
            raise RemoteMetadataError(f"inconsistent remote-object metadata {data!r:.200}")
        return meta


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        # numpy pickles a strided (neither C- nor F-contiguous) array in band, copying its bytes into
        # the stream; a contiguous copy goes out of band instead, beside the stream (rule 1)
        if (type(obj) is np.ndarray and not (obj.flags.c_contiguous or obj.flags.f_contiguous)
                and not obj.dtype.hasobject):
            return np.ascontiguousarray(obj).__reduce_ex__(5)
        return NotImplemented


def store_object(target: Target, name: str | None, obj: Any) -> dict[str, Any]:
    """Pickle ``obj`` into memory element ``name``; return its metadata (a JSON-serialisable dict)."""
    memory = remote_memory(target, name)
    buffers: list[pickle.PickleBuffer] = []
    out = io.BytesIO()
    _Pickler(out, protocol=5, buffer_callback=buffers.append).dump(obj)
    stream = out.getbuffer()
    raws = [b.raw() for b in buffers]  # 1-D byte views of the objects' own memory: no copy
    pieces: list[tuple[int, int]] = []
    end = _align(len(stream))
    for raw in raws:
        pieces.append((end, raw.nbytes))
        end = _align(end + raw.nbytes)
    nbytes = pieces[-1][0] + pieces[-1][1] if pieces else len(stream)
    addr = memory.allocator.alloc(nbytes)
    try:
        pool = memory.pool
        pool.write(addr, stream)
        for (offset, _), raw in zip(pieces, raws, strict=True):
            pool.write(addr + offset, raw)
        pool.flush(addr, nbytes)
    except BaseException:
        memory.allocator.free(addr)
        raise
    finally:
        for raw, buffer in zip(raws, buffers, strict=True):
            raw.release()
            buffer.release()
    return ObjectMeta(name or memory.name, addr, nbytes, (0, len(stream)), tuple(pieces)).to_json()


def load_object(target: Target, metadata: Mapping[str, Any] | ObjectMeta) -> Any:
    """The object ``metadata`` describes (from :func:`store_object`, possibly in another process)."""
    meta = _meta(metadata)
    memory = _live(target, meta)
    block = np.empty(meta.nbytes, dtype=np.uint8)
    memory.pool.invalidate(meta.addr, meta.nbytes)  # another process may have written it since we cached it
    memory.pool.readinto(meta.addr, block)
    view = memoryview(block)
    offset, length = meta.stream
    return pickle.loads(view[offset : offset + length], buffers=[view[o : o + n] for o, n in meta.buffers])


def free_object(target: Target, metadata: Mapping[str, Any] | ObjectMeta) -> None:
    """Give the object's space back to the memory element's allocator."""
    meta = _meta(metadata)
    _live(target, meta).allocator.free(meta.addr)


def _meta(metadata: Mapping[str, Any] | ObjectMeta) -> ObjectMeta:
    return metadata if isinstance(metadata, ObjectMeta) else ObjectMeta.from_json(metadata)


def _live(target: Target, meta: ObjectMeta) -> RemoteMemory:
    memory = remote_memory(target, meta.memory)
    try:
        size = memory.allocator.size_of(meta.addr)
    except AllocationError:
        size = -1
    if size < meta.nbytes:
        raise RemoteMetadataError(
            f"memory element {meta.memory!r} has no live block of {meta.nbytes} B at address {meta.addr} "
            "(the object was freed, or this is another memory element)"
        )
    return memory
