"""Liveness of the entry region's locals at every unit boundary.

A boundary ``b`` (``0 ≤ b ≤ n``) lies just before unit ``b`` (boundary ``n`` is the end of the
entry region). Rules:

1. A name a unit *uses* (reads before binding it on every path, see
   :mod:`scadc.analysis.defuse` rule 3) is live just before the unit (gen).
2. A name the unit *kills* (binds or deletes on every path) is not live just before it unless (1)
   (kill). Loops and branches inside a unit are summarised into its uses and kills.
3. Nothing is live at the end of the entry region: ``main()`` returns, a script ends.
4. A value is live at a boundary only if it may have been bound before it ("maybe defined": gen =
   defs, kill = deletes that are not rebound). A name read but never bound earlier is a
   ``NameError`` in the original too; nothing to transfer.
5. In-place mutation needs no extra rule: mutating ``x[...] = v`` or ``x.append(v)`` reads ``x``.

Liveness runs on :func:`scadc.analysis.dataflow.run_analysis` over the unit chain (an early
``return`` inside a unit adds an edge to the end, where nothing is live: no change). Rule 4 is the
forward may-analysis of the same solver on the same chain, but it is asked only about the names
live at each point: one scan in program order keeps the set of names bound so far, so the cost
is the size of the live sets, not the (quadratic) size of every "maybe defined" set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scadc.analysis.base import Provider, Results
from scadc.analysis.dataflow import chain, run_analysis
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.program import Program, Unit

__all__ = ["Liveness", "LivenessProvider", "maybe_defined"]


@dataclass(frozen=True)
class Liveness:
    """Locals live just before (``live_in``) and just after (``live_out``) one unit."""

    live_in: frozenset[str]
    live_out: frozenset[str]


def maybe_defined(gen: Sequence[frozenset[str]], kill: Sequence[frozenset[str]],
                  before: Sequence[frozenset[str]], after: Sequence[frozenset[str]],
                  ) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """``before[i]`` and ``after[i]``, each cut down to the names that may be bound there (rule 4).

    The same facts as ``run_analysis(chain(n), gen, kill, backward=False)`` intersected with
    ``before``/``after``, in time proportional to the sizes of ``gen``, ``kill``, ``before`` and
    ``after``: on a chain, a name may be bound just after point ``i`` iff ``i`` binds it, or it
    may be bound before ``i`` and ``i`` does not kill it.
    """
    bound: set[str] = set()
    ins: list[frozenset[str]] = []
    outs: list[frozenset[str]] = []

    def defined(live: frozenset[str]) -> frozenset[str]:
        found = live & bound
        return live if len(found) == len(live) else found  # mostly all of them: share the set

    for i in range(len(gen)):
        ins.append(defined(before[i]))
        bound.difference_update(kill[i])
        bound.update(gen[i])
        outs.append(defined(after[i]))
    return ins, outs


class LivenessProvider(Provider[Unit, Liveness]):
    """:class:`Liveness` per unit."""

    DEPENDENCIES = (DefUseProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, Liveness]:
        du = results.get(DefUseProvider)
        units = program.units
        live = run_analysis(chain(len(units)), [du[u].uses for u in units], [du[u].kills for u in units],
                            backward=True)  # rules 1-3
        ins, outs = maybe_defined([du[u].defs for u in units], [du[u].deletes - du[u].defs for u in units],
                                  live.before, live.after)  # rule 4
        return {u: Liveness(ins[i], outs[i]) for i, u in enumerate(units)}
