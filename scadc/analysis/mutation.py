"""Which objects each unit may change in place, and which names share an object.

The rules are those of :mod:`scadc.analysis.effects` (mutation 1-8, aliasing A1-A11), over the
types of :mod:`scadc.analysis.types`. This module turns the raw effects
(:class:`~scadc.analysis.effects.EffectsProvider`) into frozen per-unit facts:

1. The effects of a call into a helper come from its summary, computed once for every
   module-level function and method, to a fixed point
   (:class:`~scadc.analysis.effects.HelperSummaryProvider`).
2. Alias classes are computed over the whole entry region, flow-insensitively (conservative: two
   names that *may* share an object at any point are one class). ``AliasProvider`` maps each
   aliased local to its class; unaliased names are absent.
3. ``UnitMutations.mutated`` is closed under aliasing: if ``b`` is a view of ``a`` and a unit
   writes through ``b``, both ``a`` and ``b`` are listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scadc.analysis.base import Provider, Results
from scadc.analysis.effects import EffectsProvider, alias_classes, is_inner
from scadc.analysis.program import Program, Unit

__all__ = ["AliasProvider", "Mutation", "MutationProvider", "UnitMutations"]


@dataclass(frozen=True, order=True)
class Mutation:
    """One place a unit may change an object in place."""

    #: the local through which the object is changed
    name: str
    #: 1-based line of the mutating statement
    line: int
    #: why, for printing
    reason: str
    #: a profile saw it and the static rules did not predict it (:mod:`scadc.analysis.observed`)
    observed: bool = False


@dataclass(frozen=True)
class UnitMutations:
    """The objects a unit may change in place (rule 3)."""

    #: locals whose object may change, closed under aliasing
    mutated: frozenset[str]
    #: each mutation, with its reason, in source order
    events: tuple[Mutation, ...]


class AliasProvider(Provider[str, frozenset[str]]):
    """Rule 2: each aliased local of the entry region -> its alias class."""

    DEPENDENCIES = (EffectsProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[str, frozenset[str]]:
        pairs = [p for fx in results.get(EffectsProvider).values() for p in fx.aliases if p[0] != p[1]]
        return alias_classes(pairs)


class MutationProvider(Provider[Unit, UnitMutations]):
    """:class:`UnitMutations` per unit."""

    DEPENDENCIES = (EffectsProvider, AliasProvider)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, UnitMutations]:
        effects = results.get(EffectsProvider)
        classes = results.get(AliasProvider)
        out: dict[Unit, UnitMutations] = {}
        for u in program.units:
            events = tuple(Mutation(name, line, reason) for name, reason, line in effects[u].mutations)
            # rule 3; a unit that changes one class (``acc.append(x)``) shares its frozenset
            closed: dict[int, frozenset[str]] = {}
            for e in events:
                c = classes.get(e.name, frozenset() if is_inner(e.name) else frozenset({e.name}))
                closed[id(c)] = c
            mutated = next(iter(closed.values())) if len(closed) == 1 else frozenset().union(*closed.values())
            out[u] = UnitMutations(mutated, events)
        return out
