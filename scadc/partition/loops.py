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

from scadc.analysis import Analysis
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


def parallel_loop(analysis: Analysis, index: int, context: LoopContext | None = None) -> ParallelLoop | str | None:
    """The parallel loop unit ``index`` is, or why it is not one (None: it is not a ``for``).
    ``context`` (:meth:`LoopContext.of` the same analysis) saves indexing it again for each loop.
    The loop's syntax is the analysis's (:mod:`scadc.analysis.shapes`); the verdict is made here."""
    facts = analysis.units[index]
    loop = facts.shape.loop
    if loop is None:
        return None
    count = loop.iterations
    if count is None:
        return "(P1) the loop is not over a range() of constants"
    if not 2 <= count <= MAX_ITERATIONS:
        return f"(P1) {count} iterations (parallel loops have 2 to {MAX_ITERATIONS})"
    if loop.control:
        return f"(P2) the loop has {loop.control}"
    if facts.hidden:
        return f"(P3) it touches {', '.join(sorted(map(str, facts.hidden)))}"
    context = context or LoopContext.of(analysis)
    changed_outside = sorted(facts.mutated - facts.defs)
    accumulators = tuple(n for n in changed_outside if n in loop.appended)
    for name in changed_outside:
        if name not in loop.appended:
            return f"(P4) it changes {name!r}, which is not only appended to"
        if name not in loop.appended_only:
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
    return ParallelLoop(index, count, loop.iterable, accumulators)


def _bound_to_list(analysis: Analysis, context: LoopContext, index: int, name: str) -> bool:
    """The last unit before ``index`` that binds ``name`` is ``name = [...]``."""
    binders = context.binders.get(name, [])
    before = bisect.bisect_left(binders, index)
    return bool(before) and analysis.units[binders[before - 1]].shape.list_display == name
