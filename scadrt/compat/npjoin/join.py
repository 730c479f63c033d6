"""Scad's ``npjoin.join``: equi-joins, hash partitioning and gathers on numpy structured arrays.

A clean-room re-implementation, in vectorised numpy, of the Cython module Scad's TPC-DS programs
use (``from npjoin import join`` or ``import npjoin.join as join``). Data frames are 1-D numpy
structured arrays, join and partition keys are float32 columns, and everything that refers to rows
returns ``np.intp`` positions. The semantics are the original's:

Joins
    ``prepare_join_float32(left_keys)`` builds the left (build) side once and returns
    ``(table, sorter, counts, ngroups)``; ``join_on_table_float32(table, sorter, counts, ngroups,
    right_keys)`` probes it and returns ``(left_indexer, right_indexer)``, the row pairs of the inner
    equi-join. Distinct left keys are numbered (labelled) in order of first appearance in
    ``left_keys``; the pairs come group by group in that order, within a group by left row, then by
    right row (all ascending): for ``left = [2, 1, 2]`` and ``right = [1, 2]`` they are ``(0, 1), (2, 1),
    (1, 0)``. This is not pandas' order (``merge(how="inner")`` keeps left rows in order). Keys
    compare as float values: ``-0.0`` joins ``0.0`` (the original's hash table hashes both to 0 and
    compares with ``==``). NaN keys never match anything, NaN included (SQL semantics: the build
    side's factorize gives NaN rows the NA label, which the join skips); pandas ``merge`` does match
    NaN with NaN, so a pandas reference program keeps such rows where this join drops them.

    ``sorter`` and ``counts`` are :func:`groupsort_indexer`'s output for the left labels: ``counts``
    has ``ngroups + 1`` entries, ``counts[0]`` the NaN rows and ``counts[1 + label]`` each group's
    rows; ``sorter`` lists the NaN rows first, then each group's rows, each run in ascending row
    order. ``table`` is a :class:`Float32Table` (the factorised distinct keys), which programs only
    hand back.

Merging rows
    ``merge_dtypes(left, right, left_fields, right_fields)`` is the packed structured dtype of the
    chosen fields, left's then right's, each side's in the order of its own dtype (not of the
    list: ``["b", "a"]`` from a ``(a, b)`` array gives ``(a, b)``, as the original's filter over
    ``dtype.descr`` does). ``structured_array_merge(buf, left, right, left_indexer, right_indexer,
    left_fields, right_fields)`` lays that many merged rows out at the start of the byte buffer
    ``buf`` (typically a transport's staging buffer, so the result is flushed without another copy)
    and fills them column by column with ``left[f][left_indexer]`` and ``right[f][right_indexer]``.

Partitioning
    ``partition_on_float32(keys, n)`` and ``partition_on_float32_pair(keys1, keys2, n)`` put each row
    in bin ``lookup3(bits, 0, 0) % n`` (respectively ``lookup3(bits1, bits2, 0) % n``) of the raw
    32-bit patterns of its keys (see :func:`lookup3`) and return ``(sorter, bounds)``: ``sorter``
    lists the rows bin by bin, each bin's rows in ascending row order (a stable counting sort), and
    ``bounds`` has ``n + 1`` entries starting at 0, bin ``p`` being ``sorter[bounds[p]:bounds[p + 1]]``
    (the original's ``cumsum`` of :func:`groupsort_indexer`'s counts, whose NA slot is empty here).
    Because it hashes bits, not values, ``-0.0`` and ``0.0`` (and NaNs of different payloads) may
    land in different bins, unlike the join, which matches ``-0.0`` with ``0.0``; NaN rows are
    partitioned like any others.

Helpers
    ``deindex(values, indexer)`` is the gather ``values[indexer]`` of integer arrays;
    ``groupsort_indexer(labels, ngroups)`` the counting sort of labels in ``-1 .. ngroups - 1``
    (``-1`` = NA, counted in slot 0); ``join_on(ngroups, left_sorter, left_count, right_labels)`` the
    join of already factorised keys, which ``join_on_table_float32`` is after its lookup.

Where the original is undefined (Cython with bounds checks off, or a crash deep in numpy), this one
refuses, with a :class:`TypeError` for a wrong type or dtype and a :class:`ValueError` for a wrong
shape, length or size (:class:`IndexError` for a position out of range): keys must be 1-D float32
arrays (any byte order; other dtypes are refused rather than rounded, ``.astype(np.float32)``
converts them); labels, sorters and indexers integer arrays (any integer dtype); a field named on
both sides of a merge, an unknown field, an object field, a buffer too small or read-only, or a
destination that overlaps ``left`` or ``right`` is refused. ``structured_array_merge`` also takes
a keyword ``offset`` into ``buf`` (the original always writes at 0). Parameter names are the
original's, so keyword calls work too.

>>> import numpy as np
>>> table, sorter, counts, ngroups = prepare_join_float32(np.array([2, 1, 2], np.float32))
>>> counts.tolist(), ngroups
([0, 2, 1], 2)
>>> left, right = join_on_table_float32(table, sorter, counts, ngroups, np.array([1, 2, 3, 2], np.float32))
>>> left.tolist(), right.tolist()
([0, 0, 2, 2, 1], [1, 3, 1, 3, 0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Float32Table",
    "deindex",
    "groupsort_indexer",
    "join_on",
    "join_on_table_float32",
    "lookup3",
    "merge_dtypes",
    "partition_on_float32",
    "partition_on_float32_pair",
    "prepare_join_float32",
    "structured_array_merge",
]

Indexer = npt.NDArray[np.intp]
Keys = npt.NDArray[np.float32]
Bits = npt.NDArray[np.uint32]
#: one side of a join: (sorter, start, n), group g's rows being sorter[start[g]:start[g] + n[g]]
Side = tuple[Indexer, Indexer, Indexer]

#: lookup3's starting state for a one-word key and initval 0: 0xdeadbeef + (length << 2)
_LOOKUP3_INIT: Final = 0xDEADBEEF + (1 << 2)
_NEGATIVE_ZERO: Final = 0x8000_0000
#: elements hashed at a time: a chunk's a, b, c and scratch arrays stay in the L2 cache
_CHUNK: Final = 1 << 16
_MAX_BITS: Final = 0xFFFF_FFFF


class Float32Table:
    """The build side of a join: the distinct non-NaN left keys, labelled in order of first appearance.

    ``uniques[label]`` is the key as first seen (so ``-0.0`` if that came before ``0.0``);
    :meth:`lookup` gives the label of each probe key, or -1.
    """

    __slots__ = ("_bits", "_labels", "uniques")

    def __init__(self, uniques: Keys, bits: Bits, labels: Indexer) -> None:
        self.uniques = uniques
        self._bits = bits  # the uniques' canonical bit patterns, ascending
        self._labels = labels  # the label of each entry of _bits

    def __len__(self) -> int:
        return len(self.uniques)

    def __repr__(self) -> str:
        return f"<Float32Table of {len(self)} distinct keys>"

    def lookup(self, values: Keys) -> Indexer:
        """The label of each of ``values`` (a 1-D float32 array), -1 where it is not a left key."""
        keys = _keys("lookup", "values", values)
        rows, _, lengths, run_labels = self._probe(keys)
        labels = np.full(len(keys), -1, dtype=np.intp)
        labels[rows] = np.repeat(run_labels, lengths)
        return labels

    def _probe(self, keys: Keys) -> tuple[Indexer, Indexer, Indexer, Indexer]:
        """:func:`_runs` of ``keys`` and the label of each run (-1: no such left key)."""
        # NaN rows can stay: no NaN is in the table, and a NaN's bits equal no number's
        rows, sorted_bits, starts, lengths = _runs(keys, drop_nan=False)
        run_bits = sorted_bits[starts].astype(np.uint32)
        # one binary search per distinct key, in ascending order: numpy's searchsorted starts each
        # search where the previous one ended, and its probes stay in cache
        found = np.minimum(np.searchsorted(self._bits, run_bits), max(len(self._bits) - 1, 0))
        run_labels = np.full(len(starts), -1, dtype=np.intp)
        if len(self._bits):
            hit = self._bits[found] == run_bits
            run_labels[hit] = self._labels[found[hit]]
        return rows, starts, lengths, run_labels


# ----------------------------------------------------------------------------------------------
# argument checks


def _kind(value: object) -> str:
    return f"a numpy array of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__


def _keys(func: str, name: str, values: object) -> Keys:
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{func}: {name} must be a 1-D float32 numpy array, not {_kind(values)}")
    if values.dtype.kind != "f" or values.dtype.itemsize != 4:
        raise TypeError(f"{func}: {name} has dtype {values.dtype}; keys must be float32 "
                        "(convert them with .astype(np.float32) if rounding is acceptable)")
    if values.ndim != 1:
        raise ValueError(f"{func}: {name} must be 1-D, not of shape {values.shape}")
    return values.astype(np.float32, copy=False)  # native byte order: the bits hashed are the value's


def _integers(func: str, name: str, values: object) -> Indexer:
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{func}: {name} must be a 1-D integer numpy array, not {_kind(values)}")
    if values.dtype.kind not in "iu" and values.size:  # an empty array of any dtype is no positions
        raise TypeError(f"{func}: {name} must hold integers, not {values.dtype}")
    if values.ndim != 1:
        raise ValueError(f"{func}: {name} must be 1-D, not of shape {values.shape}")
    if values.dtype.kind == "u" and values.size and values.max() > np.iinfo(np.intp).max:
        raise ValueError(f"{func}: {name} holds {values.max()}, beyond the largest position")
    return values.astype(np.intp, copy=False)


def _positions(func: str, name: str, values: object, size: int) -> Indexer:
    positions = _integers(func, name, values)
    if positions.size:
        low, high = int(positions.min()), int(positions.max())
        if low < 0 or high >= size:
            raise IndexError(f"{func}: {name} holds {low if low < 0 else high}, outside the {size} rows 0..{size - 1}")
    return positions


def _count(func: str, name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{func}: {name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be at least {minimum}, not {value}")
    return int(value)


def _structured(func: str, side: str, array: object) -> npt.NDArray[np.void]:
    if not isinstance(array, np.ndarray) or array.dtype.names is None:
        raise TypeError(f"{func}: {side} must be a numpy structured array, not {_kind(array)}")
    if array.ndim != 1:
        raise ValueError(f"{func}: {side} must be 1-D, not of shape {array.shape}")
    return array


def _fields(func: str, side: str, array: npt.NDArray[np.void], fields: object) -> list[str]:
    """The chosen fields of ``array`` in its dtype's order."""
    if isinstance(fields, str) or not isinstance(fields, Sequence):
        raise TypeError(f"{func}: {side}_fields must be a list of field names, not {type(fields).__name__}")
    names = array.dtype.names or ()
    for field in fields:
        if not isinstance(field, str):
            raise TypeError(f"{func}: {side}_fields must hold field names (str), not {type(field).__name__}")
        if field not in names:
            raise ValueError(f"{func}: {side} has no field {field!r} (its fields: {', '.join(names)})")
    chosen = set(fields)
    return [name for name in names if name in chosen]


def _byte_buffer(func: str, buf: object) -> npt.NDArray[np.uint8]:
    if isinstance(buf, np.ndarray):
        data: npt.NDArray[Any] = buf
    else:
        try:
            data = np.asarray(memoryview(buf))  # type: ignore[arg-type]  # whatever has the buffer protocol
        except TypeError:
            raise TypeError(f"{func}: buf must be a writable uint8 numpy array or a buffer "
                            f"(memoryview, bytearray, mmap), not {type(buf).__name__}") from None
    if data.dtype != np.uint8:
        raise TypeError(f"{func}: buf must hold bytes (uint8), not {data.dtype}")
    if data.ndim != 1 or not data.flags.c_contiguous:
        raise ValueError(f"{func}: buf must be one contiguous run of bytes, not of shape {data.shape} "
                         f"and strides {data.strides}")
    if not data.flags.writeable:
        raise ValueError(f"{func}: buf is read-only")
    return data


# ----------------------------------------------------------------------------------------------
# sorting and factorising


def _sort_by(keys: npt.NDArray[np.integer[Any]], top: int) -> tuple[Indexer, npt.NDArray[np.uint64]]:
    """The positions of ``keys`` (integers in ``0..top``) in ascending key order, ties in position
    order (a stable argsort), and the keys in that order."""
    n = len(keys)
    position_bits = max(n - 1, 0).bit_length()
    if top.bit_length() + position_bits > 64:
        order = np.argsort(keys, kind="stable").astype(np.intp, copy=False)
        return order, keys[order].astype(np.uint64)
    # (key, position) packed into one uint64 and sorted plainly: the packed values are distinct, so
    # any sort is stable, and numpy's (vectorised) sort of uint64 runs several times faster than its
    # stable argsort (a timsort for keys wider than 16 bits)
    packed = keys.astype(np.uint64) << np.uint64(position_bits)
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64((1 << position_bits) - 1)).astype(np.intp)
    packed >>= np.uint64(position_bits)
    return order, packed


def _value_bits(keys: Keys) -> Bits:
    """Bit patterns that are equal exactly when the (non-NaN) values are: ``-0.0`` folded into ``0.0``."""
    # on the integers rather than with x + 0.0, which a flush-to-zero FPU mode would also apply to
    # subnormals, merging them with 0
    raw = keys.view(np.uint32)
    return np.where(raw == _NEGATIVE_ZERO, np.uint32(0), raw)


def _runs(keys: Keys, *, drop_nan: bool) -> tuple[Indexer, npt.NDArray[np.uint64], Indexer, Indexer]:
    """The rows of ``keys`` by value (a value's rows ascending; NaN rows left out if ``drop_nan``),
    their :func:`_value_bits`, and where each distinct value's run of rows starts and how long it is."""
    bits = _value_bits(keys)
    nan = np.isnan(keys) if drop_nan else None
    if nan is not None and nan.any():
        rows = np.flatnonzero(~nan)
        order, sorted_bits = _sort_by(bits[rows], _MAX_BITS)
        rows = rows[order]
    else:
        rows, sorted_bits = _sort_by(bits, _MAX_BITS)
    if len(rows):
        starts = np.flatnonzero(np.concatenate(([True], sorted_bits[1:] != sorted_bits[:-1])))
    else:
        starts = np.zeros(0, dtype=np.intp)
    return rows, sorted_bits, starts, np.diff(np.append(starts, len(rows)))


def _groupsort(labels: Indexer, ngroups: int) -> tuple[Indexer, Indexer]:
    slots = labels + 1
    counts = np.bincount(slots, minlength=ngroups + 1).astype(np.intp)
    if ngroups < 1 << 16:  # numpy's stable sort of 16-bit integers is a radix sort: O(n), and faster still
        return np.argsort(slots.astype(np.uint16), kind="stable").astype(np.intp, copy=False), counts
    return _sort_by(slots, ngroups)[0], counts


def _pairs(left: Side, right: Side) -> tuple[Indexer, Indexer]:
    """The row pairs of each group present on both sides, group by group, then left row, then right row."""
    (left_sorter, left_start, left_n), (right_sorter, right_start, right_n) = left, right
    both = np.flatnonzero((left_n > 0) & (right_n > 0))
    left_start, left_n, right_start, right_n = left_start[both], left_n[both], right_start[both], right_n[both]
    # one block per (group, left row), pairing that left row with each of the group's right rows
    block_group = np.repeat(np.arange(len(both), dtype=np.intp), left_n)
    first_block = np.cumsum(left_n) - left_n
    block_left = left_start[block_group] + np.arange(len(block_group), dtype=np.intp) - first_block[block_group]
    block_size = right_n[block_group]
    block_out = np.cumsum(block_size) - block_size
    total = int(block_size.sum())
    left_indexer = np.repeat(left_sorter[block_left], block_size)
    right_pos = np.repeat(right_start[block_group] - block_out, block_size) + np.arange(total, dtype=np.intp)
    return left_indexer, right_sorter[right_pos]


def lookup3(k0: npt.ArrayLike, k1: npt.ArrayLike = 0, k2: npt.ArrayLike = 0) -> Bits:
    """Bob Jenkins' lookup3 of the 32-bit words ``(k0, k1, k2)``, element-wise, as Scad's npjoin computes it.

    Scad's C function starts from ``hashword``'s state for a ONE-word key and initval 0
    (``a = b = c = 0xdeadbeef + (1 << 2)``), adds ``k0``, ``k1`` and ``k2`` to ``a``, ``b`` and ``c``
    and applies lookup3's ``final`` (no ``mix``: at most three words). With ``k1 = k2 = 0`` that is
    exactly ``hashword(&k0, 1, 0)`` (= ``hashlittle`` of the 4 little-endian bytes, initval 0); with
    ``k1`` set it is not ``hashword(k, 2, 0)``, whose start counts two words. Arguments broadcast,
    must fit in uint32, and the result is a uint32 array of at least one dimension.
    """
    words = np.broadcast_arrays(*(np.atleast_1d(np.asarray(k, dtype=np.uint32)) for k in (k0, k1, k2)))
    a, b, c = ((w + np.uint32(_LOOKUP3_INIT)).ravel() for w in words)  # uint32 arrays wrap, as C's uint32_t do
    scratch = np.empty(min(len(a), _CHUNK), dtype=np.uint32), np.empty(min(len(a), _CHUNK), dtype=np.uint32)
    # chunk by chunk, so that the 35 passes of final() run over data in cache (2.5x faster at 1e6 keys)
    for start in range(0, len(a), _CHUNK):
        _final(a[start:start + _CHUNK], b[start:start + _CHUNK], c[start:start + _CHUNK], scratch)
    return c.reshape(words[0].shape)


def _final(a: Bits, b: Bits, c: Bits, scratch: tuple[Bits, Bits]) -> None:
    """lookup3's final(a, b, c), in place."""
    high, low = scratch[0][:len(a)], scratch[1][:len(a)]
    for x, y, k in ((c, b, 14), (a, c, 11), (b, a, 25), (c, b, 16), (a, c, 4), (b, a, 14), (c, b, 24)):
        # x ^= y; x -= rot(y, k), in place and rotating into the scratch arrays: nothing is allocated
        np.bitwise_xor(x, y, out=x)
        np.left_shift(y, np.uint32(k), out=high)
        np.right_shift(y, np.uint32(32 - k), out=low)
        high |= low
        np.subtract(x, high, out=x)


def _partition(hashes: Bits, num_bins: int) -> tuple[Indexer, Indexer]:
    bins = hashes % np.uint32(num_bins) if num_bins <= _MAX_BITS else hashes  # a hash below num_bins is its own bin
    sorter, counts = _groupsort(bins.astype(np.intp), num_bins)
    return sorter, np.cumsum(counts)


# ----------------------------------------------------------------------------------------------
# the API


def prepare_join_float32(left: Keys) -> tuple[Float32Table, Indexer, Indexer, int]:
    """The build side of a join on the float32 keys ``left``: ``(table, sorter, counts, ngroups)``."""
    keys = _keys("prepare_join_float32", "left", left)
    rows, sorted_bits, starts, lengths = _runs(keys, drop_nan=True)
    first_rows = rows[starts]
    by_appearance = np.argsort(first_rows)  # distinct positions: no ties to keep in order
    run_label = np.empty(len(starts), dtype=np.intp)
    run_label[by_appearance] = np.arange(len(starts), dtype=np.intp)
    nan_rows = np.flatnonzero(np.isnan(keys)) if len(rows) < len(keys) else rows[:0]
    counts = np.concatenate(([len(nan_rows)], lengths[by_appearance])).astype(np.intp)
    # groupsort_indexer's output without sorting again: the NaN rows, then each run of rows moved
    # to where its label's run begins
    sorter = np.empty(len(keys), dtype=np.intp)
    sorter[:len(nan_rows)] = nan_rows
    label_start = np.cumsum(counts)[:-1]
    sorter[np.repeat(label_start[run_label] - starts, lengths) + np.arange(len(rows), dtype=np.intp)] = rows
    table = Float32Table(keys[first_rows[by_appearance]], sorted_bits[starts].astype(np.uint32), run_label)
    return table, sorter, counts, len(table)


def _left_side(func: str, groups: int, left_sorter: object, left_counts: object,
               name: str) -> tuple[Indexer, Indexer]:
    counts = _integers(func, name, left_counts)
    if len(counts) != groups + 1:
        raise ValueError(f"{func}: {name} has {len(counts)} entries; {groups} groups need {groups + 1} "
                         "(slot 0 counts the NA rows)")
    if counts.size and counts.min() < 0:
        raise ValueError(f"{func}: {name} holds a negative count, {counts.min()}")
    sorter = _integers(func, "left_sorter", left_sorter)
    if int(counts.sum()) != len(sorter):
        raise ValueError(f"{func}: {name} adds up to {int(counts.sum())} rows but left_sorter lists {len(sorter)}")
    return sorter, counts


def join_on_table_float32(hashtable: Float32Table, left_sorter: Indexer, left_counter: Indexer, left_groups: int,
                          right: Keys) -> tuple[Indexer, Indexer]:
    """The inner equi-join of the prepared left keys with the float32 keys ``right``.

    Returns ``(left_indexer, right_indexer)``.
    """
    func = "join_on_table_float32"
    if not isinstance(hashtable, Float32Table):
        raise TypeError(f"{func}: hashtable must be the table prepare_join_float32 returned, "
                        f"not {type(hashtable).__name__}")
    groups = _count(func, "left_groups", left_groups)
    if groups != len(hashtable):
        raise ValueError(f"{func}: left_groups is {groups} but the table holds {len(hashtable)} keys")
    sorter, counts = _left_side(func, groups, left_sorter, left_counter, "left_counter")
    rows, starts, lengths, run_labels = hashtable._probe(_keys(func, "right", right))
    # the right rows by key are already grouped: each matched run is its label's group, no need
    # to label every row and sort them again
    matched = run_labels >= 0
    right_start = np.zeros(groups, dtype=np.intp)
    right_n = np.zeros(groups, dtype=np.intp)
    right_start[run_labels[matched]] = starts[matched]
    right_n[run_labels[matched]] = lengths[matched]
    return _pairs((sorter, np.cumsum(counts)[:-1], counts[1:]), (rows, right_start, right_n))


def join_on(ngroups: int, left_sorter: Indexer, left_count: Indexer, right: Indexer) -> tuple[Indexer, Indexer]:
    """The inner join of factorised keys: left rows grouped by ``(left_sorter, left_count)``, ``right`` the
    right rows' labels (``-1`` matches nothing). Returns ``(left_indexer, right_indexer)``."""
    groups = _count("join_on", "ngroups", ngroups)
    sorter, counts = _left_side("join_on", groups, left_sorter, left_count, "left_count")
    right_sorter, right_counts = groupsort_indexer(right, groups)
    return _pairs((sorter, np.cumsum(counts)[:-1], counts[1:]),
                  (right_sorter, np.cumsum(right_counts)[:-1], right_counts[1:]))


def groupsort_indexer(index: Indexer, ngroups: int) -> tuple[Indexer, Indexer]:
    """Counting sort of the labels ``index`` (``-1 .. ngroups - 1``; -1 is NA): ``(sorter, counts)``.

    ``counts`` has ``ngroups + 1`` entries, ``counts[0]`` the NA rows and ``counts[1 + g]`` group ``g``'s;
    ``sorter`` lists the NA rows, then group 0's, group 1's … each in ascending row order.
    """
    func = "groupsort_indexer"
    groups = _count(func, "ngroups", ngroups)
    labels = _integers(func, "index", index)
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < -1 or high >= groups:
            raise ValueError(f"{func}: index holds the label {low if low < -1 else high}, outside -1..{groups - 1}")
    return _groupsort(labels, groups)


def deindex(values: Indexer, indexer: Indexer) -> Indexer:
    """The gather ``values[indexer]`` of two 1-D integer arrays, as ``np.intp``."""
    data = _integers("deindex", "values", values)
    return data[_positions("deindex", "indexer", indexer, len(data))]


def partition_on_float32(values: Keys, num_bins: int) -> tuple[Indexer, Indexer]:
    """Hash-partition rows on the float32 keys ``values`` into ``num_bins`` bins: ``(sorter, bounds)``."""
    keys = _keys("partition_on_float32", "values", values)
    bins = _count("partition_on_float32", "num_bins", num_bins, minimum=1)
    return _partition(lookup3(keys.view(np.uint32)), bins)


def partition_on_float32_pair(values: Keys, values2: Keys, num_bins: int) -> tuple[Indexer, Indexer]:
    """Hash-partition rows on the pairs of float32 keys ``(values, values2)``: ``(sorter, bounds)``."""
    func = "partition_on_float32_pair"
    first, second = _keys(func, "values", values), _keys(func, "values2", values2)
    if len(first) != len(second):
        raise ValueError(f"{func}: values has {len(first)} rows but values2 has {len(second)}")
    bins = _count(func, "num_bins", num_bins, minimum=1)
    return _partition(lookup3(first.view(np.uint32), second.view(np.uint32)), bins)


def merge_dtypes(left: npt.NDArray[np.void], right: npt.NDArray[np.void], left_fields: Sequence[str],
                 right_fields: Sequence[str]) -> np.dtype[np.void]:
    """The packed structured dtype of the chosen fields of ``left`` then ``right``, each in its dtype's order."""
    return _merged("merge_dtypes", left, right, left_fields, right_fields)[0]


def _merged(func: str, left: object, right: object, left_fields: object,
            right_fields: object) -> tuple[np.dtype[np.void], list[str], list[str]]:
    lhs, rhs = _structured(func, "left", left), _structured(func, "right", right)
    chosen_left, chosen_right = _fields(func, "left", lhs, left_fields), _fields(func, "right", rhs, right_fields)
    both = set(chosen_left) & set(chosen_right)
    if both:
        name = next(f for f in chosen_left if f in both)
        raise ValueError(f"{func}: field {name!r} is chosen from both left and right; a merged row holds a name "
                         "once (leave it out on one side, or rename it first)")
    formats = [(f, lhs.dtype.fields[f][0]) for f in chosen_left]  # type: ignore[index]  # structured: has fields
    formats += [(f, rhs.dtype.fields[f][0]) for f in chosen_right]  # type: ignore[index]
    return np.dtype(formats), chosen_left, chosen_right


def structured_array_merge(  # noqa: PLR0917 - Scad's signature, positional parameters and all
        buf: npt.NDArray[np.uint8] | memoryview | bytearray, left: npt.NDArray[np.void], right: npt.NDArray[np.void],
        left_indexer: Indexer, right_indexer: Indexer, left_fields: Sequence[str], right_fields: Sequence[str], *,
        offset: int = 0) -> npt.NDArray[np.void]:
    """The merged rows ``left[left_indexer]`` + ``right[right_indexer]`` (the chosen fields), written into ``buf``.

    The result is a structured array of :func:`merge_dtypes`' dtype viewing ``buf`` from ``offset``.
    """
    func = "structured_array_merge"
    dtype, chosen_left, chosen_right = _merged(func, left, right, left_fields, right_fields)
    if dtype.hasobject:
        raise TypeError(f"{func}: the merged fields hold Python objects, which cannot be laid out in a byte buffer")
    left_rows = _positions(func, "left_indexer", left_indexer, len(left))
    right_rows = _positions(func, "right_indexer", right_indexer, len(right))
    if len(left_rows) != len(right_rows):
        raise ValueError(f"{func}: left_indexer has {len(left_rows)} rows but right_indexer has {len(right_rows)}")
    data = _byte_buffer(func, buf)
    start = _count(func, "offset", offset)
    need = len(left_rows) * dtype.itemsize
    if start + need > data.nbytes:
        raise ValueError(f"{func}: buf holds {data.nbytes} bytes but {len(left_rows)} merged rows of {dtype.itemsize} "
                         f"bytes need {need}" + (f" from offset {start}" if start else ""))
    target = data[start:start + need]
    for side, array in (("left", left), ("right", right)):
        if np.may_share_memory(target, array):
            raise ValueError(f"{func}: the output region of buf overlaps {side}, which filling it would overwrite")
    joined: npt.NDArray[np.void] = np.ndarray((len(left_rows),), dtype=dtype, buffer=data, offset=start)
    for name in chosen_left:
        joined[name] = left[name][left_rows]
    for name in chosen_right:
        joined[name] = right[name][right_rows]
    return joined
