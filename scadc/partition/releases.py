"""When an element drops its heavy locals: after the last of its units that reads them.

The rules (the names are those :mod:`scadc.analysis.release` makes releasable):

1. After unit ``u`` of an element, a local is released (``del``) when it is releasable, heavy, not
   live after ``u`` (no later unit of the program reads it before binding it again), not among what
   the element sends, and certainly bound there, so that ``del`` cannot raise: the element loaded
   it, or one of its units up to ``u`` bound it on every path (liveness's *kills*) and none of them
   since may have deleted it.
2. After an element's last unit only when it then stores heavy values (packing copies them: the
   dead ones need not be beside the copy); otherwise its return frees them at once.
3. Never in a parallel-loop element: it is one unit.

:func:`schedule` gives (unit, names) for each unit after which some go (names sorted); the cost model
(:mod:`scadc.partition.cost`) credits an element with the same releases by :func:`dead_after`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scadc.analysis import Analysis

__all__ = ["dead_after", "schedule"]


def dead_after(analysis: Analysis, unit: int) -> frozenset[str]:
    """The heavy releasable locals that nothing reads after ``unit`` (rule 1 without the element's part)."""
    facts = analysis.units[unit]
    return frozenset(n for n in analysis.releasable - facts.live_out
                     if (d := analysis.heavy.get(n)) is not None and d.heavy)


def schedule(analysis: Analysis, units: Sequence[int], loaded: Iterable[str], sent: Iterable[str],
             *, stores_heavy: bool, loop: bool = False) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """What the element of ``units`` (which loads ``loaded`` and sends ``sent``) releases, and after which unit."""
    if loop or not analysis.releasable:
        return ()
    keep = frozenset(sent)
    bound = set(loaded)
    out: list[tuple[int, tuple[str, ...]]] = []
    for k, u in enumerate(units):
        facts = analysis.units[u]
        bound = (bound - facts.deletes) | (facts.kills - facts.deletes)
        if k == len(units) - 1 and not stores_heavy:
            break
        names = tuple(sorted((dead_after(analysis, u) & bound) - keep))
        if names:
            bound -= set(names)
            out.append((u, names))
    return tuple(out)
