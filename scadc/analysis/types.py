"""What kind of value a local holds, as far as the program text tells, and which methods of each
kind are known not to change anything.

The kinds exist for one purpose: deciding whether a method call may change its receiver (rule 8
of :mod:`scadc.analysis.effects`). A method is known-pure only when the receiver's kind is known
and the method is in that kind's row of :data:`PURE_METHODS`; everything else may mutate. So a
wrong guess of a kind can cost soundness only through a method name that is pure for the guessed
kind and mutating for the real one; the rules below keep those names out of the guess.

Typing rules (:func:`type_of`), per scope, flow-insensitively:

T1. Literals have their kind (``1`` number, ``"s"`` str, ``[...]`` list, ``{...}`` dict, ``{a}``
    set, ``(...)`` tuple, ``None``, ``True``); comprehensions build a list/set/dict.
T2. Calls: ``numpy.*`` gives an ndarray (or a numpy scalar, immutable; the random-generator
    factories give ``rng``; the splitting functions a list); ``pandas.*`` a pandas object; the
    program's class ``C(...)`` an instance of ``C``; a program function the join of what its
    ``return`` statements give; the builtins and ``collections`` constructors their kind;
    ``random.Random(...)`` ``rng``; anything else is unknown.
T3. Methods: an ndarray's methods give ndarrays (``tolist`` a list, ``item`` a number); a pandas
    object's give pandas objects (``to_numpy`` an ndarray, ``tolist`` a list, ``to_dict`` a dict);
    str/bytes methods give str/bytes, lists or numbers as Python documents; ``copy`` gives the
    receiver's kind; everything else is unknown.
T4. Attributes and subscripts of an ndarray are ndarrays (``.shape`` a tuple, ``.size`` a number);
    of a pandas object pandas objects (``.values`` an ndarray); of a str a str. Such a receiver
    is *inexact*: an element of an object array may be anything, so on it a name that mutates
    some builtin type (:data:`MUTATING_NAMES`) is never taken as pure.
T5. Operators: ndarray or pandas with numbers, lists, tuples, arrays gives ndarray / pandas;
    numbers give numbers; str/list/tuple concatenation and repetition their kind; set algebra
    sets; comparisons with ``in``/``is`` and ``not`` give numbers (bools); anything that meets
    an unknown operand is unknown.
T6. A name bound several times has the kind all its bindings agree on, else it is unknown; the
    solution is the least fixed point (so ``x = 0`` then ``x = x + 1`` is a number). Loop
    targets over ``range`` are numbers, over an ndarray ndarrays; other loop targets, ``with``
    targets, parameters (but ``self``) and names bound by ``except``/``import`` are unknown.
T7. An ndarray is *plain* (:attr:`ValueType.plain`: its elements are not Python objects that can
    change; alias rule A10 of :mod:`scadc.analysis.effects` reads it) when it is made by a numpy
    function of :data:`NUMPY_NUMERIC` (whatever its arguments) or by any other numpy function,
    a generator's method or an operator from *plain data* only (numbers, str, bytes, None, plain
    ndarrays, and tuples or list displays of those), in both cases without a ``dtype=`` that may
    be ``object`` (:func:`plain_dtype`). An array's dtype never changes after it is made, so
    its methods, attributes, items, views and loop targets stay plain; a name is plain only when
    all its bindings are (the join).
T8. A pandas object is plain likewise: made by a ``pandas.*`` function, a method of a plain one
    or an operator from plain data (plain ndarrays and pandas objects, displays of them, a
    ``random_state=``, a program function that returns immutable values). Unlike an array's, a
    frame's columns can change to hold objects later (``df["c"] = objects``): so
    :mod:`scadc.analysis.effects` trusts a plain pandas type only when no statement of the program
    may store anything but plain data into a pandas object (:func:`~scadc.analysis.effects.
    pandas_stays_plain`). Arrays made from pandas objects (``df.to_numpy()``) are never plain.
T9. A list of a scope is plain (holds plain data only: what a numpy call given it reads) when
    :func:`plain_lists` finds every binding, every store into it and every use of it harmless.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from types import MappingProxyType
from typing import Any, TypeVar, cast

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.names import Names, NamesProvider
from scadc.analysis.program import Program, helper_functions

__all__ = ["MUTATING_NAMES", "NO_SIGNATURES", "NUMPY_NUMERIC", "PURE_METHODS", "UNKNOWN", "Kind", "ProgramTypes",
           "ProgramTypesProvider", "Signatures", "TypesProvider", "ValueType", "comprehension_types", "infer_types",
           "is_plain_data", "is_pure_method", "makes_immutable", "plain_dtype", "plain_lists", "plain_type",
           "program_signatures", "type_of"]


class Kind(enum.Enum):
    NDARRAY = "ndarray"
    PANDAS = "pandas"
    STR = "str"
    BYTES = "bytes"
    BYTEARRAY = "bytearray"
    NUMBER = "number"
    NONE = "none"
    TUPLE = "tuple"
    FROZENSET = "frozenset"
    LIST = "list"
    DICT = "dict"
    #: a ``collections.defaultdict``: a lookup of a missing key inserts it (``d[k]``, and any call
    #: that looks keys up in a mapping it is given: ``str.format_map``, ``Series.map``)
    DEFAULTDICT = "defaultdict"
    SET = "set"
    DEQUE = "deque"
    RNG = "rng"
    CLASS = "class"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ValueType:
    """The kind of a value; ``cls`` names the program class of a ``CLASS`` instance."""

    kind: Kind
    cls: str | None = None
    #: a tuple's item types, when each is known
    items: tuple[ValueType, ...] | None = None
    #: an ndarray whose elements are known not to be Python objects that can change (its dtype is
    #: numeric, bool, str or bytes, fixed when it is made: T7): a copy of it shares nothing
    plain: bool = False

    def __str__(self) -> str:
        if self.items is not None:
            return f"tuple[{', '.join(map(str, self.items))}]"
        return f"class:{self.cls}" if self.kind is Kind.CLASS else self.kind.value


UNKNOWN = ValueType(Kind.UNKNOWN)
T = TypeVar("T")


class Signatures:
    """What the program's own code tells about values it makes (T2, T4): read-only once built.

    ``returns`` and ``attributes`` hold what a function returns and a class stores whatever its
    arguments are; :meth:`call` re-reads a function with its arguments' types at one call (so
    ``def noisy(v): return v + noise`` called with an ndarray returns an ndarray), memoised.
    """

    def __init__(self, returns: Mapping[str, ValueType], attributes: Mapping[str, ValueType],
                 functions: Mapping[str, cst.FunctionDef] | None = None, names: Names | None = None,
                 outer: Mapping[str, ValueType] | None = None, *, final: bool = True,
                 walks: dict[object, Any] | None = None) -> None:
        self.returns, self.attributes = returns, attributes
        #: what a walk of a function's code found (its bindings, returns, stores on self), by
        #: (what, node): the walks are the costly part, and the fixed points repeat them
        self.walks: dict[object, Any] | None = walks
        #: while :func:`program_signatures` solves, an attribute not yet stored is "nothing yet"
        self.final = final
        self._functions, self._names, self._outer = functions or {}, names, outer or {}
        self._memo: dict[tuple[str, tuple[ValueType, ...]], ValueType] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signatures) and (self.returns, self.attributes) == (other.returns, other.attributes)

    # equal by value but holding a growing memo: unhashable, as a class defining __eq__ is anyway;
    # typeshed declares __hash__ a method, hence the ignore
    __hash__ = None  # type: ignore[assignment]

    def walk(self, what: str, node: cst.CSTNode, walker: Callable[[], T]) -> T:
        """``walker()``, once per (what, node) for the signatures of one program."""
        if self.walks is None:
            return walker()
        key = (what, node)
        if key not in self.walks:
            self.walks[key] = walker()
        return cast("T", self.walks[key])  # what walker() gave for this key, so a T

    def call(self, name: str, args: tuple[ValueType, ...]) -> ValueType:
        generic = self.returns.get(name, UNKNOWN)
        fn = self._functions.get(name)
        if fn is None or self._names is None or all(a.kind is Kind.UNKNOWN for a in args):
            return generic
        key = (name, args)
        if key not in self._memo:
            self._memo[key] = generic  # a recursive call reads the generic answer
            self._memo[key] = _returned(fn, name, self._names, self._outer, self, args)
        return self._memo[key]


NO_SIGNATURES = Signatures({}, {})
_T: dict[Kind, ValueType] = {k: ValueType(k) for k in Kind if k is not Kind.CLASS}
_PLAIN = ValueType(Kind.NDARRAY, plain=True)
_PLAIN_PANDAS = ValueType(Kind.PANDAS, plain=True)
#: a list of plain data only (T9)
_PLAIN_LIST = ValueType(Kind.LIST, plain=True)
#: a tuple of ints of unknown length (``a.shape``): plain data (T7)
_INT_TUPLE = ValueType(Kind.TUPLE, plain=True)

#: every method name that changes its receiver on some common type (list, dict, set, bytearray,
#: deque, ndarray, file): on an inexact receiver (T4) these are never pure
MUTATING_NAMES = frozenset({
    "append", "extend", "insert", "remove", "pop", "popitem", "clear", "sort", "reverse", "update",
    "setdefault", "add", "discard", "difference_update", "intersection_update", "symmetric_difference_update",
    "fill", "resize", "put", "itemset", "setfield", "setflags", "partition", "byteswap", "appendleft",
    "extendleft", "rotate", "popleft", "write", "writelines", "seek", "truncate", "close", "send",
    "move_to_end", "subtract", "__setitem__", "__delitem__", "__iadd__",
})

_NDARRAY_PURE = frozenset({
    "all", "any", "argmax", "argmin", "argpartition", "argsort", "astype", "choose", "clip", "compress", "conj",
    "conjugate", "copy", "cumprod", "cumsum", "diagonal", "dot", "flatten", "getfield", "item", "max", "mean",
    "min", "nonzero", "prod", "ravel", "repeat", "reshape", "round", "searchsorted", "squeeze", "std", "sum",
    "swapaxes", "take", "tobytes", "tofile", "tolist", "trace", "transpose", "var", "view", "dump", "dumps",
})
_PANDAS_PURE = frozenset({
    # DataFrame / Series / Index (without inplace=True, which always mutates)
    "abs", "add", "add_prefix", "add_suffix", "agg", "aggregate", "align", "all", "any", "apply", "argmax",
    "argmin", "argsort", "asfreq", "asof", "assign", "astype", "between", "bfill", "clip", "combine",
    "combine_first", "compare", "convert_dtypes", "copy", "corr", "corrwith", "count", "cov", "cummax",
    "cummin", "cumprod", "cumsum", "describe", "diff", "div", "divide", "dot", "drop", "drop_duplicates",
    "droplevel", "dropna", "duplicated", "eq", "equals", "eval", "explode", "ffill", "fillna", "filter",
    "first_valid_index", "floordiv", "ge", "get", "groupby", "gt", "head", "idxmax", "idxmin", "infer_objects",
    "interpolate", "isin", "isna", "isnull", "items", "iterrows", "itertuples", "join", "keys", "kurt", "kurtosis",
    "last_valid_index", "le", "lt", "map", "mask", "max", "mean", "median", "melt", "memory_usage", "merge",
    "min", "mod", "mode", "mul", "multiply", "ne", "nlargest", "notna", "notnull", "nsmallest", "nunique",
    "pct_change", "pipe", "pivot", "pivot_table", "pow", "prod", "product", "quantile", "query", "radd", "rank",
    "rdiv", "reindex", "reindex_like", "rename", "rename_axis", "reorder_levels", "replace", "resample",
    "reset_index", "rmul", "rolling", "expanding", "ewm", "round", "rsub", "rtruediv", "sample", "select_dtypes",
    "sem", "set_axis", "set_index", "shift", "skew", "sort_index", "sort_values", "squeeze", "stack", "std", "sub",
    "subtract", "sum", "swaplevel", "tail", "to_csv", "to_dict", "to_frame", "to_json", "to_list", "to_numpy",
    "to_parquet", "to_pickle", "to_records", "to_string", "tolist", "transform", "transpose", "truediv",
    "truncate", "unique", "unstack", "value_counts", "var", "where", "xs", "nth", "cumcount", "ngroup", "size",
    "get_group", "first", "last", "ohlc", "factorize", "searchsorted", "get_loc", "get_indexer", "union",
    "intersection", "difference", "isocalendar", "strftime", "floor", "ceil", "normalize", "tz_localize",
    "tz_convert", "to_period", "to_timestamp", "day_name", "month_name",
    # the .str accessor
    "contains", "startswith", "endswith", "lower", "upper", "strip", "lstrip", "rstrip", "split", "rsplit",
    "len", "slice", "cat", "pad", "zfill", "extract", "extractall", "match", "fullmatch", "find", "findall",
    "title", "capitalize", "center", "ljust", "rjust", "repeat", "get_dummies", "isdigit", "isalpha",
    "isnumeric", "casefold", "swapcase", "removeprefix", "removesuffix", "wrap", "partition", "rpartition",
    # the .cat accessor (all return new objects since pandas 2.0)
    "add_categories", "remove_categories", "rename_categories", "reorder_categories", "set_categories",
    "as_ordered", "as_unordered", "remove_unused_categories",
})
_STR_PURE = frozenset({
    "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
    "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower",
    "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition",
    "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
    "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
})
_BYTES_PURE = frozenset({
    "capitalize", "center", "count", "decode", "endswith", "expandtabs", "find", "hex", "index", "isalnum",
    "isalpha", "isascii", "isdigit", "islower", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
    "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit",
    "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
})
_SET_PURE = frozenset({"copy", "difference", "intersection", "isdisjoint", "issubset", "issuperset",
                       "symmetric_difference", "union"})

#: kind -> methods known to change neither the receiver nor the arguments (each backed by a test
#: in tests/scadc/test_pure_methods.py); a method not listed for its receiver's kind may mutate
PURE_METHODS: Mapping[Kind, frozenset[str]] = {
    Kind.NDARRAY: _NDARRAY_PURE,
    Kind.PANDAS: _PANDAS_PURE,
    Kind.STR: _STR_PURE,
    Kind.BYTES: _BYTES_PURE,
    Kind.BYTEARRAY: _BYTES_PURE - {"join"} | {"copy"},
    Kind.NUMBER: frozenset({"as_integer_ratio", "bit_count", "bit_length", "conjugate", "is_integer", "hex",
                            "to_bytes"}),
    Kind.TUPLE: frozenset({"count", "index"}),
    Kind.FROZENSET: _SET_PURE,
    Kind.SET: _SET_PURE,
    Kind.LIST: frozenset({"copy", "count", "index"}),
    Kind.DEQUE: frozenset({"copy", "count", "index"}),
    Kind.DICT: frozenset({"copy", "get", "items", "keys", "values", "most_common", "elements", "total"}),
    Kind.DEFAULTDICT: frozenset({"copy", "get", "items", "keys", "values"}),
    Kind.NONE: frozenset(),
}


def is_pure_method(t: ValueType, method: str, *, exact: bool) -> bool:
    """``method`` called on a value of type ``t`` changes nothing (rule T4 for inexact receivers)."""
    if method not in PURE_METHODS.get(t.kind, frozenset()):
        return False
    return exact or method not in MUTATING_NAMES


_BUILTIN_KINDS = {
    **dict.fromkeys(("int", "float", "bool", "complex", "len", "round", "hash", "id", "ord", "abs", "divmod",
                     "isinstance", "issubclass", "callable", "hasattr"), Kind.NUMBER),
    **dict.fromkeys(("str", "repr", "format", "chr", "ascii", "hex", "bin", "oct"), Kind.STR),
    "list": Kind.LIST, "sorted": Kind.LIST, "dict": Kind.DICT, "set": Kind.SET, "frozenset": Kind.FROZENSET,
    "tuple": Kind.TUPLE, "bytes": Kind.BYTES, "bytearray": Kind.BYTEARRAY,
    "collections.Counter": Kind.DICT, "collections.OrderedDict": Kind.DICT, "collections.defaultdict": Kind.DEFAULTDICT,
    "collections.deque": Kind.DEQUE,
}
_NUMPY_RNG = frozenset({"default_rng", "Generator", "RandomState"})
_NUMPY_LISTS = frozenset({"split", "array_split", "hsplit", "vsplit", "dsplit", "meshgrid", "broadcast_arrays"})
#: numpy names whose result is neither an array nor a numpy scalar
_NUMPY_OTHER = frozenset({"load", "dtype", "nditer", "ndindex", "ndenumerate", "errstate", "vectorize",
                          "frompyfunc", "printoptions", "finfo", "iinfo", "SeedSequence", "memmap", "get_state",
                          "seterr", "geterr", "set_printoptions", "get_printoptions", "poly1d", "testing"})
_PANDAS_OTHER = frozenset({"option_context", "set_option", "get_option", "ExcelWriter", "HDFStore", "ExcelFile",
                           "options", "api", "testing", "read_excel", "NamedAgg", "Grouper", "IndexSlice"})
_STR_LISTS = frozenset({"split", "rsplit", "splitlines", "partition", "rpartition"})
_STR_NUMBERS = frozenset({"count", "find", "rfind", "index", "rindex", "startswith", "endswith"})


#: numpy functions whose result holds numbers or bools whatever they are given (T7): counts,
#: indices, tests, new arrays of a shape; each backed by tests/scadc/test_alias_tables.py
NUMPY_NUMERIC = frozenset({
    "arange", "zeros", "ones", "empty", "eye", "identity", "linspace", "logspace", "geomspace", "bincount",
    "argsort", "argmax", "argmin", "argwhere", "nonzero", "flatnonzero", "count_nonzero", "isnan", "isinf",
    "isfinite", "isin", "in1d", "searchsorted", "digitize", "indices", "tri", "zeros_like", "ones_like",
    "empty_like", "isclose", "array_equal", "allclose", "signbit", "lexsort", "argpartition", "shape",
    "ndim", "size",
})
#: ``dtype=`` names of numpy that are not ``object`` (T7)
_NUMPY_DTYPES = frozenset({
    "float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8",
    "bool_", "complex128", "complex64", "intp", "uintp", "double", "single", "half", "longlong", "float_",
    "int_", "str_", "bytes_", "datetime64", "timedelta64", "longdouble", "csingle", "cdouble",
})


def plain_type(t: ValueType | None, *, pandas: bool = False) -> bool:
    """A value of type ``t`` holds no object that could change besides itself, or is not even that
    (an immutable number, str, bytes or None; a tuple of such): T7's *plain data*. A plain pandas
    object counts only with ``pandas`` (its columns can gain objects later: T8)."""
    if t is None:
        return False
    if t.kind in (Kind.NUMBER, Kind.STR, Kind.BYTES, Kind.NONE):
        return True
    if t.kind is Kind.TUPLE:
        return t.plain or (t.items is not None and all(plain_type(i, pandas=pandas) for i in t.items))
    return (t.kind is Kind.NDARRAY or (pandas and t.kind is Kind.PANDAS) or (not pandas and t.kind is Kind.LIST)) \
        and t.plain


def _plain_data(e: cst.BaseExpression, env: _Env, *, pandas: bool = False, nested: bool = True) -> bool:
    """``e`` is plain data (T7): its type says so, or it is a list/tuple/dict display of plain data;
    with ``pandas`` (T8), also a plain pandas object, or a program function returning immutable
    values (``s.map(money)``), but a display inside a display is not (``pd.Series([[1], [2]])``
    holds lists; a dict display's values are columns, one level down)."""
    if isinstance(e, (cst.List, cst.Tuple, cst.Set)):
        return (nested or not pandas) and all(
            not isinstance(el, cst.StarredElement) and _plain_data(el.value, env, pandas=pandas, nested=False)
            for el in e.elements)
    if isinstance(e, cst.Dict):
        return (nested or not pandas) and all(
            isinstance(el, cst.DictElement) and _plain_data(el.key, env, pandas=pandas, nested=False) and
            _plain_data(el.value, env, pandas=pandas, nested=nested) for el in e.elements)
    if isinstance(e, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
        if _made_immutable(e.elt, env):
            return True
        local = _element_env(e, env)
        return not pandas and local is not None and _plain_data(e.elt, local, nested=False)
    if isinstance(e, cst.IfExp):
        return _plain_data(e.body, env, pandas=pandas, nested=nested) and \
            _plain_data(e.orelse, env, pandas=pandas, nested=nested)
    if isinstance(e, cst.DictComp):
        return _made_immutable(e.key, env) and _made_immutable(e.value, env)
    if pandas and (own := env.names.own(e)) is not None and own in env.signatures.returns and \
            not any(isinstance(s, cst.ClassDef) and s.name.value == own for s in env.names.program.module.body):
        found = env.signatures.returns[own]
        return plain_type(found) and found.kind is not Kind.NDARRAY
    return plain_type(_type(e, env)[0], pandas=pandas)


def is_plain_data(e: cst.BaseExpression, names: Names, env: Mapping[str, ValueType],
                  signatures: Signatures = NO_SIGNATURES) -> bool:
    """T8's plain data, for a value stored into a pandas object (:func:`_plain_data` with pandas)."""
    return _plain_data(e, _Env(names, {}, env, signatures), pandas=True)


def _element_type(comp: cst.ListComp | cst.SetComp | cst.GeneratorExp, env: _Env) -> ValueType | None:
    """The type of a comprehension's element (:func:`_element_env`)."""
    local = _element_env(comp, env)
    return _type(comp.elt, local)[0] if local is not None else None


def comprehension_types(comp: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp, names: Names,
                        env: Mapping[str, ValueType], signatures: Signatures = NO_SIGNATURES) -> dict[str, ValueType]:
    """The types of a comprehension's variables (:func:`_element_env`); {} when they cannot be typed."""
    local = _element_env(comp, _Env(names, {}, env, signatures))
    return {} if local is None else {k: v or UNKNOWN for k, v in local.local.items()}


def _element_env(comp: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp, env: _Env) -> _Env | None:
    """``env`` with a comprehension's variables typed by what they iterate (T6's loop rules: over
    ``range`` numbers, ``enumerate`` an index and an element); a variable that shadows a name of
    the scope hides it. None when a variable cannot be typed that way."""
    inner: dict[str, ValueType | None] = {}
    local = _Env(env.names, {**env.local, **inner}, env.outer, env.signatures)
    for_in: cst.CompFor | None = comp.for_in
    while for_in is not None:
        it, target = for_in.iter, for_in.target
        q = env.names.qualname(it.func) if isinstance(it, cst.Call) else None
        pairs: list[tuple[cst.BaseExpression, ValueType | None]]
        if q == "builtins.range":
            pairs = [(target, _T[Kind.NUMBER])]
        elif q == "builtins.enumerate" and isinstance(target, cst.Tuple) and len(target.elements) == 2 and \
                isinstance(it, cst.Call) and it.args:
            pairs = [(target.elements[0].value, _T[Kind.NUMBER]),
                     (target.elements[1].value, _element(_type(it.args[0].value, local)[0], _How.ELEMENT))]
        else:
            pairs = [(target, _element(_type(it, local)[0], _How.ELEMENT))]
        for t, found in pairs:
            if not isinstance(t, cst.Name):
                return None
            inner[t.value] = found if found is not None else UNKNOWN
        local = _Env(env.names, {**env.local, **inner}, env.outer, env.signatures)
        for_in = for_in.inner_for_in
    return local


#: builtins whose result is a new number or str, whatever they are given
_IMMUTABLE_BUILTINS = frozenset({"str", "int", "float", "bool", "complex", "len", "repr", "format", "ascii", "hex",
                                 "oct", "bin", "chr", "ord", "hash", "id", "isinstance", "callable"})


def makes_immutable(e: cst.BaseExpression, names: Names) -> bool:
    """``e`` makes a number or a str by its form alone (``int(x)``, ``f"{x}"``, ``str(x)[1:]``)."""
    return _made_immutable(e, _Env(names, {}, {}, NO_SIGNATURES))


def _made_immutable(e: cst.BaseExpression, env: _Env) -> bool:
    """``e`` makes a number or a str by its form alone (a comprehension's element: the types are per
    scope, and its variables' names may shadow locals of other types)."""
    if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.FormattedString,
                      cst.ConcatenatedString)):
        return True
    if isinstance(e, cst.Call):
        q = env.names.qualname(e.func) or ""
        return q.startswith("builtins.") and q.partition(".")[2] in _IMMUTABLE_BUILTINS
    if isinstance(e, cst.Subscript):
        return _made_immutable(e.value, env)
    if isinstance(e, cst.BinaryOperation):
        return _made_immutable(e.left, env) and _made_immutable(e.right, env)
    return False


def plain_dtype(e: cst.BaseExpression, names: Names) -> bool:
    """A ``dtype=`` value that is not ``object`` (T7): a numpy scalar type, ``int``/``float``/
    ``bool``/``complex``/``str``/``bytes``, a type code or structured spec of string literals
    without ``O``, or a module-level name bound once to ``np.dtype(...)`` of such a spec."""
    q = names.qualname(e)
    if q is not None:
        parts = q.split(".")
        return (parts[0] == "numpy" and len(parts) == 2 and parts[1] in _NUMPY_DTYPES) or q in (
            "builtins.int", "builtins.float", "builtins.bool", "builtins.complex", "builtins.str", "builtins.bytes")
    if isinstance(e, cst.Name):
        value = _module_value(names, e.value) if names.classify(e) == "module" else None
        return isinstance(value, cst.Call) and names.qualname(value.func) == "numpy.dtype" and \
            len(value.args) == 1 and _plain_spec(value.args[0].value)
    return _plain_spec(e)


def _plain_spec(e: cst.BaseExpression) -> bool:
    """A dtype spec of literals (``"f8"``, ``[("a", "i8"), ("s", "U16")]``) that names no object field."""
    if isinstance(e, cst.SimpleString):
        text = e.evaluated_value
        return isinstance(text, str) and "O" not in text and "object" not in text
    if isinstance(e, (cst.List, cst.Tuple)):
        return all(isinstance(el, cst.Element) and _plain_spec(el.value) for el in e.elements)
    return isinstance(e, cst.Integer)  # a shape in ("a", "f8", 3)


def _module_value(names: Names, name: str) -> cst.BaseExpression | None:
    """The value of ``name = value``, the only binding of a module-level name, else None."""
    found = [s.body[0] for s in names.program.module.body if isinstance(s, cst.SimpleStatementLine)
             and len(s.body) == 1 and isinstance(s.body[0], (cst.Assign, cst.AnnAssign))
             and any(isinstance(t, cst.Name) and t.value == name
                     for t in ([tt.target for tt in s.body[0].targets] if isinstance(s.body[0], cst.Assign)
                               else [s.body[0].target]))]
    if len(found) != 1:
        return None
    return found[0].value


def _plain_call(e: cst.Call, env: _Env, *, pandas: bool = False) -> bool:
    """Every argument is plain data, and a ``dtype=`` is not ``object`` (T7); with ``pandas`` (T8)
    plain pandas objects count, a ``random_state=`` is not data, and ``astype``'s first argument
    is a dtype."""
    for i, a in enumerate(e.args):
        if (a.keyword is not None and a.keyword.value in ("dtype", "dtypes")) or (
                pandas and i == 0 and isinstance(e.func, cst.Attribute) and e.func.attr.value == "astype"):
            if not plain_dtype(a.value, env.names):
                return False
        elif pandas and a.keyword is not None and a.keyword.value == "random_state":
            continue
        elif a.star or not _plain_data(a.value, env, pandas=pandas):
            return False
    return True


def _numpy_plain(parts: list[str], e: cst.Call, env: _Env) -> bool:
    """T7 for a call of ``numpy.*``."""
    if parts[-1] in NUMPY_NUMERIC and len(parts) == 2:
        return all(a.keyword is None or a.keyword.value != "dtype" or plain_dtype(a.value, env.names)
                   for a in e.args)
    return _plain_call(e, env)


def _join(a: ValueType | None, b: ValueType | None) -> ValueType | None:
    if a is None:
        return b
    if b is None or a == b:
        return a
    if (a.kind, a.cls, a.items) == (b.kind, b.cls, b.items):
        return replace(a, plain=False)  # T7: plain only if every binding is
    return UNKNOWN


class _Env:
    """What :func:`type_of` reads: the scope's solution so far, then fixed outer facts."""

    def __init__(self, names: Names, local: Mapping[str, ValueType | None], outer: Mapping[str, ValueType],
                 signatures: Signatures) -> None:
        self.names, self.local, self.outer, self.signatures = names, local, outer, signatures

    def name(self, n: str) -> ValueType | None:
        if n in self.local:
            return self.local[n]  # None: not solved yet (the optimistic start of T6)
        return self.outer.get(n, UNKNOWN)


def type_of(expr: cst.BaseExpression, names: Names, env: Mapping[str, ValueType],
            signatures: Signatures = NO_SIGNATURES) -> tuple[ValueType, bool]:
    """The type of ``expr`` where locals have the types ``env`` gives; and whether it is exact (T4)."""
    t, exact = _type(expr, _Env(names, {}, env, signatures))
    return (t or UNKNOWN), exact


def _type(e: cst.BaseExpression, env: _Env) -> tuple[ValueType | None, bool]:
    if isinstance(e, cst.Name):
        if e.value in ("True", "False"):
            return _T[Kind.NUMBER], True
        if e.value == "None":
            return _T[Kind.NONE], True
        return env.name(e.value), True
    if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary)):
        return _T[Kind.NUMBER], True
    if isinstance(e, cst.SimpleString):
        return _T[Kind.BYTES if "b" in e.prefix.lower() else Kind.STR], True
    if isinstance(e, cst.ConcatenatedString):
        return _type(e.left, env)
    if isinstance(e, cst.FormattedString):
        return _T[Kind.STR], True
    if isinstance(e, (cst.List, cst.ListComp)):
        return _T[Kind.LIST], True
    if isinstance(e, (cst.Dict, cst.DictComp)):
        return _T[Kind.DICT], True
    if isinstance(e, (cst.Set, cst.SetComp)):
        return _T[Kind.SET], True
    if isinstance(e, cst.Tuple):
        if any(isinstance(el, cst.StarredElement) for el in e.elements):
            return _T[Kind.TUPLE], True
        items = [_type(el.value, env)[0] for el in e.elements]
        known = tuple(i for i in items if i is not None)
        if len(known) != len(items):
            return None, True
        return ValueType(Kind.TUPLE, items=known), True
    if isinstance(e, cst.NamedExpr):
        return _type(e.value, env)
    if isinstance(e, cst.IfExp):
        return _join(_type(e.body, env)[0], _type(e.orelse, env)[0]), False
    if isinstance(e, cst.BooleanOperation):
        return _join(_type(e.left, env)[0], _type(e.right, env)[0]), False
    if isinstance(e, cst.UnaryOperation):
        return (_T[Kind.NUMBER], True) if isinstance(e.operator, cst.Not) else (_type(e.expression, env)[0], True)
    if isinstance(e, cst.BinaryOperation):
        return _binary(_type(e.left, env)[0], _type(e.right, env)[0]), True
    if isinstance(e, cst.Comparison):
        if all(isinstance(c.operator, (cst.In, cst.NotIn, cst.Is, cst.IsNot)) for c in e.comparisons):
            return _T[Kind.NUMBER], True
        kinds = [_type(e.left, env)[0], *(_type(c.comparator, env)[0] for c in e.comparisons)]
        if None in kinds:
            return None, True
        found = {k.kind for k in kinds if k is not None}
        for array in (Kind.PANDAS, Kind.NDARRAY):
            if array in found and found <= {array, Kind.NDARRAY, Kind.NUMBER, Kind.STR, Kind.LIST, Kind.TUPLE}:
                # an ndarray comparison gives bools, even of an object array (T7)
                return (_PLAIN if array is Kind.NDARRAY else _PLAIN_PANDAS), True
        return (_T[Kind.NUMBER] if found <= {Kind.NUMBER, Kind.STR, Kind.TUPLE, Kind.NONE} else UNKNOWN), True
    if isinstance(e, cst.Attribute):
        base, _ = _type(e.value, env)
        if base is None:
            return None, False
        q = env.names.qualname(e)
        if q is not None:
            return UNKNOWN, False
        if base.kind is Kind.CLASS:
            stored = env.signatures.attributes.get(f"{base.cls}.{e.attr.value}")
            return (UNKNOWN if stored is None and env.signatures.final else stored), False
        return _attribute(base, e.attr.value), False
    if isinstance(e, cst.Subscript):
        base, _ = _type(e.value, env)
        if base is None:
            return None, False
        if base.kind in (Kind.NDARRAY, Kind.PANDAS, Kind.STR):
            return base, False
        return UNKNOWN, False
    if isinstance(e, cst.Call):
        return _call(e, env), True
    return UNKNOWN, False


def _binary(a: ValueType | None, b: ValueType | None) -> ValueType | None:
    if a is None or b is None:
        return None
    ka, kb = a.kind, b.kind
    for array in (Kind.PANDAS, Kind.NDARRAY):
        if array in (ka, kb) and {ka, kb} <= {array, Kind.NDARRAY, Kind.NUMBER, Kind.LIST, Kind.TUPLE}:
            if array is Kind.NDARRAY and plain_type(a) and plain_type(b):
                return _PLAIN  # T7
            if array is Kind.PANDAS and plain_type(a, pandas=True) and plain_type(b, pandas=True):
                return _PLAIN_PANDAS  # T7
            return _T[array]
    if ka is kb and ka in (Kind.NUMBER, Kind.STR, Kind.BYTES, Kind.LIST, Kind.TUPLE, Kind.SET, Kind.FROZENSET,
                           Kind.DICT):
        return _T[ka]
    if {ka, kb} <= {Kind.NUMBER, Kind.STR} or {ka, kb} <= {Kind.NUMBER, Kind.LIST} or \
            {ka, kb} <= {Kind.NUMBER, Kind.TUPLE}:
        return _T[(ka if kb is Kind.NUMBER else kb)]  # repetition
    if ka is Kind.STR:
        return a  # "%s" % x
    return UNKNOWN


def _attribute(base: ValueType, attr: str) -> ValueType:
    if base.kind is Kind.NDARRAY:
        if attr in ("T", "real", "imag", "mT", "base"):
            return base
        if attr in ("shape", "strides"):
            return _INT_TUPLE
        if attr in ("size", "ndim", "nbytes", "itemsize"):
            return _T[Kind.NUMBER]
        return UNKNOWN
    if base.kind is Kind.PANDAS:
        if attr == "shape":
            return _INT_TUPLE
        if attr in ("size", "ndim", "empty"):
            return _T[Kind.NUMBER]
        if attr == "values":
            return _T[Kind.NDARRAY]
        if attr in ("attrs", "flags", "style", "plot", "sparse", "array"):
            return UNKNOWN
        return base  # columns, index, str, dt, cat, loc, iloc, at, iat, a column
    return UNKNOWN


def _call(e: cst.Call, env: _Env) -> ValueType | None:
    q = env.names.qualname(e.func)
    if q is not None:
        parts = q.split(".")
        name = env.names.own(e.func)
        if name is not None:
            if any(isinstance(s, cst.ClassDef) and s.name.value == name for s in env.names.program.module.body):
                return ValueType(Kind.CLASS, name)
            if any(a.keyword is not None or a.star for a in e.args):
                return env.signatures.returns.get(name, UNKNOWN)
            given = [_type(a.value, env)[0] for a in e.args]
            args = tuple(a for a in given if a is not None)
            if len(args) != len(given):
                return None
            return env.signatures.call(name, args)
        if parts[0] == "numpy":
            if len(parts) == 3 and parts[1] == "random" and parts[2] in _NUMPY_RNG:
                return _T[Kind.RNG]
            if parts[-1] in _NUMPY_LISTS:
                return _T[Kind.LIST]
            if parts[-1] in _NUMPY_OTHER or any(p in _NUMPY_OTHER for p in parts[1:-1]):
                return UNKNOWN
            return _PLAIN if _numpy_plain(parts, e, env) else _T[Kind.NDARRAY]
        if parts[0] == "pandas":
            if any(p in _PANDAS_OTHER for p in parts[1:]):
                return UNKNOWN
            return _PLAIN_PANDAS if _plain_call(e, env, pandas=True) else _T[Kind.PANDAS]  # T8
        if q in ("random.Random", "random.SystemRandom"):
            return _T[Kind.RNG]
        if parts[0] in ("math", "statistics") and len(parts) == 2:
            return _T[Kind.NUMBER]
        key = parts[1] if parts[0] == "builtins" and len(parts) == 2 else q
        if key == "sum" and len(e.args) == 1 and isinstance(e.args[0].value, (cst.GeneratorExp, cst.ListComp)):
            # T7: the sum of plain arrays is a new plain array (0 + a, then + b ...)
            elt = _element_type(e.args[0].value, env)
            if elt is not None and elt.kind is Kind.NDARRAY and elt.plain:
                return _PLAIN
        kind = _BUILTIN_KINDS.get(key)
        return _T[kind] if kind is not None else UNKNOWN
    if not isinstance(e.func, cst.Attribute):
        return UNKNOWN
    base, _ = _type(e.func.value, env)
    if base is None:
        return None
    if base.kind is Kind.CLASS:
        return env.signatures.returns.get(f"{base.cls}.{e.func.attr.value}", UNKNOWN)
    found = _method_result(base, e.func.attr.value)
    if base.kind is Kind.RNG and found.kind is Kind.NDARRAY and _plain_call(e, env):
        return _PLAIN  # T7: draws are numbers; choice()/permutation() of plain data are plain
    if found.kind is Kind.PANDAS and found.plain and not _plain_call(e, env, pandas=True):
        return _T[Kind.PANDAS]  # T8: ``df.assign(c=objects)``, ``s.apply(f)`` may hold new objects
    return found


def _method_result(base: ValueType, method: str) -> ValueType:
    k = base.kind
    if k is Kind.NDARRAY:
        if method == "item":  # an element of an object array may be anything
            return _T[Kind.NUMBER] if base.plain else UNKNOWN
        return _T[Kind.LIST] if method == "tolist" else base
    if k is Kind.PANDAS:
        if method in ("to_numpy", "to_records"):
            return _T[Kind.NDARRAY]
        if method in ("tolist", "to_list"):
            return _T[Kind.LIST]
        if method == "to_dict":
            return _T[Kind.DICT]
        if method in ("items", "iterrows", "itertuples", "keys", "pipe", "get"):
            return UNKNOWN
        return base
    if k in (Kind.STR, Kind.BYTES, Kind.BYTEARRAY):
        if method in _STR_LISTS:
            return _T[Kind.LIST]
        if method in _STR_NUMBERS or method.startswith("is"):
            return _T[Kind.NUMBER]
        if method == "encode":
            return _T[Kind.BYTES]
        if method in ("decode", "hex"):
            return _T[Kind.STR]
        return base if method in PURE_METHODS[k] else UNKNOWN
    if k is Kind.RNG:
        return UNKNOWN if method in ("spawn", "bit_generator") else _T[Kind.NDARRAY]
    if method == "copy" and k in (Kind.LIST, Kind.DICT, Kind.DEFAULTDICT, Kind.SET, Kind.DEQUE, Kind.BYTEARRAY):
        return base
    if k in (Kind.SET, Kind.FROZENSET) and method in _SET_PURE - {"isdisjoint", "issubset", "issuperset"}:
        return base
    return UNKNOWN


# -- the bindings of one scope (T6) --------------------------------------------------------------

class _How(enum.Enum):
    """How a binding's expression types the name it binds (T6)."""

    #: the name is bound to the expression's value
    VALUE = "value"
    #: ``x op= v``, given as the expression ``x op v``
    AUGMENTED = "augmented"
    #: the name takes the elements of what the expression gives (a loop target, a starred unpack)
    ELEMENT = "element"
    #: a loop target over ``range()``: a number
    RANGE_ELEMENT = "element of range"
    #: nothing tells (parameters, ``with``/``except`` targets, imports)
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class _Item:
    """The name is item ``index`` of ``count`` unpacked from the expression's value."""

    index: int
    count: int


_HowTyped = _How | _Item


class _Bindings(cst.CSTVisitor):
    """Each binding of a name in one scope's code, as (name, how to type it), and what its
    ``return`` statements return; nested scopes skipped (one walk: it is the costly part)."""

    def __init__(self, root: cst.CSTNode) -> None:
        self.root = root
        self.found: list[tuple[str, cst.BaseExpression | None, _HowTyped]] = []  # (name, expr, how)
        self.returned: list[cst.BaseExpression | None] = []
        self.generator = False

    def visit_Return(self, node: cst.Return) -> None:
        self.returned.append(node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        self.generator = True

    def _targets(self, target: cst.BaseExpression, value: cst.BaseExpression | None, how: _HowTyped) -> None:
        if isinstance(target, cst.Name):
            self.found.append((target.value, value, how))
        elif isinstance(target, (cst.Tuple, cst.List)):
            elements = [el.value for el in target.elements]
            if isinstance(value, (cst.Tuple, cst.List)) and how is _How.VALUE and len(value.elements) == len(elements) \
                    and not any(isinstance(el, cst.StarredElement) for el in (*target.elements, *value.elements)):
                for t, v in zip(elements, (el.value for el in value.elements), strict=True):
                    self._targets(t, v, how)
            elif how is _How.VALUE and not any(isinstance(el, cst.StarredElement) for el in target.elements):
                for i, t in enumerate(elements):
                    self._targets(t, value, _Item(i, len(elements)))
            else:
                for t in elements:
                    self._targets(t, value, _How.ELEMENT if how in (_How.VALUE, _How.ELEMENT) else how)
        elif isinstance(target, cst.StarredElement):
            self._targets(target.value, None, _How.UNKNOWN)

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._targets(t.target, node.value, _How.VALUE)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._targets(node.target, node.value, _How.VALUE if node.value is not None else _How.UNKNOWN)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):  # x op= v types as x = x op v
            self.found.append((node.target.value, cst.BinaryOperation(node.target, _binop(node.operator),
                                                                        node.value), _How.AUGMENTED))

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._targets(node.target, node.value, _How.VALUE)

    def visit_For(self, node: cst.For) -> None:
        self._for(node.target, node.iter)

    def _for(self, target: cst.BaseExpression, it: cst.BaseExpression) -> None:
        if isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "range":
            self._targets(target, cst.Integer("0"), _How.RANGE_ELEMENT)
        elif isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "enumerate" and \
                isinstance(target, cst.Tuple) and len(target.elements) == 2 and it.args:
            self._targets(target.elements[0].value, cst.Integer("0"), _How.RANGE_ELEMENT)
            self._targets(target.elements[1].value, it.args[0].value, _How.ELEMENT)
        elif isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "zip" and \
                isinstance(target, cst.Tuple) and not any(a.star for a in it.args) and \
                len(target.elements) == len(given := [a for a in it.args if a.keyword is None]):
            for t, a in zip(target.elements, given, strict=True):
                self._targets(t.value, a.value, _How.ELEMENT)
        else:
            self._targets(target, it, _How.ELEMENT)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and isinstance(node.asname.name, cst.BaseExpression):
            self._targets(node.asname.name, None, _How.UNKNOWN)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None and isinstance(node.name.name, cst.Name):
            self.found.append((node.name.name.value, None, _How.UNKNOWN))

    def visit_Import(self, node: cst.Import) -> None:
        for alias in node.names:
            name = alias.asname.name if alias.asname is not None else alias.name
            if isinstance(name, cst.Name):
                self.found.append((name.value, None, _How.UNKNOWN))
            elif isinstance(name, cst.Attribute):
                root: cst.BaseExpression = name
                while isinstance(root, cst.Attribute):
                    root = root.value
                if isinstance(root, cst.Name):
                    self.found.append((root.value, None, _How.UNKNOWN))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if not isinstance(node.names, cst.ImportStar):
            for alias in node.names:
                name = alias.asname.name if alias.asname is not None else alias.name
                if isinstance(name, cst.Name):
                    self.found.append((name.value, None, _How.UNKNOWN))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if node is not self.root:
            self.found.append((node.name.value, None, _How.UNKNOWN))
        return node is self.root

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.found.append((node.name.value, None, _How.UNKNOWN))
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    # comprehension variables live in their own scope
    def visit_ListComp(self, node: cst.ListComp) -> bool:
        return False

    def visit_SetComp(self, node: cst.SetComp) -> bool:
        return False

    def visit_DictComp(self, node: cst.DictComp) -> bool:
        return False

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return False


def _bindings(node: cst.CSTNode) -> _Bindings:
    collector = _Bindings(node)
    node.visit(collector)
    return collector


def _binop(op: cst.BaseAugOp) -> cst.BaseBinaryOp:
    binary: cst.BaseBinaryOp = getattr(cst, type(op).__name__.removesuffix("Assign"))()  # AddAssign -> Add
    return binary


#: kinds whose ``x op= v`` changes ``x`` in place and keeps its kind (or raises)
_IN_PLACE_KINDS = frozenset({Kind.NDARRAY, Kind.PANDAS, Kind.LIST, Kind.SET, Kind.DICT, Kind.DEFAULTDICT,
                             Kind.BYTEARRAY, Kind.DEQUE})


def _augmented(expr: cst.BaseExpression, env: _Env) -> ValueType | None:
    assert isinstance(expr, cst.BinaryOperation)
    before = _type(expr.left, env)[0]
    if before is not None and before.kind in _IN_PLACE_KINDS:
        return before
    return _binary(before, _type(expr.right, env)[0])


def _element(t: ValueType | None, how: _HowTyped) -> ValueType | None:
    """A loop target's type from what it iterates; an unpacked target's from its :class:`_Item`."""
    if how is _How.RANGE_ELEMENT:
        return _T[Kind.NUMBER]
    if t is None:
        return None
    if isinstance(how, _Item):
        if t.items is not None and len(t.items) == how.count:
            return t.items[how.index]
        return t if t.kind is Kind.NDARRAY else UNKNOWN  # rows of an array
    if t.kind is Kind.NDARRAY:
        return t
    if t.items and all(i == t.items[0] for i in t.items):
        return t.items[0]
    if t.kind in (Kind.STR,):
        return t
    return UNKNOWN


#: rounds before a fixed point is given up (everything unknown); sequential code settles in 2-3
_ROUNDS = 30


def infer_types(code: cst.CSTNode | Iterable[cst.CSTNode], names: Names, outer: Mapping[str, ValueType],
                signatures: Signatures = NO_SIGNATURES) -> dict[str, ValueType]:
    """The type of every name the code binds (rule T6): the least fixed point over its bindings.

    ``outer`` types the names the code reads but does not bind (parameters, module names).
    """
    found: list[tuple[str, cst.BaseExpression | None, _HowTyped]] = []
    for node in ([code] if isinstance(code, cst.CSTNode) else code):
        found.extend(signatures.walk("bindings", node, partial(_bindings, node)).found)
    solved = _solve(found, names, outer, signatures, {})
    if isinstance(code, (cst.FunctionDef, cst.Module)) and any(t.kind is Kind.LIST for t in solved.values()):
        lists = plain_lists(code, names, {**outer, **solved}, signatures)  # T9
        if lists:
            solved = _solve(found, names, outer, signatures, dict.fromkeys(lists, _PLAIN_LIST))
    return solved


def _solve(found: list[tuple[str, cst.BaseExpression | None, _HowTyped]], names: Names,
           outer: Mapping[str, ValueType], signatures: Signatures,
           pinned: Mapping[str, ValueType]) -> dict[str, ValueType]:
    """T6's least fixed point over ``found``; the names ``pinned`` have the types given."""
    solution: dict[str, ValueType | None] = dict.fromkeys((n for n, _, _ in found), None)
    solution.update(pinned)
    env = _Env(names, solution, outer, signatures)
    # chaotic iteration from "nothing yet": each binding's type joins into its name's in place, so a
    # chain of bindings (v2 = v1 + 1; v3 = v2 + 1 …) settles in one round; the values only rise (the
    # join), and a round with no change is the least fixed point
    for _ in range(_ROUNDS):
        changed = False
        for name, expr, how in found:
            if name in pinned:
                continue
            if how is _How.UNKNOWN or expr is None:
                t: ValueType | None = UNKNOWN
            elif how is _How.VALUE:
                t = _type(expr, env)[0]
            elif how is _How.AUGMENTED:
                t = _augmented(expr, env)
            else:
                t = _element(_type(expr, env)[0], how)
            joined = _join(solution[name], t)
            if joined != solution[name]:
                solution[name] = joined
                changed = True
        if not changed:
            return {name: (t or UNKNOWN) for name, t in solution.items()}
    return dict.fromkeys(solution, UNKNOWN)  # not settled: a value below the fixed point could be unsound


#: calls that read a list they are given and keep nothing of it (:func:`plain_lists`)
_LIST_READERS = frozenset({"len", "sum", "min", "max", "sorted", "list", "tuple", "set", "print", "str", "repr",
                           "any", "all", "iter", "reversed", "enumerate", "zip", "round", "abs"})
_LIST_READ_METHODS = frozenset({"count", "index", "copy", "pop", "remove", "clear", "sort", "reverse"})


def plain_lists(code: cst.CSTNode, names: Names, types: Mapping[str, ValueType],
                signatures: Signatures) -> frozenset[str]:
    """T9: the lists of ``code`` (a function or the module) that hold plain data only (numbers, str,
    plain arrays), so that a numpy call given one makes a plain array (``np.mean(scores)``): every
    binding is a display of plain data (or ``list(range(...))``), everything appended, inserted,
    extended or stored into it is plain data, and it is used nowhere else than in a loop, an item
    read, a list method that stores nothing, a numpy/math call or a builtin that only reads it
    (:data:`_LIST_READERS`): it never escapes to another name, a display, a callee or a closure."""
    candidates = {n for n, t in types.items() if t.kind is Kind.LIST}
    scan = _ListUses(names, types, signatures, candidates)
    code.visit(scan)
    return frozenset(n for n in candidates - scan.spoiled if n in scan.bound)


class _ListUses(cst.CSTVisitor):
    """Each use of a candidate list, judged by its parent nodes (:func:`plain_lists`)."""

    def __init__(self, names: Names, types: Mapping[str, ValueType], signatures: Signatures,
                 candidates: set[str]) -> None:
        self.names, self.types, self.signatures, self.candidates = names, types, signatures, candidates
        self.stack: list[cst.CSTNode] = []
        self.spoiled: set[str] = set()
        self.bound: set[str] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.stack.append(node)
        if isinstance(node, cst.Name) and node.value in self.candidates and not self._fine(node):
            self.spoiled.add(node.value)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        self.stack.pop()

    def _plain(self, e: cst.BaseExpression) -> bool:
        if isinstance(e, (cst.List, cst.Tuple)):
            return all(isinstance(el, cst.Element) and self._plain(el.value) for el in e.elements)
        if makes_immutable(e, self.names):
            return True
        t = type_of(e, self.names, self.types, self.signatures)[0]
        return plain_type(t) and t.kind is not Kind.LIST

    def _ints(self, e: cst.BaseExpression) -> bool:
        """``list(range(...))``: a new list of ints."""
        return isinstance(e, cst.Call) and self.names.qualname(e.func) == "builtins.list" and len(e.args) == 1 \
            and e.args[0].keyword is None and not e.args[0].star and isinstance(call := e.args[0].value, cst.Call) \
            and self.names.qualname(call.func) == "builtins.range"

    def _fine(self, node: cst.Name) -> bool:
        p = self.stack[-2] if len(self.stack) > 1 else None
        g = self.stack[-3] if len(self.stack) > 2 else None
        if isinstance(p, cst.AssignTarget) and isinstance(g, cst.Assign) and p.target is node:
            self.bound.add(node.value)
            return (isinstance(g.value, cst.List) and self._plain(g.value)) or self._ints(g.value)
        if isinstance(p, cst.AugAssign) and p.target is node:
            return isinstance(p.value, (cst.List, cst.Tuple)) and self._plain(p.value)
        if isinstance(p, cst.Attribute) and p.value is node:
            if not (isinstance(g, cst.Call) and g.func is p):
                return False
            method = p.attr.value
            if method in ("append", "insert", "extend"):
                return all(self._plain(a.value) for a in g.args)
            return method in _LIST_READ_METHODS
        if isinstance(p, cst.Subscript) and p.value is node:
            store = isinstance(g, cst.AssignTarget) and g.target is p
            return not store or (isinstance(self.stack[-4], cst.Assign) and self._plain(self.stack[-4].value))
        if isinstance(p, cst.Arg) and isinstance(g, cst.Call) and p.value is node:
            parts = (self.names.qualname(g.func) or "").split(".")
            return (parts[0] == "builtins" and parts[-1] in _LIST_READERS) or parts[0] in ("numpy", "math",
                                                                                        "statistics")
        if isinstance(p, (cst.For, cst.CompFor)) and p.iter is node:
            return True
        return isinstance(p, (cst.Comparison, cst.ComparisonTarget, cst.FormattedStringExpression,
                              cst.BinaryOperation, cst.Return, cst.Del))


def _params(fn: cst.FunctionDef, cls: str | None, args: tuple[ValueType, ...] = ()) -> dict[str, ValueType]:
    names = [p.name.value for p in (*fn.params.posonly_params, *fn.params.params)]
    given = dict.fromkeys(names + [p.name.value for p in fn.params.kwonly_params], UNKNOWN)
    if cls is not None and names:
        given[names[0]] = ValueType(Kind.CLASS, cls)
        names = names[1:]
    for name, t in zip(names, args, strict=False):
        given[name] = t
    return given


def _returned(fn: cst.FunctionDef, name: str, names: Names, outer: Mapping[str, ValueType],  # noqa: PLR0917
              sig: Signatures, args: tuple[ValueType, ...] = ()) -> ValueType:
    cls = name.partition(".")[0] if "." in name else None
    given = _params(fn, cls, args)
    local = {**outer, **given, **infer_types(fn, names, {**outer, **given}, sig)}
    found: ValueType | None = None
    walked = sig.walk("bindings", fn, lambda: _bindings(fn))
    for value in [cst.Name("__generator__")] if walked.generator else walked.returned:
        found = _join(found, type_of(value, names, local, sig)[0] if value is not None else _T[Kind.NONE])
    return found or _T[Kind.NONE]


def program_signatures(functions: Mapping[str, cst.FunctionDef], names: Names,
                       outer: Mapping[str, ValueType]) -> Signatures:
    """What each program function returns and what methods store on ``self`` (T2, T4): joins over
    ``return`` values and ``self.attr = value`` bindings, to a fixed point (they read each other)."""
    walks: dict[object, Any] = {}
    sig = Signatures({}, {}, final=False, walks=walks)
    for _ in range(10):
        returns: dict[str, ValueType] = {}
        attributes: dict[str, ValueType | None] = {}
        for name, fn in functions.items():
            returns[name] = _returned(fn, name, names, outer, sig)
            cls = name.partition(".")[0] if "." in name else None
            if cls is not None and fn.params.params:
                given = _params(fn, cls)
                local = {**outer, **given, **infer_types(fn, names, {**outer, **given}, sig)}
                env = _Env(names, {}, local, sig)
                self_name = fn.params.params[0].name.value
                stores = sig.walk("stores", fn, partial(_self_stores, fn, self_name))
                for attr, value, augmented in stores:
                    key = f"{cls}.{attr}"
                    t = _augmented(value, env) if augmented else _type(value, env)[0]
                    attributes[key] = _join(attributes.get(key), t)
        new = Signatures(returns, {k: v for k, v in attributes.items() if v is not None}, functions, names, outer,
                         final=False, walks=walks)
        if new == sig:
            return Signatures(sig.returns, {k: v or UNKNOWN for k, v in sig.attributes.items()}, functions, names,
                              outer, walks=walks)
        sig = new
    # not settled: what a function returns or stores could still change, so nothing is known of it
    return Signatures(dict.fromkeys(sig.returns, UNKNOWN), dict.fromkeys(sig.attributes, UNKNOWN), functions,
                      names, outer, walks=walks)


def _self_stores(fn: cst.FunctionDef, self_name: str) -> list[tuple[str, cst.BaseExpression, bool]]:
    """``self.attr = value`` in ``fn``, and ``self.attr op= v`` (augmented: True)."""
    out: list[tuple[str, cst.BaseExpression, bool]] = []

    def target(t: cst.BaseExpression, value: cst.BaseExpression, augmented: bool = False) -> None:
        if isinstance(t, cst.Attribute) and isinstance(t.value, cst.Name) and t.value.value == self_name:
            out.append((t.attr.value, value, augmented))
        elif isinstance(t, (cst.Tuple, cst.List)):
            for el in t.elements:
                target(el.value, cst.Name("__unknown__"))

    class _Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            for t in node.targets:
                target(t.target, node.value)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            target(node.target, node.value or cst.Name("__unknown__"))

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            target(node.target, cst.BinaryOperation(node.target, _binop(node.operator), node.value), True)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is fn

    fn.visit(_Find())
    return out


@dataclass(frozen=True)
class ProgramTypes:
    """The types of the whole program."""

    #: module-level names
    module: Mapping[str, ValueType]
    #: what program functions return and methods store on ``self``
    signatures: Signatures
    #: the names the entry region reads: module-level names, then its own locals over them
    entry: Mapping[str, ValueType]


class ProgramTypesProvider(Provider[str, ProgramTypes]):
    """``{"types": ProgramTypes}``."""

    DEPENDENCIES = (NamesProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[str, ProgramTypes]:
        names = results.get(NamesProvider)["names"]
        body = list(program.module.body)
        # the module itself is the root: the walk binds each def's name and skips its body
        module = infer_types(program.module, names, {})
        signatures = program_signatures(helper_functions(program.module), names, module)
        module = infer_types(program.module, names, {}, signatures)  # module data bound from helpers' results
        entry = dict(module)
        if program.entry.kind != "script":
            fn = next(s for s in body if isinstance(s, cst.FunctionDef) and s.name.value == program.entry.name)
            entry.update(infer_types(fn, names, module, signatures))
        return {"types": ProgramTypes(MappingProxyType(module), signatures, MappingProxyType(entry))}


class TypesProvider(Provider[str, ValueType]):
    """The type of each name the entry region reads (module-level and local)."""

    DEPENDENCIES = (ProgramTypesProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[str, ValueType]:
        return results.get(ProgramTypesProvider)["types"].entry
