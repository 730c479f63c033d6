"""npjoin (scadrt.compat.npjoin): Scad's join API in numpy, checked against independent oracles.

The joins against a nested loop (row order included) and pandas ``merge``; the partitions against
a scalar pure-Python lookup3 written from the published algorithm (Bob Jenkins, lookup3.c, 2006:
``mix``, ``final``, ``hashword``, ``hashlittle``), itself checked on the published test vectors;
the merges byte for byte in the caller's buffer.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scadrt.compat import npjoin
from scadrt.compat.npjoin import join

pd = pytest.importorskip("pandas")

M32 = 0xFFFF_FFFF

# ----------------------------------------------------------------------------------------------
# a scalar lookup3, from the published algorithm


def rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & M32


def mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    a = (a - c) & M32; a ^= rot(c, 4); c = (c + b) & M32  # noqa: E702 - the published layout, line by line
    b = (b - a) & M32; b ^= rot(a, 6); a = (a + c) & M32  # noqa: E702
    c = (c - b) & M32; c ^= rot(b, 8); b = (b + a) & M32  # noqa: E702
    a = (a - c) & M32; a ^= rot(c, 16); c = (c + b) & M32  # noqa: E702
    b = (b - a) & M32; b ^= rot(a, 19); a = (a + c) & M32  # noqa: E702
    c = (c - b) & M32; c ^= rot(b, 4); b = (b + a) & M32  # noqa: E702
    return a, b, c


def final(a: int, b: int, c: int) -> tuple[int, int, int]:
    c ^= b; c = (c - rot(b, 14)) & M32  # noqa: E702
    a ^= c; a = (a - rot(c, 11)) & M32  # noqa: E702
    b ^= a; b = (b - rot(a, 25)) & M32  # noqa: E702
    c ^= b; c = (c - rot(b, 16)) & M32  # noqa: E702
    a ^= c; a = (a - rot(c, 4)) & M32  # noqa: E702
    b ^= a; b = (b - rot(a, 14)) & M32  # noqa: E702
    c ^= b; c = (c - rot(b, 24)) & M32  # noqa: E702
    return a, b, c


def hashword(words: list[int], initval: int) -> int:
    a = b = c = (0xDEADBEEF + (len(words) << 2) + initval) & M32
    k = list(words)
    while len(k) > 3:
        a, b, c = (a + k[0]) & M32, (b + k[1]) & M32, (c + k[2]) & M32
        a, b, c = mix(a, b, c)
        k = k[3:]
    if not k:
        return c
    k += [0] * (3 - len(k))
    return final((a + k[0]) & M32, (b + k[1]) & M32, (c + k[2]) & M32)[2]


def hashlittle(data: bytes, initval: int) -> int:
    a = b = c = (0xDEADBEEF + len(data) + initval) & M32
    while len(data) > 12:
        w = [int.from_bytes(data[i:i + 4], "little") for i in (0, 4, 8)]
        a, b, c = mix((a + w[0]) & M32, (b + w[1]) & M32, (c + w[2]) & M32)
        data = data[12:]
    if not data:
        return c
    w = [int.from_bytes(data[i:i + 4].ljust(4, b"\0"), "little") for i in (0, 4, 8)]
    return final((a + w[0]) & M32, (b + w[1]) & M32, (c + w[2]) & M32)[2]


def scad_lookup3(k0: int, k1: int, k2: int) -> int:
    """Scad's C lookup3(k0, k1, k2): hashword's start for one word, all three words added, final."""
    start = 0xDEADBEEF + (1 << 2)
    return final((start + k0) & M32, (start + k1) & M32, (start + k2) & M32)[2]


FOUR_SCORE = b"Four score and seven years ago"


@pytest.mark.parametrize(("data", "initval", "expected"), [
    (b"", 0, 0xDEADBEEF), (b"", 0xDEADBEEF, 0xBD5B7DDE), (b"", 0xBD5B7DDE, 0x9C093CCD),
    (FOUR_SCORE, 0, 0x17770551), (FOUR_SCORE, 1, 0xCD628161),
])
def test_the_scalar_oracle_gives_the_published_vectors(data: bytes, initval: int, expected: int) -> None:
    # lookup3.c's driver5 (hashlittle2's primary value is hashlittle's), exercising mix and final
    assert hashlittle(data, initval) == expected


@given(st.lists(st.integers(0, M32), min_size=1, max_size=7), st.integers(0, M32))
@settings(max_examples=60, deadline=None)
def test_the_scalar_hashword_is_hashlittle_of_the_little_endian_bytes(words: list[int], initval: int) -> None:
    data = b"".join(w.to_bytes(4, "little") for w in words)
    assert hashword(words, initval) == hashlittle(data, initval)


@given(st.lists(st.integers(0, M32), max_size=40))
@settings(max_examples=80, deadline=None)
def test_lookup3_of_one_word_is_hashword(words: list[int]) -> None:
    hashed = join.lookup3(np.array(words, dtype=np.uint32))
    assert hashed.dtype == np.uint32
    assert hashed.tolist() == [hashword([w], 0) for w in words] == [scad_lookup3(w, 0, 0) for w in words]


@given(st.lists(st.tuples(st.integers(0, M32), st.integers(0, M32), st.integers(0, M32)), max_size=40))
@settings(max_examples=80, deadline=None)
def test_lookup3_of_three_words_is_scads_variant(triples: list[tuple[int, int, int]]) -> None:
    k0, k1, k2 = (np.array([t[i] for t in triples], dtype=np.uint32) for i in range(3))
    assert join.lookup3(k0, k1, k2).tolist() == [scad_lookup3(*t) for t in triples]


def test_lookup3_anchors_and_its_two_word_quirk() -> None:
    # 'abcd' as one little-endian word: hashlittle's 4-byte case, a vector independent of our oracle
    assert join.lookup3(np.array([0x64636261], np.uint32)).tolist() == [(-1242265444) & M32]
    # two words start from the one-word state, so they are not hashword's two-word hash
    assert join.lookup3(1, 2).tolist() == [scad_lookup3(1, 2, 0)] != [hashword([1, 2], 0)]
    # chunked internally: a long input equals its pieces
    words = np.random.default_rng(1).integers(0, M32, 200_000, dtype=np.uint64).astype(np.uint32)
    other = words[::-1].copy()
    whole = join.lookup3(words, other)
    assert whole[:7].tolist() == [scad_lookup3(int(x), int(y), 0) for x, y in zip(words[:7], other[:7], strict=True)]
    assert np.array_equal(whole[150_000:], join.lookup3(words[150_000:], other[150_000:]))


# ----------------------------------------------------------------------------------------------
# partitions


def float32_of(bits: list[int]) -> np.ndarray:
    return np.array(bits, dtype=np.uint32).view(np.float32)


SPECIAL_BITS = [0, 0x8000_0000, 0x3F80_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x7FC0_0001, 0xFFC0_0000, 1]
BITS = st.one_of(st.sampled_from(SPECIAL_BITS), st.integers(0, M32))


def expected_partition(bins: list[int], n: int) -> tuple[list[int], list[int]]:
    sorter = sorted(range(len(bins)), key=lambda i: bins[i])  # Python's sort is stable
    bounds = [0]
    for p in range(n):
        bounds.append(bounds[-1] + bins.count(p))
    return sorter, bounds


@given(st.lists(BITS, max_size=60), st.integers(1, 20))
@settings(max_examples=100, deadline=None)
def test_partition_on_float32_bins_raw_bits_with_scalar_lookup3(bits: list[int], n: int) -> None:
    sorter, bounds = join.partition_on_float32(float32_of(bits), n)
    assert sorter.dtype == bounds.dtype == np.intp
    assert (sorter.tolist(), bounds.tolist()) == expected_partition([hashword([b], 0) % n for b in bits], n)


@given(st.lists(st.tuples(BITS, BITS), max_size=60), st.integers(1, 20))
@settings(max_examples=100, deadline=None)
def test_partition_on_float32_pair_bins_with_scads_lookup3(pairs: list[tuple[int, int]], n: int) -> None:
    first, second = float32_of([p[0] for p in pairs]), float32_of([p[1] for p in pairs])
    sorter, bounds = join.partition_on_float32_pair(first, second, n)
    assert (sorter.tolist(), bounds.tolist()) == expected_partition([scad_lookup3(x, y, 0) % n for x, y in pairs], n)


def test_partition_details() -> None:
    keys = np.array([3, 1, 4, 1, 5, 9, 2, 6], np.float32)
    sorter, bounds = join.partition_on_float32(keys, 3)
    assert len(bounds) == 4 and bounds[0] == 0 and bounds[-1] == len(keys)
    for p in range(3):  # each bin's rows ascending, and all of that bin
        rows = sorter[bounds[p]:bounds[p + 1]]
        assert list(rows) == sorted(rows) and all(hashword([int(b)], 0) % 3 == p for b in keys[rows].view(np.uint32))
    # the bits hashed are the value's whatever the byte order, and a strided column is fine
    swapped = keys.astype(">f4")
    again = join.partition_on_float32(swapped, 3)
    assert np.array_equal(again[0], sorter) and np.array_equal(again[1], bounds)
    frame = np.zeros(8, [("a", "f4"), ("k", "f4")])
    frame["k"] = keys
    assert np.array_equal(join.partition_on_float32(frame["k"], 3)[0], sorter)
    # raw bits: 0.0 and -0.0 are different patterns, hashed apart (the join, unlike this, matches them)
    assert join.lookup3(0).tolist() != join.lookup3(0x8000_0000).tolist()
    zero, negative_zero = hashword([0], 0), hashword([0x8000_0000], 0)
    n = next(n for n in range(2, 100) if zero % n != negative_zero % n)
    bounds_of_zeros = join.partition_on_float32(np.array([0.0, -0.0], np.float32), n)[1]
    assert np.diff(bounds_of_zeros)[[zero % n, negative_zero % n]].tolist() == [1, 1]
    # one bin; more bins than 16-bit labels hold
    assert join.partition_on_float32(keys, 1)[1].tolist() == [0, 8]
    many_sorter, many_bounds = join.partition_on_float32(keys, 100_000)
    bins = [hashword([int(b)], 0) % 100_000 for b in keys.view(np.uint32)]
    assert (many_sorter.tolist(), many_bounds[np.array(bins) + 1].tolist()) == (
        sorted(range(8), key=lambda i: bins[i]), [sum(b <= x for b in bins) for x in bins])


# ----------------------------------------------------------------------------------------------
# joins

POOL = float32_of([0, 0x8000_0000, 0x3F80_0000, 0xBF80_0000, 0x4020_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000,
                   0x7FC0_0001, 0xFFC0_0000, 1, 0x7F7F_FFFF, 0x4B80_0000])
KEYS = st.lists(st.integers(0, len(POOL) - 1), max_size=25).map(lambda picks: POOL[np.array(picks, dtype=np.intp)])


def nested_loop_join(left: np.ndarray, right: np.ndarray) -> list[tuple[int, int]]:
    """Groups in order of first appearance in left, then left row, then right row; NaN matches nothing."""
    groups: list[float] = []
    for v in map(float, left):
        if not math.isnan(v) and all(v != g for g in groups):
            groups.append(v)
    return [(i, j) for g in groups for i, x in enumerate(left) if x == g for j, y in enumerate(right) if y == g]


def joined(left: np.ndarray, right: np.ndarray) -> list[tuple[int, int]]:
    left_indexer, right_indexer = join.join_on_table_float32(*join.prepare_join_float32(left), right)
    assert left_indexer.dtype == right_indexer.dtype == np.intp
    return list(zip(left_indexer.tolist(), right_indexer.tolist(), strict=True))


@given(KEYS, KEYS)
@settings(max_examples=150, deadline=None)
def test_join_is_the_nested_loop_row_order_included(left: np.ndarray, right: np.ndarray) -> None:
    assert joined(left, right) == nested_loop_join(left, right)


@given(st.lists(st.one_of(st.integers(0, 40), st.none()), max_size=300),
       st.lists(st.one_of(st.integers(0, 40), st.none()), max_size=300))
@settings(max_examples=60, deadline=None)
def test_join_is_pandas_merge_without_nan_in_group_order(left_values: list[int | None],
                                                         right_values: list[int | None]) -> None:
    left = np.array([np.nan if v is None else v for v in left_values], dtype=np.float32)
    right = np.array([np.nan if v is None else v for v in right_values], dtype=np.float32)
    lhs = pd.DataFrame({"k": left, "li": np.arange(len(left))}).dropna()
    rhs = pd.DataFrame({"k": right, "ri": np.arange(len(right))}).dropna()
    merged = pd.merge(lhs, rhs, on="k", how="inner")
    rank = {k: r for r, k in enumerate(dict.fromkeys(lhs["k"].tolist()))}
    merged["rank"] = merged["k"].map(rank)
    expected = merged.sort_values(["rank", "li", "ri"], kind="stable")
    assert joined(left, right) == list(zip(expected["li"].tolist(), expected["ri"].tolist(), strict=True))


@given(KEYS)
@settings(max_examples=80, deadline=None)
def test_prepare_is_factorize_then_groupsort(left: np.ndarray) -> None:
    table, sorter, counts, ngroups = join.prepare_join_float32(left)
    firsts: list[float] = []
    for v in map(float, left):
        if not math.isnan(v) and all(v != g for g in firsts):
            firsts.append(v)
    labels = [next((g for g, f in enumerate(firsts) if v == f), -1) for v in map(float, left)]
    assert ngroups == len(table) == len(firsts) and isinstance(ngroups, int)
    assert counts.tolist() == [labels.count(g) for g in range(-1, ngroups)]
    assert sorter.tolist() == sorted(range(len(left)), key=lambda i: labels[i])
    assert table.lookup(left).tolist() == labels
    # the uniques are the keys as first seen: -0.0 if it came first
    assert table.uniques.view(np.uint32).tolist() == [
        int(left.view(np.uint32)[labels.index(g)]) for g in range(ngroups)]


def test_join_on_factorised_labels_and_large_groups() -> None:
    rng = np.random.default_rng(7)
    left = rng.integers(0, 80_000, 3_000).astype(np.float32)  # over 65,535 groups possible: the packed sort
    right = rng.integers(0, 80_000, 3_000).astype(np.float32)
    table, sorter, counts, ngroups = join.prepare_join_float32(left)
    via_labels = join.join_on(ngroups, sorter, counts, table.lookup(right))
    via_table = join.join_on_table_float32(table, sorter, counts, ngroups, right)
    assert all(np.array_equal(x, y) for x, y in zip(via_labels, via_table, strict=True))
    assert list(zip(*(x.tolist() for x in via_table), strict=True)) == nested_loop_join(left, right)


@given(st.integers(0, 70_000).flatmap(lambda n: st.tuples(st.just(n), st.lists(st.integers(-1, n - 1), max_size=50))))
@settings(max_examples=80, deadline=None)
def test_groupsort_indexer_is_a_stable_counting_sort(case: tuple[int, list[int]]) -> None:
    ngroups, labels = case
    sorter, counts = join.groupsort_indexer(np.array(labels, dtype=np.intp), ngroups)
    assert sorter.dtype == counts.dtype == np.intp
    assert sorter.tolist() == sorted(range(len(labels)), key=lambda i: labels[i])
    assert len(counts) == ngroups + 1 and counts[0] == labels.count(-1) and counts.sum() == len(labels)
    assert all(counts[g + 1] == labels.count(g) for g in set(labels))


def test_deindex_is_a_gather() -> None:
    values = np.array([10, 11, 12, 13], np.int64)
    assert join.deindex(values, np.array([3, 0, 0, 2])).tolist() == [13, 10, 10, 12]
    assert join.deindex(values.astype(np.int32), np.array([], np.intp)).dtype == np.intp
    assert join.deindex(values, np.array([])).tolist() == []  # an empty float array is no positions
    with pytest.raises(IndexError, match=r"holds 4, outside the 4 rows 0\.\.3"):
        join.deindex(values, np.array([0, 4]))
    with pytest.raises(IndexError, match="holds -1"):
        join.deindex(values, np.array([-1]))
    with pytest.raises(TypeError, match="must hold integers, not float64"):
        join.deindex(values.astype(float), np.array([0]))


# ----------------------------------------------------------------------------------------------
# merging rows into a buffer

LEFT_DTYPE = np.dtype([("d_date_sk", "f4"), ("d_name", "S6"), ("d_year", "<i2"), ("d_vec", "f4", (2,))])
RIGHT_DTYPE = np.dtype([("sr_returned_date_sk", "f4"), ("sr_customer_sk", ">f4"), ("sr_return_amt", "f8")])


def frames(n_left: int, n_right: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    left = np.zeros(n_left, LEFT_DTYPE)
    left["d_date_sk"] = rng.permutation(n_left)
    left["d_name"] = [f"d{i}".encode() for i in range(n_left)]
    left["d_year"] = rng.integers(1990, 2010, n_left)
    left["d_vec"] = rng.standard_normal((n_left, 2))
    right = np.zeros(n_right, RIGHT_DTYPE)
    right["sr_returned_date_sk"] = rng.integers(0, n_left + 5, n_right)
    right["sr_returned_date_sk"][::7] = np.nan
    right["sr_customer_sk"] = rng.integers(0, 100, n_right)
    right["sr_return_amt"] = rng.standard_normal(n_right)
    return left, right


def test_merge_dtypes_keeps_each_sides_dtype_order_and_packs() -> None:
    left, right = frames(3, 3)
    merged = join.merge_dtypes(left, right, ["d_vec", "d_name"], ["sr_return_amt", "sr_customer_sk"])
    # the order of the arrays' dtypes, not of the lists (Scad's ref_numpy step 6 relies on it)
    assert merged.names == ("d_name", "d_vec", "sr_customer_sk", "sr_return_amt")
    assert merged.itemsize == 6 + 8 + 4 + 8
    assert merged["d_vec"].shape == (2,) and merged["sr_customer_sk"] == np.dtype(">f4")
    assert join.merge_dtypes(left, right, (), []).names == ()
    assert npjoin.merge_dtypes(left, right, ["d_name", "d_name"], []).names == ("d_name",)


def test_merge_dtypes_refusals() -> None:
    left, right = frames(3, 3)
    same = right.copy()
    with pytest.raises(ValueError, match="field 'sr_customer_sk' is chosen from both left and right"):
        join.merge_dtypes(same, right, ["sr_customer_sk"], ["sr_customer_sk", "sr_return_amt"])
    with pytest.raises(ValueError, match="right has no field 'nope'"):
        join.merge_dtypes(left, right, [], ["nope"])
    with pytest.raises(TypeError, match="left_fields must be a list of field names, not str"):
        join.merge_dtypes(left, right, "d_name", [])
    with pytest.raises(TypeError, match="right must be a numpy structured array, not a numpy array of float32"):
        join.merge_dtypes(left, np.zeros(3, np.float32), [], [])


def test_step3_pattern_writes_the_merge_at_the_start_of_the_buffer() -> None:
    """Scad's tpcds_1 step 3: prepare on the dimension, join the fact table, merge into the staging buffer."""
    left, right = frames(50, 400)
    meta = join.prepare_join_float32(left["d_date_sk"])
    left_idx, right_idx = join.join_on_table_float32(*meta, right["sr_returned_date_sk"])
    left_fields = [n for n in left.dtype.names if n != "d_date_sk"]
    right_fields = [n for n in right.dtype.names if n != "sr_returned_date_sk"]
    dtype = join.merge_dtypes(left, right, left_fields, right_fields)
    buf = np.full(len(left_idx) * dtype.itemsize + 64, 0xAB, dtype=np.uint8)
    df = join.structured_array_merge(buf, left, right, left_idx, right_idx, left_fields, right_fields)
    assert df.dtype == dtype and len(df) == len(left_idx)
    assert np.shares_memory(df, buf) and df.__array_interface__["data"][0] == buf.ctypes.data
    assert (buf[len(left_idx) * dtype.itemsize:] == 0xAB).all()  # nothing written past the rows
    for name in left_fields:
        assert np.array_equal(df[name], left[name][left_idx])
    for name in right_fields:
        assert np.array_equal(df[name], right[name][right_idx])
    # the same rows as pandas, NaN keys (every 7th right row) dropped
    lhs = pd.DataFrame({"k": left["d_date_sk"], "li": np.arange(len(left))})
    rhs = pd.DataFrame({"k": right["sr_returned_date_sk"], "ri": np.arange(len(right))}).dropna()
    expected = pd.merge(lhs, rhs, on="k").sort_values(["li", "ri"])
    assert sorted(zip(left_idx.tolist(), right_idx.tolist(), strict=True)) == list(
        zip(expected["li"], expected["ri"], strict=True))


def test_par_step3_pattern_partitions_the_joined_rows() -> None:
    """Scad's tpcds_1_par step 3: join, partition the result on a key pair, deindex, merge into trans.buf."""
    left, right = frames(30, 300, seed=3)
    left_idx, right_idx = join.join_on_table_float32(*join.prepare_join_float32(left["d_date_sk"]),
                                                     right["sr_returned_date_sk"])
    k1, k2 = right["sr_customer_sk"][right_idx], right["sr_return_amt"][right_idx].astype(np.float32)
    indexer, groups = join.partition_on_float32_pair(k1, k2, 4)
    left_idx, right_idx = join.deindex(left_idx, indexer), join.deindex(right_idx, indexer)
    staging = memoryview(bytearray(1 << 16))  # a transport's buffer: bigger than needed
    df = join.structured_array_merge(staging, left, right, left_idx, right_idx, ["d_name"], ["sr_customer_sk"])
    assert np.shares_memory(df, np.asarray(staging))
    for p in range(4):
        rows = df[groups[p]:groups[p + 1]]
        bits1 = rows["sr_customer_sk"].astype("<f4").view(np.uint32)
        bits2 = k2[indexer[groups[p]:groups[p + 1]]].view(np.uint32)
        assert all(scad_lookup3(int(x), int(y), 0) % 4 == p for x, y in zip(bits1, bits2, strict=True))


def test_structured_array_merge_buffers_and_offset() -> None:
    left, right = frames(5, 5)
    idx = np.array([4, 0, 2])
    for make in (bytearray, lambda n: memoryview(bytearray(n)), lambda n: np.zeros(n, np.uint8)):
        buf: Any = make(100)
        df = join.structured_array_merge(buf, left, right, idx, idx, ["d_year"], ["sr_return_amt"], offset=10)
        assert np.shares_memory(df, np.asarray(buf))
        assert np.asarray(buf)[10:10 + df.nbytes].tobytes() == df.tobytes()
        assert df["d_year"].tolist() == left["d_year"][idx].tolist()
    empty = join.structured_array_merge(np.zeros(0, np.uint8), left, right, idx[:0], idx[:0], ["d_year"], [])
    assert empty.shape == (0,) and empty.dtype.names == ("d_year",)


def test_structured_array_merge_refusals() -> None:
    left, right = frames(5, 5)
    idx = np.array([0, 1])
    args = (left, right, idx, idx, ["d_year"], ["sr_return_amt"])
    with pytest.raises(ValueError, match="buf holds 19 bytes but 2 merged rows of 10 bytes need 20"):
        join.structured_array_merge(np.zeros(19, np.uint8), *args)
    with pytest.raises(ValueError, match="need 20 from offset 1"):
        join.structured_array_merge(np.zeros(20, np.uint8), *args, offset=1)
    with pytest.raises(ValueError, match="buf is read-only"):
        join.structured_array_merge(memoryview(bytes(64)), *args)
    with pytest.raises(TypeError, match="buf must hold bytes \\(uint8\\), not float32"):
        join.structured_array_merge(np.zeros(64, np.float32), *args)
    with pytest.raises(ValueError, match="one contiguous run of bytes"):
        join.structured_array_merge(np.zeros(128, np.uint8)[::2], *args)
    with pytest.raises(TypeError, match="buf must be a writable uint8 numpy array or a buffer"):
        join.structured_array_merge([0] * 64, *args)
    with pytest.raises(ValueError, match="left_indexer has 2 rows but right_indexer has 1"):
        join.structured_array_merge(np.zeros(64, np.uint8), left, right, idx, idx[:1], ["d_year"], [])
    with pytest.raises(IndexError, match="right_indexer holds 5, outside the 5 rows"):
        join.structured_array_merge(np.zeros(64, np.uint8), left, right, idx, np.array([0, 5]), [], ["sr_return_amt"])
    objects = np.zeros(2, [("o", object)])
    with pytest.raises(TypeError, match="Python objects"):
        join.structured_array_merge(np.zeros(64, np.uint8), objects, right, idx, idx, ["o"], [])
    raw = np.zeros(left.nbytes + 64, np.uint8)
    inside = raw[:left.nbytes].view(LEFT_DTYPE)
    inside[:] = left
    with pytest.raises(ValueError, match="overlaps left"):
        join.structured_array_merge(raw, inside, right, idx, idx, ["d_year"], [])


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: join.prepare_join_float32([1.0, 2.0]), TypeError, "left must be a 1-D float32 numpy array, not list"),
    (lambda: join.prepare_join_float32(np.zeros(3)), TypeError, r"has dtype float64; keys must be float32 .*astype"),
    (lambda: join.prepare_join_float32(np.zeros(3, np.int32)), TypeError, "has dtype int32"),
    (lambda: join.prepare_join_float32(np.zeros((2, 2), np.float32)), ValueError, r"1-D, not of shape \(2, 2\)"),
    (lambda: join.partition_on_float32(np.zeros(3, np.float32), 0), ValueError, "num_bins must be at least 1, not 0"),
    (lambda: join.partition_on_float32(np.zeros(3, np.float32), 2.0), TypeError, "num_bins must be an integer"),
    (lambda: join.partition_on_float32(np.zeros(3, np.float32), True), TypeError, "num_bins must be an integer"),
    (lambda: join.partition_on_float32_pair(np.zeros(3, np.float32), np.zeros(2, np.float32), 2), ValueError,
     "values has 3 rows but values2 has 2"),
    (lambda: join.join_on_table_float32(None, *join.prepare_join_float32(np.zeros(2, np.float32))[1:],
                                        np.zeros(1, np.float32)), TypeError, "hashtable must be the table"),
    (lambda: join.join_on_table_float32(*join.prepare_join_float32(np.zeros(2, np.float32))[:3], 2,
                                        np.zeros(1, np.float32)), ValueError, "left_groups is 2 but the table holds 1"),
    (lambda: join.join_on_table_float32(*join.prepare_join_float32(np.zeros(2, np.float32)),
                                        np.zeros(1, np.float64)), TypeError, "right has dtype float64"),
    (lambda: join.join_on(1, np.array([0, 1]), np.array([0, 1]), np.array([0])), ValueError,
     "left_count adds up to 1 rows but left_sorter lists 2"),
    (lambda: join.join_on(2, np.array([0]), np.array([0, 1]), np.array([0])), ValueError,
     "left_count has 2 entries; 2 groups need 3"),
    (lambda: join.groupsort_indexer(np.array([0, 3]), 3), ValueError, r"holds the label 3, outside -1\.\.2"),
    (lambda: join.groupsort_indexer(np.array([-2]), 3), ValueError, "holds the label -2"),
    (lambda: join.groupsort_indexer(np.array([0.5]), 3), TypeError, "index must hold integers, not float64"),
    (lambda: join.groupsort_indexer(np.array([0]), -1), ValueError, "ngroups must be at least 0"),
])
def test_wrong_arguments_are_refused_clearly(call: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_empty_inputs() -> None:
    empty = np.zeros(0, np.float32)
    table, sorter, counts, ngroups = join.prepare_join_float32(empty)
    assert (len(sorter), counts.tolist(), ngroups) == (0, [0], 0)
    assert [x.tolist() for x in join.join_on_table_float32(table, sorter, counts, ngroups, POOL)] == [[], []]
    assert [x.tolist() for x in join.join_on_table_float32(*join.prepare_join_float32(POOL), empty)] == [[], []]
    assert [x.tolist() for x in join.partition_on_float32(empty, 3)] == [[], [0, 0, 0, 0]]
    nan_only = np.full(3, np.nan, np.float32)
    assert join.prepare_join_float32(nan_only)[2].tolist() == [3]


# ----------------------------------------------------------------------------------------------
# the module's names


def test_the_package_reexports_the_join_module() -> None:
    assert npjoin.join is join and importlib.import_module("scadrt.compat.npjoin.join") is join
    for name in join.__all__:
        assert getattr(npjoin, name) is getattr(join, name), name
    assert set(npjoin.__all__) == {*join.__all__, "join"}


@pytest.fixture
def original_names() -> Iterator[None]:
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.partition(".")[0] == "npjoin":
            del sys.modules[name]


@pytest.mark.usefixtures("original_names")
def test_the_original_import_forms_work_after_install() -> None:
    import scadrt.compat

    scadrt.compat.install()
    from npjoin import join as aliased

    aliased_module = importlib.import_module("npjoin.join")
    assert aliased is join and aliased_module is join
    assert importlib.import_module("npjoin").prepare_join_float32 is join.prepare_join_float32
