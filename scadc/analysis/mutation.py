"""Which objects each unit may change in place, and which names share an object.

The rules are those of :mod:`scadc.analysis.effects` (mutation 1-8, aliasing A1-A8). This module
turns the raw effects into frozen per-unit facts:

1. Helper summaries are computed once for every module-level function and method, to a fixed
   point (``HelperSummaryProvider``, keyed by ``"helper"`` or ``"Class.method"``).
2. Alias classes are computed over the whole entry region, flow-insensitively (conservative: two
   names that *may* share an object at any point are one class). ``AliasProvider`` maps each
   aliased local to its class; unaliased names are absent.
3. ``UnitMutations.mutated`` is closed under aliasing: if ``b`` is a view of ``a`` and a unit
   writes through ``b``, both ``a`` and ``b`` are listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider, NamesProvider
from scadc.analysis.effects import Effects, Summary, alias_classes, collect_effects, summarize_helpers, value_type
from scadc.analysis.program import Program, Unit

__all__ = ["AliasProvider", "EffectsProvider", "HelperSummaryProvider", "Mutation", "MutationProvider",
           "TypesProvider", "UnitMutations"]


@dataclass(frozen=True, order=True)
class Mutation:
    """One place a unit may change an object in place."""

    #: the local through which the object is changed
    name: str
    #: 1-based line of the mutating statement
    line: int
    reason: str


@dataclass(frozen=True)
class UnitMutations:
    """The objects a unit may change in place (rule 3)."""

    #: locals whose object may change, closed under aliasing
    mutated: frozenset[str]
    #: each mutation, with its reason, in source order
    events: tuple[Mutation, ...]


class TypesProvider(Provider[str, str]):
    """Locals (and module-level names) bound to a random generator (``rng``) or a program class (``class:C``)."""

    DEPENDENCIES = (NamesProvider, DefUseProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, str]:
        names = results.get(NamesProvider)["names"]
        types: dict[str, str] = {}
        for d in program.definitions:
            if d.kind == "data" and isinstance(d.node, cst.SimpleStatementLine):
                small = d.node.body[0]
                if isinstance(small, cst.Assign) and (t := value_type(names, small.value)):
                    types.update({n: t for n in d.names})
        for du in results.get(DefUseProvider).values():
            for b in du.bindings:
                if b.kind == "assign" and isinstance(b.value, cst.BaseExpression) and \
                        (t := value_type(names, b.value)):
                    types[b.name] = t
        return types


class HelperSummaryProvider(Provider[str, Summary]):
    """Rule 1."""

    DEPENDENCIES = (NamesProvider, TypesProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, Summary]:
        names = results.get(NamesProvider)["names"]
        module_types = {k: v for k, v in results.get(TypesProvider).items() if k in program.module_names}
        return summarize_helpers(names, module_types, program.positions)  # type: ignore[arg-type]


class EffectsProvider(Provider[Unit, Effects]):
    """The raw effects of each unit (treat as read-only)."""

    DEPENDENCIES = (NamesProvider, TypesProvider, HelperSummaryProvider)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, Effects]:
        names = results.get(NamesProvider)["names"]
        summaries = dict(results.get(HelperSummaryProvider))
        types = dict(results.get(TypesProvider))
        return {u: collect_effects(u.node, names, program.scope, summaries, types=types,
                                  positions=program.positions)  # type: ignore[arg-type]
                for u in program.units}


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
                c = classes.get(e.name, frozenset({e.name}))
                closed[id(c)] = c
            mutated = next(iter(closed.values())) if len(closed) == 1 else frozenset().union(*closed.values())
            out[u] = UnitMutations(mutated, events)
        return out
