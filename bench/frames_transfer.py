"""Benchmark pandas DataFrames and Series crossing a cut through a memory element, shm and tcp.

The workload is what a split program does with a heavy pandas value: the producer element packs it
(``pack(value, action, "mem")``: a remote object, :func:`scadrt.remote.objects.store_object`) and a
consumer element, another transport on the same memory element with nothing cached, unpacks it.
Three ways are timed side by side, in one run, on the same frames and the same memory element:

- ``now``: ``store_object`` as it is (pickle protocol 5, every column's data out of band: numeric
  blocks and categorical codes as numpy gives them, datetime/timedelta columns as raw bytes,
  string columns as one UTF-8 buffer; objects.py rule 5);
- ``before``: ``store_object`` with the pickler it had before rule 5 (only strided arrays helped),
  which numpy leaves datetime columns and pandas leaves string columns in band;
- ``pickle``: a plain ``pickle.dumps`` of the value (everything in band), stored as one byte array
  (``RemoteArray``) and ``pickle.loads`` of it after reading it back;
- ``arrays`` (a yardstick, for frames of numpy columns only): each column stored as a
  ``RemoteArray`` and the frame rebuilt from the columns read back, which is what a separate
  "frame" packed kind would do; it moves the same bytes as ``now`` does out of band.

Frames: float64 and int64 blocks, a pandas ``str`` column (no pyarrow: Python strings, 1% NaN), a
categorical, a datetime column, a float Series, and one frame with all of these. Reported: the
median of ``--repeats`` runs of pack + unpack in ms, each way's ratio to the fastest, and how many
bytes of the value went in band (inside the pickle stream) and out of band with ``now``. It
measures, it does not assert: the exit status is 0 whatever the numbers are.

    python bench/frames_transfer.py [--quick] [--rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import pickle
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs: pandas-stubs is not a dependency

from scadrt.remote import RemoteArray, RemoteMemory, load_object, objects, store_object
from scadrt.remote.values import pack, unpack
from scadrt.transports import open_descriptor
from scadrt.transports.launcher import spawn_memory_server
from scadrt.transports.shm import SharedRegion

MiB = 1 << 20


class _PicklerBefore(pickle.Pickler):
    """The pickler store_object had before objects.py rule 5 (the "before" column)."""

    def reducer_override(self, obj: Any) -> Any:
        if (type(obj) is np.ndarray and not (obj.flags.c_contiguous or obj.flags.f_contiguous)
                and not obj.dtype.hasobject):
            return np.ascontiguousarray(obj).__reduce_ex__(5)
        return NotImplemented


@contextlib.contextmanager
def pickler_before() -> Iterator[None]:
    # the same store_object, block layout and load, only the pickler swapped: the difference
    # measured is what rule 5 changes and nothing else
    now = objects._Pickler
    # misc: mypy refuses assigning to a class name; assignment: _PicklerBefore is a plain
    # pickle.Pickler, deliberately not a subclass of the one it stands in for
    objects._Pickler = _PicklerBefore  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        objects._Pickler = now  # type: ignore[misc]  # assigning to a class name, as above


def frames(rows: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    text = pd.Series(rng.integers(0, 10**6, rows)).astype(str).radd("item-")
    text[::100] = np.nan
    categories = [f"category-{i}" for i in range(50)]
    return {
        "float64 x4": pd.DataFrame({f"f{i}": rng.standard_normal(rows) for i in range(4)}),
        "int64 x4": pd.DataFrame({f"i{i}": rng.integers(0, 10**9, rows) for i in range(4)}),
        "str": pd.DataFrame({"s": text}),
        "categorical": pd.DataFrame({"c": pd.Categorical.from_codes(rng.integers(0, 50, rows), categories)}),
        "datetime": pd.DataFrame({"t": pd.date_range("2020-01-01", periods=rows, freq="s")}),
        "Series float64": pd.Series(rng.standard_normal(rows), name="x"),
        "mixed (all of these)": pd.DataFrame({
            "f": rng.standard_normal(rows), "i": rng.integers(0, 100, rows), "s": text,
            "c": pd.Categorical.from_codes(rng.integers(0, 50, rows), categories),
            "t": pd.date_range("2020-01-01", periods=rows, freq="min")}),
    }


def split_bytes(value: Any) -> tuple[int, int]:
    """Bytes of ``value`` in band and out of band with store_object's pickler now."""
    buffers: list[pickle.PickleBuffer] = []
    out = io.BytesIO()
    objects._Pickler(out, protocol=5, buffer_callback=buffers.append).dump(value)
    return len(out.getbuffer()), sum(b.raw().nbytes for b in buffers)


def way_now(producer: RemoteMemory, consumer: RemoteMemory, value: Any) -> Callable[[], Any] | None:
    def run() -> Any:
        packed = pack(value, producer, "mem")
        consumer.pool.invalidate()  # a fresh consumer has nothing cached
        back = unpack(packed, consumer)
        objects.free_object(producer, packed["meta"])
        return back
    return run


def way_before(producer: RemoteMemory, consumer: RemoteMemory, value: Any) -> Callable[[], Any] | None:
    def run() -> Any:
        with pickler_before():
            meta = store_object(producer, "mem", value)
        consumer.pool.invalidate()
        back = load_object(consumer, meta)
        objects.free_object(producer, meta)
        return back
    return run


def way_pickle(producer: RemoteMemory, consumer: RemoteMemory, value: Any) -> Callable[[], Any] | None:
    def run() -> Any:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        stored = RemoteArray.store(producer, "mem", np.frombuffer(data, dtype=np.uint8))
        consumer.pool.invalidate()
        back = pickle.loads(RemoteArray.attach(consumer, stored.metadata()).materialize().data)
        stored.free()
        return back
    return run


def way_arrays(producer: RemoteMemory, consumer: RemoteMemory, value: Any) -> Callable[[], Any] | None:
    frame = value.to_frame() if isinstance(value, pd.Series) else value
    numpy_columns = all(isinstance(dtype, np.dtype) and dtype.kind in "biufc" for dtype in frame.dtypes)
    if not numpy_columns or not isinstance(frame.index, pd.RangeIndex):
        return None

    def run() -> Any:
        stored = [RemoteArray.store(producer, "mem", frame[c].to_numpy()) for c in frame.columns]
        consumer.pool.invalidate()
        columns = [RemoteArray.attach(consumer, s.metadata()).materialize() for s in stored]
        back = pd.DataFrame(dict(zip(frame.columns, columns, strict=True)), index=frame.index, copy=False)
        for s in stored:
            s.free()
        return back.iloc[:, 0].rename(value.name) if isinstance(value, pd.Series) else back
    return run


WAYS = {"now": way_now, "before": way_before, "pickle": way_pickle, "arrays": way_arrays}


def median_ms(run: Callable[[], Any], repeats: int, value: Any) -> float:
    back = run()  # warm-up, and a check that the way is exact
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value, check_exact=True)
    else:
        pd.testing.assert_series_equal(back, value, check_exact=True)
    del back
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def bench(kind: str, descriptor: str, values: dict[str, Any], repeats: int) -> None:
    with contextlib.ExitStack() as stack:
        producer = RemoteMemory(stack.enter_context(open_descriptor(descriptor)), "mem")
        consumer = RemoteMemory(stack.enter_context(open_descriptor(descriptor)), "mem")
        print(f"\n{kind}: pack + unpack, median of {repeats}, ms (ratio to the fastest)")
        header = "".join(f"{way:>18}" for way in WAYS)
        print(f"  {'value':<22}{header}   in band / out of band (now)")
        for name, value in values.items():
            runs = {way: make(producer, consumer, value) for way, make in WAYS.items()}
            times = {way: median_ms(run, repeats, value) for way, run in runs.items() if run is not None}
            best = min(times.values())
            cells = "".join(f"{times[way]:10.1f} ({times[way] / best:4.2f}×)" if way in times else f"{'—':>18}"
                            for way in WAYS)
            inband, oob = split_bytes(value)
            print(f"  {name:<22}{cells}   {inband / MiB:8.2f} / {oob / MiB:8.2f} MiB", flush=True)
        producer.close()
        consumer.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows, 3 repeats (about 40 s)")
    parser.add_argument("--rows", type=float, default=1e6, help="rows per frame (default 1e6)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows, repeats = (1_000_000, 3) if args.quick else (int(args.rows), args.repeats)
    values = frames(rows)
    largest = max(len(pickle.dumps(v, protocol=5)) for v in values.values())
    # room for a value stored twice (now and plain pickle at once never happens, but the
    # allocator needs slack), plus headroom for its table
    size = 3 * largest + 64 * MiB
    print(f"pandas {pd.__version__}, numpy {np.__version__}; {rows:,} rows; memory element of {size / MiB:,.0f} MiB")
    with SharedRegion(size) as region:
        bench("shm", f"mem;shm;segment,{region.name};", values, repeats)
    server = spawn_memory_server(size)
    try:
        bench("tcp (127.0.0.1)", f"mem;tcp;url,{server.url};", values, repeats)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
