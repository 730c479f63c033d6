"""Which locals are data-heavy (kept in a memory element rather than passed by value).

A local is decided by the first rule that applies, in this order:

1. Pragma: a binding statement ending with ``# scad: memory`` makes it heavy, ``# scad: local``
   makes it small (a comment on the line just above the statement works too).
2. Profile: the largest size measured after any unit (``scadc profile``) is compared with the
   threshold (``--heavy-bytes``, default 1 MiB).
3. Static allocation: a binding from an allocating numpy call whose element count is computable
   from constants (``np.zeros/ones/empty/full``, ``np.arange``, ``np.linspace``, ``np.eye``,
   ``np.random.*(size=...)``, ``rng.*(size=...)`` and the positional sizes of ``rand``/``random``/
   ``permutation``/…): heavy iff count × itemsize ≥ threshold. Itemsize comes from ``dtype=``
   (a scalar type, a type code, or a module-level ``np.dtype([...])`` of scalar fields), else 8.
4. Loaders: ``np.loadtxt``, ``np.genfromtxt``, ``np.fromfile``, ``np.load``, ``pickle.load``, a
   file's ``.read()`` and the like are heavy (size unknown until run), and so is every pandas reader
   (``pd.read_csv``, ``read_parquet``, ``read_json``, ``read_pickle``, ``read_feather``, … any
   ``pandas.read_*``) except with ``chunksize=`` or ``iterator=True``, which make it return a
   reader object rather than the data.
5. Comprehensions: a list/set/dict comprehension over ``range(N)`` with N × 8 ≥ threshold, or
   over a heavy local, is heavy.
8. Program functions and classes: a call of a module-level function whose first ``return``
   returns (at that position) a value that rules 3-6 make heavy inside the function (with its
   parameters bound to the call's constant arguments, when it needs them), or an
   instantiation of a class whose ``__init__`` stores such a value in an attribute, is heavy;
   ``a, b = f()`` maps positions to targets.
9. pandas constructors: ``pd.DataFrame({...})``, ``pd.DataFrame(arr)``, ``pd.Series(...)``,
   ``pd.Index(...)``, ``pd.Categorical(...)`` whose data's size is computable: the sum of its
   columns' sizes, each column (a dict display's values, ``dict(a=...)``'s keywords, or the one
   array) sized by rule 3, as the larger operand of arithmetic or the largest array argument of an
   elementwise numpy function (``np.round(rng.uniform(size=n), 2)``), by the size so computed of
   the local it names, as 8 B per item of a literal list, or as nothing for a scalar broadcast to
   the other columns: heavy iff the sum ≥ threshold.
   A column of unknown size makes the sum a lower bound: heavy when even that bound reaches the
   threshold, else no static decision (a column that is a heavy local still makes the frame heavy
   by rule 6).
6. Derived: a binding computed elementwise from a heavy local is heavy: arithmetic, slicing and
   indexing, view attributes (``.T``), shape-preserving methods (``astype``, ``copy``, ``reshape``,
   …), elementwise numpy functions (``np.exp``, ``np.where``, ``np.concatenate``, …), an alias.
   Reductions (``sum``, ``mean``, ``dot`` …) and ``.shape``/``.size`` are not heavy.
   For pandas (a frame or series is heavy when it comes from rules 1-5, 8, 9 or this rule):
   a dict display holding a heavy value (``{"a": big}``, as handed to ``pd.DataFrame``);
   ``pd.DataFrame/Series/concat/merge/…`` of a heavy value (``pd.concat([a, b])``, either side
   of ``pd.merge``); the methods that keep (about) one row per input row: selection
   (``df[mask]``, ``df[["a", "b"]]``, ``df.loc[...]``, ``df.iloc[...]``, ``df.query``), reshaping
   and relabelling (``assign``, ``sort_values``, ``drop``, ``rename``, ``fillna``, ``dropna``,
   ``reset_index``, ``set_index``, ``drop_duplicates``, ``melt``, …), elementwise methods
   (``isin``, ``map``, ``apply``, ``shift``, ``rank``, ``where``, …), every method and attribute
   of the ``.str``/``.dt``/``.cat`` accessors and of ``rolling``/``expanding``/``ewm`` windows,
   ``.values``/``.to_numpy()``, and ``merge``/``join``/``combine_first`` with a heavy frame on
   either side. A call with ``inplace=True`` returns None and is not heavy.
   groupby: the GroupBy object (``g = df.groupby("k")``) holds its frame and is heavy; its
   row-preserving methods (``transform``, ``cumsum``, ``cumcount``, ``rank``, ``shift``,
   ``diff``, ``fillna``, ``ffill``, ``bfill``, ``pct_change``) are heavy.
   Its aggregations (``agg``, ``sum``, ``mean``, ``size``, ``count``, ``apply``, ``describe``, …,
   and the same on ``resample``) are *not* heavy: an aggregation yields one row per group, which
   is usually far smaller than its input, and when it is not (millions of groups) a profile
   (rule 2) measures it. Likewise ``head``, ``describe``, ``value_counts``, ``pivot_table`` and
   the reductions of a frame are not heavy.
7. Otherwise the local is small.

(Rules 8 and 9 are listed after 6 in the text but applied with the static rules 3-5.)

A local bound in several places is heavy if any binding is (the decision is per name). Rule 6
runs to a fixed point, so order of bindings does not matter.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.constants import Constants
from scadc.analysis.defuse import Binding, DefUseProvider
from scadc.analysis.names import Names, NamesProvider
from scadc.analysis.program import Program
from scadc.analysis.types import Kind, TypesProvider, ValueType

__all__ = ["DEFAULT_HEAVY_BYTES", "HeavyDecision", "HeavyProvider", "HeavyReason", "HeavyRule", "format_bytes"]

DEFAULT_HEAVY_BYTES = 1 << 20

_ALLOC_SHAPE_ARG = {"zeros": 0, "ones": 0, "empty": 0, "full": 0}
#: generator/numpy.random methods -> index of the positional ``size`` argument ("*": all args are dims)
_RNG_SIZE_ARG: dict[str, int | str] = {
    "random": 0, "random_sample": 0, "standard_normal": 0, "rand": "*", "randn": "*", "normal": 2,
    "uniform": 2, "integers": 2, "randint": 2, "choice": 1, "exponential": 1, "poisson": 1, "binomial": 2,
    "lognormal": 2, "gamma": 2, "beta": 2, "permutation": 0, "standard_exponential": 0, "logistic": 2,
}
_LOADERS = ("numpy.loadtxt", "numpy.genfromtxt", "numpy.fromfile", "numpy.load", "numpy.memmap", "pickle.load",
            "pickle.loads", "json.load", "numpy.lib.format.open_memmap")
_READ_METHODS = frozenset({"read", "readlines", "read_bytes", "read_text"})
_SHAPE_PRESERVING = frozenset({"copy", "astype", "reshape", "ravel", "flatten", "view", "transpose", "clip",
                               "round", "cumsum", "cumprod", "argsort", "tolist", "swapaxes", "squeeze", "repeat",
                               "take", "compress", "conj", "__getitem__", "T", "sorted", "filled"})
_VIEW_ATTRS = frozenset({"T", "real", "imag", "flat", "mT", "values", "loc", "iloc", "array",
                         "str", "dt", "cat", "sparse"})  # the last four: pandas accessors (rule 6)
_ELEMENTWISE = frozenset({
    "exp", "log", "log1p", "expm1", "sqrt", "abs", "absolute", "where", "clip", "concatenate", "vstack", "hstack",
    "stack", "column_stack", "row_stack", "sort", "argsort", "cumsum", "cumprod", "copy", "array", "asarray",
    "ascontiguousarray", "square", "maximum", "minimum", "isin", "logical_and", "logical_or", "logical_not",
    "floor", "ceil", "round", "rint", "sign", "tanh", "sin", "cos", "power", "multiply", "add", "subtract",
    "divide", "true_divide", "repeat", "tile", "take", "lexsort", "nan_to_num", "zeros_like", "ones_like",
    "empty_like", "full_like", "searchsorted", "digitize", "isnan", "isfinite", "diff", "roll", "flip",
    "rec.fromarrays", "delete", "insert", "append", "take_along_axis", "reshape", "ravel", "transpose",
})
#: pandas methods whose result keeps (about) one row per row of the receiver (rule 6)
_PANDAS_SAME_SIZE = frozenset({
    "assign", "sort_values", "sort_index", "drop", "rename", "rename_axis", "fillna", "dropna", "reset_index",
    "set_index", "query", "where", "mask", "replace", "reindex", "drop_duplicates", "abs", "isna", "notna",
    "isnull", "notnull", "isin", "between", "shift", "diff", "pct_change", "rank", "map", "apply", "transform",
    "to_numpy", "to_frame", "explode", "melt", "stack", "unstack", "pivot", "interpolate", "ffill", "bfill",
    "cummax", "cummin", "add_prefix", "add_suffix", "set_axis", "infer_objects", "convert_dtypes",
    "select_dtypes", "filter", "to_records", "sample", "asfreq", "tz_localize", "tz_convert", "align",
    "add", "sub", "mul", "div", "truediv", "floordiv", "mod", "pow", "radd", "rsub", "rmul", "rdiv",
    "eq", "ne", "lt", "le", "gt", "ge", "combine", "combine_first", "merge", "join", "groupby", "rolling",
    "expanding", "ewm",
})
#: of those, the ones whose argument is another frame that ends up in the result (either side heavy)
_PANDAS_JOINS = frozenset({"merge", "join", "combine_first", "combine", "align"})
#: pandas functions whose result holds the data of a heavy argument (rule 6)
_PANDAS_FUNCS = frozenset({
    "DataFrame", "Series", "Index", "Categorical", "concat", "merge", "merge_asof", "merge_ordered",
    "get_dummies", "to_datetime", "to_numeric", "to_timedelta", "melt", "cut", "qcut", "factorize",
    "isna", "notna", "isnull", "notnull", "array", "unique",
})
#: pandas constructors sized by rule 9
_PANDAS_CONSTRUCTORS = frozenset({"pandas.DataFrame", "pandas.Series", "pandas.Index", "pandas.Categorical"})
#: GroupBy methods that return one row per input row (rule 6); every other GroupBy method aggregates
_GROUPBY_SAME_SIZE = frozenset({
    "transform", "cumsum", "cumprod", "cummax", "cummin", "cumcount", "rank", "shift", "diff", "fillna",
    "ffill", "bfill", "pct_change", "ngroup",
})
#: a call of one of these on a frame gives a GroupBy-like object whose aggregations shrink the data
_GROUPERS = frozenset({"groupby", "resample"})
#: a call of one of these gives a window whose every method keeps one row per row
_WINDOWS = frozenset({"rolling", "expanding", "ewm"})
#: pandas accessors: every attribute and method of ``s.str``/``s.dt``/``s.cat`` is elementwise
_ACCESSORS = frozenset({"str", "dt", "cat", "sparse"})
_ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "int64": 8, "int32": 4, "int16": 2, "int8": 1,
             "uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool_": 1, "bool": 1, "complex128": 16,
             "complex64": 8, "float": 8, "int": 8, "complex": 16, "intp": 8, "double": 8, "single": 4}


class HeavyRule(enum.Enum):
    """Which rule decided a local (the numbers of the module's rules)."""

    PRAGMA = "pragma"  # 1
    PROFILE = "profile"  # 2
    STATIC = "static"  # 3 and 9: an allocation or a pandas constructor of computable size
    LOADER = "loader"  # 4
    COMPREHENSION = "comprehension"  # 5
    RETURNED = "returned"  # 8: what a program function returns
    INSTANCE = "instance"  # 8: an instance whose __init__ stores heavy values
    DERIVED = "derived"  # 6
    BELOW_THRESHOLD = "below the threshold"  # 7, with a static size
    NO_RULE = "no rule applies"  # 7


@dataclass(frozen=True)
class HeavyReason:
    """Why a local is (or is not) heavy: the rule, its evidence, and the line it was decided at.
    ``str()`` is the text tables and ``split.json`` print; nothing reads it back."""

    rule: HeavyRule
    #: what the rule saw, for printing only: the pragma's word, the measured size and unit, the
    #: allocation and its arithmetic, the loader or helper called, the heavy local derived from,
    #: the number of heavy attributes an instance holds
    evidence: str = ""
    #: the line of the binding decided on, when the reason names it
    line: int | None = None
    #: ``RETURNED``: the reason of the value inside the function
    inner: HeavyReason | None = None

    def __str__(self) -> str:
        text = {
            HeavyRule.PRAGMA: f"pragma: # scad: {self.evidence}",
            HeavyRule.PROFILE: f"profile: {self.evidence}",
            HeavyRule.STATIC: f"static: {self.evidence}",
            HeavyRule.LOADER: f"loader {self.evidence}() (size known at run time)",
            HeavyRule.COMPREHENSION: f"comprehension over {self.evidence}",
            HeavyRule.RETURNED: f"returned by {self.evidence}() ({self.inner})",
            HeavyRule.INSTANCE: f"an instance holding heavy attributes (its __init__ allocates {self.evidence})",
            HeavyRule.DERIVED: f"derived from heavy {self.evidence}",
        }.get(self.rule, self.rule.value)
        return text if self.line is None else f"{text} (line {self.line})"


@dataclass(frozen=True)
class HeavyDecision:
    """Whether a local is data-heavy, its size estimate when known, and which rule decided."""

    heavy: bool
    #: estimated or measured size in bytes; None when unknown
    size: int | None
    #: the rule and its evidence; prints as e.g. ``static: np.zeros((1000, 1000)) = 7.6 MiB``
    reason: HeavyReason


#: a size (None: unknown) and why, as a rule finds it for one value
_Found = tuple[int | None, HeavyReason]


def format_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    for unit, power in (("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if n >= 1024**power:
            return f"{n / 1024**power:.1f} {unit}"
    return f"{n} B"


def _is_false(e: cst.BaseExpression) -> bool:
    return isinstance(e, cst.Name) and e.value == "False"


def _unparse(node: cst.CSTNode) -> str:
    text = cst.Module([]).code_for_node(node)
    if "\n" in text:  # a call over several lines (a frame's columns) reads as one line in a reason
        text = re.sub(r"([(\[{])\s+", r"\1", re.sub(r"\s*\n\s*", " ", text))
    return text if len(text) <= 50 else text[:47] + "..."


class _Rules:
    def __init__(self, program: Program, names: Names, types: Mapping[str, ValueType], threshold: int) -> None:
        self.program, self.names, self.types, self.threshold = program, names, types, threshold
        self._unpack_targets: dict[int, list[str]] = {}
        unpack = self._unpack_targets

        class _Targets(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                for t in node.targets:
                    if isinstance(t.target, (cst.Tuple, cst.List)):
                        unpack[id(node.value)] = [el.value.value if isinstance(el.value, cst.Name) else ""
                                                  for el in t.target.elements]

        program.module.visit(_Targets())
        self.dtypes: dict[str, int] = {}
        for d in program.definitions:
            if isinstance(d.node, cst.SimpleStatementLine) and isinstance(d.node.body[0], cst.Assign):
                size = self._struct_itemsize(d.node.body[0].value)
                if size is not None:
                    self.dtypes.update(dict.fromkeys(d.names, size))
        self.const = Constants.of(program)
        #: local -> its largest rule-3/9 size, for the columns rule 9 names (filled by HeavyProvider)
        self.sizes: dict[str, int] = {}
        #: locals bound to a GroupBy (``g = df.groupby("k")``), whose aggregations rule 6 leaves small
        self.groupbys: set[str] = set()
        #: locals bound to a window (``w = s.rolling(5)``), whose every method rule 6 keeps heavy
        self.windows: set[str] = set()
        #: program function (or class) -> per returned position: (size, reason) when heavy (rule 8)
        self.returns: dict[str, list[_Found | None]] = {}
        self._functions = {stmt.name.value: stmt for stmt in program.module.body if isinstance(stmt, cst.FunctionDef)}
        for stmt in program.module.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value != program.entry.name:
                self.returns[stmt.name.value] = self._helper_returns(stmt)
            elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
                init = next((f for f in stmt.body.body if isinstance(f, cst.FunctionDef)
                             and f.name.value == "__init__"), None)
                if init is not None:
                    self.returns[stmt.name.value] = self._helper_returns(init, instance=True)

    def _helper_returns(self, fn: cst.FunctionDef, instance: bool = False) -> list[_Found | None]:
        """Rule 8: which values a program function returns (or an instance holds) are heavy."""
        local: dict[str, _Found] = {}
        returns: list[cst.BaseExpression] = []
        attrs: list[_Found] = []
        rules = self

        class _Walk(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                found = rules.static(node.value)
                if found is None:
                    src = rules.derived_from(node.value, set(local))
                    found = local[src] if src else None
                size = found[0] if found is not None else rules._column_size(node.value)
                for t in node.targets:
                    if isinstance(t.target, cst.Name) and size is not None:
                        rules.sizes[t.target.value] = size  # for rule 9 inside the helper
                    if isinstance(t.target, cst.Name) and found is not None:
                        local[t.target.value] = found
                    elif instance and isinstance(t.target, cst.Attribute) and found is not None:
                        attrs.append(found)

            def visit_Return(self, node: cst.Return) -> None:
                if node.value is not None:
                    returns.append(node.value)

        outer_sizes, self.sizes = self.sizes, {}  # a helper's columns are its own locals
        try:
            fn.body.visit(_Walk())
            return self._returned(fn, returns, attrs, local, instance)
        finally:
            self.sizes = outer_sizes

    def _returned(self, fn: cst.FunctionDef, returns: list[cst.BaseExpression], attrs: list[_Found],
                  local: dict[str, _Found], instance: bool) -> list[_Found | None]:
        rules = self
        name = fn.name.value
        if instance:
            sizes = [a[0] for a in attrs]
            total = None if not attrs or None in sizes else sum(s for s in sizes if s is not None)
            return [(total, HeavyReason(HeavyRule.INSTANCE, str(len(attrs))))] \
                if attrs else []
        out: list[_Found | None] = []
        for r in returns[:1]:
            items = [el.value for el in r.elements] if isinstance(r, cst.Tuple) else [r]
            for item in items:
                src = item.value if isinstance(item, cst.Name) else None
                hit = local.get(src) if src else rules.static(item)
                out.append((hit[0], HeavyReason(HeavyRule.RETURNED, name, inner=replace(hit[1], line=None)))
                           if hit else None)
        return out

    def _struct_itemsize(self, e: cst.BaseExpression) -> int | None:
        """``np.dtype([("a", "i8"), ("b", np.float64)])`` -> 16 (scalar fields only)."""
        if not (isinstance(e, cst.Call) and (self.names.qualname(e.func) or "") == "numpy.dtype" and e.args):
            return None
        fields = e.args[0].value
        if not isinstance(fields, cst.List):
            return self._itemsize(fields)
        total = 0
        for el in fields.elements:
            if not isinstance(el.value, cst.Tuple) or len(el.value.elements) < 2:
                return None
            size = self._itemsize(el.value.elements[1].value)
            if size is None:
                return None
            total += size
        return total

    def _itemsize(self, e: cst.BaseExpression | None) -> int | None:
        if e is None:
            return None
        if isinstance(e, cst.SimpleString):
            raw = e.evaluated_value
            # a bytes type code (b"f8") is what numpy reads as the same text
            code = (raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw).lstrip("<>=|")
            if code[:1] in ("U",) and code[1:].isdigit():
                return 4 * int(code[1:])
            if code[:1] in ("S", "a", "V") and code[1:].isdigit():
                return int(code[1:])
            if code[:1] in ("i", "u", "f", "c", "b") and code[1:].isdigit():
                return int(code[1:])
            return _ITEMSIZE.get(code)
        if isinstance(e, cst.Name) and e.value in self.dtypes:
            return self.dtypes[e.value]
        q = self.names.qualname(e) or ""
        return _ITEMSIZE.get(q.rsplit(".", 1)[-1]) if q else None

    def static(self, value: cst.CSTNode | None) -> _Found | None:
        """Rules 3-5 for one bound value: (size or None, reason), or None if no rule applies."""
        if isinstance(value, (cst.ListComp, cst.SetComp, cst.DictComp)):
            it = value.for_in.iter
            if isinstance(it, cst.Call) and (self.names.qualname(it.func) or "") == "builtins.range" and it.args:
                n = self.const.count(it.args[-1].value if len(it.args) < 3 else None) if len(it.args) <= 2 else None
                if n is not None:
                    return n * 8, HeavyReason(HeavyRule.COMPREHENSION,
                                              f"range({n}) ≈ {format_bytes(n * 8)}")  # rule 5
            return None
        if isinstance(value, cst.BinaryOperation):  # rule 3 through arithmetic: the larger operand
            found = [f for f in (self.static(value.left), self.static(value.right)) if f is not None]
            return max(found, key=lambda f: f[0] or 0) if found else None
        if not isinstance(value, cst.Call):
            return None
        q = self.names.qualname(value.func) or ""
        own = self.names.own(value.func)
        if own is not None and own in self.returns:
            returned = self.returns[own]
            if not (returned and returned[0] is not None):
                returned = self._specialized(own, value)
            if returned and returned[0] is not None:
                return returned[0]
        func = value.func
        args = [a.value for a in value.args if a.keyword is None and not a.star]
        kwargs = {a.keyword.value: a.value for a in value.args if a.keyword is not None}
        if q in _LOADERS or (isinstance(func, cst.Attribute) and func.attr.value in _READ_METHODS and not q):
            return None, HeavyReason(HeavyRule.LOADER, _unparse(func))  # rule 4
        reader = "chunksize" in kwargs or ("iterator" in kwargs and not _is_false(kwargs["iterator"]))
        if q.startswith("pandas.read_") and not reader:
            return None, HeavyReason(HeavyRule.LOADER, _unparse(func))  # rule 4, pandas
        if q in _PANDAS_CONSTRUCTORS:
            return self._frame(value, args, kwargs)  # rule 9
        parts = q.split(".")
        method = func.attr.value if isinstance(func, cst.Attribute) else ""
        is_rng = (parts[:2] == ["numpy", "random"]) or (
            not q and isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name)
            and (t := self.types.get(func.value.value)) is not None and t.kind is Kind.RNG)
        count: int | None = None
        shape: cst.BaseExpression | None = None
        if parts[0] == "numpy" and len(parts) == 2 and parts[1] in _ALLOC_SHAPE_ARG:
            shape = kwargs.get("shape", args[0] if args else None)
        elif q in ("numpy.arange",) and args:
            values = [self.const(a) for a in args[:3]]
            nums = [x for x in values if isinstance(x, (int, float))]
            if len(nums) == len(values):
                start, stop, step = (0, nums[0], 1) if len(nums) == 1 else (*nums[:2], nums[2] if len(nums) > 2 else 1)
                count = max(0, math.ceil((stop - start) / step))
        elif q == "numpy.linspace":
            count = self.const.count(kwargs.get("num", args[2] if len(args) > 2 else None)) or 50
        elif q in ("numpy.eye", "numpy.identity") and args:
            n = self.const.count(args[0])
            count = None if n is None else n * n
        elif is_rng:
            name = parts[-1] if q else method
            if "size" in kwargs:
                shape = kwargs["size"]
            elif _RNG_SIZE_ARG.get(name) == "*":
                dims = [self.const.count(a) for a in args]
                count = None if not dims or None in dims else math.prod(d for d in dims if d is not None)
            elif isinstance(_RNG_SIZE_ARG.get(name), int) and len(args) > int(_RNG_SIZE_ARG[name]):
                shape = args[int(_RNG_SIZE_ARG[name])]
            else:
                return None
        else:
            return None
        if shape is not None:
            count = self.const.count(shape)
        itemsize = self._itemsize(kwargs.get("dtype")) or 8
        text = _unparse(value)
        if count is None:
            return None  # the size depends on run-time values: no static decision
        size = count * itemsize
        return size, HeavyReason(HeavyRule.STATIC, f"{text} = {count} × {itemsize} B = {format_bytes(size)}")  # rule 3

    def _frame(self, call: cst.Call, args: list[cst.BaseExpression],
               kwargs: dict[str, cst.BaseExpression]) -> _Found | None:
        """Rule 9: the size of a pandas constructor's data, the sum of its columns' sizes."""
        data = kwargs.get("data", args[0] if args else None)
        if data is None:
            return None
        if isinstance(data, cst.Dict):
            columns: list[cst.BaseExpression | None] = [
                el.value if isinstance(el, cst.DictElement) else None for el in data.elements]
        elif isinstance(data, cst.Call) and (self.names.qualname(data.func) or "") == "builtins.dict" and \
                all(a.keyword is not None for a in data.args):
            columns = [a.value for a in data.args]
        else:
            columns = [data]
        total, unknown = 0, 0
        for column in columns:
            size = self._column_size(column)
            if size is None:
                unknown += 1
            else:
                total += size
        if unknown and total < self.threshold:
            return None  # what is known is small, the rest is decided at run time (or by rule 6)
        what = f"{len(columns)} column{'s' if len(columns) != 1 else ''}" if len(columns) > 1 or \
            isinstance(data, cst.Dict) else "its data"
        bound = f"≥ {format_bytes(total)}, {unknown} of unknown size" if unknown else format_bytes(total)
        return total, HeavyReason(HeavyRule.STATIC, f"{_unparse(call)} = {what}, {bound}")

    def _column_size(self, e: cst.BaseExpression | None) -> int | None:
        """One column of rule 9, in bytes, or None when unknown."""
        if e is None:
            return None
        if isinstance(e, cst.Name) and e.value in self.sizes:
            return self.sizes[e.value]
        if isinstance(e, (cst.List, cst.Tuple)) and not any(isinstance(el, cst.StarredElement) for el in e.elements):
            return 8 * len(e.elements)
        if isinstance(e, (cst.SimpleString, cst.Integer, cst.Float)) or (
                isinstance(e, cst.Name) and e.value in ("True", "False", "None")):
            return 0  # a scalar, broadcast to the length of the other columns
        found = self.static(e)
        if found is not None:
            return found[0]
        if isinstance(e, cst.BinaryOperation):  # ``price * qty``: the larger operand's size
            sizes = [x for x in (self._column_size(e.left), self._column_size(e.right)) if x is not None]
            return max(sizes) if sizes else None
        q = self.names.qualname(e.func) or "" if isinstance(e, cst.Call) else ""
        if isinstance(e, cst.Call) and q.startswith("numpy.") and q[len("numpy."):] in _ELEMENTWISE:
            sizes = [x for a in e.args if a.keyword is None and (x := self._column_size(a.value)) is not None]
            return max(sizes) if sizes else None  # ``np.round(rng.uniform(size=n), 2)``: its array's size
        return None

    def _specialized(self, name: str, call: cst.Call) -> list[_Found | None]:
        """Rule 8 again for one call, with the helper's parameters bound to the call's constant
        arguments (``load(rows=N)`` allocating ``np.empty(rows)``)."""
        fn = self._functions.get(name)
        if fn is None or any(a.star for a in call.args):
            return []
        params = [p.name.value for p in (*fn.params.posonly_params, *fn.params.params)]
        bound = dict(zip(params, (a.value for a in call.args if a.keyword is None), strict=False))
        bound |= {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        values = {p: v for p, e in bound.items() if p in params and (v := self.const(e)) is not None}
        if not values:
            return []
        outer = self.const
        self.const = outer.with_values(values)  # not a copy of every constant per call
        try:
            return self._helper_returns(fn)
        finally:
            self.const = outer

    def unpacked(self, b: Binding) -> _Found | None:
        """Rule 8 for ``a, b = helper(...)``: the heavy returned value at the target's position."""
        value = b.value
        if not isinstance(value, cst.Call):
            return None
        own = self.names.own(value.func)
        found = self.returns.get(own) if own is not None else None
        stmt_targets = self._unpack_targets.get(id(value))
        if not found or stmt_targets is None or b.name not in stmt_targets:
            return None
        index = stmt_targets.index(b.name)
        return found[index] if index < len(found) else None

    def derived_from(self, value: cst.CSTNode | None, heavy: set[str]) -> str | None:
        """Rule 6: the heavy local ``value`` is computed elementwise from, if any."""
        if value is None:
            return None
        if isinstance(value, cst.Name):
            return value.value if value.value in heavy else None
        if isinstance(value, (cst.BinaryOperation,)):
            return self.derived_from(value.left, heavy) or self.derived_from(value.right, heavy)
        if isinstance(value, cst.UnaryOperation):
            return self.derived_from(value.expression, heavy)
        if isinstance(value, cst.Comparison):
            return self.derived_from(value.left, heavy) or next(
                (f for c in value.comparisons if (f := self.derived_from(c.comparator, heavy))), None)
        if isinstance(value, cst.Subscript):
            return self.derived_from(value.value, heavy)
        if isinstance(value, cst.Attribute):
            if value.attr.value in _VIEW_ATTRS or self._accessor(value.value):
                return self.derived_from(value.value, heavy)
            root = value.value
            if isinstance(root, cst.Name) and root.value in heavy and (t := self.types.get(root.value)) is not None \
                    and t.kind is Kind.CLASS:
                return root.value  # an attribute of a heavy program object
            return None
        if isinstance(value, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)):
            return self.derived_from(value.for_in.iter, heavy)
        if isinstance(value, (cst.Tuple, cst.List)):
            for el in value.elements:
                found = self.derived_from(el.value, heavy)
                if found:
                    return found
            return None
        if isinstance(value, cst.Dict):  # a dict display holding a heavy value (the columns of a frame)
            return next((f for el in value.elements if (f := self.derived_from(el.value, heavy))), None)
        if isinstance(value, cst.Call):
            q = self.names.qualname(value.func) or ""
            if any(a.keyword is not None and a.keyword.value == "inplace" and not _is_false(a.value)
                   for a in value.args):
                return None  # ``df.sort_values(..., inplace=True)`` returns None
            func = value.func
            if isinstance(func, cst.Attribute) and not q:
                method, receiver = func.attr.value, func.value
                if self._grouped(receiver):
                    if method in _GROUPBY_SAME_SIZE:
                        return self.derived_from(receiver, heavy)
                    return None  # an aggregation: one row per group
                if method in _SHAPE_PRESERVING or method in _PANDAS_SAME_SIZE or self._accessor(receiver) or \
                        self._window(receiver):
                    found = self.derived_from(receiver, heavy)
                    if found or method not in _PANDAS_JOINS:
                        return found
                    return next((f for a in value.args if (f := self.derived_from(a.value, heavy))), None)
            if (q.startswith("numpy.") and q[len("numpy."):] in _ELEMENTWISE) or \
                    (q.startswith("pandas.") and q[len("pandas."):] in _PANDAS_FUNCS):
                for a in value.args:
                    found = self.derived_from(a.value, heavy)
                    if found:
                        return found
        return None

    def _grouped(self, e: cst.BaseExpression) -> bool:
        """``e`` is a GroupBy: ``df.groupby(...)``, a column selection of one, or a local bound to one."""
        while isinstance(e, cst.Subscript):
            e = e.value
        if isinstance(e, cst.Name):
            return e.value in self.groupbys
        return isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value in _GROUPERS \
            and not self.names.qualname(e.func)

    def _window(self, e: cst.BaseExpression) -> bool:
        """``e`` is ``x.rolling(...)``/``x.expanding()``/``x.ewm(...)``, or a local bound to one: its
        methods keep every row."""
        if isinstance(e, cst.Name):
            return e.value in self.windows
        return isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value in _WINDOWS \
            and not self.names.qualname(e.func)

    @staticmethod
    def _accessor(e: cst.BaseExpression) -> bool:
        """``e`` is ``x.str``/``x.dt``/``x.cat``: its attributes and methods are elementwise."""
        return isinstance(e, cst.Attribute) and e.attr.value in _ACCESSORS


class HeavyProvider(Provider[str, HeavyDecision]):
    """Every local of the entry region -> :class:`HeavyDecision` (rules 1-7)."""

    DEPENDENCIES = (NamesProvider, DefUseProvider, TypesProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, HeavyDecision]:
        options = results.options
        threshold = getattr(options, "heavy_bytes", DEFAULT_HEAVY_BYTES)
        profile = getattr(options, "profile", None)
        rules = _Rules(program, results.get(NamesProvider)["names"], results.get(TypesProvider), threshold)
        bindings = [b for du in results.get(DefUseProvider).values() for b in du.bindings]
        measured: dict[str, tuple[int, str]] = {}
        for key, unit in (profile or {}).get("units", {}).items():
            for name, size in unit.get("live_bytes", {}).items():
                if size > measured.get(name, (-1, ""))[0]:
                    measured[name] = (size, key)
        out: dict[str, HeavyDecision] = {}
        for b in bindings:  # rule 1
            if b.pragma is not None and b.name not in out:
                out[b.name] = HeavyDecision(b.pragma == "memory", None,
                                            HeavyReason(HeavyRule.PRAGMA, b.pragma, b.line))
        bound = {b.name for b in bindings}
        for b in bindings:  # the sizes rule 9 reads for columns named by a local, and the GroupBy locals
            if b.kind in ("assign", "walrus") and isinstance(b.value, cst.BaseExpression):
                size = rules._column_size(b.value)
                if size is not None:
                    rules.sizes[b.name] = max(size, rules.sizes.get(b.name, 0))
                if rules._grouped(b.value):
                    rules.groupbys.add(b.name)
                if rules._window(b.value):
                    rules.windows.add(b.name)
        for name, (size, key) in measured.items():  # rule 2
            if name not in out and name in bound:
                heavy = size >= threshold
                out[name] = HeavyDecision(heavy, size, HeavyReason(
                    HeavyRule.PROFILE, f"{format_bytes(size)} after the unit at {key}"))
        for b in bindings:  # rules 3-5, 8
            if b.name in out or b.kind not in ("assign", "walrus", "unpack"):
                continue
            found = rules.static(b.value) if b.kind != "unpack" else rules.unpacked(b)
            if found is not None:
                size, reason = found
                if (size is None and reason.rule is HeavyRule.LOADER) or (size is not None and size >= threshold):
                    out[b.name] = HeavyDecision(True, size, replace(reason, line=b.line))
        _derive(rules, bindings, out)  # rule 6
        for b in bindings:  # rule 7
            if b.name not in out:
                static = rules.static(b.value) if b.kind in ("assign", "walrus") else None
                size = static[0] if static else None
                out[b.name] = HeavyDecision(False, size, HeavyReason(
                    HeavyRule.BELOW_THRESHOLD if size is not None else HeavyRule.NO_RULE))
        return out


class _Mentions(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)


def _derive(rules: _Rules, bindings: list[Binding], out: dict[str, HeavyDecision]) -> None:
    """Rule 6 to its fixed point, in rounds: a round tries the undecided bindings, in order, against
    the names heavy when it starts, and the names it makes heavy are tried in the next round.

    A binding can only become heavy in the round after one of the names its value mentions did
    (``derived_from`` looks at no other names), so each round tries just those bindings: the
    work is the size of the values, where trying every binding in every round is quadratic in a
    chain ``b = a * 2``, ``c = b * 2`` …
    """
    mentioning: dict[str, list[int]] = {}
    for i, b in enumerate(bindings):
        if b.kind in ("assign", "walrus", "unpack") and b.value is not None:  # a for target is never derived
            found = _Mentions()
            b.value.visit(found)
            for name in found.names:
                mentioning.setdefault(name, []).append(i)
    heavy = {n for n, d in out.items() if d.heavy}
    fresh = set(heavy)
    while fresh:
        tried = sorted({i for name in fresh for i in mentioning.get(name, ())})
        fresh = set()
        for i in tried:
            b = bindings[i]
            if b.name in out:
                continue
            source = rules.derived_from(b.value, heavy)
            if source is not None:
                out[b.name] = HeavyDecision(True, out[source].size,
                                            HeavyReason(HeavyRule.DERIVED, source, b.line))
                fresh.add(b.name)
        heavy |= fresh
