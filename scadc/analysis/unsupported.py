"""The checks that refuse programs outside the input subset (``docs/input-subset.md``).

Each rule gives a :class:`~scadc.errors.CompileError` at the offending construct:

1. ``global``/``nonlocal`` anywhere in the entry region (including functions nested in it).
2. ``yield``/``await`` (and ``async for``/``async with``) in the entry function itself, or an
   ``async def`` entry function: the entry would not run as straight-line code.
3. ``exec`` of code that binds names: a non-literal argument (scadc cannot see what it binds) or a
   literal that assigns, imports or defines; ``eval`` of a literal with ``:=``.
4. ``sys.exit``/``exit``/``quit``/``os._exit``/``raise SystemExit`` in any unit but the last.
5. A name that units (or the definitions they need) read, which nothing binds, while the module
   has ``from m import *``: the name probably comes from the star import, which elements cannot
   copy selectively.
6. ``atexit.register`` or ``weakref.finalize`` anywhere in the program (a call or a decorator):
   every element is a process of its own, which runs the handlers registered in it when it ends
   (:func:`scadrt.element.end_program`); the original runs them once, after ``main()`` returns.
7. ``locals()``, ``vars()``, ``dir()`` (without an argument) or ``globals()`` in the entry region
   itself: they list the element's namespace (its parameters, what it loaded), not the original's.

The first problem in source order is raised.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from scadc.analysis.defuse import DefUse
from scadc.analysis.names import Names
from scadc.analysis.program import Program, Unit
from scadc.errors import CompileError

__all__ = ["check_supported"]

_EXITS = ("sys.exit", "builtins.exit", "builtins.quit", "os._exit", "os.abort")


class _Check(cst.CSTVisitor):
    def __init__(self, program: Program, names: Names, last: bool) -> None:
        self.program, self.names, self.last = program, names, last
        self.problems: list[CompileError] = []
        self._depth = 0  # inside a nested def/lambda

    def _add(self, message: str, node: cst.CSTNode, hint: str | None = None) -> None:
        self.problems.append(self.program.error(message, node, hint))

    def visit_Global(self, node: cst.Global) -> None:
        self._add("`global` is not supported in the entry region", node,
                  "bind the value locally, or move the code into a helper function")  # rule 1

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        self._add("`nonlocal` is not supported in the entry region", node,
                  "return the new value from the nested function instead")  # rule 1

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._depth += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._depth -= 1

    def visit_Yield(self, node: cst.Yield) -> None:
        if self._depth == 0:
            self._add("`yield` is not supported in the entry region (it would make the entry a generator)",
                      node)  # rule 2

    def visit_Await(self, node: cst.Await) -> None:
        if self._depth == 0:
            self._add("`await` is not supported in the entry region", node)  # rule 2

    def visit_For(self, node: cst.For) -> None:
        if node.asynchronous is not None and self._depth == 0:
            self._add("`async for` is not supported in the entry region", node)

    def visit_With(self, node: cst.With) -> None:
        if node.asynchronous is not None and self._depth == 0:
            self._add("`async with` is not supported in the entry region", node)

    def visit_Call(self, node: cst.Call) -> None:
        q = self.names.qualname(node.func) or ""
        if q == "builtins.exec":  # rule 3
            arg = node.args[0].value if node.args else None
            if not isinstance(arg, cst.SimpleString):
                self._add("`exec` of code scadc cannot see is not supported", node,
                          "write the code out in the program")
            elif _binds_names(arg.evaluated_value):
                self._add("`exec` of code that defines names is not supported", node,
                          "write the code out in the program")
        elif q == "builtins.eval" and node.args and isinstance(node.args[0].value, cst.SimpleString) and \
                ":=" in str(node.args[0].value.evaluated_value):
            self._add("`eval` of code that defines names is not supported", node)
        elif q in _NAMESPACE and self._depth == 0 and (not node.args or q == "builtins.globals"):  # rule 7
            self._add(f"`{q.removeprefix('builtins.')}()` is not supported in the entry region: an element's "
                      "namespace is not the original's", node, "name the values you need explicitly")
        elif q in _EXITS and not self.last:  # rule 4
            self._add(f"`{q.removeprefix('builtins.')}()` before the last statement of the entry region is not "
                      "supported", node, "return from main() instead, or move the exit to the end")

    def visit_Raise(self, node: cst.Raise) -> None:
        exc = node.exc.func if isinstance(node.exc, cst.Call) else node.exc
        if exc is not None and (self.names.qualname(exc) or "") == "builtins.SystemExit" and not self.last:
            self._add("`raise SystemExit` before the last statement of the entry region is not supported", node,
                      "return from main() instead, or move the exit to the end")  # rule 4


def _binds_names(code: str | bytes) -> bool:
    text = code.decode() if isinstance(code, bytes) else code
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError:
        return True
    found = False

    class _Binds(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.Import,
                                 cst.ImportFrom, cst.FunctionDef, cst.ClassDef, cst.For, cst.With, cst.Del)):
                found = True
            return not found

    module.visit(_Binds())
    return found


def _star_import(program: Program) -> cst.ImportFrom | None:
    for stmt in program.module.body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar):
                    return small
    return None


_AT_EXIT = ("atexit.register", "weakref.finalize")
_NAMESPACE = ("builtins.locals", "builtins.vars", "builtins.dir", "builtins.globals")


def _exit_handlers(program: Program, names: Names) -> list[CompileError]:
    """Rule 6, over the whole module."""
    found: list[CompileError] = []

    class _Find(cst.CSTVisitor):
        def _check(self, func: cst.BaseExpression, node: cst.CSTNode) -> None:
            q = names.qualname(func) or ""
            if q in _AT_EXIT:
                found.append(program.error(
                    f"`{q}` is not supported: an element would run the handler when its own process ends, "
                    "not after the whole program",
                    node, "call the handler's code at the end of main() instead"))

        def visit_Call(self, node: cst.Call) -> None:
            self._check(node.func, node)

        def visit_Decorator(self, node: cst.Decorator) -> None:
            if not isinstance(node.decorator, cst.Call):
                self._check(node.decorator, node)

    program.module.visit(_Find())
    return found


def check_supported(program: Program, names: Names, defuse: Mapping[Unit, DefUse]) -> None:
    """Raise the first problem (rules 1-7) in source order; return if there is none."""
    problems: list[CompileError] = _exit_handlers(program, names)
    fn = next((s for s in program.module.body if isinstance(s, cst.FunctionDef)
               and s.name.value == program.entry.name), None)
    if fn is not None and fn.asynchronous is not None:
        problems.append(program.error("an `async def` entry function is not supported", fn))  # rule 2
    for unit in program.units:
        check = _Check(program, names, last=unit.index == len(program.units) - 1)
        unit.node.visit(check)
        problems += check.problems
    star = _star_import(program)
    if star is not None:  # rule 5
        needed = program.needs(n for d in defuse.values() for n in d.module_refs)
        roots: list[cst.CSTNode] = [u.node for u in program.units]
        roots += [d.node for d in program.definitions if set(d.names) & needed and d.kind != "import"]
        module_name = cst.Module([]).code_for_node(star.module) if star.module else "?"
        line = program.span_of(star).line
        for root in roots:
            for name, node in _unresolved(root, names):
                problems.append(program.error(
                    f"`{name}` is not defined here; it may come from `from {module_name} import *` (line {line})",
                    node, f"import it by name: `from {module_name} import {name}`"))
    if problems:
        raise min(problems, key=lambda p: (p.span.line, p.span.column))


def _unresolved(root: cst.CSTNode, names: Names) -> list[tuple[str, cst.Name]]:
    found: list[tuple[str, cst.Name]] = []

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            if names.classify(node) == "unresolved":
                found.append((node.value, node))

    root.visit(_Find())
    return found
