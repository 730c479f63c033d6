"""Which objects each unit may change in place, and which names share an object.

The rules are those of :mod:`scadc.analysis.effects` (mutation 1-8, aliasing A1-A9), over the
types of :mod:`scadc.analysis.types`. This module
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
from types import MappingProxyType

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import NamesProvider
from scadc.analysis.effects import (
    Effects,
    Summary,
    alias_classes,
    collect_effects,
    helper_functions,
    is_inner,
    summarize_helpers,
)
from scadc.analysis.program import Program, Unit
from scadc.analysis.types import Signatures, ValueType, infer_types, program_signatures

__all__ = ["AliasProvider", "EffectsProvider", "HelperSummaryProvider", "Mutation", "MutationProvider",
           "ProgramTypes", "ProgramTypesProvider", "TypesProvider", "UnitMutations"]


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


@dataclass(frozen=True)
class ProgramTypes:
    """The types of :mod:`scadc.analysis.types` for the whole program."""

    #: module-level names
    module: Mapping[str, ValueType]
    #: what program functions return and methods store on ``self``
    signatures: Signatures
    #: the names the entry region reads: module-level names, then its own locals over them
    entry: Mapping[str, ValueType]


class ProgramTypesProvider(Provider[str, ProgramTypes]):
    """``{"types": ProgramTypes}``."""

    DEPENDENCIES = (NamesProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[str, ProgramTypes]:
        names = results.get(NamesProvider)["names"]
        body = list(program.module.body)
        # the module itself is the root: the walk binds each def's name and skips its body
        module = infer_types(program.module, names, {})
        signatures = program_signatures(helper_functions(program.module), names, module)
        module = infer_types(program.module, names, {}, signatures)  # module data bound from helpers' results
        entry = dict(module)
        if program.entry.kind != "script":
            fn = next(s for s in body if isinstance(s, cst.FunctionDef) and s.name.value == program.entry.name)
            entry.update(infer_types(fn, names, module, signatures))
        return {"types": ProgramTypes(MappingProxyType(module), signatures, MappingProxyType(entry))}


class TypesProvider(Provider[str, ValueType]):
    """The type of each name the entry region reads (module-level and local)."""

    DEPENDENCIES = (ProgramTypesProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[str, ValueType]:
        return results.get(ProgramTypesProvider)["types"].entry


class HelperSummaryProvider(Provider[str, Summary]):
    """Rule 1."""

    DEPENDENCIES = (NamesProvider, ProgramTypesProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, Summary]:
        names = results.get(NamesProvider)["names"]
        types = results.get(ProgramTypesProvider)["types"]
        return summarize_helpers(names, types.module, types.signatures, program.positions)  # type: ignore[arg-type]


class EffectsProvider(Provider[Unit, Effects]):
    """The raw effects of each unit (treat as read-only)."""

    DEPENDENCIES = (NamesProvider, ProgramTypesProvider, HelperSummaryProvider)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, Effects]:
        names = results.get(NamesProvider)["names"]
        summaries = dict(results.get(HelperSummaryProvider))
        types = results.get(ProgramTypesProvider)["types"]
        return {u: collect_effects(u.node, names, program.scope, summaries, types=types.entry,
                                  signatures=types.signatures, positions=program.positions)  # type: ignore[arg-type]
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
                c = classes.get(e.name, frozenset() if is_inner(e.name) else frozenset({e.name}))
                closed[id(c)] = c
            mutated = next(iter(closed.values())) if len(closed) == 1 else frozenset().union(*closed.values())
            out[u] = UnitMutations(mutated, events)
        return out
