"""Liveness of the entry region's locals at every unit boundary.

A boundary ``b`` (``0 ≤ b ≤ n``) lies just before unit ``b`` (boundary ``n`` is the end of the
entry region). Rules:

1. A name a unit *uses* (reads before binding it on every path, see
   :mod:`scadc.analysis.defuse` rule 3) is live just before the unit (gen).
2. A name the unit *kills* (binds or deletes on every path) is not live just before it unless (1)
   (kill). Loops and branches inside a unit are summarised into its uses and kills.
3. Nothing is live at the end of the entry region: ``main()`` returns, a script ends.
4. A value is live at a boundary only if it may have been bound before it ("maybe defined": a
   forward may-analysis on the same solver, gen = defs, kill = deletes that are not rebound). A
   name read but never bound earlier is a ``NameError`` in the original too; nothing to transfer.
5. In-place mutation needs no extra rule: mutating ``x[...] = v`` or ``x.append(v)`` reads ``x``.

Both analyses run on :func:`scadc.analysis.dataflow.run_analysis` over the unit chain (an early
``return`` inside a unit adds an edge to the end, where nothing is live: no change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scadc.analysis.base import Provider, Results
from scadc.analysis.dataflow import chain, run_analysis
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.program import Program, Unit

__all__ = ["Liveness", "LivenessProvider"]


@dataclass(frozen=True)
class Liveness:
    """Locals live just before (``live_in``) and just after (``live_out``) one unit."""

    live_in: frozenset[str]
    live_out: frozenset[str]
    #: names that may be bound when the unit starts (rule 4)
    defined_in: frozenset[str]


class LivenessProvider(Provider[Unit, Liveness]):
    """:class:`Liveness` per unit."""

    DEPENDENCIES = (DefUseProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, Liveness]:
        du = results.get(DefUseProvider)
        units = program.units
        succs = chain(len(units))
        live = run_analysis(succs, [du[u].uses for u in units], [du[u].kills for u in units],
                            backward=True)  # rules 1-3
        defined = run_analysis(succs, [du[u].defs for u in units],
                               [du[u].deletes - du[u].defs for u in units], backward=False)  # rule 4
        return {u: Liveness(live.before[i] & defined.before[i], live.after[i] & defined.after[i],
                            defined.before[i])
                for i, u in enumerate(units)}
