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
   (writable, independent of the pool and of every other load). ``load_object(…, share=True)``
   maps a large block copy-on-write instead where the transport allows (shm:
   :meth:`.RemoteMemory.share`), so the arrays are views of the region's own pages, with the
   same guarantees, as long as no other process writes the block while they live.
3. The block reaches the region before ``store_object`` returns (write-through, like RemoteArray).
4. Unpickling runs code chosen by whoever pickled: load only metadata your own program produced
   (the same trust as Scad's pickled metadata, reference-notes §7.8).
5. Data numpy would copy into the stream goes out of band as well, so that a pandas DataFrame or
   Series (whose blocks are numpy arrays) crosses with its column data beside the stream:

   - an array whose dtype exports no buffer (``datetime64``, ``timedelta64``, structured dtypes
     holding them: pandas datetime and timedelta columns) goes as its raw bytes and is rebuilt
     with the same dtype, shape and memory order;
   - an object array holding at least :data:`MIN_STRINGS` exact ``str`` (pandas ``str`` and
     ``object`` columns and indexes without pyarrow) goes as one UTF-8 buffer of the strings
     joined by NUL (lone surrogates kept), a mask of which elements are strings and the other
     elements (NaN, None, pd.NA, anything else), pickled as usual. Pickling a string per element
     is what dominates the time of a frame with a string column; joining them is a few times
     faster (bench/frames_transfer.py). An array with a string that holds NUL is pickled as usual.
     When a sample of the strings shows each repeating :data:`REPEATS` times or more (a category,
     a channel, a flag), only the distinct strings are joined, with a code per element (the
     smallest unsigned dtype that holds them); loading gives every equal element one shared
     string, 8 bytes per element where a str each took ~50 (such frames loaded were larger than
     the whole monolith that made them, whose strings pandas' joins share).

   Nothing imports pandas: these are rules for numpy arrays, wherever they sit.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import operator
import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from scadrt.errors import AllocationError, RemoteMetadataError
from scadrt.remote.allocator import GRANULE
from scadrt.remote.memory import RemoteMemory, Target, check_metadata_header, remote_memory

__all__ = ["MIN_STRINGS", "ObjectMeta", "free_object", "load_object", "object_nbytes", "store_object"]

#: an object array with fewer strings than this is pickled as usual (rule 5): the joined form
#: only pays off when there are many
MIN_STRINGS = 1024
#: an array whose strings repeat at least this many times on average goes as its distinct strings
#: and a code per element (rule 5)
REPEATS = 4
#: how many elements that decision looks at
SAMPLE = 4096
_SEP = "\x00"
#: the memory order an array is stored and rebuilt in
_Order = Literal["C", "F"]


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
        if type(obj) is not np.ndarray:
            return NotImplemented
        if obj.dtype == object:
            return _reduce_strings(obj)
        if obj.dtype.hasobject or not obj.dtype.itemsize:
            return NotImplemented
        if _exports_no_buffer(obj.dtype):
            return _reduce_raw(obj)  # numpy would pickle it in band (rule 5)
        # numpy pickles a strided (neither C- nor F-contiguous) array in band, copying its bytes into
        # the stream; a contiguous copy goes out of band instead, beside the stream (rule 1)
        if not (obj.flags.c_contiguous or obj.flags.f_contiguous):
            return np.ascontiguousarray(obj).__reduce_ex__(5)
        return NotImplemented


@functools.lru_cache(maxsize=256)
def _exports_no_buffer(dtype: np.dtype[Any]) -> bool:
    """True for dtypes numpy cannot export as a buffer although their bytes are all their data
    (datetime64, timedelta64, structured dtypes holding them): numpy pickles such arrays in band.
    Other dtypes that export no buffer (a user-defined dtype's bytes may point elsewhere) are
    left to numpy."""
    # ndarray.data is memoryview(array) (numpy's stubs declare ndarray a Buffer on Python 3.12+ only)
    try:
        np.empty(1, dtype=dtype).data  # noqa: B018 (the export is the test)
    except (ValueError, TypeError):
        return _plain(dtype)
    return False


def _plain(dtype: np.dtype[Any]) -> bool:
    if dtype.fields is not None:
        return all(_plain(field[0]) for field in dtype.fields.values())
    if dtype.subdtype is not None:
        return _plain(dtype.subdtype[0])
    return type(dtype) in _PLAIN_DTYPES


#: numpy's own dtype classes whose items are plain bytes (no pointers, no Python objects)
_PLAIN_DTYPES = frozenset(type(np.dtype(code)) for code in (*"?bBhHiIlLqQefdgFDG", "M8", "m8", "S1", "U1", "V1"))


def _order(array: np.ndarray) -> _Order:
    return "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"


def _reduce_raw(array: np.ndarray) -> tuple[Any, ...]:
    """``array`` as its bytes (one out-of-band buffer), kept in its memory order when contiguous."""
    order = _order(array)
    flat = array.T.reshape(-1) if order == "F" else np.ascontiguousarray(array).reshape(-1)
    return _rebuild_raw, (pickle.PickleBuffer(flat.view(np.uint8).data), array.dtype, array.shape, order)


def _rebuild_raw(data: Any, dtype: np.dtype[Any], shape: tuple[int, ...], order: _Order) -> np.ndarray:
    # a view of the loaded block, as numpy's own out-of-band arrays are (writable: rule 2)
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)


def _reduce_strings(array: np.ndarray) -> Any:
    """An object array of many strings as one UTF-8 buffer, and where the other elements are and
    what they are (rule 5)."""
    if array.size < MIN_STRINGS:
        return NotImplemented
    order = _order(array)
    flat = array.ravel(order=order)
    items = flat.tolist()
    kinds = list(map(type, items))
    types = set(kinds)
    if str not in types:
        return NotImplemented
    rest = None
    if len(types) > 1:  # str subclasses are "others" too: they come back as themselves
        where = np.fromiter((i for kind in types - {str} for i in _positions(kinds, kind)), dtype=np.intp)
        if len(items) - len(where) < MIN_STRINGS:
            return NotImplemented
        rest = (where, flat[where])  # the others hold no str: pickled the usual way, not by this rule
        for i in where.tolist():
            items[i] = ""  # a place holder in the joined text, so that it splits into one item per element
    # hashing every string costs more than joining them: only a column whose sample repeats (a
    # category, a channel, a flag) is worth a dictionary
    sample = items[::max(1, len(items) // SAMPLE)]
    words = list(dict.fromkeys(items)) if len(set(sample)) * REPEATS <= len(sample) else None
    if words is not None and len(words) * REPEATS > len(items):
        words = None  # the sample repeated, the whole does not
    parts = items if words is None else words
    joined = _SEP.join(parts)
    if joined.count(_SEP) != len(parts) - 1:
        return NotImplemented  # a string holds NUL itself: the split would be wrong
    data = joined.encode("utf-8", "surrogatepass")
    del joined
    if words is not None:
        index = {word: i for i, word in enumerate(words)}
        codes = np.fromiter(map(index.__getitem__, items), dtype=np.min_scalar_type(len(words) - 1),
                            count=len(items))
        return _rebuild_repeated, (pickle.PickleBuffer(data), codes, array.shape, order, rest)
    return _rebuild_strings, (pickle.PickleBuffer(data), array.shape, order, rest)


def _positions(items: list[Any], item: Any) -> Iterator[int]:
    """Where ``item`` is in ``items``: list.index scans in C, so a few missing values among a
    million strings (pandas' NaN) cost little; a test per element in Python would cost more
    than the rest of the rule."""
    pos = -1
    with contextlib.suppress(ValueError):
        while True:
            pos = items.index(item, pos + 1)
            yield pos


def _rebuild_strings(data: Any, shape: tuple[int, ...], order: _Order,
                     rest: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The array :func:`_reduce_strings` took apart; ``rest``: where the elements that are not
    strings go, and what they are."""
    strings = _split(data)
    flat = np.empty(math.prod(shape), dtype=object)
    if len(strings) != len(flat):
        raise RemoteMetadataError(f"remote object: {len(strings)} strings where {len(flat)} were stored")
    flat[:] = strings
    return _with_rest(flat, shape, order, rest)


def _split(data: Any) -> list[str]:
    return str(data, "utf-8", "surrogatepass").split(_SEP)


def _with_rest(flat: np.ndarray, shape: tuple[int, ...], order: _Order,
               rest: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``flat`` with the elements that are not strings put back (``rest``: where, and what), shaped."""
    if rest is not None:
        where, others = rest
        flat[where] = others
    return flat.reshape(shape, order=order)


def _rebuild_repeated(data: Any, codes: np.ndarray, shape: tuple[int, ...], order: _Order,
                      rest: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """The array :func:`_reduce_strings` stored as its distinct strings and a code per element:
    equal elements come back as one shared string, 8 bytes per element (rule 5)."""
    strings = _split(data)
    if codes.ndim != 1 or codes.size != math.prod(shape) or (codes.size and int(codes.max()) >= len(strings)):
        raise RemoteMetadataError(f"remote object: {codes.size} string codes for {len(strings)} strings"
                                  f" and shape {shape}")
    words = np.empty(len(strings), dtype=object)
    words[:] = strings
    return _with_rest(words.take(codes), shape, order, rest)


def _layout(stream: int, buffers: list[int]) -> tuple[list[tuple[int, int]], int]:
    """Rule 1: where each out-of-band buffer goes after a stream of ``stream`` bytes, and the block's size."""
    pieces: list[tuple[int, int]] = []
    end = _align(stream)
    for n in buffers:
        pieces.append((end, n))
        end = _align(end + n)
    return pieces, pieces[-1][0] + pieces[-1][1] if pieces else stream


class _Count:
    """A file that only counts what is written to it."""

    def __init__(self) -> None:
        self.n = 0

    def write(self, data: Any) -> int:
        self.n += memoryview(data).nbytes
        return self.n


def object_nbytes(obj: Any) -> int:
    """The size of the block :func:`store_object` would allocate for ``obj`` (nothing is stored;
    the pickle stream is counted, not kept)."""
    buffers: list[pickle.PickleBuffer] = []
    out = _Count()
    _Pickler(out, protocol=5, buffer_callback=buffers.append).dump(obj)
    sizes = []
    for buffer in buffers:
        with buffer.raw() as raw:
            sizes.append(raw.nbytes)
        buffer.release()
    return _layout(out.n, sizes)[1]


def store_object(target: Target, name: str | None, obj: Any) -> dict[str, Any]:
    """Pickle ``obj`` into memory element ``name``; return its metadata (a JSON-serialisable dict)."""
    memory = remote_memory(target, name)
    buffers: list[pickle.PickleBuffer] = []
    out = io.BytesIO()
    _Pickler(out, protocol=5, buffer_callback=buffers.append).dump(obj)
    stream = out.getbuffer()
    raws = [b.raw() for b in buffers]  # 1-D byte views of the objects' own memory: no copy
    pieces, nbytes = _layout(len(stream), [raw.nbytes for raw in raws])
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


def load_object(target: Target, metadata: Mapping[str, Any] | ObjectMeta, *, share: bool = False) -> Any:
    """The object ``metadata`` describes (from :func:`store_object`, possibly in another process);
    with ``share``, its buffers on the region's own pages where the transport allows (rule 2)."""
    meta = _meta(metadata)
    memory = _live(target, meta)
    view = memory.share(meta.addr, meta.nbytes) if share else None
    if view is None:
        block = np.empty(meta.nbytes, dtype=np.uint8)
        memory.pool.invalidate(meta.addr, meta.nbytes)  # another process may have written it since we cached it
        memory.pool.readinto(meta.addr, block)
        view = block.data  # memoryview(block)
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
