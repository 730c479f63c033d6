"""RemoteArray: a numpy array stored in a memory element, read and written in pieces.

A remote array is ``nbytes`` bytes at ``addr`` in a memory element's heap (:mod:`.allocator`): the
array's elements in C order. Its :class:`ArrayMeta` (memory element, address, shape, dtype) is
small and JSON-serialisable, so one element stores an array and returns ``ra.metadata()`` in its
result, and a later element, in another process, calls ``RemoteArray.attach(action, metadata)``.

Rules:

1. Any dtype without Python objects: structured (nested, with titles, padding, sub-arrays, fields
   out of order), datetime, strings, void. Object dtypes are refused (:func:`~.objects.store_object`
   pickles those). Any shape, zero-size and 0-d included; any memory layout (stored in C order).
2. Every call reaches the region before it returns: ``store`` and ``__setitem__`` write through
   (the pool is flushed), so the metadata handed on always describes bytes that are there.
3. Reads fetch only what the index needs: for an integer, a slice (any step) or an integer array
   or length-``n`` boolean mask along axis 0, only those rows (rows at most a pool page apart come
   in one read, with the rows between; rows further apart in separate reads); any further indices
   apply to those rows locally.
   Other indices (``...``, ``None`` or a bool first, multi-dimensional masks) read the whole array.
4. Everything returned is a fresh numpy array (or numpy scalar) owned by the caller: nothing
   aliases the pool's staging buffer or another result. ``materialize(share=True)`` may instead
   return an array on a private copy-on-write mapping of the region (shm, large arrays:
   :meth:`.RemoteMemory.share`): owned by the caller all the same (writable, its writes reach
   neither the region nor other results), but holding no copy of the pages it only reads. It
   assumes no other process writes the array while the result lives (as Scad elements never do).
5. ``__setitem__`` writes whole rows: with an index along axis 0 only, every row it touches is
   overwritten and nothing is read; with more (a tuple index) the rows touched are read, changed
   and written back; an index rule 3 does not split reads, changes and writes the whole array.
6. Arrays larger than the pool or the staging buffer are read and written in chunks (the pool
   streams them), so size is bounded only by the memory element.
7. ``attach`` is where writes by other processes become visible: it drops the array's pages from
   the pool's cache. A handle held while another process writes the same array may read stale
   cached bytes (pool rule 8); attach again to see them.
8. After :meth:`RemoteArray.free` the handle is dead (using it raises
   :class:`~.allocator.RemoteMetadataError`), and so is its metadata: ``attach`` checks that the
   allocator still has the block. Handles attached *before* the free are not told: free only what
   nobody uses any more (the space is handed out again).
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.lib.format import descr_to_dtype, dtype_to_descr

from scadrt.errors import AllocationError, RemoteMetadataError
from scadrt.remote.memory import RemoteMemory, Target, check_metadata_header, remote_memory
from scadrt.remote.pool import DEFAULT_MAX_TRANSFER

__all__ = ["ArrayMeta", "RemoteArray", "dtype_from_json", "dtype_to_json"]


def dtype_to_json(dtype: np.dtype[Any]) -> Any:
    """A JSON value describing ``dtype``: the ``.npy`` descr when numpy has one, else a dict form."""
    if dtype.hasobject:
        raise RemoteMetadataError(f"dtype {dtype} holds Python objects; store such data with store_object()")
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return {"base": dtype_to_json(base), "shape": list(shape)}
    structure = dtype.fields  # by name, and by title too; None when the dtype is not structured
    if structure is None or dtype.names is None:
        return dtype.str
    try:
        with warnings.catch_warnings():  # dtype metadata is dropped, as by np.save; that warning is noise here
            warnings.simplefilter("ignore", UserWarning)
            return _lists(dtype_to_descr(dtype))
    except ValueError:  # overlapping or out-of-order fields have no descr
        fields = [structure[n] for n in dtype.names]
        form: dict[str, Any] = {"names": list(dtype.names), "formats": [dtype_to_json(f[0]) for f in fields],
                                "offsets": [f[1] for f in fields], "itemsize": dtype.itemsize}
        if any(len(f) > 2 for f in fields):
            form["titles"] = [f[2] if len(f) > 2 else None for f in fields]
        return form


def dtype_from_json(value: Any) -> np.dtype[Any]:
    """The dtype :func:`dtype_to_json` described."""
    try:
        if isinstance(value, str):
            return np.dtype(value)
        if isinstance(value, list):
            return descr_to_dtype(_tuples(value))
        if isinstance(value, dict) and "base" in value:
            return np.dtype((dtype_from_json(value["base"]), tuple(value["shape"])))
        if isinstance(value, dict):
            # JSON, checked by np.dtype (the stubs type a dict form as a TypedDict, which JSON data is not)
            form: Any = {**value, "formats": [dtype_from_json(f) for f in value["formats"]]}
            structured: np.dtype[Any] = np.dtype(form)
            return structured
    except (TypeError, ValueError, KeyError) as exc:
        raise RemoteMetadataError(f"invalid dtype in metadata: {value!r} ({exc})") from exc
    raise RemoteMetadataError(f"invalid dtype in metadata: {value!r}")


def _lists(descr: Any) -> Any:
    return [_lists(x) for x in descr] if isinstance(descr, list | tuple) else descr


def _tuples(descr: list[Any]) -> list[tuple[Any, ...]]:
    """Undo JSON's tuple -> list for a structured descr: fields, (title, name) pairs and shapes."""
    fields = []
    for name, sub, *shape in descr:
        field = (tuple(name) if isinstance(name, list) else name, _tuples(sub) if isinstance(sub, list) else sub)
        fields.append(field + tuple(tuple(s) for s in shape))
    return fields


@dataclass(frozen=True)
class ArrayMeta:
    """Where a remote array is and what it holds; ``to_json()`` gives the dict to hand on."""

    KIND: ClassVar[str] = "scad.remote_array"
    VERSION: ClassVar[int] = 1

    #: the memory element (``action.get_transport`` name)
    memory: str
    addr: int
    nbytes: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.KIND, "version": self.VERSION, "memory": self.memory, "addr": self.addr,
                "nbytes": self.nbytes, "shape": list(self.shape), "dtype": dtype_to_json(self.dtype)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArrayMeta:
        check_metadata_header(data, cls.KIND, cls.VERSION, "remote-array")
        try:
            shape = tuple(operator.index(n) for n in data["shape"])
            meta = cls(str(data["memory"]), operator.index(data["addr"]), operator.index(data["nbytes"]), shape,
                       dtype_from_json(data["dtype"]))
        except (KeyError, TypeError) as exc:
            raise RemoteMetadataError(f"malformed remote-array metadata {data!r:.200}: {exc!r}") from exc
        if meta.addr < 0 or min(shape, default=0) < 0 or meta.nbytes != math.prod(shape) * meta.dtype.itemsize:
            raise RemoteMetadataError(f"inconsistent remote-array metadata {data!r:.200}")
        return meta


class RemoteArray:
    """A numpy array in a memory element; see the module docstring. Make one with :meth:`store`,
    :meth:`empty` or :meth:`attach`."""

    def __init__(self, memory: RemoteMemory, meta: ArrayMeta) -> None:
        self.memory = memory
        self.meta = meta
        self._freed = False
        rows = meta.shape[0] if meta.shape else 1
        self._row_bytes = meta.nbytes // rows if rows else meta.dtype.itemsize * math.prod(meta.shape[1:])

    # -- making one -----------------------------------------------------------------------------------

    @classmethod
    def empty(cls, target: Target, name: str | None, shape: int | tuple[int, ...], dtype: Any) -> RemoteArray:
        """Reserve space for an array of ``shape`` and ``dtype`` (contents undefined until written)."""
        memory = remote_memory(target, name)
        shape = (operator.index(shape),) if not isinstance(shape, tuple) else tuple(map(operator.index, shape))
        dt = np.dtype(dtype)
        dtype_to_json(dt)  # refuses object dtypes before anything is allocated
        nbytes = math.prod(shape) * dt.itemsize
        addr = memory.allocator.alloc(nbytes)
        return cls(memory, ArrayMeta(name or memory.name, addr, nbytes, shape, dt))

    @classmethod
    def store(cls, target: Target, name: str | None, array: Any) -> RemoteArray:
        """Copy ``array`` (anything ``np.asarray`` takes) into memory element ``name``."""
        data = np.asarray(array)
        remote = cls.empty(target, name, data.shape, data.dtype)
        try:
            remote._write_rows(0, data)
        except BaseException:
            remote.free()
            raise
        return remote

    @classmethod
    def attach(cls, target: Target, metadata: Mapping[str, Any] | ArrayMeta) -> RemoteArray:
        """The array ``metadata`` describes (from :meth:`metadata`, possibly in another process)."""
        meta = metadata if isinstance(metadata, ArrayMeta) else ArrayMeta.from_json(metadata)
        memory = remote_memory(target, meta.memory)
        try:
            size = memory.allocator.size_of(meta.addr)
        except AllocationError:
            size = -1
        if size < meta.nbytes:
            raise RemoteMetadataError(
                f"memory element {meta.memory!r} has no live block of {meta.nbytes} B at address {meta.addr} "
                "(the array was freed, or this is another memory element)"
            )
        memory.pool.invalidate(meta.addr, meta.nbytes)  # rule 7: see what others wrote since we cached it
        return cls(memory, meta)

    def metadata(self) -> dict[str, Any]:
        """The JSON-serialisable dict :meth:`attach` takes."""
        return self.meta.to_json()

    # -- what it is -------------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.meta.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.meta.dtype

    @property
    def nbytes(self) -> int:
        return self.meta.nbytes

    @property
    def ndim(self) -> int:
        return len(self.meta.shape)

    @property
    def size(self) -> int:
        return math.prod(self.meta.shape)

    def __len__(self) -> int:
        if not self.meta.shape:
            raise TypeError("len() of a 0-d remote array")
        return self.meta.shape[0]

    def __repr__(self) -> str:
        state = " freed" if self._freed else ""
        return f"<RemoteArray {self.shape} {self.dtype} in {self.meta.memory!r} at {self.meta.addr}{state}>"

    # -- reading ---------------------------------------------------------------------------------------

    def materialize(self, *, share: bool = False) -> np.ndarray:
        """The whole array, as a fresh numpy array; with ``share``, on the region's own pages where
        the transport allows (rule 4)."""
        if share:
            self._check_live()
            view = self.memory.share(self.meta.addr, self.meta.nbytes)
            if view is not None:  # C order, as stored; its base keeps the mapping alive
                return np.frombuffer(view, dtype=self.dtype).reshape(self.shape)
        out = np.empty(self.shape, dtype=self.dtype)
        self._read_into(0, out)
        return out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.materialize()
        return out if dtype is None else out.astype(dtype, copy=False)

    def iter_chunks(self, rows: int) -> Iterator[np.ndarray]:
        """Fresh arrays of at most ``rows`` consecutive rows each, in order."""
        if rows < 1:
            raise ValueError(f"iter_chunks needs rows >= 1, got {rows}")
        for lo in range(0, len(self), rows):
            yield self._read_span(lo, min(lo + rows, len(self)))

    def __getitem__(self, key: Any) -> Any:
        plan = self._plan(key)
        if plan is None:
            return self.materialize()[key]
        rows, local, rest = plan
        return self._read_rows(rows)[(local, *rest)]

    # -- writing ---------------------------------------------------------------------------------------

    def __setitem__(self, key: Any, value: Any) -> None:
        plan = self._plan(key)
        if plan is None:  # an index we do not split: change the whole array
            whole = self.materialize()
            whole[key] = value
            self._write_rows(0, whole)
            return
        rows, local, rest = plan
        shape = (len(rows), *self.shape[1:])
        if (not rest and isinstance(local, slice) and local == slice(None, None, 1) and isinstance(value, np.ndarray)
                and value.dtype == self.dtype and value.shape == shape and len(_runs(rows)) == 1):
            # consecutive rows replaced by an array of their exact shape (pack's write-back): written
            # straight from it, without a staging copy of the whole value
            self._write_rows(int(rows[0]), value)
            return
        # an index along axis 0 only overwrites every row it touches: nothing to read (rule 5)
        block = self._read_rows(rows) if rest else np.empty(shape, dtype=self.dtype)
        block[(local, *rest)] = value
        for start, stop in _runs(rows):
            first = int(np.searchsorted(rows, start))
            self._write_rows(start, block[first : first + stop - start])

    def free(self) -> None:
        """Give the array's space back to the memory element's allocator."""
        self._check_live()
        self.memory.allocator.free(self.meta.addr)
        self._freed = True

    # -- internals --------------------------------------------------------------------------------------

    def _check_live(self) -> None:
        if self._freed:
            raise RemoteMetadataError(f"{self!r} was freed")

    def _read_into(self, offset: int, out: np.ndarray) -> None:
        self._check_live()
        if out.nbytes:
            self.memory.pool.readinto(self.meta.addr + offset, out.reshape(-1).view(np.uint8))

    def _write_rows(self, start: int, block: np.ndarray) -> None:
        """Write ``block`` (whole rows, or the whole 0-d array) at row ``start``, through to the region."""
        self._check_live()
        if not block.nbytes:
            return
        pool, addr = self.memory.pool, self.meta.addr + start * self._row_bytes
        if block.ndim == 0 or block.flags.c_contiguous:
            pool.write(addr, np.ascontiguousarray(block, dtype=self.dtype).reshape(-1).view(np.uint8))
        else:  # made C-contiguous a slab at a time, so a huge strided input is not copied whole
            step = max(1, DEFAULT_MAX_TRANSFER // max(self._row_bytes, 1))
            for lo in range(0, len(block), step):
                slab = np.ascontiguousarray(block[lo : lo + step], dtype=self.dtype).reshape(-1)
                pool.write(addr + lo * self._row_bytes, slab.view(np.uint8))
        pool.flush(addr, block.nbytes)

    def _read_span(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        self._read_into(start * self._row_bytes, out)
        return out

    def _read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, unique), as one fresh array; runs of rows close together in one read."""
        gap = max(1, self.memory.pool.page_size // max(self._row_bytes, 1))
        runs = _runs(rows, gap)
        if len(runs) == 1 and runs[0][1] - runs[0][0] == len(rows):
            return self._read_span(*runs[0])
        out = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        pos = 0
        for start, stop in runs:
            span = self._read_span(start, stop)
            count = int(np.searchsorted(rows, stop)) - pos
            out[pos : pos + count] = span[rows[pos : pos + count] - start]
            pos += count
        return out

    def _plan(self, key: Any) -> tuple[np.ndarray, Any, tuple[Any, ...]] | None:
        """Split ``key`` into the rows of axis 0 it touches (sorted, unique), the index of axis 0 into
        those rows once read, and the rest of the key; None: not split (rule 3)."""
        self._check_live()
        parts = key if isinstance(key, tuple) else (key,)
        if not self.shape or not parts:
            return None
        first, rest, n = parts[0], parts[1:], self.shape[0]
        if isinstance(first, slice):
            span = range(*first.indices(n))
            rows = np.arange(min(span, default=0), max(span, default=-1) + 1, abs(span.step), dtype=np.intp)
            return rows, slice(None, None, 1 if span.step > 0 else -1), rest
        if isinstance(first, bool | np.bool_) or first is None or first is Ellipsis:
            return None
        if not isinstance(first, list | np.ndarray):
            try:
                index = operator.index(first)
            except TypeError:
                return None  # let numpy say what is wrong with it
            if not -n <= index < n:
                raise IndexError(f"index {index} is out of bounds for axis 0 with size {n}")
            return np.array([index % n], dtype=np.intp), 0, rest
        picks = np.asarray(first)
        if picks.dtype == np.bool_:
            if picks.shape != (n,):
                return None
            rows = np.flatnonzero(picks)
            return rows, np.arange(len(rows)), rest
        if picks.size == 0:
            picks = picks.astype(np.intp)
        if not np.issubdtype(picks.dtype, np.integer):
            return None
        if picks.size and not (-n <= picks.min() and picks.max() < n):
            bad = picks.min() if picks.min() < -n else picks.max()
            raise IndexError(f"index {bad} is out of bounds for axis 0 with size {n}")
        picks = picks % n if n else picks
        rows = np.unique(picks)
        return rows, np.searchsorted(rows, picks), rest


def _runs(rows: np.ndarray, gap: int = 1) -> list[tuple[int, int]]:
    """Group sorted row numbers into ``[start, stop)`` spans, joining rows less than ``gap`` apart."""
    if not len(rows):
        return []
    breaks = np.flatnonzero(np.diff(rows) > gap) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(rows)]))
    return [(int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]
