"""Benchmark npjoin (Scad's join API, scadrt.compat.npjoin) against pandas on the same data, in one run.

Method (as the other benches): each of our operations sits next to the pandas way of computing the same
result, on the same arrays, timed seconds apart, and the table reports the median of ``--repeats`` runs
(after one warm-up) and the ratio ours / pandas (below 1: ours is faster). Workloads, for each size N:

- join 1:N: a dimension table of N/10 rows with distinct float32 keys (shuffled), 2 float32 payload
  columns, joined with a fact table of N rows whose keys are drawn from 1.1 x N/10 values (about 9% of
  its rows find no match, 1% are NaN), 3 float32 payload columns: the shape of Scad's TPC-DS joins.
  Ours: ``prepare_join_float32`` on the dimension + ``join_on_table_float32`` + ``structured_array_merge``
  of every column but the fact key into a preallocated byte buffer (the staging buffer a program flushes);
  pandas: ``merge(dim, fact, on="k", how="inner")`` of frames built beforehand (the NaN rows dropped
  first, since pandas matches NaN with NaN and npjoin does not). Same rows out, same columns.
- join M:N: both sides N rows, keys drawn from N/10 values, so about 10 x N rows out; same two ways.
- partition: ``partition_on_float32(keys, --bins)`` of N keys against ``pd.util.hash_array`` modulo the
  bins, a stable argsort and the bins' cumulative counts (the sorter and bounds npjoin returns); and
  ``partition_on_float32_pair`` against hashing both columns (``hash_pandas_object`` of a two-column
  frame). The hashes differ (lookup3 vs pandas' own), the work is the same.

Each result is checked once (row counts, and the join's pairs against pandas'), not timed. It measures,
it does not assert: the exit status is 0 whatever the numbers are.

    python bench/frames.py [--quick] [--sizes N [N ...]] [--repeats N] [--bins N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scadrt.compat.npjoin import join


@dataclass
class Row:
    workload: str
    rows: int
    out: int
    ours: float
    pandas: float


def median_ms(run: Callable[[], Any], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def tables(left_rows: int, right_rows: int, distinct: int, unique_left: bool,
           seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    left = np.zeros(left_rows, [("k", "f4"), ("l0", "f4"), ("l1", "f4")])
    left["k"] = rng.permutation(left_rows) if unique_left else rng.integers(0, distinct, left_rows)
    left["l0"], left["l1"] = rng.standard_normal((2, left_rows))
    right = np.zeros(right_rows, [("k", "f4"), ("r0", "f4"), ("r1", "f4"), ("r2", "f4")])
    right["k"] = rng.integers(0, distinct, right_rows)
    right["k"][rng.random(right_rows) < 0.01] = np.nan
    right["r0"], right["r1"], right["r2"] = rng.standard_normal((3, right_rows))
    return left, right


def bench_join(name: str, left: np.ndarray, right: np.ndarray, repeats: int) -> Row:
    right_fields = [n for n in right.dtype.names if n != "k"]
    dtype = join.merge_dtypes(left, right, list(left.dtype.names), right_fields)
    lhs = pd.DataFrame({n: left[n] for n in left.dtype.names})
    rhs = pd.DataFrame({n: right[n] for n in right.dtype.names}).dropna(subset=["k"])
    out_rows = len(pd.merge(lhs, rhs, on="k", how="inner"))
    buf = np.empty(out_rows * dtype.itemsize, dtype=np.uint8)  # the staging buffer, allocated once

    def ours() -> np.ndarray:
        left_idx, right_idx = join.join_on_table_float32(*join.prepare_join_float32(left["k"]), right["k"])
        return join.structured_array_merge(buf, left, right, left_idx, right_idx, list(left.dtype.names),
                                           right_fields)

    def theirs() -> pd.DataFrame:
        return pd.merge(lhs, rhs, on="k", how="inner")

    check(ours(), theirs(), left, right)
    return Row(name, len(right), out_rows, median_ms(ours, repeats), median_ms(theirs, repeats))


def check(merged: np.ndarray, frame: pd.DataFrame, left: np.ndarray, right: np.ndarray) -> None:
    assert len(merged) == len(frame), (len(merged), len(frame))
    # the same rows, whatever the order: compare the sorted payload columns
    for column in merged.dtype.names:
        assert np.array_equal(np.sort(merged[column]), np.sort(frame[column].to_numpy()), equal_nan=True), column


def pandas_partition(hashes: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    labels = (hashes % np.uint64(bins)).astype(np.intp)
    sorter = np.argsort(labels, kind="stable")
    return sorter, np.concatenate(([0], np.cumsum(np.bincount(labels, minlength=bins))))


def bench_partition(size: int, bins: int, repeats: int) -> list[Row]:
    rng = np.random.default_rng(size)
    k1 = rng.integers(0, size // 10, size).astype(np.float32)
    k2 = rng.integers(0, 100, size).astype(np.float32)
    pair = pd.DataFrame({"k1": k1, "k2": k2})
    ways: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        f"partition ({bins} bins)": (
            lambda: join.partition_on_float32(k1, bins),
            lambda: pandas_partition(pd.util.hash_array(k1), bins)),
        f"partition pair ({bins} bins)": (
            lambda: join.partition_on_float32_pair(k1, k2, bins),
            lambda: pandas_partition(pd.util.hash_pandas_object(pair, index=False).to_numpy(), bins)),
    }
    rows = []
    for name, (ours, theirs) in ways.items():
        for sorter, bounds in (ours(), theirs()):
            assert len(sorter) == size and len(bounds) == bins + 1 and bounds[-1] == size
        rows.append(Row(name, size, size, median_ms(ours, repeats), median_ms(theirs, repeats)))
    return rows


def print_table(rows: list[Row], repeats: int) -> None:
    print(f"\nmedian of {repeats}, ms; ratio = ours / pandas (below 1: ours is faster)")
    header = f"  {'workload':<26}{'rows':>11}{'rows out':>12}{'npjoin':>11}{'pandas':>11}{'ratio':>9}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in rows:
        print(f"  {r.workload:<26}{r.rows:>11,}{r.out:>12,}{r.ours:>11.1f}{r.pandas:>11.1f}{r.ours / r.pandas:>8.2f}x",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 3 repeats (a few seconds)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6],
                        help="rows of the larger table, one run per size (default 1e5 1e6)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bins", type=int, default=16, help="partitions (default 16)")
    args = parser.parse_args()
    sizes, repeats = ([100_000], 3) if args.quick else ([int(s) for s in args.sizes], args.repeats)
    print(f"pandas {pd.__version__}, numpy {np.__version__}; sizes {', '.join(f'{s:,}' for s in sizes)}")
    start = time.perf_counter()
    rows: list[Row] = []
    for size in sizes:
        distinct = max(size // 10, 1)
        left, right = tables(distinct, size, distinct + distinct // 10, unique_left=True, seed=size)
        rows.append(bench_join("join 1:N + merge", left, right, repeats))
        left, right = tables(size, size, distinct, unique_left=False, seed=size + 1)
        rows.append(bench_join("join M:N + merge", left, right, repeats))
        rows += bench_partition(size, args.bins, repeats)
    print_table(rows, repeats)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
