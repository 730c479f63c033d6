"""The one gen/kill solver under every set-based analysis (after mypyc's ``run_analysis``).

A problem is a graph of program points ``0..n-1`` (here: units) given by successor lists, and per
point a ``gen`` and a ``kill`` set. The solver computes, for a *may* analysis (join = union):

1. forward:  ``before[i] = ⋃ after[p] for p in preds(i)`` (``initial`` at points without preds),
   ``after[i] = gen[i] ∪ (before[i] − kill[i])``;
2. backward: ``after[i] = ⋃ before[s] for s in succs(i)`` (``initial`` at points without succs),
   ``before[i] = gen[i] ∪ (after[i] − kill[i])``.

A worklist runs the equations to the least fixed point; the sets only grow, so it terminates.
Each analysis (liveness, "maybe defined") is a small wrapper that builds ``gen``/``kill``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["DataflowResult", "chain", "run_analysis"]

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class DataflowResult(Generic[T]):
    """The facts holding just before and just after each point (in program order)."""

    before: tuple[frozenset[T], ...]
    after: tuple[frozenset[T], ...]


def chain(n: int) -> tuple[tuple[int, ...], ...]:
    """Successor lists of ``n`` points in sequence (the units of an entry region)."""
    return tuple((i + 1,) if i + 1 < n else () for i in range(n))


def run_analysis(succs: Sequence[Sequence[int]], gen: Sequence[frozenset[T]], kill: Sequence[frozenset[T]], *,
                 backward: bool, initial: frozenset[T] = frozenset()) -> DataflowResult[T]:
    """Solve a may-analysis over the graph ``succs`` (rules 1-2)."""
    n = len(succs)
    preds: list[list[int]] = [[] for _ in range(n)]
    for i, ss in enumerate(succs):
        for s in ss:
            preds[s].append(i)
    # "incoming" edges in the direction of the flow
    flow_in = succs if backward else preds
    flow_out = preds if backward else succs
    entry: list[frozenset[T]] = [frozenset()] * n   # facts flowing into the point
    exit_: list[frozenset[T]] = [frozenset()] * n   # facts flowing out of the point
    work = list(range(n))[::-1] if not backward else list(range(n))
    queued = set(work)
    while work:
        i = work.pop()
        queued.discard(i)
        sources = flow_in[i]
        if len(sources) == 1:  # a chain: the same set, not a copy (sets are immutable)
            facts = exit_[sources[0]]
        else:
            facts = frozenset().union(*(exit_[j] for j in sources)) if sources else initial
        entry[i] = facts
        rest = facts if kill[i].isdisjoint(facts) else facts - kill[i]
        out = rest if gen[i] <= rest else gen[i] | rest
        if out != exit_[i] or not sources:
            exit_[i] = out
            for j in flow_out[i]:
                if j not in queued:
                    queued.add(j)
                    work.append(j)
    if backward:
        return DataflowResult(before=tuple(exit_), after=tuple(entry))
    return DataflowResult(before=tuple(entry), after=tuple(exit_))
