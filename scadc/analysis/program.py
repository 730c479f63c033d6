"""The program model: the parsed file, its entry region, its units and its module-level definitions.

Rules:

1. The file is decoded as Python decodes it (``tokenize.detect_encoding``: a UTF-8 BOM, a
   ``coding:`` line, else UTF-8), compiled by Python (so what ``python app.py`` refuses is refused,
   with Python's wording) and parsed with libcst, which keeps comments and formatting, so
   ``Unit.code`` and ``Definition.code`` are the user's text, leading comments included.
2. The entry region is, in order: ``--entry NAME`` (a module-level function with no required
   parameters); else ``main()`` when the module ends its work in an ``if __name__ == "__main__":``
   block that only calls ``main()`` (optionally through ``sys.exit``/``raise SystemExit``), or
   ends with such a call, bare, after nothing but definitions; else the module body itself (a
   script). A script may not define ``main`` itself: generated elements define their own.
3. The units are the top-level statements of the entry region, in order. A docstring of the
   entry function is not a unit.
4. In a function entry every other module-level statement is a :class:`Definition`. In a script,
   imports, ``def``/``class`` statements and constants (names bound to literal arithmetic) are
   definitions unless a unit rebinds one of their names; every other statement is a unit.
5. ``Definition.refs`` are the module-level names its text reads; :meth:`Program.needs` closes a
   set of names over ``refs`` transitively, so codegen copies exactly what an element needs.
6. Nesting: Python's compiler is run at the recursion limit ``python app.py`` has, so nesting it
   rejects (a 100,000-term sum) is a :class:`CompileError`. libcst nests deeper than Python's AST
   (``a or b or c`` pairwise), and its parser and every visitor recurse once or more per level:
   nesting beyond :data:`MAX_NESTING` levels is refused before libcst sees it (its native parser
   would overflow the stack), and :func:`deep_call` runs a compile on a thread with a stack and a
   recursion limit enough for that depth (the commands run all their libcst work through it).
7. Inlining (:func:`scadc.analysis.inline.load_inlined`): the entry region's calls of the program's
   own helpers are rewritten into the helpers' bodies where that is safe; the program is then
   indexed from the rewritten module (:func:`index_program`), and every span is mapped back through
   :attr:`Program.line_map` to the file's own lines, so errors, profiles and tracebacks name them.
"""

from __future__ import annotations

import ast
import ctypes
import io
import sys
import threading
import tokenize
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, TypeGuard, TypeVar

import libcst as cst
from libcst.metadata import (
    Access,
    Assignment,
    CodePosition,
    CodeRange,
    ExpressionContext,
    ExpressionContextProvider,
    MetadataWrapper,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from scadc.errors import CompileError
from scadc.source import Span

__all__ = ["MAX_NESTING", "Definition", "DefinitionKind", "Entry", "InlineDecision", "Program", "Unit", "deep_call",
           "helper_functions", "index_program", "load_program", "read_source"]

#: how many levels of libcst nesting scadc follows (rule 6); Python's own compiler stops near 3,000
MAX_NESTING = 10_000
#: what that depth takes: measured at about 6 Python frames and 3 KiB of stack per level, doubled
_RECURSION_LIMIT = 20 * MAX_NESTING
_STACK_BYTES = 512 * 2**20
#: ``sys.getrecursionlimit()`` in a fresh ``python app.py``: what Python's compiler is run at (rule 6)
_PYTHON_RECURSION_LIMIT = 1000
_T = TypeVar("_T")

DefinitionKind = Literal["import", "function", "class", "constant", "data", "setting", "statement"]
#: module-level calls that configure the process (printing, warnings, floating-point errors) and
#: are safe to repeat: every element runs them, as the original ran them before main()
#: (``logging.basicConfig`` too, when it names no file: :func:`_is_setting`)
SETTING_CALLS = frozenset({"filterwarnings", "simplefilter", "set_option", "set_printoptions", "seterr",
                           "resetwarnings", "setrecursionlimit"})


@dataclass(eq=False)
class Unit:
    """One top-level statement of the entry region; identity-equal (a key of provider maps)."""

    #: position in the entry region, 0-based
    index: int
    #: the statement itself (its first token to its last), without leading comments
    span: Span
    #: the statement's exact source text, dedented to the entry region, leading comments included
    code: str
    #: first line of ``code`` (1-based): where leading comments start
    first_line: int
    node: cst.BaseStatement = field(repr=False)
    #: the statement's first and last line in :attr:`Program.module`: ``span``'s lines, except where
    #: helpers were inlined (rule 7: ``span`` names the file's lines, these the rewritten module's)
    module_lines: tuple[int, int] = (0, 0)

    @property
    def summary(self) -> str:
        """The statement's first line, for tables."""
        lines = [ln for ln in self.code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        text = lines[0].strip() if lines else ""
        return text if len(text) <= 60 else text[:57] + "..."


@dataclass(eq=False)
class Definition:
    """A module-level statement that elements copy when they need one of ``names``."""

    kind: DefinitionKind
    #: names this statement binds at module level (empty for a bare statement)
    names: tuple[str, ...]
    #: module-level names the statement reads (directly)
    refs: frozenset[str]
    span: Span
    code: str
    node: cst.BaseStatement = field(repr=False)


@dataclass(frozen=True)
class InlineDecision:
    """What :mod:`scadc.analysis.inline` decided for one call of a helper in the entry region (rule 7)."""

    #: the call statement's line in the original file
    line: int
    helper: str
    inlined: bool
    reason: str
    #: the call statement's last line (the profile follows the helper's frame called from these lines)
    end_line: int = 0
    #: what the helper's locals were renamed with (``_inl1_``), and the parameters substituted by
    #: their arguments: a name ``n`` of the helper's frame is ``prefix + n`` in the entry's
    prefix: str = ""
    substituted: tuple[str, ...] = ()

    def format(self) -> str:
        verdict = "inlined" if self.inlined else "kept"
        return f"line {self.line}: {self.helper}() {verdict} ({self.reason})"


@dataclass(frozen=True)
class Entry:
    """Where the program's work happens."""

    kind: Literal["main", "function", "script"]
    #: the function's name; ``<module>`` for a script
    name: str
    span: Span


@dataclass(eq=False)
class Program:
    """A parsed program: source, libcst module and metadata, entry, units, definitions."""

    path: str
    source: str
    wrapper: MetadataWrapper = field(repr=False)
    entry: Entry
    #: the libcst scope of the entry region (the function's, or the module's for a script)
    scope: Scope = field(repr=False)
    units: tuple[Unit, ...]
    definitions: tuple[Definition, ...]
    #: each node's range, its lines those of the file (rule 7: mapped through ``line_map``)
    positions: dict[cst.CSTNode, CodeRange] = field(repr=False)
    scopes: dict[cst.CSTNode, Scope | None] = field(repr=False)
    contexts: dict[cst.CSTNode, ExpressionContext] = field(repr=False)
    #: :func:`accesses_by_name` of ``scopes`` (the definitions' refs and :class:`~scadc.analysis.names.Names` read it)
    accesses: dict[int, list[Access]] = field(repr=False)
    #: rule 7: when helpers were inlined, the original line of each line of ``module`` (``source`` is
    #: then the file as written, ``module`` its rewriting); empty when ``module`` is ``source``
    line_map: tuple[int, ...] = ()
    #: rule 7: what :mod:`scadc.analysis.inline` decided for each call of a helper in the entry region
    inlining: tuple[InlineDecision, ...] = ()

    @property
    def module(self) -> cst.Module:
        return self.wrapper.module

    def original_line(self, line: int) -> int:
        """The line of the file that line ``line`` of :attr:`module` came from (rule 7)."""
        return self.line_map[line - 1] if 0 < line <= len(self.line_map) else line

    def span_of(self, node: cst.CSTNode) -> Span:
        pos = self.positions[node]
        return Span(self.path, pos.start.line, pos.start.column, pos.end.line, pos.end.column)

    def error(self, message: str, node: cst.CSTNode, hint: str | None = None) -> CompileError:
        return CompileError(message, self.span_of(node), self.source, hint=hint)

    @cached_property
    def module_names(self) -> frozenset[str]:
        """Every name a definition binds."""
        return frozenset(n for d in self.definitions for n in d.names)

    @cached_property
    def _binders(self) -> dict[str, list[int]]:
        """Name -> the positions of the definitions that bind it (built once: a program is not
        changed after :func:`load_program`), so a lookup costs what it finds, not a scan."""
        binders: dict[str, list[int]] = {}
        for i, d in enumerate(self.definitions):
            for n in d.names:
                binders.setdefault(n, []).append(i)
        return binders

    def definitions_of(self, names: Iterable[str]) -> tuple[Definition, ...]:
        """The definitions that bind any of ``names``, in source order."""
        found = {i for n in set(names) for i in self._binders.get(n, ())}
        return tuple(self.definitions[i] for i in sorted(found))

    def needs(self, names: Iterable[str]) -> frozenset[str]:
        """``names`` closed over the definitions' references (rule 5)."""
        todo = [n for n in names if n in self.module_names]
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for i in self._binders.get(name, ()):
                todo.extend(r for r in self.definitions[i].refs if r not in seen)
        return frozenset(seen)


def helper_functions(module: cst.Module) -> dict[str, cst.FunctionDef]:
    """Every module-level function (``f``) and method (``C.m``)."""
    out: dict[str, cst.FunctionDef] = {}
    for stmt in module.body:
        if isinstance(stmt, cst.FunctionDef):
            out[stmt.name.value] = stmt
        elif isinstance(stmt, cst.ClassDef) and isinstance(stmt.body, cst.IndentedBlock):
            for item in stmt.body.body:
                if isinstance(item, cst.FunctionDef):
                    out[f"{stmt.name.value}.{item.name.value}"] = item
    return out


def read_source(path: str) -> str:
    """The file's text, decoded as Python decodes it (rule 1); a missing file, an unknown or
    conflicting declared encoding, or a byte the encoding cannot decode is a :class:`CompileError`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CompileError("no such file", Span(path)) from None
    except OSError as exc:
        raise CompileError(f"cannot read: {exc.strerror}", Span(path)) from exc
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        if exc.msg.startswith("invalid or missing encoding declaration"):
            encoding = "utf-8"  # a non-UTF-8 byte on the first lines: the decoding below says where
        elif data.startswith(b"\xef\xbb\xbf"):
            raise CompileError("encoding problem: the file starts with a UTF-8 byte-order mark but its coding: line "
                               "declares another encoding", Span(path)) from None
        else:
            raise CompileError(exc.msg[:200], Span(path)) from None
    try:
        return data.decode(encoding)  # "utf-8-sig" when there is a BOM: it is dropped, as Python does
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode(encoding, errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1)
        text = data.decode(encoding, errors="replace")
        utf8 = encoding in ("utf-8", "utf-8-sig")
        name = "UTF-8" if utf8 else encoding
        raise CompileError(f"not {name}: byte 0x{data[exc.start]:02x} cannot be decoded",
                           Span(path, line, column, line, column + 1), text,
                           hint="save the file as UTF-8" if utf8 else
                           f"save the file as {encoding}, or change its coding: line") from None


def _python_compile(path: str, source: str) -> ast.Module:
    """Python's AST of ``source``, after Python's compiler accepted it as ``python app.py`` would (rules 1, 6)."""
    limit = sys.getrecursionlimit()
    try:
        # the compiler's depth budget follows the recursion limit: use the one `python app.py` has
        sys.setrecursionlimit(min(limit, _PYTHON_RECURSION_LIMIT))
        with warnings.catch_warnings():  # SyntaxWarnings are the program's business, not split's
            warnings.simplefilter("ignore")
            tree = compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
            compile(source, path, "exec", dont_inherit=True)
        assert isinstance(tree, ast.Module)  # what compile gives for "exec" with PyCF_ONLY_AST
    except SyntaxError as exc:
        line = exc.lineno or 1
        column = max((exc.offset or 1) - 1, 0)
        end = (exc.end_offset or 0) - 1 if exc.end_lineno == exc.lineno else column + 1
        raise CompileError(f"syntax error: {exc.msg}", Span(path, line, column, line, max(end, column + 1)),
                           source) from None
    except ValueError as exc:  # null bytes
        raise CompileError(f"cannot parse: {exc}", Span(path), source) from None
    except (RecursionError, MemoryError) as exc:  # CPython's parser and compiler give up on deep nesting so
        raise CompileError(f"too deeply nested for Python to compile (Python stops with {type(exc).__name__}, "
                           "as `python` running the file would)", Span(path), source,
                           hint="break the expression into several statements") from None
    finally:
        sys.setrecursionlimit(limit)
    return tree


def _check_nesting(path: str, source: str, tree: ast.Module) -> None:
    """Rule 6: no more than :data:`MAX_NESTING` levels as libcst will nest ``tree``, which is the AST's
    depth except that libcst nests the k values of ``a or b or ...`` k - 1 levels deep."""
    todo: list[tuple[ast.AST, int, ast.AST]] = [(tree, 0, tree)]
    while todo:
        node, depth, anchor = todo.pop()
        depth += len(node.values) - 1 if isinstance(node, ast.BoolOp) else 1
        anchor = node if hasattr(node, "lineno") else anchor
        if depth > MAX_NESTING:
            line, column = getattr(anchor, "lineno", 1), getattr(anchor, "col_offset", 0)
            raise CompileError(f"nested more than {MAX_NESTING} levels deep: more than scadc follows "
                               "(a long chain of `and`/`or` counts a level per term)",
                               Span(path, line, column, line, column + 1),  # no caret: the line is long
                               hint="break the expression into several statements")
        todo.extend((child, depth, anchor) for child in ast.iter_child_nodes(node))


def _parse(path: str, source: str) -> cst.Module:
    # Python's own parser words syntax errors best ("'(' was never closed"); libcst's is the fallback
    _check_nesting(path, source, _python_compile(path, source))
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        line, column = exc.raw_line, exc.raw_column
        raise CompileError(f"cannot parse: {exc.message} (Python accepts this file; libcst, the parser scadc "
                           "uses, does not)", Span(path, line, column, line, column + 1), source) from None


def deep_call(fn: Callable[[], _T]) -> _T:
    """``fn()`` on a thread whose stack and recursion limit take :data:`MAX_NESTING` levels (rule 6).

    Ctrl-C and SIGTERM reach the main thread; they are passed on to ``fn``'s thread (so its
    ``finally`` blocks run, e.g. a staging directory is removed) and raised here once it ends.
    Where no such thread can be made, ``fn`` runs here, as deep as the current thread allows.
    """
    outcome: list[_T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:
            failure.append(exc)
        finally:
            done.set()

    size, limit = threading.stack_size(), sys.getrecursionlimit()
    thread = threading.Thread(target=target, name="scadc-deep", daemon=True)
    sys.setrecursionlimit(max(limit, _RECURSION_LIMIT))
    try:
        threading.stack_size(_STACK_BYTES)
        thread.start()
    except (ValueError, RuntimeError, MemoryError):  # no room for the stack
        started = False
    else:
        started = True
    finally:
        threading.stack_size(size)
    if not started:
        sys.setrecursionlimit(limit)
        return fn()
    try:
        # an Event, not Thread.join(): on 3.11 a join interrupted by Ctrl-C marks a running thread stopped
        try:
            done.wait()
        except BaseException as exc:  # the signal came here: pass it on, wait for the thread's clean-up
            if not done.is_set() and thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(type(exc)))
            done.wait()
            raise
    finally:
        sys.setrecursionlimit(limit)  # fn's thread is past fn: it no longer needs the depth
    if failure:
        raise failure[0]
    return outcome[0]


def _is_main_guard(stmt: cst.BaseStatement) -> TypeGuard[cst.If]:
    if not isinstance(stmt, cst.If) or not isinstance(stmt.test, cst.Comparison):
        return False
    test = stmt.test
    if len(test.comparisons) != 1 or not isinstance(test.comparisons[0].operator, cst.Equal):
        return False
    sides = [test.left, test.comparisons[0].comparator]
    names = [s.value for s in sides if isinstance(s, cst.Name)]
    strings = [s.evaluated_value for s in sides if isinstance(s, cst.SimpleString)]
    return names == ["__name__"] and strings == ["__main__"]


def _guard_calls(stmt: cst.If, name: str) -> bool:
    """The guard's body is exactly ``name()``, ``sys.exit(name())`` or ``raise SystemExit(name())`` (rule 2)."""
    if stmt.orelse is not None or not isinstance(stmt.body, cst.IndentedBlock) or len(stmt.body.body) != 1:
        return False
    return _calls(stmt.body.body[0], name)


def _calls(line: cst.BaseStatement, name: str) -> bool:
    """``line`` is exactly ``name()``, ``sys.exit(name())`` or ``raise SystemExit(name())``."""
    if not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
        return False
    small = line.body[0]
    expr = small.value if isinstance(small, cst.Expr) else small.exc if isinstance(small, cst.Raise) else None
    if isinstance(expr, cst.Call) and not (isinstance(expr.func, cst.Name) and expr.func.value == name):
        code = cst.Module([]).code_for_node(expr.func)
        if code in ("sys.exit", "SystemExit") and len(expr.args) == 1:
            expr = expr.args[0].value
    return (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == name
            and not expr.args)


def _required_params(fn: cst.FunctionDef) -> list[cst.Param]:
    p = fn.params
    return [x for x in (*p.posonly_params, *p.params) if x.default is None] + \
        [x for x in p.kwonly_params if x.default is None]


def _body(stmt: cst.FunctionDef) -> list[cst.BaseStatement]:
    body = list(stmt.body.body) if isinstance(stmt.body, cst.IndentedBlock) else []
    if body and _is_docstring(body[0]):
        body = body[1:]
    return body


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1
            and isinstance(stmt.body[0], cst.Expr) and isinstance(stmt.body[0].value, (cst.SimpleString,
                                                                                    cst.ConcatenatedString)))


_CONST_NODES = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString,
                cst.BinaryOperation, cst.UnaryOperation, cst.Tuple, cst.Element, cst.Name,
                cst.Comma, cst.LeftParen, cst.RightParen, cst.BaseBinaryOp, cst.BaseUnaryOp,
                cst.ParenthesizedWhitespace, cst.SimpleWhitespace)


def _is_constant(stmt: cst.BaseStatement, known: set[str]) -> bool:
    """``NAME = <literal arithmetic over earlier constants>`` (rule 4): copying it is harmless."""
    if not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
        return False
    small = stmt.body[0]
    if isinstance(small, cst.Assign) and all(isinstance(t.target, cst.Name) for t in small.targets):
        value: cst.BaseExpression | None = small.value
    elif isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
        value = small.value
    else:
        return False
    if value is None:
        return False
    ok = True

    class _Check(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal ok
            if not isinstance(node, _CONST_NODES) or (isinstance(node, cst.Name) and node.value not in known):
                ok = False
            return ok

    value.visit(_Check())
    return ok


def _kinds(stmts: Sequence[cst.BaseStatement]) -> dict[int, DefinitionKind]:
    """The kind of each module-level statement; constants may only use earlier constants."""
    known: set[str] = {"True", "False", "None"}
    kinds: dict[int, DefinitionKind] = {}
    for s in stmts:
        kinds[id(s)] = _kind(s, known)
        if kinds[id(s)] == "constant":
            known |= _binds(s)
    return kinds


def _kind(stmt: cst.BaseStatement, known: set[str]) -> DefinitionKind:
    if isinstance(stmt, cst.FunctionDef):
        return "function"
    if isinstance(stmt, cst.ClassDef):
        return "class"
    if isinstance(stmt, cst.SimpleStatementLine) and stmt.body and all(
            isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body):
        return "import"
    if _is_constant(stmt, known):
        return "constant"
    if isinstance(stmt, cst.SimpleStatementLine) and any(
            isinstance(s, (cst.Assign, cst.AnnAssign, cst.AugAssign)) for s in stmt.body):
        return "data"
    if isinstance(stmt, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Expr) and isinstance(s.value, cst.Call) and _is_setting(s.value) for s in stmt.body):
        return "setting"
    return "statement"


#: what ``logging.basicConfig`` may be given and still be a setting: a file (``filename``, a
#: ``handlers`` list, any other ``stream``) would be opened, and truncated, by every element
_LOGGING_SETTINGS = frozenset({"level", "format", "datefmt", "style", "force"})


def _is_setting(call: cst.Call) -> bool:
    if not isinstance(call.func, cst.Attribute):
        return False
    if call.func.attr.value in SETTING_CALLS:
        return True
    if call.func.attr.value != "basicConfig":
        return False
    for arg in call.args:
        if arg.keyword is None:
            return False
        if arg.keyword.value == "stream":
            if not (isinstance(arg.value, cst.Attribute) and isinstance(arg.value.value, cst.Name)
                    and arg.value.value.value == "sys" and arg.value.attr.value in ("stdout", "stderr")):
                return False
        elif arg.keyword.value not in _LOGGING_SETTINGS:
            return False
    return True


def load_program(path: str, *, entry: str | None = None) -> Program:
    """Read, parse and index ``path`` (rules 1-5); raises :class:`CompileError` for bad input.
    (:func:`scadc.analysis.inline.load_inlined` is this with the entry region's helpers inlined.)"""
    source = read_source(path)
    return index_program(path, source, _parse(path, source), entry)


def index_program(path: str, source: str, tree: cst.Module, entry: str | None,
                  line_map: tuple[int, ...] = ()) -> Program:
    """Index ``tree``, the module of ``source`` or (with ``line_map``) its rewriting (rules 2-5, 7)."""
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)  # the tree is ours alone: no copy
    module = wrapper.module
    positions = dict(wrapper.resolve(PositionProvider))
    scopes = dict(wrapper.resolve(ScopeProvider))
    contexts = dict(wrapper.resolve(ExpressionContextProvider))
    top = list(module.body)
    global_scope = scopes[module]
    assert global_scope is not None  # libcst gives the module its scope

    def original(line: int) -> int:
        return line_map[line - 1] if 0 < line <= len(line_map) else line

    def span(node: cst.CSTNode) -> Span:
        pos = positions[node]
        return Span(path, original(pos.start.line), pos.start.column, original(pos.end.line), pos.end.column)

    functions = {s.name.value: s for s in top if isinstance(s, cst.FunctionDef)}
    fn: cst.FunctionDef | None = None
    kind: Literal["main", "function", "script"] = "script"
    if entry is not None:  # rule 2: --entry NAME
        fn = functions.get(entry)
        if fn is None:
            raise CompileError(f"--entry {entry}: no module-level function named {entry!r}", Span(path), source)
        kind = "function"
    elif "main" in functions and any(_is_main_guard(s) and _guard_calls(s, "main") for s in top):
        fn, kind = functions["main"], "main"
    elif "main" in functions and len(top) > 1 and _calls(top[-1], "main") and not _required_params(functions["main"]):
        # rule 2: a script whose last statement calls main() (no guard) runs main() as its entry, when
        # everything before it is a definition; else the elements' own main() would shadow the user's
        stmts = [s for s in top[:-1] if not (s is top[0] and _is_docstring(s))]
        if len(_script_definitions(stmts, global_scope)) == len(stmts):
            fn, kind = functions["main"], "main"
    if fn is not None:
        required = _required_params(fn)
        if required:
            raise CompileError(f"the entry function {fn.name.value}() must not require arguments",
                               span(required[0]), source)
        body = _body(fn)
        scope = scopes[body[0]] if body else scopes[fn.body]
        defs_stmts = [s for s in top if s is not fn and not (kind == "main" and (_is_main_guard(s) or (
                      s is top[-1] and _calls(s, "main")))) and not (s is top[0] and _is_docstring(s))]
        unit_stmts = body
        entry_info = Entry(kind, fn.name.value, span(fn))
    else:  # rule 4 for scripts
        shadowed = next((s for s in top if isinstance(s, (cst.FunctionDef, cst.ClassDef)) and s.name.value == "main"),
                        None)
        if shadowed is not None:
            raise CompileError("a script that defines main() cannot be split: every element's entry point is "
                               "named main; call it as `if __name__ == \"__main__\": main()` (then it is the "
                               "entry function) or rename it", span(shadowed), source)
        scope = global_scope
        stmts = [s for s in top if not (s is top[0] and _is_docstring(s))]
        candidates = _script_definitions(stmts, scope)
        defs_stmts = [s for s in stmts if id(s) in candidates]
        unit_stmts = [s for s in stmts if id(s) not in candidates]
        entry_info = Entry("script", "<module>", Span(path, 1, 0, 1, 0))
    if not unit_stmts:
        raise CompileError("the entry region has no statements", entry_info.span, source)
    assert scope is not None
    kinds = _kinds(defs_stmts)
    accesses = accesses_by_name(scopes)
    definitions = tuple(
        Definition(kinds[id(s)], tuple(sorted(_binds(s))), _refs(s, accesses, global_scope), span(s),
                   module.code_for_node(s), s)
        for s in defs_stmts)
    units = []
    for i, s in enumerate(unit_stmts):
        leading = getattr(s, "leading_lines", ())
        first = original(positions[s].start.line - sum(1 for _ in leading))
        units.append(Unit(i, span(s), module.code_for_node(s), max(first, 1), s,
                          (positions[s].start.line, positions[s].end.line)))
    if line_map:  # rule 7: every analysis that reads a node's line reads the file's
        positions = {node: CodeRange(CodePosition(original(r.start.line), r.start.column),
                                     CodePosition(original(r.end.line), r.end.column))
                     for node, r in positions.items()}
    return Program(path, source, wrapper, entry_info, scope, tuple(units), definitions, positions, scopes, contexts,
                   accesses, line_map)


class _NodeOwner(cst.CSTVisitor):
    """Maps the id of every node below a statement to the statement's id."""

    def __init__(self, owner: dict[int, int], statement: cst.CSTNode) -> None:
        super().__init__()
        self.owner, self.statement = owner, id(statement)

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.owner[id(node)] = self.statement
        return True


def _script_definitions(stmts: Sequence[cst.BaseStatement], scope: Scope) -> set[int]:
    """Rule 4 for a script: the ids of the statements that are definitions.

    A candidate (import, def, class, constant) stays a definition unless a unit binds one of its
    names; a demoted candidate is a unit, so its own bindings can demote others in turn. Each
    name is looked at once (a worklist over the names units bind), so this is linear in the size
    of the module rather than a walk of every candidate per binding.
    """
    kinds = _kinds(stmts)
    candidates = {id(s) for s in stmts if kinds[id(s)] in ("import", "function", "class", "constant")}
    owner: dict[int, int] = {}
    binders: dict[str, list[int]] = {}
    for s in stmts:
        if id(s) in candidates:
            s.visit(_NodeOwner(owner, s))
            for name in _binds(s):
                binders.setdefault(name, []).append(id(s))
    bound_in: dict[int, list[str]] = {}  # candidate -> the names its own bindings bind
    unit_bound: set[str] = set()
    for a in scope.assignments:
        if not isinstance(a, Assignment):  # builtins: never in a module's own scope
            continue
        where = owner.get(id(a.node))
        if where is None:
            unit_bound.add(a.name)
        else:
            bound_in.setdefault(where, []).append(a.name)
    todo = list(unit_bound)
    while todo:
        for demoted in binders.pop(todo.pop(), ()):
            if demoted in candidates:
                candidates.discard(demoted)
                fresh = [n for n in bound_in.get(demoted, ()) if n not in unit_bound]
                unit_bound.update(fresh)
                todo += fresh
    return candidates


def _binds(stmt: cst.BaseStatement) -> set[str]:
    """Module-level names a definition statement binds."""
    if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
        return {stmt.name.value}
    names: set[str] = set()
    if isinstance(stmt, cst.SimpleStatementLine):
        for small in stmt.body:
            if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        names.add(alias.asname.name.value)
                    else:
                        names.add(cst.Module([]).code_for_node(alias.name).split(".")[0])
            elif isinstance(small, cst.Assign):
                for t in small.targets:
                    names |= _target_names(t.target)
            elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                names |= _target_names(small.target)
    return names


def _target_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for el in target.elements:
            out |= _target_names(el.value)
        return out
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return set()


def accesses_by_name(scopes: Mapping[cst.CSTNode, Scope | None]) -> dict[int, list[Access]]:
    """``id`` of a ``Name`` node → the reads of it, in every scope.

    libcst records a read of what ``import os.path`` binds on the whole ``os.path`` attribute, not
    on the name ``os`` it reads: such a read is filed under its root name, or ``os`` would seem
    unread (and the import left out of an element that calls ``os.path.join``)."""
    found: dict[int, list[Access]] = {}
    seen: set[int] = set()
    for scope in scopes.values():
        if scope is None or id(scope) in seen:
            continue
        seen.add(id(scope))
        for access in scope.accesses:
            node: cst.CSTNode = access.node
            while isinstance(node, cst.Attribute):
                node = node.value
            found.setdefault(id(node), []).append(access)
    return found


def _refs(stmt: cst.CSTNode, accesses: dict[int, list[Access]], global_scope: Scope) -> frozenset[str]:
    """Module-level names read anywhere inside ``stmt`` (function bodies included)."""
    found: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            for access in accesses.get(id(node), ()):
                if any(r.scope is global_scope for r in access.referents):
                    found.add(node.value)

    stmt.visit(_Names())
    return frozenset(found)
