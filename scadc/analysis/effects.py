"""Side effects of code: in-place mutation, aliasing, global RNG use, module-state changes.

The same visitor reads an entry unit and a helper function's body; what it tracks are the
*roots* of mutated objects (``x`` for ``x.a[i] = v``, also through view methods such as
``x.reshape(...)[0] = v``) that live in one scope (the entry region, or the helper's own).

Mutation rules:

1. ``x[...] = v``, ``x.attr = v``, ``del x[...]``, ``x[...] += v`` mutate ``x``.
2. ``x += v`` (a name) mutates ``x``'s object (in place for arrays and lists) and rebinds ``x``.
3. A method of a known type that is not in that type's pure row (``append``, ``sort``, ``fill``, …)
   mutates its receiver; those that store an argument (:data:`ALIAS_METHODS`) alias it too (A7).
4. ``out=`` of any call, and numpy's in-place functions (:data:`NUMPY_INPLACE`: ``np.copyto``,
   ``np.put``, ``np.add.at``, ``np.random.shuffle``, …) mutate the named argument.
5. A call into a program helper mutates the arguments bound to the parameters the helper mutates
   (its summary, computed to a fixed point so recursion and helper-calls-helper work; a keyword
   argument is bound by name, ``*args``/``**kwargs`` to any parameter); a program class's
   constructor and methods likewise (``self`` is the receiver). A call from the entry reads the
   helper again with its arguments' types (:class:`HelperReturns`), within what the summary allows.
6. A method called on a random generator object (a value :mod:`scadc.analysis.types` types
   ``rng``: bound from ``np.random.default_rng``/``Generator``/``RandomState``/``random.Random``,
   returned by a helper, or passed into one) advances, i.e. mutates, the generator, but for
   :data:`RNG_PURE_METHODS`; a generator passed to any other library call may be drawn from.
7. An unknown callee (a function of another library, a local callable, ``exec``) is assumed to
   mutate every argument, keyword and starred ones included. numpy and pandas functions, pure
   builtins (:data:`PURE_BUILTINS`) and pure standard modules (:data:`PURE_MODULES`) are known not
   to; ``next(it)`` mutates ``it``, and a builtin that iterates (``list(it)``, ``sum(it)``, a ``for``
   loop, a comprehension) mutates what it iterates unless its type is known not to be an iterator.
8. A method call mutates its receiver unless the receiver's type is known (:mod:`~scadc.analysis.
   types`) and the method is in that type's row of :data:`~scadc.analysis.types.PURE_METHODS`; on a
   receiver of unknown type it may also mutate its arguments. Inside a helper, a method called on
   a parameter of unknown type is recorded as *conditional* in the summary and decided at each
   call, with the type of the argument there. ``inplace=`` (anything but a literal ``False``)
   always mutates the receiver. A program function or a lambda passed to a known-pure method is
   followed: if it may mutate what it is given, the receiver is mutated.

Aliasing rules (pairs of names then merged into alias classes, flow-insensitively):

A1. ``b = a``; A2. ``b = a[...]``, ``b = a.attr`` (views and contained objects); A3. ``b =
a.view()/reshape()/ravel()/transpose()/squeeze()/swapaxes()``, ``np.asarray(a)`` and friends;
A4. ``b = [a, …]``/``(a, …)``/``{k: a}`` (a container holds the object); A5. ``for b in a`` and
``for i, b in enumerate(a)``/``zip(a, …)``; A6. ``with a as b``; A7. ``a.append(b)``,
``a[k] = b`` (not a slice: ``a[i:j] = b`` copies), ``a.attr = b`` (``b`` becomes reachable from
``a``); A8. ``b, c = a``; A9. ``b = C(a)`` for a program class ``C`` (an instance may keep ``a``).
A10. What a call, an operator or a comprehension makes may be or hold what it was made from: a
shallow copy shares its items (``list(a)``, ``a.copy()``, ``copy.copy(a)``, ``dict(d)``, ``a + b``
of lists, a numpy or pandas copy of object data), ``min``/``max``/``next`` return an item, an
unknown callee may return anything it was given. So by default ``b = f(a, k)``/``b = r.m(a)``
aliases ``b`` with the arguments, the receiver and a local callable; ``b = [g(x) for x in a]``
with the element (whose variables alias ``a`` by A5); ``for x in f(a)`` aliases ``x`` with what
``f(a)`` holds; and a change through ``f(a)[0]`` changes ``a``. The exceptions, each a table
backed by tests (tests/scadc/test_alias_tables.py):
(a) an immutable value (types' number, str, bytes, None, tuples of those: ``len(a)``, ``str(a)``,
    ``a.shape``; standard calls of :data:`IMMUTABLE_CALLS`: ``json.dumps``, ``os.path.join`` …)
    holds nothing that can change, as a result or as a source; but a call whose value is a dunder
    of its argument (:data:`ARGUMENT_DUNDER_CALLS`: ``abs``, ``round``, ``sum``, ``max`` …) is
    immutable only of immutable arguments;
(b) a new object that holds no object: a numpy call, a generator's draw, an operator or a
    method of :data:`NDARRAY_FRESH_METHODS` whose result is a *plain* array (types' T7: made
    from numbers, never of ``object`` dtype), unless the function may return its input or a view
    (:data:`NUMPY_MAY_RETURN_INPUT`, ``out=`` gives the out array); a pandas call, method or
    operator whose result is a plain frame (T8), unless the method holds the receiver
    (:data:`PANDAS_HOLD_RECEIVER`: ``groupby``, ``rolling`` …), and only while no statement may
    put objects into a frame and the installed pandas copies on write (pandas 3 and later:
    :func:`pandas_stays_plain`, :func:`copies_on_write`); a numpy call given a list that holds plain
    data only (types' T9: ``np.mean(scores)``); :data:`FRESH_CALLS` (``copy.deepcopy``); builtins of
    :data:`PLAIN_DATA_CALLS` given plain data; a file's reads (:data:`READ_METHODS`);
(c) a program function's or method's result holds only the arguments whose parameters share an
    alias class with what its ``return`` statements give, in its code read with the argument
    types of the call (:class:`HelperReturns`; every argument for a generator, ``*args``, a
    keyword argument or recursion). The same read decides which parameters a call changes
    (rule 5), within what the summary allows. A ``def`` nested in the scope returns what it is
    given or what it reads (its free names), not the function object. In a helper's summary, a
    method on a value made from a parameter (``(p * p).sum()``) is conditional as one on ``p`` is.
A11. ``b = X[idx]`` of a plain array (types' T7) with an index that is surely a list or an array of
one dimension or more (a display, :data:`INDEX_ARRAY_CALLS`, a generator's ``permutation``, or
``choice``/``integers`` with a ``size=``) is advanced indexing: a copy, and a plain array's copy
holds nothing of ``X``; so no pair (A2 otherwise: a basic index gives a view, an object array's
copy its objects).

State rules: S1. calling ``numpy.random.*`` (not a generator factory) or ``random.*`` (not
``random.Random``) uses a global RNG; S2. rebinding a module-level name (``global``) or mutating a
module-level object changes module state; S3. both propagate through helper calls; S4. the code
may touch the world outside the process (``io``): ``open``/``input``/``exec``, a call into a
module that reads or writes files, processes or sockets (:data:`IO_MODULES`), numpy's file
functions (:data:`NUMPY_IO`), a file method (:data:`IO_METHODS`: ``.write``, ``.tofile`` …),
``print(file=...)`` to anything but ``sys.stdout``/``sys.stderr``, or any other library's
function (unknown: it may); S4 also propagates through helper calls. Printing to stdout and
stderr is not ``io``: the engine writes every element's output in program order.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst
import networkx as nx
from libcst.metadata import Assignment, CodeRange, ComprehensionScope, ExpressionContext, Scope

from scadc.analysis.base import Provider, Results
from scadc.analysis.names import Names, NamesProvider
from scadc.analysis.program import Program, Unit, helper_functions
from scadc.analysis.types import (
    UNKNOWN,
    Kind,
    ProgramTypesProvider,
    Signatures,
    ValueType,
    comprehension_types,
    infer_types,
    is_plain_data,
    is_pure_method,
    makes_immutable,
    plain_type,
    type_of,
)

__all__ = ["ALIAS_METHODS", "CONSUMING_BUILTINS", "NUMPY_INPLACE", "PURE_BUILTINS", "PURE_MODULES", "Effects",
           "EffectsProvider", "HelperReturns", "HelperSummaryProvider", "Summary", "collect_effects",
           "copies_on_write", "is_inner", "pandas_stays_plain", "summarize_helpers"]

VIEW_METHODS = frozenset({"view", "reshape", "ravel", "transpose", "squeeze", "swapaxes", "T", "real", "imag",
                          "flat", "base", "values", "keys", "items", "getfield", "conj", "conjugate"})
#: methods whose result is the receiver itself (or a view of it) when given ``copy=`` other than True
VIEW_IF_NOT_COPIED = frozenset({"astype"})
NUMPY_VIEW_FUNCTIONS = frozenset({"asarray", "asanyarray", "ravel", "reshape", "transpose", "squeeze",
                                  "atleast_1d", "atleast_2d", "atleast_3d", "swapaxes", "moveaxis", "frombuffer",
                                  "broadcast_to", "expand_dims"})
ALIAS_METHODS = frozenset({"append", "extend", "insert", "add", "update", "setdefault", "appendleft"})
#: qualified name -> index of the argument mutated in place (rule 4)
NUMPY_INPLACE = {
    "numpy.copyto": 0, "numpy.put": 0, "numpy.place": 0, "numpy.putmask": 0, "numpy.fill_diagonal": 0,
    "numpy.put_along_axis": 0, "numpy.random.shuffle": 0, "random.shuffle": 0,
}
PURE_BUILTINS = frozenset({
    "abs", "all", "any", "ascii", "bin", "bool", "bytes", "callable", "chr", "complex", "dict", "divmod",
    "enumerate", "filter", "float", "format", "frozenset", "getattr", "hasattr", "hash", "hex", "id", "int",
    "isinstance", "issubclass", "iter", "len", "list", "map", "max", "min", "oct", "ord", "pow", "print",
    "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple", "type", "zip",
    "open", "ValueError", "TypeError", "KeyError", "RuntimeError", "Exception", "AssertionError",
    "IndexError", "ZeroDivisionError", "NotImplementedError", "StopIteration", "SystemExit", "object",
    "super", "vars", "dir", "memoryview", "bytearray",
})
#: pure builtins that iterate their (first) argument: an iterator given to them is used up (rule 7)
CONSUMING_BUILTINS = frozenset({"list", "tuple", "set", "frozenset", "dict", "sum", "min", "max", "sorted", "any",
                                "all", "bytes", "bytearray", "enumerate", "zip", "map", "filter"})
PURE_MODULES = ("math", "statistics", "time", "json", "os.path", "string", "textwrap", "itertools", "functools",
                "operator", "collections", "dataclasses", "typing", "heapq.nlargest", "heapq.nsmallest",
                "bisect.bisect", "bisect.bisect_left", "bisect.bisect_right", "threading", "io", "socket", "sys")
#: modules whose functions may read or write files, processes or sockets (S4); ``os.path`` is pure
IO_MODULES = ("os", "shutil", "pathlib", "subprocess", "socket", "io", "tempfile", "glob", "csv", "sqlite3",
              "urllib", "http", "pickle.dump", "pickle.load", "json.dump", "json.load", "marshal.dump",
              "marshal.load", "sys.stdin", "gzip", "zipfile", "tarfile", "mmap", "multiprocessing")
#: modules (beyond :data:`PURE_MODULES`) whose other functions stay inside the process (S4)
NO_IO_MODULES = ("pickle", "copy", "re", "struct", "base64", "hashlib", "decimal", "fractions", "array", "enum",
                 "abc", "numbers", "warnings", "contextlib", "bisect", "heapq", "zlib", "binascii", "uuid")
IO_BUILTINS = frozenset({"open", "input", "exec", "eval", "compile", "breakpoint", "__import__"})
NUMPY_IO = frozenset({"save", "savez", "savez_compressed", "savetxt", "load", "loadtxt", "genfromtxt", "fromfile",
                      "memmap", "fromregex", "open_memmap", "recfromcsv", "recfromtxt"})
IO_METHODS = frozenset({"write", "writelines", "read", "readline", "readlines", "flush", "tofile", "dump",
                        "truncate", "seek", "read_text", "write_text", "read_bytes", "write_bytes", "unlink",
                        "mkdir", "rmdir", "touch", "rename", "to_csv", "to_parquet", "to_pickle", "to_json",
                        "savefig"})
#: A10 (a): calls whose result is what a dunder of the argument returns (``abs(x)`` is ``x.__abs__()``):
#: immutable only when the arguments are
ARGUMENT_DUNDER_CALLS = frozenset({"builtins.abs", "builtins.round", "builtins.divmod", "builtins.pow",
                                   "builtins.min", "builtins.max", "builtins.sum", "builtins.next",
                                   "builtins.getattr", "math.floor", "math.ceil", "math.trunc", "math.prod"})
#: A10 (a): standard functions (a name, or a module's prefix ending in ".") whose result is a new str,
#: bytes or number, whatever they are given
IMMUTABLE_CALLS = ("json.dumps", "pickle.dumps", "marshal.dumps", "os.path.", "zlib.compress", "zlib.decompress",
                   "zlib.crc32", "zlib.adler32", "base64.", "binascii.", "struct.pack", "struct.calcsize",
                   "time.time", "time.perf_counter", "time.monotonic", "time.process_time", "time.strftime",
                   "string.capwords", "textwrap.dedent", "textwrap.indent", "textwrap.fill", "textwrap.shorten",
                   "operator.index", "os.getcwd", "os.getpid", "os.fspath", "platform.")
#: A11: numpy functions whose result is always an array of one dimension or more (or a tuple of them)
INDEX_ARRAY_CALLS = frozenset({"numpy.arange", "numpy.nonzero", "numpy.flatnonzero", "numpy.argwhere",
                               "numpy.ix_", "numpy.indices"})
#: A10 (b): methods of a file (or any file-like object) that read new data: str, bytes, a list of them
READ_METHODS = frozenset({"read", "readline", "readlines", "read_text", "read_bytes"})
#: A10 (a): attributes of an array or a frame that are tuples of ints or ints
SHAPE_ATTRIBUTES = frozenset({"shape", "size", "ndim", "nbytes", "itemsize", "strides", "empty"})
#: A10 (b): calls whose result shares no object with their arguments, whatever those are
FRESH_CALLS = frozenset({"copy.deepcopy"})
#: A10 (b): builtins and math functions that, given plain data (numbers, str, plain arrays), make new
#: plain data (``sum(a)`` of a float array, ``abs(a)``)
PLAIN_DATA_CALLS = frozenset({"abs", "round", "pow", "divmod", "sum", "floor", "ceil", "trunc", "prod", "fsum"})
#: A10 (b): numpy functions (or modules) whose result may be an argument itself or a view of it, beyond
#: the views of A3 (:data:`NUMPY_VIEW_FUNCTIONS`); each backed by tests/scadc/test_alias_tables.py
NUMPY_MAY_RETURN_INPUT = frozenset({
    "flip", "fliplr", "flipud", "rot90", "diagonal", "diag", "real", "imag", "ascontiguousarray", "asfortranarray",
    "require", "asarray_chkfinite", "asmatrix", "matrix", "trim_zeros", "rollaxis", "squeeze", "broadcast_arrays",
    "split", "array_split", "hsplit", "vsplit", "dsplit", "meshgrid", "nan_to_num", "real_if_close",
    "matrix_transpose", "permute_dims", "unstack", "from_dlpack", "lib", "stride_tricks", "as_strided",
    "sliding_window_view", "ma", "rec", "char", "ndarray", "memmap", "ctypeslib", "fromiter",
})
#: A10 (b): methods of a plain ndarray that return a new array (or a number), never a view of it
NDARRAY_FRESH_METHODS = frozenset({
    "copy", "astype", "flatten", "sum", "mean", "std", "var", "min", "max", "prod", "cumsum", "cumprod",
    "argmax", "argmin", "argsort", "round", "clip", "dot", "take", "repeat", "all", "any", "nonzero",
    "searchsorted", "compress", "trace", "ptp", "tolist", "tobytes", "item", "argpartition", "choose",
})
#: A10 (b): pandas methods whose result holds (or is) the receiver itself: it sees later changes
PANDAS_HOLD_RECEIVER = frozenset({"groupby", "rolling", "expanding", "ewm", "resample", "pipe", "items",
                                  "iterrows", "itertuples", "get", "xs", "squeeze", "pop", "to_numpy",
                                  "__iter__", "__array__"})
#: T8: pandas methods that store their arguments' data into the receiver (besides any with ``inplace=``)
PANDAS_STORE_METHODS = frozenset({"insert", "update", "__setitem__", "setdefault", "set_value"})
RNG_FACTORIES = frozenset({"default_rng", "Generator", "RandomState", "SeedSequence", "PCG64", "PCG64DXSM",
                           "MT19937", "Philox", "SFC64", "BitGenerator"})
#: methods of a generator object that do not advance it (rule 6)
RNG_PURE_METHODS = frozenset({"spawn", "bit_generator", "__getstate__", "getstate"})


@dataclass(frozen=True)
class Summary:
    """What a program helper (or method) does to its caller's world."""

    #: indices of the positional parameters it may mutate (``self`` is 0 for a method)
    params: frozenset[int] = frozenset()
    #: module-level names it rebinds or mutates (rule S2)
    module_state: frozenset[str] = frozenset()
    #: global RNGs it uses: ``numpy.random``, ``random`` (rule S1)
    rng: frozenset[str] = frozenset()
    #: it contains ``yield``: calling it makes a generator
    generator: bool = False
    #: why it may touch the world outside the process (rule S4); empty if it does not
    io: frozenset[str] = frozenset()
    #: rule 8 inside the helper: (parameter, method, other parameters passed to it) for each method
    #: called on a parameter of unknown type; the caller decides with the argument's type
    conditional: frozenset[tuple[int, str, frozenset[int]]] = frozenset()


@dataclass
class Effects:
    """What one piece of code does (the raw facts; providers freeze them)."""

    #: (root name, reason, line) for each mutation of a tracked object
    mutations: list[tuple[str, str, int]] = field(default_factory=list)
    aliases: list[tuple[str, str]] = field(default_factory=list)
    module_state: set[str] = field(default_factory=set)
    rng: set[str] = field(default_factory=set)
    #: names bound from a call to a generator function (not transferable)
    generator_calls: set[str] = field(default_factory=set)
    #: why the code may touch the world outside the process (rule S4)
    io: set[str] = field(default_factory=set)
    #: the roots of what ``return`` statements may return (A10 (c), in a helper)
    returned: list[str] = field(default_factory=list)
    #: rule 8 in a helper: (receiver root, method, roots of the arguments, line), for a receiver of
    #: unknown type; the summary decides whether the root is one of the helper's parameters
    conditional: list[tuple[str, str, tuple[str, ...], int]] = field(default_factory=list)


def _is_slice(target: cst.Subscript) -> bool:
    return any(isinstance(el.slice, cst.Slice) for el in target.slice)


def _is_view_call(call: cst.Call) -> bool:
    """``x.reshape(...)``, ``x.astype(t, copy=False)``: the result may be (a view of) ``x`` (A3)."""
    if not isinstance(call.func, cst.Attribute):
        return False
    method = call.func.attr.value
    return method in VIEW_METHODS or (method in VIEW_IF_NOT_COPIED and any(
        a.keyword is not None and a.keyword.value == "copy" and not (isinstance(a.value, cst.Name)
                                                                  and a.value.value == "True") for a in call.args))


def _immutable_type(t: ValueType) -> bool:
    """A number, str, bytes, None, or a tuple of those (a tuple of arrays is plain data, not immutable)."""
    if t.kind is Kind.TUPLE:
        return t.plain or (t.items is not None and all(_immutable_type(i) for i in t.items))
    return t.kind in (Kind.NUMBER, Kind.STR, Kind.BYTES, Kind.NONE)


def _names_in(target: cst.BaseExpression) -> list[cst.Name]:
    if isinstance(target, cst.Name):
        return [target]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for el in target.elements for n in _names_in(el.value)]
    if isinstance(target, cst.StarredElement):
        return _names_in(target.value)
    return []


def _fact_name(root: cst.Name, where: str | None) -> str | None:
    """What the facts call ``root`` where it lives (see ``_Visitor._tracked``)."""
    return root.value if where == "tracked" else f"[{root.value}]" if where == "inner" else None


def _unparse(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


class _Visitor(cst.CSTVisitor):
    def __init__(self, names: Names, scope: Scope, summaries: Mapping[str, Summary], *,
                 types: Mapping[str, ValueType], signatures: Signatures,
                 positions: Mapping[cst.CSTNode, CodeRange], deferred: bool,
                 returns: HelperReturns | None) -> None:
        self.names, self.scope, self.summaries, self.types = names, scope, summaries, types
        self.signatures, self.positions = signatures, positions
        #: a helper's visit: methods on values of unknown type are conditional, not mutations
        self.deferred = deferred
        #: what helpers' results may hold of their arguments (A10 (c)); None: anything
        self.returns = returns
        #: T8: no statement may store objects into a pandas object, so plain frames stay plain
        self.pandas_plain = returns is not None and returns.pandas_plain
        #: arguments of the helper call being applied that no parameter takes by position (rule 5)
        self._loose: list[cst.BaseExpression] = []
        #: the comprehensions around the node being visited, outermost first
        self._comps: list[cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp] = []
        self.out = Effects()

    def _type(self, expr: cst.BaseExpression) -> tuple[ValueType, bool]:
        return type_of(expr, self.names, self.types, self.signatures)

    def _a10_type(self, expr: cst.BaseExpression) -> tuple[ValueType, bool]:
        """The type A10 trusts: unknown when ``expr`` reads a comprehension's variable it does not
        bind itself (the types are per scope, by name, and such a name may shadow a local of
        another type; types type the variables of a comprehension inside ``expr`` themselves)."""
        inner: set[str] = set()
        bound: set[str] = set()

        class _Inner(cst.CSTVisitor):
            def visit_Name(this, node: cst.Name) -> None:
                if self._where(node) == "inner":
                    inner.add(node.value)

            def visit_Attribute(this, node: cst.Attribute) -> bool:
                node.value.visit(this)  # the attribute's own name is no read
                return False

            def visit_CompFor(this, node: cst.CompFor) -> None:
                bound.update(n.value for n in _names_in(node.target))

        expr.visit(_Inner())
        if not inner - bound:
            return self._type(expr)
        # the variables of the comprehensions around ``expr``, typed by what they iterate
        types = dict(self.types)
        typed: set[str] = set()
        for comp in self._comps:
            found = comprehension_types(comp, self.names, types, self.signatures)
            types.update(found)
            typed |= set(found)
        if inner - bound <= typed:
            return type_of(expr, self.names, types, self.signatures)
        return UNKNOWN, False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self._comps.append(node)
        return super().on_visit(node)

    def on_leave(self, original_node: cst.CSTNode) -> None:
        super().on_leave(original_node)
        if isinstance(original_node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self._comps.pop()

    # -- where a root lives --------------------------------------------------------------------
    def _where(self, node: cst.Name) -> str | None:
        refs = [r for a in self.names._access.get(id(node), ()) for r in a.referents]
        if not refs:  # a target without a read (``x += 1`` records no access in libcst): its binding
            refs = list(self.names._assign.get(id(node), ()))
        if any(r.scope is self.scope and (self.scope is not self.names.entry_scope
                                          or self.names._is_entry(r.scope, node.value)) for r in refs):
            return "tracked"
        if any(self._inside(r.scope) for r in refs):
            # a comprehension's variable: it holds objects of the tracked scope (``[v.sort() for v in vs]``)
            return "inner"
        if any(r.scope is self.names.global_scope for r in refs):
            return "module"
        return None

    def _inside(self, scope: Scope | None) -> bool:
        while isinstance(scope, ComprehensionScope):
            scope = scope.parent
            if scope is self.scope:
                return True
        return False

    def _tracked(self, root: cst.Name) -> str | None:
        """The name facts use for ``root``: a local of the tracked scope, ``[v]`` for a comprehension's
        variable (an :func:`inner <is_inner>` name: it links objects, it is never a live value)."""
        return _fact_name(root, self._where(root))

    def _root(self, expr: cst.BaseExpression) -> cst.Name | None:
        base = self._base(expr)
        return base if isinstance(base, cst.Name) else None

    def _rebinds_global(self, node: cst.Name) -> bool:
        """A helper binds a module-level name (after ``global``); the entry's own bindings are locals."""
        return self.scope is not self.names.entry_scope and self.names.binds_global_from_function(node)

    def _line(self, node: cst.CSTNode) -> int:
        pos = self.positions.get(node)
        return pos.start.line if pos is not None else 0

    def mutate(self, expr: cst.BaseExpression, reason: str, at: cst.CSTNode) -> None:
        root = self._root(expr)
        if root is None:
            # ``list(a)[0].append(v)``, ``f(a).x = v``: a change of what the call's value holds (A10)
            base = self._base(expr)
            for src in self._value_sources(base):
                self.mutate(src, reason, at)
            return
        where = self._where(root)
        tracked = _fact_name(root, where)
        if tracked is not None:
            self.out.mutations.append((tracked, reason, self._line(at)))
        elif where == "module" and root.value not in self.summaries and not self.names.qualname(root):
            self.out.module_state.add(root.value)  # rule S2

    def alias(self, a: cst.BaseExpression | None, b: cst.BaseExpression | None) -> None:
        ra = self._root(a) if a is not None else None
        rb = self._root(b) if b is not None else None
        if ra is not None and rb is not None and (na := self._tracked(ra)) and (nb := self._tracked(rb)):
            self.out.aliases.append((na, nb))

    # -- statements ----------------------------------------------------------------------------
    def _targets(self, target: cst.BaseExpression) -> list[cst.BaseExpression]:
        if isinstance(target, (cst.Tuple, cst.List)):
            return [t for el in target.elements for t in self._targets(el.value)]
        if isinstance(target, cst.StarredElement):
            return self._targets(target.value)
        return [target]

    def _value_sources(self, value: cst.BaseExpression) -> list[cst.BaseExpression]:
        """Expressions, each rooted at a name, whose objects ``value`` may be or contain: rules
        A1-A4 and A10 (what a call, an operator or a comprehension makes may hold its inputs)."""
        if self._immutable(value):
            return []  # A10 (a): nothing in it can change
        if isinstance(value, cst.Name):
            return [value]
        if isinstance(value, (cst.Attribute, cst.Subscript)):
            if isinstance(value, cst.Subscript) and self._advanced_copy(value):
                return []  # A11
            base = self._base(value)
            if isinstance(base, cst.Name):
                return [value]  # A2
            return self._value_sources(base)  # ``f(a)[0]``: a part of what the call returns
        if isinstance(value, cst.StarredElement):
            return self._value_sources(value.value)
        if isinstance(value, (cst.Tuple, cst.List, cst.Set)):
            return [s for el in value.elements for s in self._value_sources(el.value)]
        if isinstance(value, cst.Dict):
            return [s for el in value.elements
                    for part in ((el.key, el.value) if isinstance(el, cst.DictElement) else (el.value,))
                    for s in self._value_sources(part)]
        if isinstance(value, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            self._comps.append(value)
            try:  # A10: its variables alias what they iterate (A5)
                if isinstance(value, cst.DictComp):
                    return [*self._value_sources(value.key), *self._value_sources(value.value)]
                return self._value_sources(value.elt)
            finally:
                self._comps.pop()
        if isinstance(value, cst.Call):
            return self._call_sources(value)
        if isinstance(value, (cst.BinaryOperation, cst.BooleanOperation)):
            # ``l + m`` holds the items of both; ``a or b`` is one of them (plain arrays: (a))
            if self._fresh_operation(value):
                return []
            # the operands of the whole chain (``a or b or c`` nests): typing each inner level again
            # made a chain of n terms cost n² (3000 terms took over 5 minutes)
            return [s for operand in _operands(value) for s in self._value_sources(operand)]
        if isinstance(value, cst.IfExp):
            return [*self._value_sources(value.body), *self._value_sources(value.orelse)]
        if isinstance(value, cst.UnaryOperation):
            return [] if self._fresh_operation(value) else self._value_sources(value.expression)
        if isinstance(value, cst.NamedExpr):
            return self._value_sources(value.value)
        if isinstance(value, cst.Await):
            return self._value_sources(value.expression)
        if isinstance(value, cst.Lambda):
            return self._free_names(value.body)  # a closure keeps what it reads
        return []  # literals, comparisons (bools), f-strings, ``yield`` (what is sent in)

    def _advanced_copy(self, sub: cst.Subscript) -> bool:
        """A11: ``X[idx]`` of a plain array with an index that is surely an array (or a list): advanced
        indexing copies, and a plain array's copy holds nothing (an object array's would)."""
        t = self._a10_type(sub.value)[0]
        if not (t.kind is Kind.NDARRAY and t.plain):
            return False
        return any(isinstance(el.slice, cst.Index) and self._index_array(el.slice.value) for el in sub.slice)

    def _index_array(self, e: cst.BaseExpression) -> bool:
        """``e`` is a list, or an array of one dimension or more, whatever the values (a numpy
        integer, which the types also call an ndarray, would index as an int: a view)."""
        if isinstance(e, (cst.List, cst.ListComp)):
            return True
        if not isinstance(e, cst.Call):
            return False
        q = self.names.qualname(e.func) or ""
        if q in INDEX_ARRAY_CALLS:
            return True
        if isinstance(e.func, cst.Attribute) and q == "" and self._a10_type(e.func.value)[0].kind is Kind.RNG:
            method = e.func.attr.value
            size = next((a.value for a in e.args if a.keyword is not None and a.keyword.value == "size"), None)
            return method == "permutation" or (
                method in ("choice", "integers") and size is not None and self._immutable(size)
                and (not isinstance(size, cst.Tuple) or bool(size.elements)))
        return False

    def _base(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        """What ``expr`` is a part or a view of: the name ``_root`` finds, or the first expression
        on the way that is neither (``f(a)`` in ``f(a)[0].x``)."""
        while True:
            if isinstance(expr, (cst.Attribute, cst.Subscript)):
                expr = expr.value
            elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and _is_view_call(expr):
                expr = expr.func.value
            else:
                return expr

    def _free_names(self, node: cst.CSTNode) -> list[cst.BaseExpression]:
        found: list[cst.BaseExpression] = []

        class _Names(cst.CSTVisitor):
            def visit_Name(inner, name: cst.Name) -> None:
                found.append(name)

        node.visit(_Names())
        return [n for n in found if isinstance(n, cst.Name) and self._tracked(n)]

    def _immutable(self, expr: cst.BaseExpression) -> bool:
        """A10 (a): ``expr``'s value is a number, str, bytes, None or a tuple of those, so sharing it
        is harmless; by :mod:`~scadc.analysis.types`, but a call whose result is whatever a dunder of
        its argument returns (:data:`ARGUMENT_DUNDER_CALLS`) only of immutable arguments."""
        if makes_immutable(expr, self.names):
            return True  # ``int(v)``, ``f"{v}"``: whatever ``v`` is
        if isinstance(expr, cst.Call) and (q := self.names.qualname(expr.func)) is not None and \
                self.names.own(expr.func) is None and q.startswith(IMMUTABLE_CALLS):
            return True
        t, exact = self._a10_type(expr)
        if not _immutable_type(t):
            return False
        if isinstance(expr, cst.Call):
            q = self.names.qualname(expr.func)
            if q is not None and self.names.own(expr.func) is not None:
                return False  # a helper: its return summary decides (A10 (c)), not its return type
            if q in ARGUMENT_DUNDER_CALLS or (q or "").startswith("statistics."):
                return all(self._immutable(a.value) for a in expr.args)
            return True
        if isinstance(expr, (cst.Attribute, cst.Subscript)):
            base, base_exact = self._a10_type(expr.value)
            # ``s[0]`` of a str, ``a.shape``/``df.size`` of an array or frame known exactly
            return base.kind in (Kind.STR, Kind.BYTES) or (
                base.kind in (Kind.NDARRAY, Kind.PANDAS) and (base_exact or base.plain) and
                isinstance(expr, cst.Attribute) and expr.attr.value in SHAPE_ATTRIBUTES)
        return exact

    def _plain(self, t: ValueType) -> bool:
        """``t`` is a plain array, or a plain pandas object in a program whose frames stay plain (T8)."""
        return t.plain and (t.kind is Kind.NDARRAY or (t.kind is Kind.PANDAS and self.pandas_plain))

    def _fresh_operation(self, op: cst.BaseExpression) -> bool:
        """A10 (b): an operator on plain arrays (frames) and immutable values makes a new plain one."""
        return self._plain(self._a10_type(op)[0]) and not isinstance(op, cst.BooleanOperation)

    def _call_sources(self, call: cst.Call) -> list[cst.BaseExpression]:
        """A3, A9, A10 for the value of a call."""
        func = call.func
        every = [a.value for a in call.args]
        outs = [a.value for a in call.args if a.keyword is not None and a.keyword.value == "out"]
        q = self.names.qualname(func)
        own = self.names.own(func)
        if own is not None:
            return self._helper_sources(own, call, list(every), []) + outs
        if q is not None and q.startswith("numpy.") and q.rsplit(".", 1)[-1] in NUMPY_VIEW_FUNCTIONS and every:
            return [every[0], *outs]  # A3
        if isinstance(func, cst.Attribute) and q is None:
            if _is_view_call(call):
                return [func.value, *outs]  # A3
            t = self._type(func.value)[0]
            key = f"{t.cls}.{func.attr.value}"
            if t.kind is Kind.CLASS and key in self.summaries:
                return self._helper_sources(key, call, [func.value, *every], [t]) + outs
        if self._fresh_call(call, q):
            return [s for o in outs for s in self._value_sources(o)]
        # A10 (default): the result may be, or hold, anything it was given, its receiver, or what
        # the callable itself holds (a local closure, a bound method)
        sources = [s for e in every for s in self._value_sources(e)]
        if q is None and (nested := self._nested_def(func)) is not None:
            # a local def returns what it is given or what it reads
            sources += [s for n in self._free_names(nested.body) for s in self._value_sources(n)]
        elif q is None:
            sources += self._value_sources(func.value if isinstance(func, cst.Attribute) else func)
        return sources

    def _nested_def(self, func: cst.BaseExpression) -> cst.FunctionDef | None:
        """The function a local name is bound to by its only binding, a ``def`` in the tracked scope."""
        if not isinstance(func, cst.Name) or self._where(func) != "tracked":
            return None
        found = list(self.scope.assignments[func.value])
        if len(found) == 1 and isinstance(found[0], Assignment) and isinstance(found[0].node, cst.FunctionDef):
            return found[0].node
        return None

    def _helper_sources(self, name: str, call: cst.Call, bound: list[cst.BaseExpression],
                        receiver: list[ValueType]) -> list[cst.BaseExpression]:
        """A9 and A10 (c): what a program function's or method's result may hold of its arguments."""
        if self._type(call)[0].kind is Kind.CLASS or self.summaries.get(name, Summary()).generator or \
                any(a.keyword is not None or a.star for a in call.args) or self.returns is None:
            # an instance may keep its arguments (A9); a generator holds its frame; a keyword is
            # not matched to its parameter here
            shared: frozenset[int] | None = None
        else:
            types = tuple(receiver) + tuple(self._a10_type(b)[0] for b in bound[len(receiver):])
            shared = self.returns.shared(name, types)
        return [s for i, b in enumerate(bound) if shared is None or i in shared for s in self._value_sources(b)]

    def _fresh_call(self, call: cst.Call, q: str | None) -> bool:
        """A10 (b): the call makes a new object that holds nothing of its inputs (its result type is
        plain and the function is not one that may return its input or a view of it)."""
        if q in FRESH_CALLS:
            return True
        t = self._a10_type(call)[0]
        if q is not None:
            parts = q.split(".")
            if parts[0] in ("builtins", "math") and parts[-1] in PLAIN_DATA_CALLS:
                return all(plain_type(self._a10_type(a.value)[0]) for a in call.args if a.keyword is None)
            if parts[0] == "pandas":
                return self._plain(t)  # T8 (under copy-on-write a new object never shares data)
            return parts[0] == "numpy" and t.plain and not any(p in NUMPY_MAY_RETURN_INPUT for p in parts[1:]) \
                and not (parts[-1] == "array" and any(a.keyword is not None and a.keyword.value == "copy"
                                                      for a in call.args))
        if isinstance(call.func, cst.Attribute):
            receiver = self._a10_type(call.func.value)[0]
            method = call.func.attr.value
            if method in READ_METHODS and receiver.kind is Kind.UNKNOWN:
                return True  # ``f.readline()``: a file (whatever the program opened) reads new data
            if receiver.kind is Kind.RNG:
                return t.plain  # T7: draws, or a permutation of plain data
            if receiver.kind is Kind.PANDAS:
                return self._plain(receiver) and self._plain(t) and method not in PANDAS_HOLD_RECEIVER
            return receiver.plain and receiver.kind is Kind.NDARRAY and method in NDARRAY_FRESH_METHODS
        return False

    def _assign(self, targets: list[cst.BaseExpression], value: cst.BaseExpression, at: cst.CSTNode) -> None:
        for target in targets:
            for t in self._targets(target):
                if isinstance(t, (cst.Subscript, cst.Attribute)):
                    kind = "item" if isinstance(t, cst.Subscript) else "attribute"
                    self.mutate(t, f"{kind} assignment `{_unparse(t)} = ...`", at)  # rule 1
                    if isinstance(t, cst.Attribute) or not _is_slice(t):
                        # A7; ``x[a:b] = y`` copies into an array, so slices do not alias
                        for src in self._value_sources(value):
                            self.alias(t, src)
                elif isinstance(t, cst.Name):
                    if self._where(t) == "module" or self._rebinds_global(t):
                        self.out.module_state.add(t.value)  # rule S2 (global x; x = ...)
                    for src in self._value_sources(value):
                        self.alias(t, src)  # A1-A4, A8-A10
                    if isinstance(value, cst.Call) and self._is_generator_call(value):
                        self.out.generator_calls.add(t.value)

    def _is_generator_call(self, call: cst.Call) -> bool:
        name = self.names.own(call.func)
        return name is not None and self.summaries.get(name, Summary()).generator

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assign([t.target for t in node.targets], node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._assign([node.target], node.value, node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        t = node.target
        if isinstance(t, cst.Name):
            if self._rebinds_global(t):
                self.out.module_state.add(t.value)
            else:
                self.mutate(t, f"augmented assignment `{_unparse(node).strip()}` (in place for arrays, lists)",
                            node)  # rule 2
        else:
            self.mutate(t, f"augmented assignment `{_unparse(t)} {_unparse(node.operator).strip()} ...`", node)

    def visit_Del(self, node: cst.Del) -> None:
        for t in self._targets(node.target):
            if isinstance(t, (cst.Subscript, cst.Attribute)):
                self.mutate(t, f"`del {_unparse(t)}`", node)  # rule 1

    def visit_For(self, node: cst.For) -> None:
        self._for(node.target, node.iter)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._for(node.target, node.iter)

    def _for(self, target: cst.BaseExpression, it: cst.BaseExpression) -> None:
        sources = [it]
        if isinstance(it, cst.Call) and (self.names.qualname(it.func) or "") in (
                "builtins.enumerate", "builtins.zip", "builtins.reversed", "builtins.sorted", "builtins.iter"):
            sources = [a.value for a in it.args]
        for src in sources:
            self._consumes(src, "a loop", it)  # rule 7
        held = self._value_sources(it)
        for t in self._targets(target):
            for src in held:
                self.alias(t, src)  # A5, A10: the items of what the call gives

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None:
            for src in self._value_sources(node.value):
                root = self._root(src)
                if root is not None and (name := self._tracked(root)):
                    self.out.returned.append(name)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and isinstance(node.asname.name, cst.BaseExpression):
            for src in self._value_sources(node.item):
                self.alias(node.asname.name, src)  # A6

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        # a nested def in the tracked scope: its body's effects on tracked objects count (closures)
        return True

    # -- calls ---------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        positional = [a.value for a in node.args if not a.keyword and not a.star]
        every = [a.value for a in node.args]
        for a in node.args:
            if a.keyword is not None and a.keyword.value == "out":
                self.mutate(a.value, f"`out=` of `{_unparse(func)}(...)`", node)  # rule 4
            if a.keyword is not None and a.keyword.value == "inplace" and not (
                    isinstance(a.value, cst.Name) and a.value.value == "False"):
                target = func.value if isinstance(func, cst.Attribute) else positional[0] if positional else None
                if target is not None:
                    self.mutate(target, f"`{_unparse(func)}(..., inplace=...)` works in place", node)  # rule 8
        q = self.names.qualname(func)
        if q is not None and self.names.own(func) is None:
            self._generators_passed(every, f"`{q}()`", node)
        self._callables_passed(node, q)
        if q is not None:
            self._qualified_call(q, node, positional, every)
            return
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in IO_METHODS:
                self.out.io.add(f"`.{method}()`")  # S4
            self._method(func.value, method, positional, every, node)
            return
        # rule 7: a local callable or an expression: unknown
        self.out.io.add(f"unknown callee `{_unparse(func)}`")  # S4
        for arg in every:
            self.mutate(arg, f"passed to unknown callee `{_unparse(func)}`", node)

    def _method(self, receiver: cst.BaseExpression, method: str, positional: list[cst.BaseExpression],
                every: list[cst.BaseExpression], at: cst.Call, *, exact: bool = True) -> None:
        """Rules 3, 5, 6 and 8 for ``receiver.method(*every)``; ``exact=False`` for a helper's
        conditional decided here (the method was called on something reachable from the argument)."""
        t, known_exactly = self._type(receiver)
        exact = exact and known_exactly
        if t.kind is Kind.CLASS:
            key = f"{t.cls}.{method}"
            if key in self.summaries:  # a program class: its method's summary decides (rule 5)
                self._apply(self.summaries[key], self._bind(key, at, [receiver, *positional]), f"method {key}()",
                            at, key)
                return
            t = UNKNOWN  # inherited from another library, or an attribute holding a callable
        if t.kind is Kind.RNG:
            if method not in RNG_PURE_METHODS:
                self.mutate(receiver, f"`.{method}()` advances the generator", at)  # rule 6
                if method == "shuffle" and positional:
                    self.mutate(positional[0], f"`.{method}()` shuffles in place", at)
            return
        if t.kind is not Kind.UNKNOWN:
            self._generators_passed(every, f"`.{method}()`", at)
            if t.kind is Kind.PANDAS and method == "sample" and not any(
                    a.keyword is not None and a.keyword.value == "random_state" and
                    not (isinstance(a.value, cst.Name) and a.value.value == "None") for a in at.args):
                self.out.rng.add("numpy.random")  # S1: sample() without random_state draws from np.random
            if is_pure_method(t, method, exact=exact):
                return
            self.mutate(receiver, f"`.{method}()` is not a known-pure method of {t}", at)  # rules 3, 8
            if method in ALIAS_METHODS:
                for arg in positional:
                    for src in self._value_sources(arg):
                        self.alias(receiver, src)  # A7
            return
        # rule 8: a receiver of unknown type may change, and change what it is given, and keep it
        root = self._root(receiver)
        if self.deferred and root is not None and (name := self._tracked(root)):
            arg_roots = tuple(n for a in every if (r := self._root(a)) is not None and (n := self._tracked(r)))
            self.out.conditional.append((name, method, arg_roots, self._line(at)))
            return
        if self.deferred and root is None:
            # ``(p * p).sum()``, ``f(p).m()``: the method on what is made from ``p`` is decided with
            # ``p``'s type at the call, as on ``p`` itself (A10 makes the made value hold ``p``)
            arg_roots = tuple(n for a in every if (r := self._root(a)) is not None and (n := self._tracked(r)))
            for src in self._value_sources(self._base(receiver)):
                if (r := self._root(src)) is not None and (name := self._tracked(r)):
                    self.out.conditional.append((name, method, arg_roots, self._line(at)))
            return
        self.mutate(receiver, f"`.{method}()` on a value of unknown type", at)
        for arg in every:
            self.mutate(arg, f"passed to `.{method}()` of a value of unknown type", at)
            for src in self._value_sources(arg):
                self.alias(receiver, src)

    def _generators_passed(self, args: list[cst.BaseExpression], what: str, at: cst.Call) -> None:
        """Rule 6: a generator given to a library call (``df.sample(random_state=gen)``) may be drawn
        from; a defaultdict given to one may gain the keys it looks up (``s.map(dd)``)."""
        for arg in args:
            kind = self._type(arg)[0].kind
            if kind is Kind.RNG:
                self.mutate(arg, f"a generator passed to {what} may be drawn from", at)
            elif kind is Kind.DEFAULTDICT:
                self.mutate(arg, f"a defaultdict passed to {what} may gain the keys it looks up", at)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        """``d[k]`` of a defaultdict inserts a missing key."""
        if self.names.program.contexts.get(node) is ExpressionContext.LOAD and \
                self._type(node.value)[0].kind is Kind.DEFAULTDICT:
            self.mutate(node.value, f"`{_unparse(node)}` inserts a missing key into a defaultdict", node)

    def _callables_passed(self, node: cst.Call, q: str | None) -> None:
        """A program function or a lambda passed to a call runs there (rule 8, S3)."""
        receiver = node.func.value if isinstance(node.func, cst.Attribute) and q is None else None
        targets = [receiver] if receiver is not None else [a.value for a in node.args]
        for a in node.args:
            own = self.names.own(a.value) if isinstance(a.value, (cst.Name, cst.Attribute)) else None
            mutates = False
            if own is not None and (found := self.summaries.get(own)):
                self.out.module_state |= found.module_state
                self.out.rng |= found.rng
                self.out.io |= found.io
                # it is given parts of the receiver (``df.apply(f)``): its methods on them are decided
                # with the receiver's type, as a lambda's are
                kind = self._type(receiver)[0] if receiver is not None else UNKNOWN
                mutates = bool(found.params) or any(not is_pure_method(kind, m, exact=False)
                                                    for _, m, _ in found.conditional)
            elif isinstance(a.value, cst.Lambda):
                mutates = self._lambda_mutates(a.value, receiver)
            if mutates:
                for t in targets:
                    if t is not None and t is not a.value:
                        self.mutate(t, f"`{_unparse(a.value)[:40]}` is called by `{_unparse(node.func)}()` "
                                       "and may change what it is given", node)

    def _lambda_mutates(self, lam: cst.Lambda, receiver: cst.BaseExpression | None) -> bool:
        """A lambda may change what it is given: a method on a parameter that is not pure for the
        receiver's type (the parameter is a part of it), or a parameter passed to a call not known pure."""
        params = {p.name.value for p in lam.params.params}
        t = self._type(receiver)[0] if receiver is not None else UNKNOWN
        found = False

        def on_param(e: cst.BaseExpression) -> bool:
            r = self._root(e)
            return r is not None and r.value in params

        class _Calls(cst.CSTVisitor):
            def visit_Call(inner, call: cst.Call) -> None:
                nonlocal found
                q = self.names.qualname(call.func)
                if isinstance(call.func, cst.Attribute) and q is None and on_param(call.func.value):
                    if not is_pure_method(t, call.func.attr.value, exact=False) or any(
                            a.keyword is not None and a.keyword.value == "inplace" for a in call.args):
                        found = True
                elif any(on_param(a.value) for a in call.args):
                    parts = (q or "").split(".")
                    if not (parts[0] in ("numpy", "pandas", "math") or (parts[0] == "builtins" and
                                                                         parts[-1] in PURE_BUILTINS)):
                        found = True

        lam.body.visit(_Calls())
        return found

    def _apply(self, summary: Summary, bound: list[cst.BaseExpression | None], what: str, at: cst.Call,
               key: str | None = None) -> None:
        loose, self._loose = self._loose, []
        if loose and (summary.params or summary.conditional):
            for extra in loose:  # ``f(*xs)``, ``f(**kw)``: it may be bound to a parameter that changes
                self.mutate(extra, f"{what} may change what it is given", at)
        refined = self._refined(key, bound, at) if key is not None else None
        if refined is not None:
            # rule 5 with the arguments' types here: the helper's code read again with them (A10
            # makes the result of an operator on values of unknown type hold its operands, so the
            # summary alone would have ``X @ w`` change ``X`` when ``w`` changes)
            allowed = summary.params | {i for i, _, others in summary.conditional for i in (i, *others)}
            for index in sorted(refined & allowed):
                if index < len(bound) and (arg := bound[index]) is not None:
                    self.mutate(arg, f"{what} mutates its parameter {index}", at)
            self.out.module_state |= summary.module_state
            self.out.rng |= summary.rng
            self.out.io |= summary.io
            return
        for index in sorted(summary.params):
            if index < len(bound) and (arg := bound[index]) is not None:
                self.mutate(arg, f"{what} mutates its parameter {index}", at)
        for index, method, others in sorted(summary.conditional, key=lambda c: (c[0], c[1], sorted(c[2]))):
            if index < len(bound) and (receiver := bound[index]) is not None:
                given = [b for j in sorted(others) if j < len(bound) and (b := bound[j]) is not None]
                self._method(receiver, method, [], given, at, exact=False)
        self.out.module_state |= summary.module_state
        self.out.rng |= summary.rng
        self.out.io |= summary.io

    def _bind(self, key: str, call: cst.Call,
              bound: list[cst.BaseExpression | None]) -> list[cst.BaseExpression | None]:
        """The arguments of ``call`` by the positional parameter each is bound to (rule 5):
        ``bound`` (the receiver, the positional arguments), then the keyword ones by name. What
        cannot be placed (``*args``, ``**kwargs``, a keyword-only parameter) is kept in
        ``self._loose``: it is changed when the helper changes any parameter."""
        self._loose = []
        keywords = [a for a in call.args if a.keyword is not None or a.star]
        if not keywords:
            return bound
        helpers = self.returns.helpers if self.returns is not None else helper_functions(self.names.program.module)
        fn = helpers.get(key)
        params = [p.name.value for p in (*fn.params.posonly_params, *fn.params.params)] if fn is not None else []
        out = list(bound) + [None] * max(0, len(params) - len(bound))
        for a in keywords:
            if a.keyword is not None and not a.star and a.keyword.value in params:
                out[params.index(a.keyword.value)] = a.value
            else:
                self._loose.append(a.value)
        return out

    def _refined(self, key: str, bound: list[cst.BaseExpression | None], at: cst.Call) -> frozenset[int] | None:
        """The parameters ``key`` may change, read with the types of ``bound`` (None: not known)."""
        if self.returns is None or any(a.star for a in at.args):
            return None
        cls = ValueType(Kind.CLASS, key.partition(".")[0])
        # a missing argument is the new instance (``self`` of ``__init__``) or a default
        return self.returns.mutated(key, tuple(self._a10_type(b)[0] if b is not None else cls if i == 0 and "." in key
                                               else UNKNOWN for i, b in enumerate(bound)))

    def _qualified_call(self, q: str, node: cst.Call, positional: list[cst.BaseExpression],
                        every: list[cst.BaseExpression]) -> None:
        name = self.names.own(node.func)
        if name is not None:
            if name in self.summaries:
                self._apply(self.summaries[name], self._bind(name, node, list(positional)), f"helper {name}()",
                            node, name)  # rule 5
            elif f"{name}.__init__" in self.summaries:
                self._apply(self.summaries[f"{name}.__init__"],
                            self._bind(f"{name}.__init__", node, [None, *positional]), f"{name}()", node,
                            f"{name}.__init__")
            return
        self._io_call(q, node)
        if q in NUMPY_INPLACE and positional:
            self.mutate(positional[0], f"`{q}()` works in place", node)  # rule 4
        parts = q.split(".")
        if parts[0] == "numpy" and len(parts) >= 3 and parts[1] == "random" and parts[2] not in RNG_FACTORIES:
            self.out.rng.add("numpy.random")  # rule S1
        elif parts[0] == "random" and len(parts) == 2 and parts[1] not in ("Random", "SystemRandom"):
            self.out.rng.add("random")
        elif len(parts) >= 3 and parts[0] == "numpy" and parts[-1] == "at" and positional:
            self.mutate(positional[0], f"`{q}()` works in place", node)  # ufunc.at
        if parts[0] in ("numpy", "random", "pandas") or q.startswith(PURE_MODULES):
            return
        if parts[0] == "builtins":
            if parts[1] == "next" and positional:
                self.mutate(positional[0], "`next()` advances the iterator", node)
            elif parts[1] in ("setattr", "delattr") and positional:
                self.mutate(positional[0], f"`{parts[1]}()`", node)
            elif parts[1] not in PURE_BUILTINS:
                for arg in every:
                    self.mutate(arg, f"passed to `{parts[1]}()`", node)
            elif parts[1] in CONSUMING_BUILTINS:
                for arg in positional[:1] if parts[1] not in ("zip", "map") else positional:
                    self._consumes(arg, f"`{parts[1]}()`", node)
            return
        for arg in every:
            self.mutate(arg, f"passed to unknown callee `{q}`", node)  # rule 7

    def _consumes(self, it: cst.BaseExpression, what: str, at: cst.CSTNode) -> None:
        """Rule 7: iterating a value that may be an iterator uses it up."""
        if isinstance(it, cst.Name) and self._type(it)[0].kind is Kind.UNKNOWN:
            self.mutate(it, f"{what} iterates it (it may be an iterator)", at)

    def _io_call(self, q: str, node: cst.Call) -> None:
        """Rule S4 for a call of a qualified (non-program) name."""
        parts = q.split(".")
        if parts[0] == "builtins":
            if parts[1] in IO_BUILTINS:
                self.out.io.add(f"`{parts[1]}()`")
            elif parts[1] == "print":
                for a in node.args:
                    if a.keyword is not None and a.keyword.value == "file" and \
                            self.names.qualname(a.value) not in ("sys.stdout", "sys.stderr"):
                        self.out.io.add(f"`print(file={_unparse(a.value)})`")
        elif parts[0] == "numpy":
            if parts[-1] in NUMPY_IO:
                self.out.io.add(f"`{q}()`")
        elif parts[0] == "pandas":
            if parts[-1].startswith(("read_", "to_")) or parts[-1] in ("ExcelWriter", "HDFStore", "ExcelFile"):
                self.out.io.add(f"`{q}()`")
        elif any(q == m or q.startswith(m + ".") for m in IO_MODULES) and not q.startswith("os.path"):
            self.out.io.add(f"`{q}()`")
        elif parts[0] != "random" and not q.startswith(PURE_MODULES) and parts[0] not in NO_IO_MODULES:
            self.out.io.add(f"unknown callee `{q}`")


def collect_effects(node: cst.CSTNode, names: Names, scope: Scope, summaries: Mapping[str, Summary], *,
                    types: Mapping[str, ValueType], signatures: Signatures,
                    positions: Mapping[cst.CSTNode, CodeRange], deferred: bool = False,
                    returns: HelperReturns | None = None) -> Effects:
    """The effects of ``node`` (code of ``scope``), its names typed by ``types``; ``deferred`` for
    a helper's body (rule 8's conditional methods stay conditional); ``returns`` tells what helpers'
    results hold of their arguments (None: anything)."""
    visitor = _Visitor(names, scope, summaries, types=types, signatures=signatures, positions=positions,
                       deferred=deferred, returns=returns)
    node.visit(visitor)
    return visitor.out


def _operands(op: cst.BinaryOperation | cst.BooleanOperation) -> list[cst.BaseExpression]:
    """The operands of a chain of binary and boolean operations, left to right, without recursion."""
    out: list[cst.BaseExpression] = []
    stack: list[cst.BaseExpression] = [op.right, op.left]
    while stack:
        node = stack.pop()
        if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation)):
            stack += [node.right, node.left]
        else:
            out.append(node)
    return out


@functools.cache  # the installed distributions do not change while scadc runs; a lookup scans sys.path
def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def copies_on_write(pandas_version: str | None) -> bool:
    """pandas 3 and later always copy on write: a frame, series or index made from another never
    shares data that a change of one would show through the other. pandas 2 does only when the
    program turns the option on, and may hand out views (``df["a"]``, ``df[:5]``), so T8 holds only
    for the pandas that the split program will run with (the one installed where it is split)."""
    if not pandas_version:
        return False
    major = pandas_version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 3


def pandas_stays_plain(names: Names, module_types: Mapping[str, ValueType], signatures: Signatures,
                       helpers: Mapping[str, cst.FunctionDef]) -> bool:
    """T8 of :mod:`~scadc.analysis.types`: no statement of the program may put anything but plain
    data into a pandas object, so a frame typed plain holds no Python object that could change.

    A store that may change a pandas object, or an object of unknown type, is: an item or
    attribute assignment into it (``df[c] = v``, ``df.loc[m, c] = v``, ``x.a = v``), a method
    of it that is not pure for pandas or has ``inplace=`` (``df.insert(0, c, v)``), or passing it
    to an unknown callee. Each must store plain data; a value made from the changed object alone
    counts as plain (``df["c"] = df["a"] * 2`` adds no object to a frame that had none), so a
    helper that derives columns from its parameter keeps frames plain."""
    if not copies_on_write(_installed_version("pandas")):
        return False
    codes: list[tuple[cst.CSTNode, Mapping[str, ValueType]]] = [(names.program.module, module_types)]
    for name, fn in helpers.items():
        given = {p.name.value: UNKNOWN for p in (*fn.params.posonly_params, *fn.params.params,
                                                 *fn.params.kwonly_params)}
        params = [p.name.value for p in (*fn.params.posonly_params, *fn.params.params)]
        if "." in name and params:
            given[params[0]] = ValueType(Kind.CLASS, name.partition(".")[0])
        outer = {**module_types, **given}
        codes.append((fn, {**outer, **infer_types(fn, names, outer, signatures)}))
    for code, types in codes:
        scan = _StoreScan(names, types, signatures, code)
        code.visit(scan)
        if scan.spoiled:
            return False
    return True


class _StoreScan(cst.CSTVisitor):
    """One scope's stores into objects that may be pandas objects (:func:`pandas_stays_plain`)."""

    def __init__(self, names: Names, types: Mapping[str, ValueType], signatures: Signatures,
                 root: cst.CSTNode) -> None:
        self.names, self.types, self.signatures, self.root = names, types, signatures, root
        self.spoiled = False

    def _may_be_pandas(self, expr: cst.BaseExpression) -> bool:
        kind = type_of(expr, self.names, self.types, self.signatures)[0].kind
        return kind in (Kind.PANDAS, Kind.UNKNOWN)

    def _plain_into(self, target: cst.BaseExpression, value: cst.BaseExpression) -> bool:
        """``value`` is plain data once ``target``'s root is taken for a plain pandas object."""
        root = _root_name(target)
        types = dict(self.types)
        if root is not None:
            types[root.value] = ValueType(Kind.PANDAS, plain=True)
        return is_plain_data(value, self.names, types, self.signatures)

    def _store(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        if isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self._store(el.value, value)
        elif isinstance(target, (cst.Subscript, cst.Attribute)) and self._may_be_pandas(target.value) and \
                not self._plain_into(target, value):
            self.spoiled = True

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return node is self.root or not isinstance(self.root, cst.Module)  # helpers are scanned on their own

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return not isinstance(self.root, cst.Module)

    def visit_Assign(self, node: cst.Assign) -> None:
        for t in node.targets:
            self._store(t.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._store(node.target, node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self._store(cst.Subscript(node.target, [cst.SubscriptElement(cst.Index(cst.Integer("0")))]),
                        node.value)  # ``df += v`` changes df's data in place
        else:
            self._store(node.target, node.value)

    def visit_Call(self, node: cst.Call) -> None:
        q = self.names.qualname(node.func)
        if q is None and isinstance(node.func, cst.Attribute):
            receiver, method = node.func.value, node.func.attr.value
            t = type_of(receiver, self.names, self.types, self.signatures)[0]
            changes = method in PANDAS_STORE_METHODS or any(
                a.keyword is not None and a.keyword.value == "inplace" for a in node.args)
            if t.kind in (Kind.PANDAS, Kind.UNKNOWN) and changes and not all(
                    self._plain_into(receiver, a.value) for a in node.args
                    if a.keyword is None or a.keyword.value != "inplace"):
                self.spoiled = True
            return
        if q is None or self.names.own(node.func) is not None:
            return  # a program function is scanned itself; a local callable stores nothing it is not given
        parts = q.split(".")
        if parts[0] in ("numpy", "pandas", "math", "statistics", "random") or q.startswith(PURE_MODULES) or (
                parts[0] == "builtins" and parts[-1] in PURE_BUILTINS):
            return
        if any(self.names.qualname(a.value) is None and self._may_be_pandas(a.value) for a in node.args):
            self.spoiled = True  # rule 7: an unknown callee may store anything into what it is given


def _root_name(expr: cst.BaseExpression) -> cst.Name | None:
    while isinstance(expr, (cst.Attribute, cst.Subscript)):
        expr = expr.value
    return expr if isinstance(expr, cst.Name) else None


class HelperReturns:
    """A10 (c): which arguments the result of a program function (or method) may be or hold, for
    the types of the arguments at one call, memoised as :meth:`~scadc.analysis.types.Signatures.
    call` is: the parameters that share an alias class of the function's own code (A1-A10 there,
    with rule 8 decided by those types) with what a ``return`` gives. A generator, a function with
    ``*args``, and a recursive call (while its answer is being made) may hold every argument.
    Internal memo; the answers it gives never change."""

    def __init__(self, names: Names, module_types: Mapping[str, ValueType], signatures: Signatures,
                 positions: Mapping[cst.CSTNode, CodeRange], summaries: Mapping[str, Summary] | None = None) -> None:
        self.names, self.module_types, self.signatures, self.positions = names, module_types, signatures, positions
        #: the helpers' final summaries (rule 5), for :meth:`mutated`; None while they are being made
        self.summaries = summaries
        self.helpers = helper_functions(names.program.module)
        self.pandas_plain = pandas_stays_plain(names, module_types, signatures, self.helpers)
        self._memo: dict[tuple[str, tuple[ValueType, ...]], tuple[frozenset[int], frozenset[int]] | None] = {}

    def shared(self, name: str, args: tuple[ValueType, ...]) -> frozenset[int] | None:
        """Indices of the positional parameters (``self`` is 0) the result may hold; None: any."""
        found = self._facts(name, args)
        return found[0] if found is not None else None

    def mutated(self, name: str, args: tuple[ValueType, ...]) -> frozenset[int] | None:
        """Indices of the positional parameters the call may change, for these argument types (rule 5
        read at the call); None: not known (the summary decides)."""
        if self.summaries is None:
            return None
        found = self._facts(name, args)
        return found[1] if found is not None else None

    def _facts(self, name: str, args: tuple[ValueType, ...]) -> tuple[frozenset[int], frozenset[int]] | None:
        fn = self.helpers.get(name)
        if fn is None or isinstance(fn.params.star_arg, cst.Param) or _has_yield(fn):
            return None
        key = (name, args)
        if key not in self._memo:
            self._memo[key] = None  # a recursive call reads "not known"
            self._memo[key] = self._read(name, fn, args)
        return self._memo[key]

    def _read(self, name: str, fn: cst.FunctionDef,
              args: tuple[ValueType, ...]) -> tuple[frozenset[int], frozenset[int]] | None:
        scope = self.names.program.scopes.get(fn.body.body[0] if isinstance(fn.body, cst.IndentedBlock)
                                              and fn.body.body else fn.body)
        if scope is None:
            return None
        params = [p.name.value for p in (*fn.params.posonly_params, *fn.params.params)]
        given = {p.name.value: UNKNOWN for p in (*fn.params.posonly_params, *fn.params.params,
                                                 *fn.params.kwonly_params)}
        if "." in name and params:
            given[params[0]] = ValueType(Kind.CLASS, name.partition(".")[0])
        for p, t in zip(params, args, strict=False):
            if t.kind is not Kind.UNKNOWN:
                given[p] = t
        outer = {**self.module_types, **given}
        types = {**outer, **infer_types(fn, self.names, outer, self.signatures)}
        fx = collect_effects(fn.body, self.names, scope, self.summaries or {}, types=types,
                             signatures=self.signatures, positions=self.positions, returns=self)
        classes = _union_find(fx.aliases)
        held = {classes.get(r, r) for r in fx.returned}
        changed = {classes.get(m, m) for m, _, _ in fx.mutations}
        return (frozenset(i for i, p in enumerate(params) if classes.get(p, p) in held),
                frozenset(i for i, p in enumerate(params) if classes.get(p, p) in changed))


def _has_yield(fn: cst.FunctionDef) -> bool:
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Yield(self, node: cst.Yield) -> None:
            nonlocal found
            found = True

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is fn

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

    fn.visit(_Find())
    return found


def _union_find(pairs: list[tuple[str, str]]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


class _Reads(Mapping[str, Summary]):
    """The summaries as one visit sees them, noting the version of each it reads (its callees)."""

    def __init__(self, summaries: dict[str, Summary], versions: dict[str, int]) -> None:
        self.summaries, self.versions = summaries, versions
        self.seen: dict[str, int] = {}

    def __getitem__(self, key: str) -> Summary:
        found = self.summaries[key]
        self.seen.setdefault(key, self.versions[key])
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.summaries)

    def __len__(self) -> int:
        return len(self.summaries)

    def __contains__(self, key: object) -> bool:
        return key in self.summaries


def summarize_helpers(names: Names, module_types: Mapping[str, ValueType], signatures: Signatures,
                      positions: Mapping[cst.CSTNode, CodeRange]) -> dict[str, Summary]:
    """Summaries of every module-level function and method, to a fixed point (rule 5, S3).

    Summaries only grow as those of the callees do, so the fixed point is the least one, whatever
    the order of the work: one pass over every helper, then, callees before callers (the call
    graph's strongly connected components in topological order), again over each helper whose
    callees' summaries changed since it read them, until none did. Each helper is read about
    once, plus the rounds of its own recursion, rather than every helper in every round.
    """
    helpers = helper_functions(names.program.module)
    returns = HelperReturns(names, module_types, signatures, positions)
    summaries = {name: Summary(generator=_has_yield(fn)) for name, fn in helpers.items()}
    versions = dict.fromkeys(helpers, 0)
    local_types: dict[str, dict[str, ValueType]] = {}
    seen: dict[str, dict[str, int]] = {}  # helper -> the versions of the summaries it read

    def summarize(name: str) -> None:
        fn = helpers[name]
        seen[name] = {}
        scope = names.program.scopes.get(fn.body.body[0] if isinstance(fn.body, cst.IndentedBlock)
                                          and fn.body.body else fn.body)
        if scope is None:
            return
        params = [p.name.value for p in (*fn.params.posonly_params, *fn.params.params)]
        if name not in local_types:
            given = {p.name.value: UNKNOWN for p in (*fn.params.posonly_params, *fn.params.params,
                                                     *fn.params.kwonly_params)}
            if "." in name and params:
                given[params[0]] = ValueType(Kind.CLASS, name.partition(".")[0])
            outer = {**module_types, **given}
            local_types[name] = {**outer, **infer_types(fn, names, outer, signatures)}
        reads = _Reads(summaries, versions)
        fx = collect_effects(fn.body, names, scope, reads, types=local_types[name], signatures=signatures,
                             positions=positions, deferred=True, returns=returns)
        seen[name] = reads.seen
        classes = _union_find(fx.aliases)
        mutated = {classes.get(m, m) for m, _, _ in fx.mutations}  # inner names link through classes too
        conditional: set[tuple[int, str, frozenset[int]]] = set()
        for root, method, arg_roots, _ in fx.conditional:  # rule 8: on a parameter, the caller decides
            at = [i for i, p in enumerate(params) if classes.get(p, p) == classes.get(root, root)]
            passed = {classes.get(a, a) for a in arg_roots}
            others = frozenset(i for i, p in enumerate(params) if classes.get(p, p) in passed)
            if at:
                conditional.update((i, method, others) for i in at)
            else:  # a local of unknown type: it may change, and change what it is given
                mutated.add(classes.get(root, root))
                mutated |= passed
        indices = frozenset(i for i, p in enumerate(params) if classes.get(p, p) in mutated)
        conditional = {c for c in conditional if c[0] not in indices}
        new = Summary(indices, frozenset(fx.module_state), frozenset(fx.rng), summaries[name].generator,
                      frozenset(fx.io), frozenset(conditional))
        if new != summaries[name]:
            summaries[name] = new
            versions[name] += 1

    for name in helpers:
        summarize(name)
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(helpers)
    graph.add_edges_from((name, callee) for name, read in seen.items() for callee in read)
    components = nx.condensation(graph)
    order = {name: i for i, name in enumerate(helpers)}
    for component in reversed(list(nx.topological_sort(components))):
        members = sorted(components.nodes[component]["members"], key=order.__getitem__)
        while stale := [m for m in members if any(versions[c] != v for c, v in seen[m].items())]:
            for name in stale:
                summarize(name)
    return summaries


def is_inner(name: str) -> bool:
    """A comprehension variable's name in the facts (``[v]``): not a local of the entry."""
    return name.startswith("[")


def alias_classes(pairs: list[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Every local that shares an object with another, mapped to its whole class (locals only);
    every inner name (:func:`is_inner`) mapped to the locals of its class."""
    roots = _union_find(pairs)
    groups: dict[str, set[str]] = {}
    for name, root in roots.items():
        if not is_inner(name):
            groups.setdefault(root, set()).add(name)
    # one frozenset per class, shared by its members: a class of k names costs k, not k²
    frozen = {root: frozenset(group) for root, group in groups.items()}
    return {name: frozen.get(root, frozenset()) for name, root in roots.items()
            if is_inner(name) or len(frozen[root]) > 1}


class HelperSummaryProvider(Provider[str, Summary]):
    """The :class:`Summary` of every module-level function (``"helper"``) and method
    (``"Class.method"``), to a fixed point (:func:`summarize_helpers`)."""

    DEPENDENCIES = (NamesProvider, ProgramTypesProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, Summary]:
        names = results.get(NamesProvider)["names"]
        types = results.get(ProgramTypesProvider)["types"]
        return summarize_helpers(names, types.module, types.signatures, program.positions)


class EffectsProvider(Provider[Unit, Effects]):
    """The raw effects of each unit (treat as read-only)."""

    DEPENDENCIES = (NamesProvider, ProgramTypesProvider, HelperSummaryProvider)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, Effects]:
        names = results.get(NamesProvider)["names"]
        summaries = dict(results.get(HelperSummaryProvider))
        types = results.get(ProgramTypesProvider)["types"]
        returns = HelperReturns(names, types.module, types.signatures, program.positions, summaries)
        return {u: collect_effects(u.node, names, program.scope, summaries, types=types.entry,
                                  signatures=types.signatures, positions=program.positions, returns=returns)
                for u in program.units}
