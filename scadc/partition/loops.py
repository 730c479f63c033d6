"""Parallel loops: a ``for`` unit whose iterations are independent becomes one element with
``parallelism: N``, one iteration per instance (``scadc split --parallel``, the default).

A unit ``for NAME in range(ARGS):`` qualifies when:

(P1) ARGS are constants at split time (literals and module constants), for 2 to
     :data:`MAX_ITERATIONS` iterations;
(P2) the loop has no ``else``, and its body no ``break``/``continue`` of its own, no ``return``,
     ``yield`` or ``await``;
(P3) it touches no hidden state (a global RNG, helper-changed module state, files or processes):
     iterations running at once would see it in another order;
(P4) the only objects from before the loop that it changes are *accumulators*: names it calls
     ``.append(...)`` on, bound to a list display (``x = []``) before the loop, used in the loop
     by those calls only, and sharing their object with no name but those the loop binds;
(P5) no value flows from one iteration to the next: nothing the loop binds is read before it is
     bound (the unit's uses and bindings are disjoint);
(P6) nothing the loop binds (its variable included) is used after it.

Each instance runs the loop over its own one-element slice of the range, so the statement runs
verbatim; it sends what it appended to each accumulator (the first instance also what was there
before), and the elements that load an accumulator concatenate the parts in instance order: the
list the sequential loop would have built. Each instance's output is written in instance order,
so stdout is that of the sequential loop as well.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst

from scadc.analysis import Analysis
from scadc.analysis.heavy import constant_value
from scadc.partition.plan import ParallelLoop

__all__ = ["MAX_ITERATIONS", "LoopContext", "parallel_loop"]

#: more iterations than this stay one element (each instance costs a process and its inputs)
MAX_ITERATIONS = 256


@dataclass(frozen=True)
class LoopContext:
    """What :func:`parallel_loop` looks up about the whole analysis, indexed once for all loops."""

    #: local -> its alias class (the analysis's classes are disjoint)
    classes: Mapping[str, frozenset[str]]
    #: local -> the units that may bind it, in program order
    binders: Mapping[str, list[int]]

    @classmethod
    def of(cls, analysis: Analysis) -> LoopContext:
        classes = {name: group for group in analysis.aliases for name in group}
        binders: dict[str, list[int]] = {}
        for u in analysis.units:
            for name in u.defs:
                binders.setdefault(name, []).append(u.index)
        return cls(classes, binders)


def parallel_loop(analysis: Analysis, index: int, context: LoopContext | None = None) -> ParallelLoop | str:
    """The parallel loop unit ``index`` is, or why it is not one (``""``: it is not a ``for``).
    ``context`` (:meth:`LoopContext.of` the same analysis) saves indexing it again for each loop."""
    facts = analysis.units[index]
    node = facts.unit.node
    if not isinstance(node, cst.For) or node.asynchronous is not None:
        return ""
    count = _iterations(analysis, node.iter)
    if count is None:
        return "(P1) the loop is not over a range() of constants"
    if not 2 <= count <= MAX_ITERATIONS:
        return f"(P1) {count} iterations (parallel loops have 2 to {MAX_ITERATIONS})"
    control = _control_flow(node)
    if control:
        return f"(P2) the loop has {control}"
    if facts.hidden:
        return f"(P3) it touches {', '.join(sorted(facts.hidden))}"
    context = context or LoopContext.of(analysis)
    appended = _appended(node)
    changed_outside = sorted(facts.mutated - facts.defs)
    accumulators = tuple(n for n in changed_outside if n in appended)
    for name in changed_outside:
        if name not in appended:
            return f"(P4) it changes {name!r}, which is not only appended to"
        if _references(node, name) != appended[name]:
            return f"(P4) it uses the accumulator {name!r} other than by .append()"
        shared = sorted(context.classes.get(name, frozenset()) - {name} - facts.defs)
        if shared:  # names bound in the loop (what it appends) do not outlive their iteration
            return f"(P4) the accumulator {name!r} may share its object with {shared[0]!r}"
        if not _bound_to_list(analysis, context, index, name):
            return f"(P4) the accumulator {name!r} is not bound to a list display before the loop"
    carried = sorted(facts.uses & facts.defs)
    if carried:
        return f"(P5) {carried[0]!r} flows from one iteration to the next"
    used_after = sorted(facts.defs & facts.live_out)
    if used_after:
        return f"(P6) {used_after[0]!r}, bound in the loop, is used after it"
    iterable = cst.Module([]).code_for_node(node.iter)
    return ParallelLoop(index, count, iterable, accumulators)


def _iterations(analysis: Analysis, iterable: cst.BaseExpression) -> int | None:
    if not (isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Name)
            and iterable.func.value == "range" and 1 <= len(iterable.args) <= 3
            and all(a.keyword is None and not a.star for a in iterable.args)):
        return None
    values = [constant_value(analysis.program, a.value) for a in iterable.args]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    try:
        return len(range(*values))
    except ValueError:  # a step of 0
        return None


def _control_flow(loop: cst.For) -> str:
    """What makes one iteration depend on how the others went: else, break, continue, return …"""
    if loop.orelse is not None:
        return "an else clause"
    found: list[str] = []

    class _Find(cst.CSTVisitor):
        def __init__(self) -> None:
            self.loops = 0

        def visit_For(self, node: cst.For) -> None:
            self.loops += 1

        def leave_For(self, node: cst.For) -> None:
            self.loops -= 1

        def visit_While(self, node: cst.While) -> None:
            self.loops += 1

        def leave_While(self, node: cst.While) -> None:
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
    return found[0] if found else ""


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


def _bound_to_list(analysis: Analysis, context: LoopContext, index: int, name: str) -> bool:
    """The last unit before ``index`` that binds ``name`` is ``name = [...]``."""
    binders = context.binders.get(name, [])
    before = bisect.bisect_left(binders, index)
    binder = analysis.units[binders[before - 1]] if before else None
    if binder is None or not isinstance(binder.unit.node, cst.SimpleStatementLine):
        return False
    statement = binder.unit.node.body[0]
    return (len(binder.unit.node.body) == 1 and isinstance(statement, cst.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0].target, cst.Name) and statement.targets[0].target.value == name
            and isinstance(statement.value, cst.List))
