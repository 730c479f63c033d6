"""The tables behind alias rule A10 of :mod:`scadc.analysis.effects` and the plain-data rules T7/T8
of :mod:`scadc.analysis.types`: each row is checked against numpy, pandas and Python themselves,
and the analysis is checked to alias exactly where the tables say it must.
"""

from __future__ import annotations

import copy
import math
import textwrap
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scadc.analysis import analyze
from scadc.analysis.effects import (
    ARGUMENT_DUNDER_CALLS,
    FRESH_CALLS,
    NDARRAY_FRESH_METHODS,
    NUMPY_MAY_RETURN_INPUT,
    PANDAS_HOLD_RECEIVER,
    copies_on_write,
)
from scadc.analysis.types import NUMPY_NUMERIC


def _arrays(found: Any) -> list[np.ndarray]:
    if isinstance(found, np.ndarray):
        return [found]
    if isinstance(found, (list, tuple)):
        return [a for f in found for a in _arrays(f)]
    return []


#: numpy function -> a call on a float array ``a`` (2-D, 4 x 6) whose result is ``a`` or a view of it
MAY_RETURN_INPUT: dict[str, Callable[[np.ndarray], Any]] = {
    "flip": np.flip, "fliplr": np.fliplr, "flipud": np.flipud, "rot90": np.rot90, "diagonal": np.diagonal,
    "diag": np.diag, "real": np.real, "imag": lambda a: np.imag(a.view(complex)),
    "ascontiguousarray": np.ascontiguousarray, "asfortranarray": lambda a: np.asfortranarray(a[0]),
    "require": np.require, "asarray_chkfinite": np.asarray_chkfinite, "asmatrix": np.asmatrix,
    "matrix": lambda a: np.matrix(a, copy=False), "trim_zeros": lambda a: np.trim_zeros(a[0]),
    "rollaxis": lambda a: np.rollaxis(a, 1), "squeeze": np.squeeze, "broadcast_arrays": np.broadcast_arrays,
    "split": lambda a: np.split(a, 2), "array_split": lambda a: np.array_split(a, 3),
    "hsplit": lambda a: np.hsplit(a, 2), "vsplit": lambda a: np.vsplit(a, 2),
    "dsplit": lambda a: np.dsplit(a[:, :, None].repeat(2, axis=2), 2),
    "meshgrid": lambda a: np.meshgrid(a[0], copy=False), "nan_to_num": lambda a: np.nan_to_num(a, copy=False),
    "real_if_close": np.real_if_close, "matrix_transpose": np.matrix_transpose, "permute_dims": np.permute_dims,
    "unstack": np.unstack, "as_strided": np.lib.stride_tricks.as_strided,
    "sliding_window_view": lambda a: np.lib.stride_tricks.sliding_window_view(a, (2, 2)),
    "ndarray": lambda a: np.ndarray(a.shape, a.dtype, a.data),
    "fromiter": None,  # listed as a module-like name: it is made from an iterator of objects
}


@pytest.mark.parametrize("name", sorted(n for n, f in MAY_RETURN_INPUT.items() if f is not None))
def test_numpy_functions_that_may_return_their_input(name: str) -> None:
    """A10 (b): each listed function gives back its input or a view of it: never taken as fresh."""
    a = np.arange(1.0, 25.0).reshape(4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix
        found = MAY_RETURN_INPUT[name](a)
    assert name in NUMPY_MAY_RETURN_INPUT
    arrays = _arrays(found)
    # dsplit is given a new 3-D array: its pieces are views of that one
    assert arrays and (name == "dsplit" or any(np.shares_memory(x, a) for x in arrays))


#: method -> a call on a plain float array
FRESH_METHODS: dict[str, Callable[[np.ndarray], Any]] = {
    "copy": lambda a: a.copy(), "astype": lambda a: a.astype(np.float32), "flatten": lambda a: a.flatten(),
    "sum": lambda a: a.sum(axis=0), "mean": lambda a: a.mean(axis=0), "std": lambda a: a.std(axis=0),
    "var": lambda a: a.var(axis=0), "min": lambda a: a.min(axis=0), "max": lambda a: a.max(axis=0),
    "prod": lambda a: a.prod(axis=0), "cumsum": lambda a: a.cumsum(), "cumprod": lambda a: a.cumprod(),
    "argmax": lambda a: a.argmax(axis=0), "argmin": lambda a: a.argmin(axis=0), "argsort": lambda a: a.argsort(),
    "round": lambda a: a.round(), "clip": lambda a: a.clip(2, 5), "dot": lambda a: a.dot(a.T),
    "take": lambda a: a.take([0, 1]), "repeat": lambda a: a.repeat(2), "all": lambda a: a.all(axis=0),
    "any": lambda a: a.any(axis=0), "nonzero": lambda a: a.nonzero(), "searchsorted": lambda a: a[0].searchsorted(3),
    "compress": lambda a: a.compress([True, False, True, False], axis=0), "trace": lambda a: a.trace(),
    "ptp": lambda a: np.ptp(a, axis=0), "tolist": lambda a: a.tolist(), "tobytes": lambda a: a.tobytes(),
    "item": lambda a: a.item(0), "argpartition": lambda a: a[0].argpartition(2),
    "choose": lambda a: np.array([0, 1, 0, 1, 0, 1]).choose([a[0], a[1]]),
}


def test_fresh_methods_table_is_covered() -> None:
    assert set(FRESH_METHODS) == NDARRAY_FRESH_METHODS


@pytest.mark.parametrize("method", sorted(FRESH_METHODS))
def test_methods_of_a_plain_array_that_make_new_data(method: str) -> None:
    """A10 (b): on a float array, each listed method's result shares no memory with it."""
    a = np.arange(1.0, 25.0).reshape(4, 6)
    found = FRESH_METHODS[method](a)
    assert not any(np.shares_memory(x, a) for x in _arrays(found))


class Box:
    """An object that changes: what an object array may hold."""

    def __init__(self, v: int) -> None:
        self.v = v

    def __lt__(self, other: Box) -> bool:
        return self.v < other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Box) and self.v == other.v

    __hash__ = object.__hash__


NUMERIC_CALLS: dict[str, Callable[[np.ndarray], Any]] = {
    "arange": lambda o: np.arange(3), "zeros": lambda o: np.zeros(3), "ones": lambda o: np.ones(3),
    "empty": lambda o: np.empty(3), "eye": lambda o: np.eye(2), "identity": lambda o: np.identity(2),
    "linspace": lambda o: np.linspace(0, 1, 3), "logspace": lambda o: np.logspace(0, 1, 3),
    "geomspace": lambda o: np.geomspace(1, 2, 3), "bincount": lambda o: np.bincount([0, 1, 1]),
    "argsort": np.argsort, "argmax": np.argmax, "argmin": np.argmin, "argwhere": np.argwhere,
    "nonzero": np.nonzero, "flatnonzero": np.flatnonzero, "count_nonzero": np.count_nonzero,
    "isnan": lambda o: np.isnan(np.array([1.0])), "isinf": lambda o: np.isinf(np.array([1.0])),
    "isfinite": lambda o: np.isfinite(np.array([1.0])), "isin": lambda o: np.isin(o, o[:1]),
    "in1d": lambda o: np.isin(o, o[:1]).ravel(), "searchsorted": lambda o: np.searchsorted(np.sort(o), o[:1]),
    "digitize": lambda o: np.digitize([0.5], [0.0, 1.0]), "indices": lambda o: np.indices((2, 2)),
    "tri": lambda o: np.tri(2), "zeros_like": np.zeros_like, "ones_like": np.ones_like, "empty_like": np.empty_like,
    "isclose": lambda o: np.isclose([1.0], [1.0]), "array_equal": lambda o: np.array_equal(o, o),
    "allclose": lambda o: np.allclose([1.0], [1.0]), "signbit": lambda o: np.signbit(np.array([-1.0])),
    "lexsort": lambda o: np.lexsort((o,)), "argpartition": lambda o: np.argpartition(o, 1),
    "shape": np.shape, "ndim": np.ndim, "size": np.size,
}


def test_numeric_table_is_covered() -> None:
    assert set(NUMERIC_CALLS) == NUMPY_NUMERIC


@pytest.mark.parametrize("name", sorted(NUMERIC_CALLS))
def test_numpy_functions_whose_result_holds_no_object(name: str) -> None:
    """T7: given an object array of changeable objects, the result holds none of them."""
    objects = np.array([Box(3), Box(1), Box(2)], dtype=object)
    found = NUMERIC_CALLS[name](objects)
    held = [x for a in _arrays(found) if a.dtype == object for x in a.ravel()]
    held += [found] if isinstance(found, Box) else []
    assert not any(isinstance(x, Box) for x in held)


class Same:
    """Its arithmetic dunders return the object itself: what ARGUMENT_DUNDER_CALLS guard against."""

    def __abs__(self) -> Same:
        return self

    def __round__(self, n: int | None = None) -> Same:
        return self

    def __pow__(self, other: object) -> Same:
        return self

    def __divmod__(self, other: object) -> tuple[Same, Same]:
        return self, self

    def __radd__(self, other: object) -> Same:
        return self

    def __floor__(self) -> Same:
        return self

    def __ceil__(self) -> Same:
        return self

    def __trunc__(self) -> Same:
        return self

    def __lt__(self, other: object) -> bool:
        return False

    def __rmul__(self, other: object) -> Same:
        return self


DUNDER_CALLS: dict[str, Callable[[Same], Any]] = {
    "builtins.abs": abs, "builtins.round": round, "builtins.divmod": lambda x: divmod(x, 1)[0],
    "builtins.pow": lambda x: pow(x, 2), "builtins.min": lambda x: min([x]), "builtins.max": lambda x: max([x]),
    "builtins.sum": lambda x: sum([x]), "builtins.next": lambda x: next(iter([x])),
    "builtins.getattr": lambda x: getattr(type("H", (), {"x": x})(), "x"),  # noqa: B009 - the call itself
    "math.floor": math.floor,
    "math.ceil": math.ceil, "math.trunc": math.trunc, "math.prod": lambda x: math.prod([x]),
}


@pytest.mark.parametrize("name", sorted(DUNDER_CALLS))
def test_calls_whose_result_may_be_their_argument(name: str) -> None:
    """A10 (a): typed as numbers, these give back whatever their argument's dunder gives."""
    assert name in ARGUMENT_DUNDER_CALLS
    x = Same()
    assert DUNDER_CALLS[name](x) is x
    assert set(DUNDER_CALLS) == ARGUMENT_DUNDER_CALLS


def test_advanced_indexing_copies_and_a_0d_index_does_not() -> None:
    """A11: an index that is a list or an array copies; a numpy integer (what a draw without
    ``size=`` gives, typed an ndarray too) indexes as an int (a view), which is why only surely-array
    indexes count."""
    a = np.arange(6.0).reshape(2, 3)
    g = np.random.default_rng(1)
    assert not np.shares_memory(a[[0, 1]], a)
    assert not np.shares_memory(a[np.arange(1)], a)
    assert not np.shares_memory(a[g.choice(2, size=1)], a)
    assert not np.shares_memory(a[g.permutation(2)], a)
    assert not np.shares_memory(a[np.nonzero(a[:, 0] > 0)], a)
    assert np.shares_memory(a[g.integers(2)], a)


def test_deepcopy_shares_nothing() -> None:
    assert {"copy.deepcopy"} == FRESH_CALLS
    a = [[1], {"k": [2]}]
    b = copy.deepcopy(a)
    assert b[0] is not a[0] and b[1]["k"] is not a[1]["k"]  # type: ignore[index]


def test_pandas_methods_that_hold_their_receiver() -> None:
    """A10 (b): these see later changes of the receiver (or are a part of it)."""
    df = pd.DataFrame({"k": [1, 1, 2], "a": [1.0, 2.0, 3.0]})
    assert df.groupby("k").obj is df
    assert df.rolling(2).obj is df
    assert df.expanding().obj is df
    assert df.ewm(com=1).obj is df
    held = [df]
    assert df.pipe(lambda d: held) is held  # whatever the function returns, made from the frame
    assert {"groupby", "rolling", "expanding", "ewm", "pipe"} <= PANDAS_HOLD_RECEIVER


def test_a_pandas_copy_shares_the_objects_of_object_columns() -> None:
    """T8: why a frame with object columns is never plain: its copies hold the same objects."""
    df = pd.DataFrame({"c": [[1], [2]]})
    d2 = df.copy()
    d2["c"][0].append(5)
    assert df["c"][0] == [1, 5]


def _aliases(tmp_path: Path, body: str, head: str = "import numpy as np\nimport pandas as pd\n") -> set[frozenset[str]]:
    source = f"{head}\n\ndef main():\n{textwrap.indent(textwrap.dedent(body).strip(), '    ')}\n\n\n" \
             'if __name__ == "__main__":\n    main()\n'
    app = tmp_path / "app.py"
    app.write_text(source)
    return set(analyze(str(app)).aliases)


#: (name, body of main, the alias pair the analysis must find, or None when the two must not alias)
ANALYSIS_CASES = [
    ("arithmetic_on_a_plain_array", "a = np.arange(5.0)\nb = a * 2 + 1\nprint(a, b)", None),
    ("copy_of_a_plain_array", "a = np.arange(5.0)\nb = a.copy()\nprint(a, b)", None),
    ("copy_of_an_object_array", "a = np.empty(2, dtype=object)\nb = a.copy()\nprint(a, b)", ("a", "b")),
    ("flip_is_a_view", "a = np.arange(5.0)\nb = np.flip(a)\nprint(a, b)", ("a", "b")),
    ("out_is_the_result", "a = np.arange(5.0)\nc = np.zeros(5)\nb = np.add(a, 1, out=c)\nprint(a, b, c)",
     ("b", "c")),
    ("generator_draws", "g = np.random.default_rng(1)\na = g.normal(size=3)\nb = g.permutation(a)\nprint(a, b)",
     None),
    ("len_is_a_number", "a = [[1], [2]]\nn = len(a)\nprint(a, n)", None),
    ("list_copy", "a = [[1], [2]]\nb = list(a)\nprint(a, b)", ("a", "b")),
    ("list_concatenation", "a = [[1], [2]]\nb = a + [[3]]\nprint(a, b)", ("a", "b")),
    ("comprehension", "a = [[1], [2]]\nb = [x for x in a]\nprint(a, b)", ("a", "b")),
    ("comprehension_of_numbers", "a = [[1], [2]]\nb = [len(x) for x in a]\nprint(a, b)", None),
    ("plain_frame_copy", 'df = pd.DataFrame({"x": np.arange(3.0)})\nd2 = df.copy()\nprint(df, d2)', None),
    ("frame_that_gains_objects", 'df = pd.DataFrame({"x": np.arange(2.0)})\ndf["c"] = [[1], [2]]\n'
                                 'd2 = df.copy()\nprint(df, d2)', ("d2", "df")),
    ("groupby_holds_the_frame", 'df = pd.DataFrame({"x": np.arange(3.0)})\ng = df.groupby("x")\nprint(df, g)',
     ("df", "g")),
    ("advanced_index_copies", "a = np.arange(6.0)\nb = a[[0, 2]]\nc = a[np.arange(2)]\nprint(a, b, c)", None),
    ("drawn_index_copies", "g = np.random.default_rng(1)\na = np.arange(6.0)\nb = a[g.choice(6, size=2)]\n"
                           "print(a, b)", None),
    ("basic_index_is_a_view", "a = np.arange(6.0).reshape(2, 3)\nb = a[1]\nprint(a, b)", ("a", "b")),
    ("drawn_scalar_index_is_a_view", "g = np.random.default_rng(1)\na = np.arange(6.0).reshape(2, 3)\n"
                                     "b = a[g.integers(2)]\nprint(a, b)", ("a", "b")),
    ("tuple_of_plain_arrays", "a = np.arange(3.0)\nb = np.arange(3.0)\np = (a, b)\nprint(a, b, p)", ("a", "p")),
    ("unpacked_items_of_plain_arrays", "s = np.arange(4)\nd = np.arange(4)\nk = s != d\ns, d = s[k], d[k]\n"
                                       "print(s, d)", ("d", "s")),
    ("mean_of_a_list_of_numbers", "scores = []\nfor i in range(3):\n    scores.append(i * 0.5)\n"
                                  "m = np.mean(scores)\nprint(m, scores)", None),
    ("sum_of_a_list_of_a_range", "xs = list(range(1000))\ntotal = sum(xs)\nprint(total, len(xs))", None),
    ("sum_of_a_list_of_lists", "xs = list([[1], [2]])\ntotal = sum(xs, [])\nprint(total, len(xs))",
     ("total", "xs")),
    ("mean_of_a_list_that_escapes", "scores = []\nother = scores\nother.append([1])\nm = np.max(scores)\n"
                                    "print(m, scores)", ("m", "scores")),
]


@pytest.mark.parametrize(("body", "pair"), [c[1:] for c in ANALYSIS_CASES], ids=[c[0] for c in ANALYSIS_CASES])
def test_which_results_alias_their_sources(tmp_path: Path, body: str, pair: tuple[str, str] | None) -> None:
    classes = _aliases(tmp_path, body)
    if pair is None:
        assert not classes, classes
    else:
        assert any(set(pair) <= c for c in classes), classes


def test_a_helper_result_holds_only_what_it_returns(tmp_path: Path) -> None:
    """A10 (c): read with the call's argument types, a helper's result holds the argument it returns
    a part of, and not the one it only reads."""
    head = "import numpy as np\n\n\ndef first(xs, k):\n    return xs[0]\n\n\ndef total(xs):\n    return sum(xs)\n"
    classes = _aliases(tmp_path, "a = [[1], [2]]\nk = [3]\nf = first(a, k)\nt = total(np.arange(3.0))\n"
                                 "print(a, k, f, t)", head)
    assert any({"a", "f"} <= c for c in classes) and not any("k" in c or "t" in c for c in classes), classes


@pytest.mark.parametrize(("version", "expected"), [
    ("3.1.1", True), ("3.0.0", True), ("10.0", True), ("2.2.3", False), ("1.5.3", False), ("3.0.0rc1", True),
    (None, False), ("", False), ("dev", False)])
def test_pandas_tables_hold_only_where_pandas_copies_on_write(version: str | None, expected: bool) -> None:
    """pandas 2 hands out views (``df["a"]`` changed in place changes ``df``) unless the program turns
    copy-on-write on; the tables that call a pandas result fresh (T8) are for pandas 3 and later."""
    assert copies_on_write(version) is expected


def test_the_installed_pandas_copies_on_write() -> None:
    # what the tables above assume of the pandas these tests (and the examples) run with
    series = pd.DataFrame({"a": [1, 2]})
    column = series["a"]
    column.iloc[0] = 99
    assert int(series["a"].iloc[0]) == 1
    assert copies_on_write(pd.__version__)
