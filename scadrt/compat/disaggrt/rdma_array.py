"""Scad's ``disaggrt.rdma_array``: numpy arrays kept in memory elements, described by picklable metadata.

Kept from Scad (reference-notes §6.2): :class:`remote_array_metadata` and its fields
(``remote_mem_metadata``: start element index → ``[memory element, byte address, size in bytes]``
over the flattened array, ``dtype``, ``element_byte``, ``shape``, ``cur_mem_size``), which programs
pickle into ``params``; ``remote_array(pool, input_ndarray=…, transport_name=…)`` and
``remote_array(pool, metadata=…)``; ``materialize``, ``get_slice``, ``get_array_metadata``,
``init_empty_remote_array`` with ``request_mem_on_buffer_for_array``/``flush_slice``, and
``merge_arrays_metadata`` (arrays on several memory elements read as one).

Where Scad was undefined or broken, what a user of numpy expects:

- ``materialize()`` returns an array the program owns (Scad's was a view of staging pages);
  ``materialize(start, end)`` gives elements ``[start, end)`` of the flattened array, 1-D.
- ``get_slice(a, b)`` takes rows ``[a, b)`` (Scad's took flattened elements and kept the row shape,
  which agrees for 1-D arrays and was inconsistent otherwise).
- ``arr[i]``, ``arr[a:b]`` read rows and ``arr[i] = v``, ``arr[a:b] = v`` write them through (Scad's
  own ``simple_dependent`` test used them; the class had neither). Other keys read (and for
  assignment, rewrite) the whole array.
- ``request_mem_on_buffer_for_array`` returns the buffer to fill. Scad's programs use it two ways,
  ``buf = …`` (then fill ``buf`` from its start) and ``buf, offset = …`` (then fill
  ``buf[offset:…]``): the buffer is the program's own, starting at offset 0, so both forms mean
  the same bytes.
- Mismatched arrays given to ``merge_arrays_metadata`` are a ValueError (Scad printed and returned
  an empty dict).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from scadrt.compat.disaggrt.buffer_pool_lib import buffer_pool

__all__ = ["init_empty_remote_array", "merge_arrays_metadata", "remote_array", "remote_array_metadata"]


class remote_array_metadata:
    """Where an array's bytes are; a plain object that pickles (programs pass it through ``params``)."""

    def __init__(self, remote_mem_metadata: OrderedDict[int, list[Any]], cur_mem_size: int, dtype: Any,
                 element_byte: int, array_shape: Sequence[int]) -> None:
        self.dtype = np.dtype(dtype)
        self.element_byte = int(element_byte)
        self.remote_mem_metadata = remote_mem_metadata
        self.shape = tuple(int(n) for n in array_shape)
        #: Scad's value, kept as it was: an element count for arrays stored from an ndarray, a byte
        #: count for empty and merged ones
        self.cur_mem_size = cur_mem_size

    def extents(self, start: int, stop: int) -> Iterator[tuple[str, int, int, int]]:
        """``(memory element, byte address, element offset in [start, stop), element count)`` of the
        flattened elements ``[start, stop)``, in order."""
        for first, (name, addr, nbytes) in sorted(self.remote_mem_metadata.items()):
            count = int(nbytes) // self.element_byte
            lo, hi = max(start, first), min(stop, first + count)
            if lo < hi:
                yield str(name), int(addr) + (lo - first) * self.element_byte, lo - start, hi - lo

    def __repr__(self) -> str:
        return (f"remote_array_metadata(shape={self.shape}, dtype={self.dtype}, "
                f"extents={dict(self.remote_mem_metadata)})")

    __str__ = __repr__


class _FillBuffer(np.ndarray):
    """The bytes ``request_mem_on_buffer_for_array`` hands out: a uint8 array that also takes
    ``bytes`` in slice assignment (as the memoryview Scad returned did) and unpacks as
    ``(buffer, 0)`` for the programs that expected a pair."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(value, bytes | bytearray | memoryview):
            value = np.frombuffer(value, dtype=np.uint8)
        super().__setitem__(key, value)

    def __iter__(self) -> Iterator[Any]:
        return iter((self, 0))


class remote_array:
    """An array in memory elements of ``buffer_pool``: stored from ``input_ndarray`` into
    ``transport_name``, or attached from ``metadata``."""

    def __init__(self, buffer_pool: buffer_pool, input_ndarray: Any = None, transport_name: str = "",
                 metadata: remote_array_metadata | None = None) -> None:
        self.buffer_pool = buffer_pool
        self.local_array: np.ndarray | None = None
        self.buf_offset_map: dict[int, _FillBuffer] = {}
        if input_ndarray is not None:
            array = np.ascontiguousarray(input_ndarray)
            if array.dtype.hasobject:
                raise TypeError(f"remote_array stores numbers and records, not Python objects (dtype {array.dtype})")
            transport_name = transport_name or buffer_pool.only_transport()
            flat = array.reshape(-1)
            extents = buffer_pool.write(transport_name, flat.view(np.uint8))
            name, addr, nbytes = extents[0]
            self.metadata = remote_array_metadata(OrderedDict([(0, [name, addr, nbytes])]), flat.size,
                                                  array.dtype, array.itemsize, array.shape)
        elif metadata is not None:
            if not isinstance(metadata, remote_array_metadata):
                raise TypeError(f"remote_array's metadata is what get_array_metadata() returned, "
                                f"not {type(metadata).__name__}")
            self.metadata = metadata
        else:
            raise TypeError("remote_array needs input_ndarray=… (with transport_name=…) or metadata=…")

    # -- what Scad had ------------------------------------------------------------------------------

    def get_array_metadata(self) -> remote_array_metadata:
        return self.metadata

    def materialize(self, start_idx: int = -1, end_idx: int = -1) -> np.ndarray:
        """The whole array (default), or flattened elements ``[start_idx, end_idx)`` as a 1-D array."""
        total = math.prod(self.metadata.shape)
        whole = start_idx == -1 and end_idx in (-1, total)
        start = 0 if start_idx == -1 else int(start_idx)
        stop = total if end_idx == -1 else int(end_idx)
        if not 0 <= start <= stop <= total:
            raise IndexError(f"materialize({start_idx}, {end_idx}): the array has {total} elements")
        out = self._read(start, stop)
        self.local_array = out.reshape(self.metadata.shape) if whole or (start, stop) == (0, total) else out
        return self.local_array

    def get_slice(self, slice_start_idx: int, slice_end_idx: int) -> remote_array:
        """Rows ``[start, end)``, as another remote array over the same bytes (nothing is moved)."""
        shape = self.metadata.shape
        rows = shape[0] if shape else 1
        a, b = int(slice_start_idx), int(slice_end_idx)
        if not 0 <= a <= b <= rows:
            raise IndexError(f"get_slice({slice_start_idx}, {slice_end_idx}): the array has {rows} rows")
        per_row = math.prod(shape[1:])
        extents: OrderedDict[int, list[Any]] = OrderedDict()
        for name, addr, at, count in self.metadata.extents(a * per_row, b * per_row):
            # numbered from the slice's first element (Scad kept the parent's numbers, which its own
            # materialize then misread for slices spanning several extents)
            extents[at] = [name, addr, count * self.metadata.element_byte]
        nbytes = (b - a) * per_row * self.metadata.element_byte
        meta = remote_array_metadata(extents, nbytes, self.metadata.dtype, self.metadata.element_byte,
                                     (b - a, *shape[1:]))
        return remote_array(self.buffer_pool, metadata=meta)

    def request_mem_on_buffer_for_array(self, request_start_idx: int = 0, request_end_idx: int = -1) -> _FillBuffer:
        """A zeroed byte buffer for flattened elements ``[start, end)``, to fill and then :meth:`flush_slice`."""
        total = math.prod(self.metadata.shape)
        start = int(request_start_idx)
        stop = total if request_end_idx == -1 else int(request_end_idx)
        if not 0 <= start <= stop <= total:
            raise IndexError(f"request_mem_on_buffer_for_array({request_start_idx}, {request_end_idx}): "
                             f"the array has {total} elements")
        buf = np.zeros((stop - start) * self.metadata.element_byte, dtype=np.uint8).view(_FillBuffer)
        self.buf_offset_map[start] = buf
        return buf

    def flush_slice(self, request_start_idx: int, request_end_idx: int) -> None:
        """Write elements ``[start, end)`` from the buffer :meth:`request_mem_on_buffer_for_array` gave."""
        start, stop = int(request_start_idx), int(request_end_idx)
        buf = self.buf_offset_map.get(start)
        if buf is None:
            raise ValueError(f"flush_slice({start}, {stop}): no buffer was requested for element {start} "
                             "(request_mem_on_buffer_for_array first)")
        nbytes = (stop - start) * self.metadata.element_byte
        if not 0 <= nbytes <= len(buf) or stop > math.prod(self.metadata.shape):
            raise ValueError(f"flush_slice({start}, {stop}): the buffer holds {len(buf)} B, the slice is {nbytes} B")
        self._write(start, stop, np.asarray(buf)[:nbytes])

    # -- what Scad's programs expected (rows) ---------------------------------------------------------

    def __len__(self) -> int:
        return self.metadata.shape[0] if self.metadata.shape else 1

    @property
    def shape(self) -> tuple[int, ...]:
        return self.metadata.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        dtype: np.dtype[Any] = self.metadata.dtype
        return dtype

    def __getitem__(self, key: Any) -> Any:
        rows = self._rows(key)
        if rows is None:
            return self.materialize()[key]
        a, b, single = rows
        per_row = math.prod(self.metadata.shape[1:])
        block = self._read(a * per_row, b * per_row).reshape((b - a, *self.metadata.shape[1:]))
        return block[0] if single else block

    def __setitem__(self, key: Any, value: Any) -> None:
        rows = self._rows(key)
        if rows is None:
            whole = self.materialize().copy()
            whole[key] = value
            self._write(0, whole.size, whole.reshape(-1).view(np.uint8))
            return
        a, b, _ = rows
        per_row = math.prod(self.metadata.shape[1:])
        block = np.empty((b - a, *self.metadata.shape[1:]), dtype=self.metadata.dtype)
        block[...] = value
        self._write(a * per_row, b * per_row, block.reshape(-1).view(np.uint8))

    def __repr__(self) -> str:
        return f"remote_array(shape={self.metadata.shape}, dtype={self.metadata.dtype})"

    def _rows(self, key: Any) -> tuple[int, int, bool] | None:
        """Rows ``[a, b)`` that ``key`` selects and whether it is one row; None for other keys."""
        if not self.metadata.shape:
            return None
        n = self.metadata.shape[0]
        if isinstance(key, int | np.integer):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"index {key} is out of bounds for axis 0 with size {n}")
            return i, i + 1, True
        if isinstance(key, slice) and key.step in (None, 1):
            a, b, _ = key.indices(n)
            return a, max(a, b), False
        return None

    def _read(self, start: int, stop: int) -> np.ndarray:
        out = np.empty(stop - start, dtype=self.metadata.dtype)
        self._move(start, stop, out.view(np.uint8), self.buffer_pool.get)
        return out

    def _write(self, start: int, stop: int, data: np.ndarray) -> None:
        self._move(start, stop, data, self.buffer_pool.put)

    def _move(self, start: int, stop: int, raw: np.ndarray, move: Callable[[str, int, Any], None]) -> None:
        """Move flattened elements ``[start, stop)`` between their extents and the bytes ``raw``."""
        eb = self.metadata.element_byte
        covered = 0
        for name, addr, at, count in self.metadata.extents(start, stop):
            move(name, addr, raw[at * eb:(at + count) * eb])
            covered += count
        if covered != stop - start:
            raise ValueError(f"the array's metadata does not cover elements {start}..{stop}")


def init_empty_remote_array(buffer_pool: buffer_pool, transport_name: str, dtype: Any,
                            array_shape: int | Sequence[int]) -> remote_array:
    """Reserve room for an array of ``dtype`` and ``array_shape`` in ``transport_name``; nothing is written."""
    shape = (int(array_shape),) if isinstance(array_shape, int | np.integer) else tuple(int(n) for n in array_shape)
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    addr = buffer_pool.reserve_remote_mem(transport_name, nbytes)
    meta = remote_array_metadata(OrderedDict([(0, [transport_name, addr, nbytes])]), nbytes, dtype,
                                 dtype.itemsize, shape)
    return remote_array(buffer_pool, metadata=meta)


def merge_arrays_metadata(metadata_list: Sequence[remote_array_metadata]) -> remote_array_metadata:
    """One array made of the given ones, one after another along the first axis (nothing is moved)."""
    if not metadata_list:
        raise ValueError("merge_arrays_metadata needs at least one array's metadata")
    first = metadata_list[0]
    extents: OrderedDict[int, list[Any]] = OrderedDict()
    rows, at, size = 0, 0, 0
    for meta in metadata_list:
        if not isinstance(meta, remote_array_metadata):
            raise TypeError(f"merge_arrays_metadata takes array metadata, not {type(meta).__name__}")
        if meta.element_byte != first.element_byte or meta.shape[1:] != first.shape[1:]:
            raise ValueError(f"cannot merge arrays of {first.element_byte}-byte elements shaped {first.shape} "
                             f"with {meta.element_byte}-byte elements shaped {meta.shape}")
        for _, (name, addr, nbytes) in sorted(meta.remote_mem_metadata.items()):
            extents[at] = [name, addr, nbytes]
            at += int(nbytes) // first.element_byte
        rows += meta.shape[0] if meta.shape else 1
        size += meta.cur_mem_size
    return remote_array_metadata(extents, size, first.dtype, first.element_byte, (rows, *first.shape[1:]))
