"""What a name or a dotted expression refers to, from libcst's scope metadata.

Rules for a ``Name`` read (:meth:`Names.classify`):

1. ``local``: it resolves to a binding in the entry region's scope (in a script, one that no
   definition makes; those are ``module``). Reads inside comprehensions, lambdas and nested
   functions that resolve to the entry scope are local reads too (closures read at definition).
2. ``module``: it resolves to a module-level binding (a definition).
3. ``builtin``: it resolves to Python's builtins.
4. ``unresolved``: nothing binds it (a typo, or a name from ``from m import *``).
5. ``inner``: a name private to a comprehension, lambda or nested function.

:meth:`Names.qualname` turns ``np.random.seed`` into ``numpy.random.seed`` through the import
that binds the root name, ``print`` into ``builtins.print``, a module-level function ``helper``
into ``<program>.helper``; it returns None for expressions rooted at a local value.
:meth:`Names.own` gives the program's own name (``helper``) without that root, so nothing needs
to take the text apart again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import libcst as cst
from libcst.metadata import Assignment, BuiltinAssignment, ImportAssignment, Scope

from scadc.analysis.base import Provider, Results
from scadc.analysis.program import Program

__all__ = ["PROGRAM", "NameKind", "Names", "NamesProvider", "dotted", "root_name"]

NameKind = Literal["local", "module", "builtin", "unresolved", "inner"]
#: prefix of the qualified names of the program's own module-level functions and classes
PROGRAM = "<program>"


def dotted(expr: cst.BaseExpression) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None when the chain is not made of names."""
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return parts[::-1]


def root_name(expr: cst.BaseExpression) -> cst.Name | None:
    """The name an attribute/subscript chain starts from: ``x`` for ``x.a[0].b``."""
    while True:
        if isinstance(expr, cst.Name):
            return expr
        if isinstance(expr, (cst.Attribute, cst.Subscript)):
            expr = expr.value
        else:
            return None


class Names:
    """Name resolution for one program (built once; read-only afterwards)."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.entry_scope = program.scope
        self.global_scope = program.scopes[program.module]
        self.module_names = program.module_names
        self._access = program.accesses
        self._assign: dict[int, list[Assignment]] = {}
        seen: set[int] = set()
        for scope in program.scopes.values():
            if scope is None or id(scope) in seen:
                continue
            seen.add(id(scope))
            for assignment in scope.assignments:
                if isinstance(assignment, Assignment):
                    self._assign.setdefault(id(assignment.node), []).append(assignment)
        self._imports: dict[int, dict[str, str]] = {}

    # -- reads and binds ------------------------------------------------------------------------
    def _is_entry(self, scope: Scope, name: str) -> bool:
        if scope is not self.entry_scope:
            return False
        # a script's entry scope is the module's; names the definitions bind are module-level (rule 1)
        return self.program.entry.kind != "script" or name not in self.module_names

    def classify(self, node: cst.Name) -> NameKind | None:
        """How a read of ``node`` resolves (rules 1-5); None if ``node`` is not a read."""
        accesses = self._access.get(id(node))
        if not accesses:
            return None
        referents = [r for a in accesses for r in a.referents]
        if any(self._is_entry(r.scope, node.value) for r in referents):
            return "local"
        if any(r.scope is self.global_scope for r in referents):
            return "module"
        if any(isinstance(r, BuiltinAssignment) for r in referents):
            return "builtin"
        return "unresolved" if not referents else "inner"

    def binds_local(self, node: cst.CSTNode, name: str | None = None) -> bool:
        """``node`` (a target ``Name``, a ``def``/``class``/import statement) binds a local of the entry."""
        return any(self._is_entry(a.scope, name or a.name) for a in self._assign.get(id(node), ())
                   if name is None or a.name == name)

    def binds_global_from_function(self, node: cst.Name) -> bool:
        """``node`` binds a module-level name from inside a function (after ``global``)."""
        return any(a.scope is self.global_scope for a in self._assign.get(id(node), ()))

    def binding_scope(self, node: cst.CSTNode) -> Scope | None:
        found = self._assign.get(id(node))
        return found[0].scope if found else None

    # -- qualified names ------------------------------------------------------------------------
    def qualname(self, expr: cst.BaseExpression) -> str | None:
        """The qualified name of a dotted expression rooted at an import, a builtin or a definition."""
        found = self._resolve(expr)
        return ".".join(found[1]) if found is not None else None

    def own(self, expr: cst.BaseExpression) -> str | None:
        """The program's own function or class ``expr`` names (``helper``, ``Class.method``: its
        qualified name without the :data:`PROGRAM` root), else None."""
        found = self._resolve(expr)
        return ".".join(found[1][1:]) if found is not None and found[0] else None

    def _resolve(self, expr: cst.BaseExpression) -> tuple[bool, list[str]] | None:
        """Whether ``expr`` is rooted at one of the program's definitions, and the parts of its
        qualified name; None when it is not a dotted name rooted at an import, builtin or definition."""
        parts = dotted(expr)
        if parts is None:
            return None
        root = expr
        while isinstance(root, cst.Attribute):
            root = root.value
        assert isinstance(root, cst.Name)
        for access in self._access.get(id(root), ()):
            for ref in access.referents:
                if isinstance(ref, ImportAssignment):
                    base = self._import_target(ref.node, parts[0])
                    if base is not None:
                        return False, [base, *parts[1:]]
                elif isinstance(ref, BuiltinAssignment):
                    return False, ["builtins", *parts]
                elif ref.scope is self.global_scope and isinstance(ref, Assignment) and isinstance(
                        ref.node, (cst.FunctionDef, cst.ClassDef)):
                    return True, [PROGRAM, *parts]
        return None

    def _import_target(self, stmt: cst.CSTNode, name: str) -> str | None:
        table = self._imports.get(id(stmt))
        if table is None:
            table = {}
            if isinstance(stmt, (cst.Import, cst.ImportFrom)) and not isinstance(stmt.names, cst.ImportStar):
                module = ""
                if isinstance(stmt, cst.ImportFrom) and stmt.module is not None:
                    module = cst.Module([]).code_for_node(stmt.module)
                for alias in stmt.names:
                    full = cst.Module([]).code_for_node(alias.name)
                    if isinstance(stmt, cst.ImportFrom):
                        full = f"{module}.{full}" if module else full
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        table[alias.asname.name.value] = full
                    elif isinstance(stmt, cst.Import):
                        first = full.split(".")[0]
                        table[first] = first
                    else:
                        table[full.rsplit(".", 1)[-1]] = full
            self._imports[id(stmt)] = table
        return table.get(name)


class NamesProvider(Provider[str, Names]):
    """The program's :class:`Names` resolver under the key ``"names"`` (shared, built once)."""

    def compute(self, program: Program, results: Results) -> Mapping[str, Names]:
        return {"names": Names(program)}
