"""Which locals of the entry region an element may release (``del``) once nothing reads them.

The monolith holds every local of ``main`` (every global of a script) until it returns, dead or
not: kmeans' raw points (128 MB at scale 10) stay allocated through its 25 Lloyd iterations though
nothing reads them after standardising. An element drops such a local after the last of its units
that reads it (:mod:`scadc.codegen.emit`): where is liveness's answer; *whether* is this module's.
Dropping a reference early is unobservable only when nothing can tell it happened. A local is
releasable when all of these hold:

1. Every binding of it is a plain ndarray (T7 of :mod:`scadc.analysis.types`), or a plain pandas
   object while no statement may store objects into a pandas object (T8,
   :func:`~scadc.analysis.effects.pandas_stays_plain`): freeing it runs none of the program's code
   (a ``__del__``, a weakref callback, a file's flush on close).
2. No code that runs later reads it by name: a read inside a nested ``def``, ``lambda``, class body
   or generator expression (each runs when called or iterated, not where it stands; the outermost
   iterable of a generator expression is read at once and does not count), and in a script a read
   inside a module-level function (the global it reads). Liveness sees such a read only where the
   closure is made.
3. The program does not look at frames, references or its own namespace: no call of ``locals``,
   ``vars``, ``globals``, ``dir``, ``eval``, ``exec`` or ``breakpoint``, nothing of ``inspect``,
   ``gc``, ``weakref``, ``ctypes``, ``sys._getframe``/``getrefcount``/``settrace``/``setprofile``,
   and no frame attribute (``f_locals``, ``tb_frame``, ...) anywhere. Otherwise nothing is releasable.

The result maps each releasable local to True (the others are absent).
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import pandas_stays_plain
from scadc.analysis.names import Names, NamesProvider
from scadc.analysis.program import Program, helper_functions
from scadc.analysis.types import Kind, ProgramTypesProvider, plain_type

__all__ = ["ReleaseProvider"]

#: rule 3: calls that see the namespace, frames or reference counts
_INTROSPECTION = frozenset({
    "builtins.locals", "builtins.vars", "builtins.globals", "builtins.dir", "builtins.eval", "builtins.exec",
    "builtins.breakpoint", "sys._getframe", "sys.getrefcount", "sys.settrace", "sys.setprofile",
})
_INTROSPECTION_MODULES = ("inspect", "gc", "weakref", "ctypes", "pdb")
#: rule 3: attributes that reach a frame (and so its locals)
_FRAME_ATTRIBUTES = frozenset({"f_locals", "f_globals", "f_back", "tb_frame", "gi_frame", "cr_frame",
                               "__traceback__"})


class _Scan(cst.CSTVisitor):
    """Rules 2 and 3 over the whole module."""

    def __init__(self, names: Names, entry: cst.CSTNode | None) -> None:
        self.names, self.entry = names, entry
        self.later: set[str] = set()  # rule 2: entry locals read by code that runs later
        self.introspects = False
        self._deferred = 0

    def _enter(self, node: cst.CSTNode) -> bool:
        if node is not self.entry:
            self._deferred += 1
        return True

    def _leave(self, node: cst.CSTNode) -> None:
        if node is not self.entry:
            self._deferred -= 1

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return self._enter(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._leave(original_node)

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return self._enter(node)

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._leave(original_node)

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return self._enter(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._leave(original_node)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        node.for_in.iter.visit(self)  # evaluated where the expression stands
        self._deferred += 1
        node.elt.visit(self)
        node.for_in.target.visit(self)
        for condition in node.for_in.ifs:
            condition.visit(self)
        if node.for_in.inner_for_in is not None:
            node.for_in.inner_for_in.visit(self)
        self._deferred -= 1
        return False

    def visit_Name(self, node: cst.Name) -> None:
        if self._deferred and self.names.classify(node) == "local":
            self.later.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value in _FRAME_ATTRIBUTES:
            self.introspects = True

    def visit_Call(self, node: cst.Call) -> None:
        q = self.names.qualname(node.func) or ""
        if q in _INTROSPECTION or q.split(".", 1)[0] in _INTROSPECTION_MODULES:
            self.introspects = True


class ReleaseProvider(Provider[str, bool]):
    """Releasable local -> True (module docstring)."""

    DEPENDENCIES = (NamesProvider, DefUseProvider, ProgramTypesProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, bool]:
        names = results.get(NamesProvider)["names"]
        types = results.get(ProgramTypesProvider)["types"]
        entry = None if program.entry.kind == "script" else next(
            (s for s in program.module.body if isinstance(s, cst.FunctionDef) and s.name.value == program.entry.name),
            None)
        scan = _Scan(names, entry)
        program.module.visit(scan)
        if scan.introspects:
            return {}
        du = results.get(DefUseProvider)
        bound = sorted(set().union(*(du[u].defs for u in program.units)) - scan.later) if program.units else []
        candidates = {n: types.entry.get(n) for n in bound}
        plain_arrays = {n for n, t in candidates.items() if t is not None and t.kind is Kind.NDARRAY and plain_type(t)}
        frames = [n for n, t in candidates.items() if t is not None and t.kind is Kind.PANDAS and t.plain]
        if frames and pandas_stays_plain(names, types.module, types.signatures, helper_functions(program.module)):
            plain_arrays.update(frames)
        return {n: True for n in sorted(plain_arrays)}
