"""Def/use of every unit: what it binds, what it reads, what it needs from module level.

Rules (the names are the entry region's locals, see :mod:`scadc.analysis.names`):

1. A *read* is a local ``Name`` in load context anywhere in the unit, including inside
   comprehensions, lambdas and nested functions (a closure reads the value when it runs).
   ``x += e`` reads ``x``; ``del x`` reads ``x`` (the binding must exist to be deleted). So is a
   local that an expression string names for a library that looks it up in the caller's frame:
   ``@x`` in ``df.query(...)``/``df.eval(...)``, any identifier in ``pd.eval(...)``,
   ``numexpr.evaluate(...)`` and Python's own ``eval``/``exec``; an expression that is not a
   string literal (an f-string's placeholders, a variable) reads every local.
2. A *binding* is an assignment target, an augmented assignment, a ``for`` target, a ``with … as``
   target, an ``except … as`` name, a walrus target, an import, or a nested ``def``/``class``.
3. ``uses`` are the reads not preceded, on every path through the unit, by a binding of the
   same name (upward-exposed reads: the values the unit needs on entry). Within one simple
   statement all reads happen before its bindings (conservative for walrus).
4. ``kills`` are the names bound (or deleted) on every path through the unit: the branches of an
   ``if`` kill the intersection; a loop body, an ``except`` handler and a ``match`` case may not
   run, so they kill nothing; a ``try``'s ``finally`` always runs, and so does a ``with`` body, to
   its end, only when every context manager is known not to swallow an exception
   (:data:`NON_SUPPRESSING`: ``open``, ``np.errstate``, ``warnings.catch_warnings`` …); under any
   other (``contextlib.suppress``, a manager of unknown type) the body kills nothing: an exception
   it swallows may skip the rest of the body.
5. ``defs`` are all names the unit may bind; ``deletes`` the names it ``del``\\ s.
6. ``module_refs`` are the module-level names the unit reads; ``needs`` is their transitive
   closure over the definitions (what codegen copies into the unit's element).
7. ``exits`` is true when the unit contains a ``return`` of the entry function (early exit).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import libcst as cst
from libcst.metadata import ExpressionContext

from scadc.analysis.base import Provider, Results
from scadc.analysis.names import Names, NamesProvider
from scadc.analysis.program import Program, Unit

__all__ = ["Binding", "DefUse", "DefUseProvider", "pragma_of"]

BindingKind = Literal["assign", "unpack", "augassign", "for", "with", "except", "walrus", "import", "def",
                      "class", "other"]


@dataclass(frozen=True)
class Binding:
    """One place a unit binds a local: which name, how, and from what."""

    name: str
    kind: BindingKind
    #: the bound value's expression (the RHS, the ``for`` iterable, the ``with`` item); None if none
    value: cst.CSTNode | None
    #: 1-based line of the binding statement
    line: int
    #: ``memory`` / ``local`` from a ``# scad:`` pragma on the statement, else None
    pragma: str | None


@dataclass(frozen=True)
class DefUse:
    """The def/use summary of one unit (rules 1-7)."""

    uses: frozenset[str]
    kills: frozenset[str]
    defs: frozenset[str]
    deletes: frozenset[str]
    reads: frozenset[str]
    module_refs: frozenset[str]
    needs: frozenset[str]
    bindings: tuple[Binding, ...]
    exits: bool
    #: reads that resolve to nothing (for the star-import check): (name, node)
    unresolved: tuple[tuple[str, cst.Name], ...]


def pragma_of(stmt: cst.CSTNode) -> str | None:
    """``memory``/``local`` from ``# scad: …`` at the end of the statement or on the line above it."""
    comments: list[str] = []
    if isinstance(stmt, cst.SimpleStatementLine) and stmt.trailing_whitespace.comment is not None:
        comments.append(stmt.trailing_whitespace.comment.value)
    leading = getattr(stmt, "leading_lines", ())
    if leading and leading[-1].comment is not None:
        comments.append(leading[-1].comment.value)
    for text in comments:
        body = text.lstrip("#").strip()
        if body.startswith("scad:"):
            word = body[len("scad:"):].strip().split()
            if word and word[0] in ("memory", "local"):
                return word[0]
    return None


#: calls whose expression string reads every name it mentions from the caller's frame (rule 1)
_READ_EVERY_IDENTIFIER = frozenset({"pandas.eval", "numexpr.evaluate", "builtins.eval", "builtins.exec"})


class _Events(cst.CSTVisitor):
    """Reads/binds/deletes of entry locals in source order, plus bindings and module refs."""

    def __init__(self, names: Names, program: Program, stmt_line: int, pragma: str | None) -> None:
        self.names, self.program = names, program
        self.line, self.pragma = stmt_line, pragma
        self.events: list[tuple[str, str]] = []
        self.module: set[str] = set()
        self.bindings: list[Binding] = []
        self.unresolved: list[tuple[str, cst.Name]] = []
        self.exits = False
        self._depth = 0  # nesting inside def/lambda/class: returns there are not exits
        self._kind: BindingKind = "other"
        self._value: cst.CSTNode | None = None

    def _bind(self, name: str, kind: BindingKind | None = None, value: cst.CSTNode | None = None) -> None:
        self.events.append(("bind", name))
        self.bindings.append(Binding(name, kind or self._kind, value if kind else self._value, self.line,
                                     self.pragma))

    def _with_target(self, target: cst.CSTNode, kind: BindingKind, value: cst.CSTNode | None) -> None:
        saved = self._kind, self._value
        self._kind, self._value = kind, value
        target.visit(self)
        self._kind, self._value = saved

    def visit_Name(self, node: cst.Name) -> bool:
        kind = self.names.classify(node)
        if kind == "local":
            self.events.append(("read", node.value))
            if self.program.contexts.get(node) is ExpressionContext.DEL:
                self.events.append(("delete", node.value))
        elif kind == "module":
            self.module.add(node.value)
        elif kind == "unresolved":
            self.unresolved.append((node.value, node))
        if self.names.binds_local(node, node.value):
            self._bind(node.value)
        return False

    def visit_Assign(self, node: cst.Assign) -> bool:
        node.value.visit(self)
        for t in node.targets:
            self._with_target(t.target, "assign" if isinstance(t.target, cst.Name) else "unpack", node.value)
        return False

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool:
        if node.value is not None:
            node.value.visit(self)
        self._with_target(node.target, "assign", node.value)
        return False

    def visit_AugAssign(self, node: cst.AugAssign) -> bool:
        node.value.visit(self)
        if isinstance(node.target, cst.Name) and self.names.binds_local(node.target, node.target.value):
            self.events.append(("read", node.target.value))  # rule 1: x += e reads x
        self._with_target(node.target, "augassign", node)
        return False

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        node.value.visit(self)
        self._with_target(node.target, "walrus", node.value)
        return False

    def visit_For(self, node: cst.For) -> bool:
        node.iter.visit(self)
        self._with_target(node.target, "for", node.iter)
        node.body.visit(self)
        if node.orelse is not None:
            node.orelse.visit(self)
        return False

    def visit_CompFor(self, node: cst.CompFor) -> bool:
        node.iter.visit(self)
        self._with_target(node.target, "for", node.iter)
        for cond in node.ifs:
            cond.visit(self)
        if node.inner_for_in is not None:
            node.inner_for_in.visit(self)
        return False

    def visit_WithItem(self, node: cst.WithItem) -> bool:
        node.item.visit(self)
        if node.asname is not None:
            self._with_target(node.asname.name, "with", node.item)
        return False

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> bool:
        if node.type is not None:
            node.type.visit(self)
        if node.name is not None:
            self._with_target(node.name.name, "except", None)
        node.body.visit(self)
        return False

    def _import(self, node: cst.Import | cst.ImportFrom) -> bool:
        for a in self.names._assign.get(id(node), ()):
            if self.names._is_entry(a.scope, a.name) and "." not in a.name:
                self._bind(a.name, "import", node)
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return self._import(node)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return self._import(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        for d in node.decorators:
            d.visit(self)
        node.params.visit(self)
        if self.names.binds_local(node, node.name.value):
            self._bind(node.name.value, "def", node)
        self._depth += 1
        node.body.visit(self)
        self._depth -= 1
        return False

    def visit_Call(self, node: cst.Call) -> bool:
        """Rule 1's expression strings: the locals a frame-reading library will look up."""
        func = node.func
        q = self.names.qualname(func) or ""
        frame_reading = q in _READ_EVERY_IDENTIFIER or (
            isinstance(func, cst.Attribute) and func.attr.value in ("query", "eval") and q == "")
        if not frame_reading or not node.args or node.args[0].keyword is not None:
            return True
        expr = node.args[0].value
        text = expr.evaluated_value if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)) else None
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        scope = self.names.entry_scope
        locals_ = [a.name for a in scope.assignments if self.names._is_entry(scope, a.name)]
        if text is None:
            wanted = set(locals_)  # cannot tell which: all of them
        else:
            pattern = r"[A-Za-z_]\w*" if q in _READ_EVERY_IDENTIFIER else r"@([A-Za-z_]\w*)"
            wanted = set(re.findall(pattern, text)) & set(locals_)
        for name in sorted(wanted):
            self.events.append(("read", name))
        return True

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        if self.names.binds_local(node, node.name.value):
            self._bind(node.name.value, "class", node)
        self._depth += 1
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        self._depth += 1
        return True

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._depth -= 1

    def visit_Return(self, node: cst.Return) -> bool:
        if self._depth == 0:
            self.exits = True
        return True


@dataclass
class _Acc:
    """What the walk over a unit accumulates (rules 3-7)."""

    uses: set[str]
    defs: set[str]
    deletes: set[str]
    reads: set[str]
    module: set[str]
    bindings: list[Binding]
    unresolved: list[tuple[str, cst.Name]]
    exits: bool = False


#: context managers whose ``__exit__`` never swallows an exception (rule 4)
NON_SUPPRESSING = frozenset({
    "builtins.open", "io.open", "gzip.open", "bz2.open", "lzma.open", "os.fdopen", "tempfile.TemporaryDirectory",
    "tempfile.NamedTemporaryFile", "tempfile.TemporaryFile", "numpy.errstate", "numpy.printoptions",
    "warnings.catch_warnings", "contextlib.redirect_stdout", "contextlib.redirect_stderr", "contextlib.nullcontext",
    "pandas.option_context", "threading.Lock", "threading.RLock", "decimal.localcontext",
})


class _Summarizer:
    def __init__(self, names: Names, program: Program) -> None:
        self.names, self.program = names, program

    def events(self, node: cst.CSTNode, acc: _Acc, defined: set[str], stmt: cst.CSTNode) -> set[str]:
        """Apply ``node``'s events to ``acc``; returns the names it definitely binds or deletes."""
        line = self.program.positions[stmt].start.line if stmt in self.program.positions else 0
        v = _Events(self.names, self.program, line, pragma_of(stmt))
        node.visit(v)
        killed: set[str] = set()
        for kind, name in v.events:
            if kind == "read":
                acc.reads.add(name)
                if name not in defined and name not in killed:
                    acc.uses.add(name)  # rule 3
            elif kind == "bind":
                acc.defs.add(name)
                killed.add(name)
            else:
                acc.deletes.add(name)
                killed.add(name)
        acc.module |= v.module
        acc.bindings += v.bindings
        acc.unresolved += v.unresolved
        acc.exits = acc.exits or v.exits
        return killed

    def block(self, body: cst.BaseSuite | None, acc: _Acc, defined: set[str]) -> set[str]:
        if body is None:
            return set()
        stmts: Sequence[cst.CSTNode] = body.body if isinstance(body, cst.IndentedBlock) else [body]
        return self.sequence(stmts, acc, defined)

    def sequence(self, stmts: Sequence[cst.CSTNode], acc: _Acc, defined: set[str]) -> set[str]:
        killed: set[str] = set()
        for s in stmts:
            killed |= self.statement(s, acc, defined | killed)
        return killed

    def statement(self, s: cst.CSTNode, acc: _Acc, defined: set[str]) -> set[str]:
        """Rule 4: the names ``s`` binds on every path."""
        if isinstance(s, cst.If):
            k = self.events(s.test, acc, defined, s)
            then = self.block(s.body, acc, defined | k)
            orelse = self.statement(s.orelse, acc, defined | k) if isinstance(s.orelse, cst.If) else \
                self.block(s.orelse.body if s.orelse else None, acc, defined | k) if s.orelse else set()
            return k | (then & orelse)
        if isinstance(s, cst.Else):
            return self.block(s.body, acc, defined)
        if isinstance(s, cst.For):
            k = self.events(s.iter, acc, defined, s)
            saved = len(acc.bindings)
            t = self.events(s.target, acc, defined | k, s)
            acc.bindings[saved:] = [Binding(b.name, "for", s.iter, b.line, b.pragma) for b in acc.bindings[saved:]]
            self.block(s.body, acc, defined | k | t)
            if s.orelse is not None:
                self.block(s.orelse.body, acc, defined | k)
            return k
        if isinstance(s, cst.While):
            k = self.events(s.test, acc, defined, s)
            self.block(s.body, acc, defined | k)
            if s.orelse is not None:
                self.block(s.orelse.body, acc, defined | k)
            return k
        if isinstance(s, cst.With):
            k = set()
            for item in s.items:
                k |= self.events(item, acc, defined | k, s)
            body = self.block(s.body, acc, defined | k)
            known = all(isinstance(item.item, cst.Call) and self.names.qualname(item.item.func) in NON_SUPPRESSING
                        for item in s.items)
            return k | body if known else k
        if isinstance(s, (cst.Try, cst.TryStar)):
            body = self.block(s.body, acc, defined)
            for h in s.handlers:
                hk = self.events(h.type, acc, defined, h) if h.type is not None else set()
                if h.name is not None:
                    hk |= self.events(h.name, acc, defined, h)
                self.block(h.body, acc, defined | hk)
            if s.orelse is not None:
                self.block(s.orelse.body, acc, defined | body)
            return self.block(s.finalbody.body, acc, defined) if s.finalbody is not None else set()
        if isinstance(s, cst.Match):
            k = self.events(s.subject, acc, defined, s)
            for case in s.cases:
                ck = self.events(case.pattern, acc, defined | k, case)
                if case.guard is not None:
                    ck |= self.events(case.guard, acc, defined | k | ck, case)
                self.block(case.body, acc, defined | k | ck)
            return k
        if isinstance(s, cst.SimpleStatementLine):
            killed: set[str] = set()
            for small in s.body:
                killed |= self.events(small, acc, defined | killed, s)
            return killed
        # def, class, and anything else: one statement's events
        return self.events(s, acc, defined, s)


class DefUseProvider(Provider[Unit, DefUse]):
    """:class:`DefUse` per unit."""

    DEPENDENCIES = (NamesProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, DefUse]:
        names = results.get(NamesProvider)["names"]
        out: dict[Unit, DefUse] = {}
        for unit in program.units:
            acc = _Acc(set(), set(), set(), set(), set(), [], [])
            kills = _Summarizer(names, program).statement(unit.node, acc, set())
            out[unit] = DefUse(frozenset(acc.uses), frozenset(kills), frozenset(acc.defs), frozenset(acc.deletes),
                               frozenset(acc.reads), frozenset(acc.module), program.needs(acc.module),
                               tuple(acc.bindings), acc.exits, tuple(acc.unresolved))
        return out
