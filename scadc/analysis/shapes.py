"""What each unit's statement looks like, where the partitioner's rules ask: facts read off the
syntax tree here, once, so that the partitioner never walks it (its plan holds no libcst).

Per unit, a :class:`UnitShape`:

1. ``deletes_only``: the statement is a line of ``del`` statements and nothing else (it needs
   the names, not their values).
2. ``list_display``: the statement is ``NAME = [...]`` (one statement, one target, a plain name,
   a list display): ``NAME``; else None.
3. ``loop``: for a (not ``async``) ``for`` statement, a :class:`ForLoop`:

   a. ``iterations``: how many iterations ``range(ARGS)`` has when ARGS are 1 to 3 positional
      constants (:mod:`scadc.analysis.constants`), else None;
   b. ``control``: what makes one iteration depend on how the others went, the first found of
      an ``else`` clause, a ``break``/``continue`` of the loop's own (not of a nested loop), a
      ``return``, ``yield`` or ``await`` (not inside a nested ``def``/``lambda``/``class``);
      None when there is none;
   c. ``appended``: the names the body calls ``.append(...)`` on in an expression statement
      (``out.append(x)``), and ``appended_only``, those of them that the body names nowhere else
      (attribute names and keywords are not names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.constants import Constants
from scadc.analysis.program import Program, Unit

__all__ = ["ForLoop", "ShapeProvider", "UnitShape"]


@dataclass(frozen=True)
class ForLoop:
    """Rule 3: a ``for`` statement's facts."""

    #: the loop's iterable, as written (``range(N_FOLDS)``)
    iterable: str
    #: the number of iterations of a ``range()`` of constants, else None (3a)
    iterations: int | None
    #: why iterations depend on each other (``a break``, ``an else clause`` …), else None (3b)
    control: str | None
    #: names appended to by ``name.append(...)`` statements, and those named nowhere else (3c)
    appended: frozenset[str]
    appended_only: frozenset[str]

    def __str__(self) -> str:
        return (f"for over {self.iterable}: {self.iterations if self.iterations is not None else '?'} iterations, "
                f"control {self.control or '-'}, appended [{', '.join(sorted(self.appended))}], only appended "
                f"[{', '.join(sorted(self.appended_only))}]")


@dataclass(frozen=True)
class UnitShape:
    """Rules 1-3 for one unit."""

    deletes_only: bool = False
    list_display: str | None = None
    loop: ForLoop | None = None

    def __str__(self) -> str:
        parts = [*(["deletes only"] if self.deletes_only else []),
                 *([f"binds {self.list_display} to a list display"] if self.list_display else []),
                 *([str(self.loop)] if self.loop is not None else [])]
        return "; ".join(parts) or "-"


class ShapeProvider(Provider[Unit, UnitShape]):
    """:class:`UnitShape` per unit."""

    def compute(self, program: Program, results: Results) -> Mapping[Unit, UnitShape]:
        constants = Constants.of(program)
        return {u: UnitShape(_deletes_only(u.node), _list_display(u.node), _loop(u.node, constants))
                for u in program.units}


def _deletes_only(node: cst.CSTNode) -> bool:
    return isinstance(node, cst.SimpleStatementLine) and all(isinstance(s, cst.Del) for s in node.body)


def _list_display(node: cst.CSTNode) -> str | None:
    if not (isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1):
        return None
    statement = node.body[0]
    if isinstance(statement, cst.Assign) and len(statement.targets) == 1 and \
            isinstance(statement.targets[0].target, cst.Name) and isinstance(statement.value, cst.List):
        return statement.targets[0].target.value
    return None


def _loop(node: cst.CSTNode, constants: Constants) -> ForLoop | None:
    if not isinstance(node, cst.For) or node.asynchronous is not None:
        return None
    appended = _appended(node)
    only = frozenset(name for name, count in appended.items() if _references(node, name) == count)
    return ForLoop(cst.Module([]).code_for_node(node.iter), _iterations(node.iter, constants), _control_flow(node),
                   frozenset(appended), only)


def _iterations(iterable: cst.BaseExpression, constants: Constants) -> int | None:
    if not (isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Name)
            and iterable.func.value == "range" and 1 <= len(iterable.args) <= 3
            and all(a.keyword is None and not a.star for a in iterable.args)):
        return None
    values = [constants(a.value) for a in iterable.args]
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(ints) != len(values):
        return None
    try:
        return len(range(*ints))
    except ValueError:  # a step of 0
        return None


def _control_flow(loop: cst.For) -> str | None:
    """Rule 3b."""
    if loop.orelse is not None:
        return "an else clause"
    found: list[str] = []

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            self.loops = 0

        def visit_For(self, node: cst.For) -> None:
            self.loops += 1

        def leave_For(self, original_node: cst.For) -> None:
            self.loops -= 1

        def visit_While(self, node: cst.While) -> None:
            self.loops += 1

        def leave_While(self, original_node: cst.While) -> None:
            self.loops -= 1

        def visit_Break(self, node: cst.Break) -> None:
            if self.loops == 0:
                found.append("a break")

        def visit_Continue(self, node: cst.Continue) -> None:
            if self.loops == 0:
                found.append("a continue")

        def visit_Return(self, node: cst.Return) -> None:
            found.append("a return")

        def visit_Yield(self, node: cst.Yield) -> None:
            found.append("a yield")

        def visit_Await(self, node: cst.Await) -> None:
            found.append("an await")

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return False

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            return False

    loop.body.visit(_Find())
    return found[0] if found else None


def _appended(loop: cst.For) -> dict[str, int]:
    """Name → how many ``name.append(...)`` expression statements the body has."""
    counts: dict[str, int] = {}

    class _Find(cst.CSTVisitor):
        def visit_Expr(self, node: cst.Expr) -> None:
            call = node.value
            if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and \
                    call.func.attr.value == "append" and isinstance(call.func.value, cst.Name):
                counts[call.func.value.value] = counts.get(call.func.value.value, 0) + 1

    loop.body.visit(_Find())
    return counts


def _references(loop: cst.For, name: str) -> int:
    """How many times the body names ``name`` (attribute names and keywords aside)."""
    count = 0

    class _Find(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            nonlocal count
            count += node.value == name

        def visit_Attribute(self, node: cst.Attribute) -> bool:
            node.value.visit(self)
            return False

        def visit_Arg(self, node: cst.Arg) -> bool:
            node.value.visit(self)
            return False

    loop.body.visit(_Find())
    return count
