"""pandas DataFrames and Series across a cut: exact round trips through a real memory element,
with their column data out of band (objects.py rule 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadrt.errors import RemoteMetadataError
from scadrt.remote import ObjectMeta, free_object, load_object, objects, store_object
from scadrt.remote.objects import MIN_STRINGS
from scadrt.remote.values import pack, unpack
from scadrt.transports.local import LocalTransport
from tests.scadrt.remote.regions import Region

pd = pytest.importorskip("pandas")

N = 3 * MIN_STRINGS  # enough rows for every column rule to apply


def assert_same(back: Any, value: Any) -> None:
    """``back`` is ``value`` exactly: type, dtypes, values (NaN/NaT where they were), index and
    columns (names, levels, order, freq), categories, attrs and flags."""
    assert type(back) is type(value)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(back, value, check_exact=True, check_freq=True, check_flags=True)
        assert list(back.columns) == list(value.columns)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True, check_freq=True, check_flags=True)
    else:
        pd.testing.assert_index_equal(back, value, exact=True, check_exact=True)
        return
    assert back.attrs == value.attrs
    assert back.flags.allows_duplicate_labels == value.flags.allows_duplicate_labels
    for ours, theirs in zip(columns(back), columns(value), strict=True):
        assert type(ours) is type(theirs)
        if ours.dtype == object:  # the same Python types element by element (str subclasses stay themselves)
            assert list(map(type, ours.ravel().tolist())) == list(map(type, theirs.ravel().tolist()))


def columns(value: Any) -> Iterator[np.ndarray]:
    """The numpy arrays holding the data of ``value``'s blocks, index included (pandas internals:
    the arrays a frame is made of, which must be writable and the loaded frame's own)."""
    if isinstance(value, pd.Index):
        arrays = [value._values]
    else:
        frame = value.to_frame() if isinstance(value, pd.Series) else value
        arrays = [*(block.values for block in frame._mgr.blocks), frame.index._values]
    for array in arrays:
        if isinstance(array, np.ndarray):
            yield array
        elif isinstance(array, pd.Categorical):
            yield array._codes
        elif hasattr(array, "_ndarray"):  # datetime, timedelta, str (python storage)
            yield array._ndarray
        elif hasattr(array, "_mask"):  # nullable Int64, boolean, Float64
            yield array._data
            yield array._mask


class Tag(str):
    """A str subclass: pickled as itself, not as a plain string."""


def text(n: int, alphabet: list[str], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(alphabet, int(k))) for k in rng.integers(0, 6, n)]


def frames() -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(7)

    def everything() -> Any:
        df = pd.DataFrame({
            "f8": rng.standard_normal(N), "f4": rng.standard_normal(N).astype(np.float32),
            "i8": rng.integers(-(2**62), 2**62, N), "u1": rng.integers(0, 255, N, dtype=np.uint8),
            "b": rng.random(N) < 0.5, "c16": rng.standard_normal(N) + 1j,
            "str": pd.array(text(N, ["a", "é", "中", "😀", " "]), dtype="str"),
            "string": pd.array(text(N, ["x", "y"]), dtype="string"),
            "obj": pd.Series(text(N, ["q"]), dtype=object),
            "cat": pd.Categorical.from_codes(rng.integers(-1, 3, N), ["lo", "mid", "hi"], ordered=True),
            "t": pd.date_range("2020-01-01", periods=N, freq="h"),
            "tz": pd.date_range("2020-03-29", periods=N, freq="15min", tz="Europe/Paris"),
            "dt": pd.to_timedelta(rng.integers(0, 10**9, N), unit="ms"),
            "Int64": pd.array(rng.integers(0, 9, N), dtype="Int64"),
            "boolean": pd.array(rng.random(N) < 0.5, dtype="boolean"),
            "period": pd.period_range("2000-01", periods=N, freq="M"),
        })
        for col in ("f8", "f4", "c16"):
            df.loc[::7, col] = np.nan
        for col in ("str", "string", "obj", "t", "tz", "dt", "Int64", "boolean"):
            df.loc[::11, col] = None
        df.attrs = {"source": "generated", "rows": N}
        return df

    def fortran() -> Any:
        return pd.DataFrame(np.asfortranarray(rng.standard_normal((N, 5))), columns=list("abcde"))

    def strided() -> Any:  # a frame over a view every other row, columns out of order
        whole = rng.standard_normal((2 * N, 4))
        return pd.DataFrame(whole[::2, ::-1], columns=[3, 2, 1, 0], copy=False)

    def multi() -> Any:
        index = pd.MultiIndex.from_arrays([np.repeat(text(N // 4, ["k", "l"]), 4), np.arange(N) % 4],
                                          names=["key", None])
        cols = pd.MultiIndex.from_tuples([("x", "a"), ("x", "b"), ("y", "a")], names=["outer", "inner"])
        return pd.DataFrame(rng.standard_normal((N, 3)), index=index, columns=cols)

    def odd_strings() -> Any:  # NUL (the joined form cannot hold it), lone surrogates, empties, subclasses
        values = text(N, ["a", "\udc80", "\x00", ""])
        mixed: list[Any] = [Tag(v) if i % 97 == 0 else v for i, v in enumerate(text(N, ["b", "\ud800"]))]
        mixed[5] = 5
        mixed[6] = ["a", "list"]
        mixed[7] = None
        mixed[8] = float("nan")
        mixed[9] = np.nan
        return pd.DataFrame({"nul": pd.Series(values, dtype=object), "mixed": pd.Series(mixed, dtype=object),
                             "surrogate": pd.Series(text(N, ["\udcff", "z"]), dtype=object)})

    def labels() -> Any:  # duplicate, non-string and tuple column labels; a named string index
        df = pd.DataFrame(rng.integers(0, 5, (N, 4)), columns=["a", "a", 7, ("t", 1)],
                          index=pd.Index(text(N, ["i", "j", "k"]), name="who", dtype="str"))
        return df

    def no_duplicates() -> Any:
        df = pd.DataFrame({"a": np.arange(N)}, index=pd.RangeIndex(5, 5 + 2 * N, 2, name="r"))
        return df.set_flags(allows_duplicate_labels=False)

    def intervals_and_categories() -> Any:
        big = [f"category-{i}" for i in range(2 * MIN_STRINGS)]  # categories themselves many strings
        picked = np.array(big)[rng.integers(0, len(big), N)]
        index = pd.CategoricalIndex(np.array(["p", "q"])[np.arange(N) % 2], name="ci")
        return pd.DataFrame({"iv": pd.interval_range(0, N, periods=N), "cat": pd.Categorical(picked)}, index=index)

    return {
        "everything": everything, "fortran": fortran, "strided": strided, "multi": multi, "odd strings": odd_strings,
        "labels": labels, "no duplicates": no_duplicates, "intervals and categories": intervals_and_categories,
        "empty": pd.DataFrame, "no rows": lambda: everything().iloc[:0],
        "one row": lambda: everything().iloc[3:4], "no columns": lambda: pd.DataFrame(index=pd.RangeIndex(10)),
        "series str": lambda: pd.Series(text(N, ["s", "t"]), name="s", dtype="str"),
        "series datetime": lambda: pd.Series(pd.date_range("1999-12-31", periods=N, freq="D", name="day")),
        "series with index": lambda: everything().set_index("t")["f8"],
        "index": lambda: pd.Index(text(N, ["a", "b"]), name="idx", dtype="str"),
        "datetime index": lambda: pd.date_range("2021-01-01", periods=N, freq="min", name="when"),
    }


FRAMES = frames()


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_frames_round_trip_exactly_through_a_memory_element(region: Region, name: str) -> None:
    value = FRAMES[name]()
    producer = region.memory()
    packed = json.loads(json.dumps(pack(value, producer, "mem")))  # it really travels as JSON
    assert packed["kind"] == "object"
    back = unpack(packed, region.memory())  # another transport, as a later element
    assert_same(back, value)
    again = unpack(packed, region.memory())
    assert_same(again, value)
    for ours, theirs, original in zip(columns(back), columns(again), columns(value), strict=True):
        # writable (where the original is: pandas may keep an index read-only), and each load's
        # own: sharing memory with neither another load nor the original
        assert ours.flags.writeable or not original.flags.writeable
        assert not np.shares_memory(ours, theirs) and not np.shares_memory(ours, original)
    free_object(producer, packed["meta"])


def test_column_data_goes_beside_the_stream_not_into_it(region: Region) -> None:
    """The data of str, object-of-str, datetime and timedelta columns is out of band, as that of
    numeric columns always was: the pickle stream holds only the frame's small metadata."""
    rng = np.random.default_rng(3)
    rows = 20_000
    df = pd.DataFrame({
        "s": pd.array([f"item-{i}" for i in rng.integers(0, 10**6, rows)], dtype="str"),
        "o": pd.Series([f"o{i}" for i in range(rows)], dtype=object),
        "t": pd.date_range("2020-01-01", periods=rows, freq="s"),
        "d": pd.to_timedelta(np.arange(rows), unit="s"),
        "f": rng.standard_normal(rows),
    })
    df.loc[::50, "s"] = np.nan
    memory = region.memory()
    meta = ObjectMeta.from_json(store_object(memory, "mem", df))
    data = sum(n for _, n in meta.buffers)
    assert data > 5 * rows * 8  # every column: 8 bytes a row of t, d, f, and the strings' text
    # in band: the frame's structure, and the 400 NaN of "s" (where they are goes out of band)
    assert meta.stream[1] < data / 100, f"{meta.stream[1]} B in band, {data} B out of band"
    assert_same(load_object(region.memory(), meta), df)


def test_unchanged_frame_is_passed_through_and_a_changed_one_replaces_it() -> None:
    region = LocalTransport(size=32 << 20, name="mem")
    df = pd.DataFrame({"a": np.arange(N), "s": pd.array(text(N, ["u", "v"]), dtype="str")})
    packed = pack(df, region, "mem")
    written = region.bytes_written
    assert pack(df, region, "mem", previous=packed, changed=False) is packed
    assert region.bytes_written == written
    df.loc[::2, "a"] = -1  # changed in place, as the element did
    new = pack(df, region, "mem", previous=packed, changed=True)
    assert new is not packed
    assert_same(unpack(new, region), df)


def make_column(kind: str, rows: int, rng: np.random.Generator, words: list[str]) -> Any:
    if kind in ("str", "string", "object", "category"):
        return pd.Series(words, dtype=object if kind == "object" else kind)
    if kind == "f8":
        return pd.Series(rng.standard_normal(rows))
    if kind in ("i8", "Int64"):
        return pd.Series(rng.integers(-5, 5, rows), dtype=kind.lower() if kind == "i8" else kind)
    if kind == "bool":
        return pd.Series(rng.random(rows) < 0.5)
    if kind == "timedelta":
        return pd.Series(pd.to_timedelta(rng.integers(0, 10**6, rows), unit="us"))
    return pd.Series(pd.date_range("2000-01-01", periods=rows, freq="37s", tz="UTC" if kind == "tz" else None))


@st.composite
def generated_frames(draw: st.DrawFn) -> Any:
    """Frames of a drawn mix of column kinds, sizes either side of MIN_STRINGS, NaN/NaT/None
    sprinkled at drawn places, drawn index kinds and labels."""
    rows = draw(st.sampled_from([0, 1, 2, MIN_STRINGS - 1, MIN_STRINGS, 2 * MIN_STRINGS + 3]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    alphabet = draw(st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=4))
    missing = draw(st.sampled_from([0, 1, 3, 10]))  # every how many-th row is missing (0: none)
    kinds = draw(st.lists(st.sampled_from(["f8", "i8", "str", "string", "object", "category", "datetime",
                                           "tz", "timedelta", "Int64", "bool"]), max_size=6))
    data: dict[Any, Any] = {}
    for i, kind in enumerate(kinds):
        column = make_column(kind, rows, rng, text(rows, alphabet, int(rng.integers(0, 2**31))))
        if missing and kind not in ("i8", "bool"):
            column.iloc[::missing] = None
        data[draw(st.sampled_from([f"c{i}", i, (f"c{i}", i)]))] = column
    index_kind = draw(st.sampled_from(["range", "str", "datetime", "multi"]))
    index: Any = {
        "range": lambda: pd.RangeIndex(rows, name=draw(st.sampled_from([None, "n"]))),
        "str": lambda: pd.Index(text(rows, alphabet, 1), dtype="str", name="key"),
        "datetime": lambda: pd.date_range("2010-01-01", periods=rows, freq="D", name="day"),
        "multi": lambda: pd.MultiIndex.from_arrays([np.arange(rows) % 3, text(rows, alphabet, 2)], names=["a", "b"]),
    }[index_kind]()
    frame = pd.DataFrame({k: v.array for k, v in data.items()}, index=index)  # arrays: no alignment on index
    frame.attrs = draw(st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    if draw(st.booleans()) and frame.shape[1]:
        return frame.iloc[:, 0]
    return frame


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=generated_frames())
@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_generated_frames_round_trip_exactly(region: Region, value: Any) -> None:
    producer = region.memory()
    packed = json.loads(json.dumps(pack(value, producer, "mem")))
    try:
        assert_same(unpack(packed, region.memory()), value)
    finally:
        free_object(producer, packed["meta"])


@pytest.mark.parametrize("source", ["distinct", "repeated"])
@pytest.mark.parametrize("layout", ["C", "F", "strided", "0-d", "3-d"])
def test_numpy_object_arrays_of_strings_keep_shape_order_and_element_types(region: Region, layout: str,
                                                                           source: str) -> None:
    words = np.empty(4 * N, dtype=object)
    alphabet = ["ab", "ü", "\U0001f600"]
    # repeated: a few words, as in a category column (stored as its distinct strings and codes)
    words[:] = text(4 * N, alphabet) if source == "distinct" else [alphabet[i % 3] * (i % 2) for i in range(4 * N)]
    words[3], words[10], words[11] = None, Tag("tagged"), b"bytes"
    layouts: dict[str, Callable[[], Any]] = {
        "C": lambda: words.reshape(4, N), "F": lambda: np.asfortranarray(words.reshape(N, 4)),
        "strided": lambda: words.reshape(4, N)[::2, ::3], "0-d": lambda: np.array("alone", dtype=object),
        "3-d": lambda: words.reshape(2, 2, N)}
    array = layouts[layout]()
    memory = region.memory()
    back = load_object(region.memory(), store_object(memory, "mem", array))
    assert back.shape == array.shape and back.dtype == object and back.flags.writeable
    assert back.flags.f_contiguous == array.flags.f_contiguous or layout == "strided"
    assert back.tolist() == array.tolist()
    assert list(map(type, back.ravel().tolist())) == list(map(type, array.ravel().tolist()))


def test_repeated_strings_are_stored_once_and_loaded_as_one_object_each(region: Region) -> None:
    """A column of a few distinct strings (a channel, a segment) crosses as those strings and a
    byte per row, and comes back with one object per distinct string: 8 bytes a row, not a str
    each (a frame of such columns loaded as many strings was larger than the whole monolith)."""
    rows = 50 * N
    rng = np.random.default_rng(5)
    channel = np.array(["web", "app", "store"], dtype=object)[rng.integers(0, 3, rows)]
    channel = np.array([w + "" for w in channel.tolist()], dtype=object)  # each row its own str, as pandas makes them
    channel[7], channel[8], channel[9] = np.nan, None, Tag("web")
    df = pd.DataFrame({"channel": pd.array(channel[10:], dtype="str"), "raw": channel[10:]})
    df.loc[::97, "channel"] = np.nan
    memory = region.memory()
    for value in (df, channel):
        meta = ObjectMeta.from_json(store_object(memory, "mem", value))
        per_column = 2 if isinstance(value, pd.DataFrame) else 1
        assert sum(n for _, n in meta.buffers) < per_column * rows * 1.1  # a one-byte code per row
        back = load_object(region.memory(), meta)
        if isinstance(value, pd.DataFrame):
            assert_same(back, value)
            loaded = [column for column in columns(back) if column.dtype == object]
        else:
            def same(x: Any) -> Any:
                return "NaN" if x != x else x  # noqa: PLR0124 (NaN is the one value unequal to itself)
            assert list(map(same, back.tolist())) == list(map(same, value.tolist()))
            assert list(map(type, back.tolist())) == list(map(type, value.tolist()))
            loaded = [back]
        for column in loaded:
            assert len({id(x) for x in column.tolist() if type(x) is str}) == 3
        free_object(memory, meta)


def test_string_codes_that_do_not_fit_their_strings_are_refused() -> None:
    with pytest.raises(RemoteMetadataError, match="string codes"):
        objects._rebuild_repeated(b"a\x00b", np.array([0, 2], dtype=np.uint8), (2,), "C", None)
    with pytest.raises(RemoteMetadataError, match="string codes"):
        objects._rebuild_repeated(b"a\x00b", np.array([0, 1], dtype=np.uint8), (3,), "C", None)


@pytest.mark.parametrize("make", [
    lambda: np.arange(N, dtype=np.int64).astype("M8[ns]"),
    lambda: np.asfortranarray(np.arange(4 * N).reshape(N, 4).astype("m8[s]")),
    lambda: np.arange(4 * N).astype("M8[D]").reshape(4, N)[:, ::3],
    lambda: np.array(5, dtype="m8[us]"),
    lambda: np.zeros((0, 3), dtype=">M8[ms]"),
    lambda: np.zeros(N, dtype=[("t", "M8[s]"), ("x", "<f4"), ("pair", "m8[h]", (2,))]),
], ids=["1-d", "fortran", "strided", "0-d", "empty big-endian", "structured"])
def test_datetime_arrays_go_out_of_band_with_dtype_shape_and_order(region: Region, make: Callable[[], Any]) -> None:
    array = make()
    if array.dtype.names:
        array["t"] = np.arange(N)
        array["pair"][:, 1] = 7
    memory = region.memory()
    metadata = store_object(memory, "mem", array)
    if array.nbytes > 4096:
        assert ObjectMeta.from_json(metadata).stream[1] < 1024  # numpy itself would pickle it in band
    back = load_object(region.memory(), metadata)
    assert back.dtype == array.dtype and back.shape == array.shape and back.flags.writeable
    assert back.flags.f_contiguous == array.flags.f_contiguous or not array.flags.c_contiguous
    assert back.tobytes() == array.tobytes()


def test_dtypes_whose_bytes_are_not_their_data_are_left_to_numpy(region: Region) -> None:
    words = np.array(text(N, ["long words are not stored inline ", "é"]), dtype=np.dtypes.StringDType())
    back = load_object(region.memory(), store_object(region.memory(), "mem", words))
    assert back.dtype == words.dtype and back.tolist() == words.tolist()


SPLIT_PROGRAM = """\
import numpy as np
import pandas as pd


def main():
    rng = np.random.default_rng(0)
    n = 50_000
    df = pd.DataFrame({"k": pd.Series(rng.integers(0, 50, n)).astype(str).radd("key-"),
                       "v": rng.standard_normal(n),
                       "t": pd.date_range("2020-01-01", periods=n, freq="min")})
    df["c"] = df["k"].astype("category")
    df.loc[::97, "k"] = None
    g = df.groupby("c", observed=True)["v"].sum().round(6)
    print(g.head(3).to_string())
    print(df["t"].max(), df["k"].isna().sum(), df.dtypes.to_dict())


if __name__ == "__main__":
    main()
"""


def test_a_split_pandas_program_passes_its_frame_through_a_memory_element(tmp_path: Path) -> None:
    """End to end: profiled, the frame is heavy, so it crosses every cut as a remote object; the
    split program prints what the original prints, over shm and over tcp."""
    (tmp_path / "app.py").write_text(SPLIT_PROGRAM, encoding="utf-8")

    def run(*argv: str) -> bytes:
        done = subprocess.run([sys.executable, *argv], cwd=tmp_path, capture_output=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout

    original = run("app.py")
    run("-m", "scadc", "profile", "app.py", "-o", "app.profile.json")
    run("-m", "scadc", "split", "app.py", "-o", "p", "--profile", "app.profile.json", "--policy", "every")
    elements = "".join(path.read_text(encoding="utf-8") for path in sorted((tmp_path / "p").glob("*.o.py")))
    assert "pack(df, action, 'mem" in elements  # the frame really goes through the memory element
    for transport in ("shm", "tcp"):
        assert run("-m", "scadc", "run", "p", "--quiet", "--transport", transport) == original


def test_scadrt_does_not_import_pandas_to_store_strings_or_datetimes() -> None:
    """pandas stays optional: the rules are numpy rules, and nothing on the way imports pandas."""
    code = """
import sys
import numpy as np
from scadrt.remote import load_object, store_object
from scadrt.transports.local import LocalTransport
region = LocalTransport(size=8 << 20, name="mem")
value = {"s": np.array([f"w{i}" for i in range(5000)], dtype=object), "t": np.arange(9).astype("M8[ms]")}
back = load_object(region, store_object(region, "mem", value))
assert back["s"].tolist() == value["s"].tolist() and (back["t"] == value["t"]).all()
assert "pandas" not in sys.modules, "pandas was imported"
"""
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
