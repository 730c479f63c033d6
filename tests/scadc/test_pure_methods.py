"""Every entry of :data:`scadc.analysis.types.PURE_METHODS` is checked by running it (issue #11).

The analysis trusts a method in a kind's row to change neither its receiver, nor its arguments,
nor hidden state (the global random generators, which the plan carries between elements as RNG
state). A wrong entry is a silent miscompilation, so each one is tried here on real values of the
kind: the test parametrizes over the table itself (a new entry without values to call it on, or
that no candidate call runs, fails), calls the method on every representative receiver that has
it with the examples below and then generic candidate arguments, and compares a deep fingerprint
of the receiver (or what an accessor/groupby reads) and of every argument before and after each
attempt, and the global RNGs before and after the attempts on each receiver. A failed attempt is
checked too: a program may catch the error.

Arguments are ordinary values (lists, dicts, sets, frames, arrays), and a ``collections.
defaultdict`` where a method takes a mapping (the analysis types it as a dict, and a lookup with
``m[key]`` inserts the key). Generators passed as arguments (``df.sample(random_state=gen)``) are
not tried: rule 6 of :mod:`scadc.analysis.effects` treats any generator given to a library call as
drawn from. Nor are iterators: the methods that iterate an argument advance it, which the last test
records; seeing that is the analysis's job (an iterator is never transferable across a cut).

The inverse check at the end runs a sample of mutating methods, asserts that they do mutate, and
that the table does not list them.
"""

from __future__ import annotations

import collections
import copy
import functools
import importlib.util
import itertools
import pickle
import random
import warnings
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scadc.analysis.effects import VIEW_IF_NOT_COPIED, VIEW_METHODS
from scadc.analysis.types import PURE_METHODS, Kind, ValueType, is_pure_method

pd = pytest.importorskip("pandas")


# -- fingerprints ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class _PandasState:
    """A deep copy of a pandas object, equal to a later state of it when nothing observable changed."""

    copy: Any
    attrs: dict[str, Any]

    @classmethod
    def of(cls, x: Any, snapshot: bool) -> _PandasState:
        attrs = dict(x.attrs) if hasattr(x, "attrs") else {}
        return cls(x.copy(deep=True), copy.deepcopy(attrs)) if snapshot else cls(x, attrs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _PandasState):
            return NotImplemented
        a, b = self.copy, other.copy
        if type(a) is not type(b) or not a.equals(b) or self.attrs != other.attrs:
            return False
        if isinstance(a, pd.Index):
            return a.dtype == b.dtype and list(a.names) == list(b.names)
        if not (_index_same(a.index, b.index) and a.flags.allows_duplicate_labels == b.flags.allows_duplicate_labels):
            return False
        if isinstance(a, pd.DataFrame):
            return _index_same(a.columns, b.columns) and a.dtypes.equals(b.dtypes)
        return a.dtype == b.dtype and a.name == b.name

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<{type(self.copy).__name__}>"


def _index_same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a.equals(b) and a.dtype == b.dtype and list(a.names) == list(b.names)


def state(x: Any, snapshot: bool = True) -> object:
    """What ``x`` holds, deeply, as a value to compare with ``==`` (a later ``state(x)`` differs iff
    ``x`` or something it contains was changed in place). ``snapshot=False`` for the state compared
    last: it may refer to ``x`` itself rather than copy it."""
    if isinstance(x, np.ndarray):
        return ("ndarray", x.dtype.descr if x.dtype.names else x.dtype.str, x.shape, x.flags.writeable, x.tobytes())
    if isinstance(x, (pd.DataFrame, pd.Series, pd.Index)):
        return _PandasState.of(x, snapshot)
    if isinstance(x, np.random.Generator):
        return ("Generator", repr(x.bit_generator.state))
    if isinstance(x, np.random.RandomState):
        return ("RandomState", pickle.dumps(x.get_state()))
    if isinstance(x, (list, tuple)):
        return (type(x), [state(v, snapshot) for v in x])
    if isinstance(x, collections.deque):
        return (type(x), x.maxlen, [state(v, snapshot) for v in x])
    if isinstance(x, dict):  # insertion order is observable (iteration, OrderedDict ==)
        factory = x.default_factory if isinstance(x, collections.defaultdict) else None
        return (type(x), factory, [(state(k, snapshot), state(v, snapshot)) for k, v in x.items()])
    if isinstance(x, (set, frozenset)):
        return (type(x), frozenset(x))
    if isinstance(x, bytearray):
        return (bytearray, bytes(x))
    if callable(x) or isinstance(x, (str, bytes, int, float, complex, type(None), np.generic)):
        return (type(x), x if not callable(x) else id(x))  # immutable, or a function (not compared deeper)
    return (type(x), copy.deepcopy(x) if snapshot else x, repr(x))


def global_rng_state() -> tuple[Any, Any]:
    """numpy's legacy global generator (``np.random.*``) and the ``random`` module's."""
    return np.random.get_state(), random.getstate()


def _same_rng(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    return pickle.dumps(a) == pickle.dumps(b)


# -- receivers: representative values of each kind ----------------------------------------------

@dataclass(frozen=True)
class Receiver:
    #: what the method is called on
    value: Any
    #: what must not change: the value, or what an accessor, a groupby or a window reads
    watched: tuple[Any, ...]
    #: builds a fresh value equal to ``watched[0]``, for arguments such as ``other``
    make_plain: Callable[[], Any]

    @property
    def plain(self) -> Any:
        return self.make_plain()


def _plain(make: Callable[[], Any]) -> Callable[[], Receiver]:
    def build() -> Receiver:
        v = make()
        return Receiver(v, (v,), make)
    return build


def _derived(make: Callable[[], Any], derive: Callable[[Any], Any]) -> Callable[[], Receiver]:
    def build() -> Receiver:
        base = make()
        return Receiver(derive(base), (base,), make)
    return build


def _frame() -> Any:
    df = pd.DataFrame({
        "num": [3, 1, 2, 1],
        "flt": [0.5, np.nan, 2.0, -1.5],
        "txt": ["b,x", "a", "c b", "a"],
        "kind": pd.Categorical(["x", "y", "x", "y"]),
        # datetime64 values, not strings: pandas would guess a format on every build
        "when": np.array(["2024-01-01", "2024-02-10", "2024-03-05", "2024-03-06"], dtype="datetime64[ns]"),
    })
    df.attrs["source"] = ["test"]  # a mutable attr, so a change through attrs is seen
    return df


def _numeric_frame() -> Any:
    return pd.DataFrame({"a": [1.0, 2.0, 4.0, 3.0], "b": [0.5, -1.0, 2.0, np.nan]}, index=[10, 20, 30, 40])


def _time_frame() -> Any:
    return pd.DataFrame({"a": [1.0, 2.0, 4.0, 3.0, 5.0], "b": [1, 2, 3, 4, 5]},
                        index=pd.date_range("2024-01-01", periods=5, freq="D"))


def _multi_frame() -> Any:
    index = pd.MultiIndex.from_product([["p", "q"], [1, 2]], names=["outer", "inner"])
    return pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [4, 3, 2, 1]}, index=index)


def _series() -> Any:
    return pd.Series([0.5, np.nan, 2.0, -1.5], name="flt")


def _structured() -> np.ndarray:
    return np.array([(1, 2.5), (3, -1.0), (2, 0.0)], dtype=[("a", "i4"), ("b", "f8")])


RECEIVERS: Mapping[Kind, Mapping[str, Callable[[], Receiver]]] = {
    Kind.NDARRAY: {
        "float 2-D": _plain(lambda: np.arange(12, dtype=float).reshape(3, 4) / 4 - 1),
        "int 1-D": _plain(lambda: np.array([3, 0, 2, 1, 2])),
        "structured": _plain(_structured),
    },
    Kind.PANDAS: {
        "DataFrame": _plain(_frame),
        "numeric DataFrame": _plain(_numeric_frame),
        "time-indexed DataFrame": _plain(_time_frame),
        "MultiIndex DataFrame": _plain(_multi_frame),
        "Series": _plain(_series),
        "int Series": _plain(lambda: pd.Series([3, 1, 2, 1], index=list("abcd"), name="num")),
        "time-indexed Series": _plain(lambda: _time_frame()["a"]),
        "period-indexed Series": _plain(lambda: pd.Series([1.0, 2.0, 3.0],
                                                          index=pd.period_range("2024-01", periods=3, freq="M"))),
        "MultiIndex Series": _plain(lambda: _multi_frame()["a"]),
        "Index": _plain(lambda: pd.Index([3, 1, 2], name="i")),
        "str Index": _plain(lambda: pd.Index(["b,x", "a", "c b"])),
        "DatetimeIndex": _plain(lambda: pd.DatetimeIndex(_frame()["when"])),
        "MultiIndex": _plain(lambda: _multi_frame().index),
        "DataFrameGroupBy": _derived(_frame, lambda df: df.groupby("kind", observed=True)),
        "numeric DataFrameGroupBy": _derived(_numeric_frame, lambda df: df.groupby([0, 1, 0, 1])),
        "SeriesGroupBy": _derived(_frame, lambda df: df.groupby("kind", observed=True)["num"]),
        "Rolling": _derived(_series, lambda s: s.rolling(2)),
        "Expanding": _derived(_numeric_frame, lambda df: df.expanding()),
        "Resampler": _derived(_time_frame, lambda df: df.resample("2D")),
        ".str": _derived(lambda: _frame()["txt"], lambda s: s.str),
        "Index .str": _derived(lambda: pd.Index(["b,x", "a", "c b"]), lambda i: i.str),
        ".dt": _derived(lambda: _frame()["when"], lambda s: s.dt),
        ".dt (tz-aware)": _derived(lambda: _frame()["when"].dt.tz_localize("UTC"), lambda s: s.dt),
        ".dt (period)": _derived(lambda: _frame()["when"].dt.to_period("M"), lambda s: s.dt),
        ".cat": _derived(lambda: _frame()["kind"], lambda s: s.cat),
    },
    Kind.STR: {"str": _plain(lambda: "Hello, World\tgo\n{name} 42")},
    Kind.BYTES: {"bytes": _plain(lambda: b"Hello, World\tgo\n 42")},
    Kind.BYTEARRAY: {"bytearray": _plain(lambda: bytearray(b"Hello, World\tgo\n 42"))},
    Kind.NUMBER: {
        "int": _plain(lambda: 7),
        "float": _plain(lambda: 2.5),
        "bool": _plain(lambda: True),
        "complex": _plain(lambda: 3 + 4j),
        "numpy float": _plain(lambda: np.float64(2.5)),
        "numpy int": _plain(lambda: np.int64(7)),
    },
    Kind.TUPLE: {"tuple": _plain(lambda: (1, "a", [2, 3]))},
    Kind.FROZENSET: {"frozenset": _plain(lambda: frozenset({1, 2, 3}))},
    Kind.SET: {"set": _plain(lambda: {1, 2, 3})},
    Kind.LIST: {"list": _plain(lambda: [3, 1, 2, [4, 5]])},
    Kind.DEQUE: {"deque": _plain(lambda: collections.deque([3, 1, 2, [4]], maxlen=6))},
    Kind.DICT: {
        "dict": _plain(lambda: {"a": 1, "b": [2, 3]}),
        "Counter": _plain(lambda: collections.Counter("abracadabra")),
        "OrderedDict": _plain(lambda: collections.OrderedDict([("a", 1), ("b", [2, 3])])),
        "defaultdict": _plain(lambda: collections.defaultdict(list, {"a": [1], "b": [2, 3]})),
    },
    Kind.DEFAULTDICT: {"defaultdict": _plain(lambda: collections.defaultdict(list, {"a": [1], "b": [2, 3]}))},
}


# -- calls: explicit examples first, then generic candidates -------------------------------------

class _Placeholder:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: replaced by a fresh value equal to the receiver's plain value (``df.merge(OTHER)``)
OTHER = _Placeholder("OTHER")
#: replaced by a fresh file path under ``tmp_path``
TMP = _Placeholder("TMP")


@dataclass(frozen=True, eq=False)
class Call:
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: builds the arguments from the receiver (for arguments that must fit its shape)
    derive: Callable[[Receiver], tuple[Any, ...]] | None = None

    def materialize(self, receiver: Receiver, tmp: Callable[[], Path]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        def fill(v: Any) -> Any:
            if v is OTHER:
                return receiver.plain
            if v is TMP:
                return tmp()
            return copy.deepcopy(v)  # fresh each attempt: a failed attempt cannot taint the next
        args = self.derive(receiver) if self.derive is not None else self.args
        return tuple(fill(a) for a in args), {k: fill(v) for k, v in self.kwargs.items()}

    def __repr__(self) -> str:
        shown = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"({', '.join(shown)})" if self.derive is None else "(derived from the receiver)"


def call(*args: Any, **kwargs: Any) -> Call:
    return Call(args, kwargs)


def derived(fn: Callable[[Receiver], tuple[Any, ...]]) -> Call:
    return Call(derive=fn)


def _identity(x: Any) -> Any:
    return x


def _missing(key: object = None) -> str:
    return "?"


def _defaultdict(items: Mapping[Any, Any]) -> collections.defaultdict[Any, Any]:
    """A mapping whose lookup of a missing key inserts it: a method that reads a mapping with ``m[key]``
    rather than ``m.get(key)`` changes this argument (and the analysis types it as a plain dict)."""
    return collections.defaultdict(_missing, items)


#: tried in this order; values the receivers hold come early, so that a mutator is seen doing something
GENERIC: tuple[Call, ...] = (
    call(), call(0), call(1), call(2), call([1, 2]), call({2, 9}), call(OTHER), call(-1), call("a"), call(b"a"),
    call("num"), call(["num"]), call([0]), call(_identity), call("sum"), call(0, 1), call(1, 2), call("D"),
)

#: methods that write a file: only their explicit examples run (a generic ``1`` is a file descriptor to them:
#: ``s.to_string(1)`` writes to the process's stdout and closes it)
WRITERS = frozenset({"to_csv", "to_json", "to_pickle", "to_parquet", "to_string", "tofile", "dump"})

#: how many generic candidates must run on a receiver for a method without explicit examples
GENERIC_SUCCESSES = 3

_ARITHMETIC = ("add", "sub", "subtract", "mul", "multiply", "div", "divide", "truediv", "floordiv", "mod", "pow",
               "radd", "rsub", "rmul", "rdiv", "rtruediv", "eq", "ne", "lt", "le", "gt", "ge")

_PANDAS_EXAMPLES: dict[str, tuple[Call, ...]] = {
    **{m: (call(2), call(OTHER)) for m in _ARITHMETIC},
    "align": (call(OTHER),),
    "combine": (call(OTHER, lambda a, b: a),),
    "combine_first": (call(OTHER),),
    "compare": (call(OTHER),),
    "corrwith": (call(OTHER),),
    "dot": (derived(lambda r: (r.plain.T,)),),
    "equals": (call(OTHER),),
    "join": (call(OTHER, rsuffix="_r"), call(OTHER)),
    "merge": (call(OTHER), call(OTHER, on="num")),
    "reindex_like": (call(OTHER),),
    "isin": (call([1, "a", 2.0]), call({"num": [1]}), call(OTHER)),
    "where": (call(lambda x: x.notna()), call(lambda x: x.notna(), OTHER)),
    "mask": (call(lambda x: x.isna()), call(lambda x: x.isna(), OTHER)),
    "assign": (call(z=1), call(z=lambda d: d.index)),
    "astype": (call("object"), call({"num": "float64"}), call(str), call(float)),
    "drop": (call(columns=["num"]), call(columns=["a"]), call([0]), call([1]), call("p")),
    "droplevel": (call(0),),
    "eval": (call("num + 1"), call("z = num + 1"), call("a + 1"), call("c = a + b")),
    "explode": (call("num"), call()),
    "fillna": (call(0), call({"flt": 0.0, "a": 0.0, "b": 0.0})),
    "filter": (call(items=["num", "a"]), call(like="n")),
    "get": (call("num"), call("a"), call(0)),
    "groupby": (call("kind", observed=True), call(level=0), call([0, 1, 0, 1])),
    "head": (call(2),),
    "tail": (call(2),),
    "map": (call({1: "one", 0.5: "half"}), call(_identity), call(str), call(_defaultdict({1: "one"}))),
    "melt": (call(id_vars=["num"]), call()),
    "nlargest": (call(2, "num"), call(2, "a"), call(2)),
    "nsmallest": (call(2, "num"), call(2, "a"), call(2)),
    "pipe": (call(_identity),),
    "pivot": (call(index="when", columns="kind", values="num"),),
    "pivot_table": (call(index="kind", values="num", aggfunc="sum", observed=True),),
    "query": (call("num > 1"), call("a > 1")),
    "rename": (call(columns={"num": "n", "a": "A"}), call(str), call("new"), call(_defaultdict({1: "one"})),
               call(columns=_defaultdict({"num": "n"}))),
    "rename_axis": (call("rows"),),
    "reorder_levels": (call([1, 0]),),
    "replace": (call({"a": "z", 1: 10}), call(1, 10), call(_defaultdict({1: 10}))),
    "resample": (call("2D"),),
    "rolling": (call(2),),
    "expanding": (call(),),
    "ewm": (call(span=2),),
    "sample": (call(2, random_state=0), call(2)),
    "select_dtypes": (call(include="number"),),
    "set_axis": (derived(lambda r: (list(range(len(r.plain))),)),),
    "set_index": (call("num"), call(["num", "txt"]), call("a")),
    "shift": (call(1),),
    "sort_values": (call("num"), call("a"), call()),
    "to_csv": (call(TMP), call()),
    "to_string": (call(TMP), call()),
    "to_json": (call(TMP),),
    "to_pickle": (call(TMP),),
    "to_parquet": (call(TMP),),
    "transform": (call(_identity),),
    "truncate": (call(before=0, after=2), call(before="2024-01-02", after="2024-01-04")),
    "xs": (call(0), call("p")),
    "quantile": (call(0.5), call(0.5, numeric_only=True)),
    **{m: (call(), call(numeric_only=True))
       for m in ("sum", "mean", "median", "min", "max", "std", "var", "sem", "skew", "kurt", "kurtosis", "prod",
                 "product", "corr", "cov")},
    "agg": (call("sum"), call({"num": "sum"})),
    "aggregate": (call("sum"), call({"num": "sum"})),
    "apply": (call(_identity), call(np.sum)),
    "asfreq": (call("D"),),
    "asof": (call(pd.Timestamp("2024-01-02")),),
    "between": (call(0, 1),),
    "clip": (call(0, 1), call(lower=0)),
    "nth": (call(0),),
    "get_group": (call("x"), call(0)),
    "searchsorted": (call(1), call(pd.Timestamp("2024-02-01"))),
    "get_loc": (call(1), call(("p", 1)), call(pd.Timestamp("2024-02-10"))),
    "get_indexer": (call([1, 2]), derived(lambda r: (r.plain[:2],))),
    "union": (call(OTHER), call([1, 5])),
    "intersection": (call(OTHER), call([1, 5])),
    "difference": (call(OTHER), call([1, 5])),
    "strftime": (call("%Y-%m"),),
    "floor": (call("D"),),
    "ceil": (call("D"),),
    "tz_localize": (call("UTC"),),
    "tz_convert": (call("UTC"),),
    "to_period": (call("M"),),
    # the .str accessor
    "contains": (call("a"),),
    "startswith": (call("a"),),
    "endswith": (call("a"),),
    "split": (call(","),),
    "rsplit": (call(","),),
    "slice": (call(0, 2),),
    "cat": (call(sep="|"), call(["1", "2", "3", "4"], sep="|"), call()),
    "pad": (call(5),),
    "zfill": (call(5),),
    "center": (call(5),),
    "ljust": (call(5),),
    "rjust": (call(5),),
    "extract": (call(r"(\w)"),),
    "extractall": (call(r"(\w)"),),
    "match": (call("a"),),
    "fullmatch": (call("a"),),
    "find": (call("a"),),
    "findall": (call("a"),),
    "repeat": (call(2),),
    "wrap": (call(3),),
    "removeprefix": (call("a"),),
    "removesuffix": (call("a"),),
    "normalize": (call("NFC"), call()),
    # the .cat accessor
    "add_categories": (call(["zz"]),),
    "remove_categories": (call(["y"]),),
    "rename_categories": (call({"x": "X"}), call(str.upper), call(_defaultdict({"x": "X"}))),
    "reorder_categories": (call(["y", "x"]),),
    "set_categories": (call(["x", "y", "w"]),),
}

_NDARRAY_EXAMPLES: dict[str, tuple[Call, ...]] = {
    "choose": (call([np.arange(5) * k for k in range(4)]),),
    "compress": (call([True, False]),),
    "dot": (derived(lambda r: (r.plain.T.copy(),)), call(OTHER)),
    "getfield": (call(np.float64), call(np.dtype("f8"), 4), call(np.int64)),
    "repeat": (call(2),),
    "reshape": (call(-1),),
    "searchsorted": (call(1),),
    "swapaxes": (call(0, 1), call(0, 0)),
    "take": (call([0]),),
    "view": (call(np.uint8), call()),
    "astype": (call(float), call("i8"), call(float, copy=False)),
    "clip": (call(0, 1),),
    "round": (call(1),),
    "item": (call(0),),
    "argpartition": (call(1),),
    "tofile": (call(TMP),),
    "dump": (call(TMP),),
    "dumps": (call(),),
}

_STR_EXAMPLES: dict[str, tuple[Call, ...]] = {
    "center": (call(40, "*"),),
    "count": (call("l"),),
    "endswith": (call("42"), call(("42", "x"))),
    "expandtabs": (call(4),),
    "find": (call("o"),),
    "format": (call(name=["x"]),),
    "format_map": (call({"name": ["x"]}), call(collections.defaultdict(list))),
    "index": (call("o"),),
    "join": (call(["a", "b"]),),
    "ljust": (call(40),),
    "partition": (call(","),),
    "removeprefix": (call("He"),),
    "removesuffix": (call("42"),),
    "replace": (call("l", "L"),),
    "rfind": (call("o"),),
    "rindex": (call("o"),),
    "rjust": (call(40),),
    "rpartition": (call(","),),
    "rsplit": (call(","),),
    "split": (call(","),),
    "startswith": (call("He"), call(("He", "x"))),
    "translate": (call({ord("l"): "L"}), call(str.maketrans("l", "L")), call(_defaultdict({ord("l"): "L"}))),
    "zfill": (call(40),),
}

_BYTES_EXAMPLES: dict[str, tuple[Call, ...]] = {
    "center": (call(40, b"*"),),
    "count": (call(b"l"), call(bytearray(b"l"))),
    "endswith": (call(b"42"), call((b"42", b"x"))),
    "expandtabs": (call(4),),
    "find": (call(b"o"), call(bytearray(b"o"))),
    "index": (call(b"o"), call(bytearray(b"o"))),
    "join": (call([b"a", bytearray(b"b")]),),
    "ljust": (call(40),),
    "partition": (call(b","), call(bytearray(b","))),
    "removeprefix": (call(b"He"), call(bytearray(b"He"))),
    "removesuffix": (call(b"42"),),
    "replace": (call(b"l", b"L"), call(bytearray(b"l"), bytearray(b"L"))),
    "rfind": (call(b"o"),),
    "rindex": (call(b"o"),),
    "rjust": (call(40),),
    "rpartition": (call(b","),),
    "rsplit": (call(b","), call(bytearray(b","))),
    "split": (call(b","), call(bytearray(b","))),
    "startswith": (call(b"He"),),
    "translate": (call(bytes.maketrans(b"l", b"L")), call(bytearray(bytes.maketrans(b"l", b"L"))),
                  call(None, b"l")),
    "zfill": (call(40),),
}

EXAMPLES: Mapping[Kind, Mapping[str, tuple[Call, ...]]] = {
    Kind.PANDAS: _PANDAS_EXAMPLES,
    Kind.NDARRAY: _NDARRAY_EXAMPLES,
    Kind.STR: _STR_EXAMPLES,
    Kind.BYTES: _BYTES_EXAMPLES,
    Kind.BYTEARRAY: {m: c for m, c in _BYTES_EXAMPLES.items() if m != "join"},  # not in the row: it may mutate
    Kind.NUMBER: {"to_bytes": (call(2, "big"),)},
    Kind.TUPLE: {"index": (call("a"),), "count": (call([2, 3]),)},
    Kind.SET: {m: (call({2, 9}), call([2, 9]), call(OTHER)) for m in PURE_METHODS[Kind.SET] if m != "copy"},
    Kind.FROZENSET: {m: (call({2, 9}), call([2, 9]), call(OTHER)) for m in PURE_METHODS[Kind.FROZENSET] if m != "copy"},
    Kind.LIST: {"index": (call([4, 5]), call(1)), "count": (call([4, 5]),)},
    Kind.DEQUE: {"index": (call([4]), call(1)), "count": (call([4]),)},
    Kind.DICT: {"get": (call("zz"), call("zz", []), call("a")), "most_common": (call(2),)},
    Kind.DEFAULTDICT: {"get": (call("zz"), call("zz", []), call("a"))},
}


# -- entries known to be wrong -------------------------------------------------------------------

#: (kind, method) -> why the entry is wrong (an xfail until the table is fixed; none known)
KNOWN_WRONG: Mapping[tuple[Kind, str], str] = {}

#: entries that draw from numpy's global generator: the analysis records that as hidden state (rule
#: S1: ``df.sample()`` without ``random_state=``), so the check of the generators skips them
RNG_RECORDED = frozenset({(Kind.PANDAS, "sample")})

_SKIPPED: Mapping[tuple[Kind, str], Callable[[], str | None]] = {
    (Kind.PANDAS, "to_parquet"): lambda: None if importlib.util.find_spec("pyarrow") or
    importlib.util.find_spec("fastparquet") else "DataFrame.to_parquet needs pyarrow or fastparquet (not installed)",
}


def _entries() -> list[Any]:
    out = []
    for kind, methods in PURE_METHODS.items():
        for method in sorted(methods):
            marks = []
            if (kind, method) in KNOWN_WRONG:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[kind, method]))
            out.append(pytest.param(kind, method, marks=marks, id=f"{kind.value}.{method}"))
    return out


# -- running ---------------------------------------------------------------------------------------

@dataclass
class _Outcome:
    succeeded: list[str] = field(default_factory=list)
    mutated: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def _consume(result: Any) -> None:
    """Run a lazy result (a generator, a dict view) to its end: it may mutate as it goes."""
    if isinstance(result, (Iterator, KeysView, ValuesView, ItemsView)):
        for _ in result:
            pass


def _method_of(value: Any, method: str) -> Callable[..., Any] | None:
    try:
        found = getattr(value, method)
    except Exception:  # an accessor of the wrong dtype, a property that needs other data
        return None
    return found if callable(found) else None


def _attempt(receiver: Receiver, method: str, c: Call, tmp: Callable[[], Path],
             before: object = None) -> tuple[bool, str | None, str]:
    """Call ``method`` once; (whether it ran, what it changed if anything, the error if it failed).
    ``before`` is the receiver's state if the caller has it already (it is the costly part)."""
    args, kwargs = c.materialize(receiver, tmp)
    # a defaultdict argument gains the keys looked up in it; the analysis takes any defaultdict passed
    # to a call as changed (effects rule 6), whatever the method: not this table's business
    kept = ([a for a in args if not isinstance(a, collections.defaultdict)],
            {k: v for k, v in kwargs.items() if not isinstance(v, collections.defaultdict)})
    watched = {"receiver": receiver.watched, "arguments": kept}
    states = {"receiver": state(receiver.watched) if before is None else before,
              "arguments": state(watched["arguments"])}
    ok, error = True, ""
    with warnings.catch_warnings():
        # deprecation warnings are not what this test is about (pyproject turns them into errors)
        warnings.simplefilter("ignore")
        try:
            fn = _method_of(receiver.value, method)
            assert fn is not None
            _consume(fn(*args, **kwargs))
        except Exception as e:
            ok, error = False, f"{type(e).__name__}: {e}"[:200]
    changed = [what for what, v in watched.items() if states[what] != state(v, snapshot=False)]
    return ok, (", ".join(changed) or None), error


@functools.cache
def _sample(kind: Kind, name: str) -> Any:
    """One value of receiver ``name``, only to look its methods up (never called: nothing can change it)."""
    return RECEIVERS[kind][name]().value


def run_entry(kind: Kind, method: str, tmp: Callable[[], Path]) -> tuple[_Outcome, list[str]]:
    """Try ``method`` on every receiver of ``kind`` that has it; also returns the receivers that have it."""
    outcome, having = _Outcome(), []
    explicit = EXAMPLES.get(kind, {}).get(method, ())
    generic = () if method in WRITERS else GENERIC
    for name, build in RECEIVERS.get(kind, {}).items():
        if _method_of(_sample(kind, name), method) is None:
            continue
        receiver = build()
        having.append(name)
        # the builders are deterministic: one state of a fresh receiver stands for all of them
        pristine = state(receiver.watched)
        rng_before = global_rng_state()  # once per receiver: it is costly, and a change is rare
        # every explicit example (they exercise different arguments), then generic ones until a few ran:
        # a single generic success may be a no-op (``s.discard(0)``, ``d.update()``) even for a mutator
        ran = 0
        for i, c in enumerate(itertools.chain(explicit, generic)):
            if ran >= (1 if explicit else GENERIC_SUCCESSES) and i >= len(explicit):
                break
            ok, changed, error = _attempt(receiver, method, c, tmp, pristine)
            where = f"{name}.{method}{c!r}"
            if changed:
                outcome.mutated.append(f"{where} changed {changed}" + ("" if ok else f" (and raised {error})"))
                receiver = build()  # the next attempt starts from an unchanged value again
            if ok:
                outcome.succeeded.append(where)
                ran += 1
            elif not ran:
                outcome.failures[name] = f"{where}: {error}"
        if not _same_rng(global_rng_state(), rng_before) and (kind, method) not in RNG_RECORDED:
            outcome.mutated.append(f"{name}.{method} changed the global random generator (with "
                                   f"{'; '.join(s for s in outcome.succeeded if s.startswith(name + '.'))})")
            np.random.set_state(rng_before[0])  # leave the generators as the test found them
            random.setstate(rng_before[1])
    return outcome, having


@pytest.mark.parametrize(("kind", "method"), _entries())
def test_pure_method_changes_nothing(kind: Kind, method: str, tmp_path: Path) -> None:
    skip = _SKIPPED.get((kind, method))
    if skip is not None and (reason := skip()) is not None:
        pytest.skip(reason)
    assert kind in RECEIVERS, f"no representative values of kind {kind.value}: add them to RECEIVERS"
    counter = itertools.count()
    outcome, having = run_entry(kind, method, lambda: tmp_path / f"out{next(counter)}")
    assert having, f"no {kind.value} receiver has a method {method!r} ({', '.join(RECEIVERS[kind])})"
    assert not outcome.mutated, "\n".join(outcome.mutated)
    assert outcome.succeeded, (f"no call of {kind.value}.{method} ran: add an example to EXAMPLES\n"
                               + "\n".join(outcome.failures.values()))


def test_examples_and_known_wrong_name_table_entries() -> None:
    """An example or an xfail for a method the table no longer lists is stale: remove it with the entry."""
    stale = [f"EXAMPLES {k.value}.{m}" for k, ex in EXAMPLES.items() for m in ex if m not in PURE_METHODS.get(k, ())]
    stale += [f"KNOWN_WRONG {k.value}.{m}" for k, m in KNOWN_WRONG if m not in PURE_METHODS.get(k, ())]
    assert not stale, stale


# -- the inverse: mutating methods are mutating, and not in the table -----------------------------

@dataclass(frozen=True)
class Mutating:
    kind: Kind
    receiver: Callable[[], Any]
    method: str
    call: Call = field(default_factory=call)


MUTATING: tuple[Mutating, ...] = (
    Mutating(Kind.LIST, lambda: [1, 2], "append", call(3)),
    Mutating(Kind.DICT, lambda: {"a": 1}, "update", call({"b": 2})),
    Mutating(Kind.NDARRAY, lambda: np.array([3.0, 1.0, 2.0]), "sort"),
    Mutating(Kind.NDARRAY, lambda: np.zeros((2, 2)), "fill", call(7.0)),
    Mutating(Kind.PANDAS, _numeric_frame, "update", call(pd.DataFrame({"a": [9.0]}, index=[10]))),
    Mutating(Kind.PANDAS, _series, "update", call(pd.Series([9.0], index=[0]))),
    Mutating(Kind.PANDAS, _frame, "insert", call(0, "new", 1)),
    Mutating(Kind.PANDAS, _frame, "pop", call("num")),
    Mutating(Kind.SET, lambda: {1, 2}, "add", call(3)),
    Mutating(Kind.DEQUE, lambda: collections.deque([1, 2, 3]), "rotate", call(1)),
    Mutating(Kind.DICT, lambda: collections.OrderedDict([("a", 1), ("b", 2)]), "move_to_end", call("a")),
    Mutating(Kind.DICT, lambda: collections.Counter("abc"), "subtract", call("a")),
)


@pytest.mark.parametrize("m", MUTATING, ids=lambda m: f"{m.kind.value}.{m.method}")
def test_mutating_method_is_not_pure(m: Mutating, tmp_path: Path) -> None:
    value = m.receiver()
    receiver = Receiver(value, (value,), m.receiver)
    ok, changed, error = _attempt(receiver, m.method, m.call, lambda: tmp_path / "out")
    assert ok, error
    assert changed is not None and "receiver" in changed, f"{m.method} did not change its receiver"
    assert m.method not in PURE_METHODS[m.kind]
    for kind in Kind:
        assert not is_pure_method(ValueType(kind), m.method, exact=False), (kind, m.method)


def test_fingerprint_sees_deep_changes() -> None:
    """The fingerprints the test relies on notice a change deep inside a value."""
    for make, change in [
        (_frame, lambda df: df.attrs["source"].append("x")),
        (_frame, lambda df: setattr(df.index, "name", "r")),
        (_series, lambda s: setattr(s, "name", "other")),
        (_frame, lambda df: setattr(df.columns, "name", "c")),
        (lambda: pd.Index([1, 2]), lambda i: setattr(i, "name", "n")),
        (_frame, lambda df: df.loc.__setitem__((0, "num"), 9)),
        (_frame, lambda df: df.__setitem__("kind", df["kind"].astype(str))),  # same values, other dtype
        (_series, lambda s: s.flags.__setattr__("allows_duplicate_labels", False)),
        (_structured, lambda a: a.__setitem__(0, (9, 9.0))),
        (lambda: np.zeros(3), lambda a: a.setflags(write=False)),
        (lambda: (1, [2]), lambda t: t[1].append(3)),
        (lambda: {"a": 1, "b": 2}, lambda d: d.update({"b": d.pop("a")})),  # same items, other order
        (lambda: collections.defaultdict(list), lambda d: d.__getitem__("a")),
        (lambda: bytearray(b"ab"), lambda b: b.reverse()),
    ]:
        value = make()
        before = state(value)
        assert before == state(value, snapshot=False), make  # unchanged: equal
        change(value)
        assert before != state(value, snapshot=False), make


#: (kind, receiver, method) of table entries that iterate an argument: given an iterator, they
#: advance it. The main test passes lists; an iterator argument is the analysis's to see (like
#: ``list(it)`` in rule 7), not the table's: an iterator is never transferable across a cut.
ITERATING: tuple[tuple[Kind, Callable[[], Any], str], ...] = (
    (Kind.STR, lambda: ",", "join"),
    (Kind.BYTES, lambda: b",", "join"),
    (Kind.SET, lambda: {1}, "union"),
    (Kind.SET, lambda: {1}, "issubset"),
    (Kind.FROZENSET, lambda: frozenset({1}), "isdisjoint"),
    (Kind.PANDAS, lambda: pd.Series([1, 2]), "isin"),
    (Kind.PANDAS, lambda: pd.Index([1]), "union"),
)


@pytest.mark.parametrize(("kind", "make", "method"), ITERATING, ids=[f"{k.value}.{m}" for k, _, m in ITERATING])
def test_pure_method_advances_an_iterator_argument(kind: Kind, make: Callable[[], Any], method: str) -> None:
    items = [b"a", b"b"] if kind is Kind.BYTES else ["a", "b"] if kind is Kind.STR else [2, 3]
    it = iter(items)
    getattr(make(), method)(it)
    assert next(it, None) is None, f"{kind.value}.{method} did not consume its iterator argument"


# -- aliasing: a pure ndarray method whose result writes through to the receiver is a view method --

#: ndarray methods whose result may share writable memory with the receiver, not in VIEW_METHODS
KNOWN_UNSEEN_VIEWS: Mapping[str, str] = {}


def _arrays(result: Any) -> Iterator[np.ndarray]:
    if isinstance(result, np.ndarray):
        yield result
    elif isinstance(result, tuple):
        for r in result:
            yield from _arrays(r)


@pytest.mark.parametrize("method", [
    pytest.param(m, id=f"ndarray.{m}", marks=[pytest.mark.xfail(strict=True, reason=KNOWN_UNSEEN_VIEWS[m])]
                 if m in KNOWN_UNSEEN_VIEWS else [])
    for m in sorted(PURE_METHODS[Kind.NDARRAY])])
def test_ndarray_result_aliases_only_through_view_methods(method: str, tmp_path: Path) -> None:
    """A result that shares writable memory with the receiver lets a later ``b[i] = v`` change the
    receiver: the analysis sees that only for :data:`~scadc.analysis.effects.VIEW_METHODS` (rule A3)."""
    counter = itertools.count()
    views = []
    for name, build in RECEIVERS[Kind.NDARRAY].items():
        receiver = build()
        for c in itertools.chain(EXAMPLES[Kind.NDARRAY].get(method, ()), () if method in WRITERS else GENERIC):
            args, kwargs = c.materialize(receiver, lambda: tmp_path / f"out{next(counter)}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    result = getattr(receiver.value, method)(*args, **kwargs)
                except Exception:
                    continue
            if any(r.flags.writeable and np.shares_memory(r, receiver.value) for r in _arrays(result)):
                views.append(f"{name}.{method}{c!r}")
    assert method in VIEW_METHODS or method in VIEW_IF_NOT_COPIED or not views, \
        f"writable views not in VIEW_METHODS: {views}"
