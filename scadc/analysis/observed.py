"""What a profile saw each unit change in place: observed mutations, added to the static ones.

``scadc profile`` fingerprints every local of the entry frame at each unit boundary and records,
per unit, the locals that held the same object before and after the unit but whose contents
changed (``"changed"``, rule 6 of :mod:`scadc.profile`). Those are facts of a real run, so:

1. With a profile, a local a unit was observed to change counts as a mutation of that unit, even
   where the static rules (:mod:`scadc.analysis.effects`) say it is not changed; it is closed
   under the alias classes like any other mutation, and its :class:`Mutation` event says it was
   observed, so ``--explain`` shows where the correction came from.
2. Only locals of the entry region (names some unit binds) are taken; other names in a
   profile (a script's module-level definitions) are not values a cut carries.
3. Observations hold only for the source that was run: a profile whose ``source_sha256`` is not
   that of the program is refused (a synthetic profile without one is matched by unit span only).
4. :func:`unpredicted` lists, per unit, what a run saw changed that the static analysis did not
   predict: what ``scadc profile`` warns about, so the analysis's tables can be corrected.

An observation can only add mutations: a unit that did not change a value in this run may
change it in another (other data, other branches), so the static facts are never removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.mutation import Mutation, UnitMutations
from scadc.analysis.program import Program, Unit
from scadc.errors import CompileError
from scadc.source import Span

if TYPE_CHECKING:
    from scadc.analysis.facts import UnitFacts

__all__ = ["OBSERVED_REASON", "ObservedProvider", "check_source", "explain_observed", "observed_changes",
           "unpredicted", "with_observed"]

#: the reason of a mutation the profile observed and the static rules did not predict (rule 1)
OBSERVED_REASON = "observed changed in place when profiled (the static analysis did not predict it)"


def check_source(program: Program, profile: Mapping[str, Any]) -> None:
    """Rule 3: refuse a profile of another version of the program."""
    recorded = profile.get("source_sha256")
    if recorded is not None and recorded != hashlib.sha256(program.source.encode()).hexdigest():
        raise CompileError("the profile was taken of another version of the program (its source SHA-256 "
                           "differs); re-run `scadc profile`", Span(program.path))


def observed_changes(program: Program, profile: Mapping[str, Any],
                     locals_: Iterable[str]) -> dict[Unit, frozenset[str]]:
    """Each unit -> the entry-region locals (``locals_``) the profile saw it change in place (rule 2)."""
    known = frozenset(locals_)
    units = profile.get("units", {})
    out: dict[Unit, frozenset[str]] = {}
    for u in program.units:
        changed = units.get(u.span.key, {}).get("changed", [])
        if not isinstance(changed, list) or not all(isinstance(n, str) for n in changed):
            raise CompileError(f"the profile's unit {u.span.key} has a malformed 'changed' list; re-run "
                               "`scadc profile`", Span(program.path))
        out[u] = frozenset(changed) & known
    return out


class ObservedProvider(Provider[Unit, frozenset[str]]):
    """Each unit -> the locals the profile (``results.options.profile``) saw it change; empty without one."""

    DEPENDENCIES = (DefUseProvider,)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, frozenset[str]]:
        profile = getattr(results.options, "profile", None)
        if profile is None:
            return {u: frozenset() for u in program.units}
        du = results.get(DefUseProvider)
        return observed_changes(program, profile, (n for u in program.units for n in du[u].defs))


def with_observed(unit: Unit, static: UnitMutations, observed: frozenset[str],
                  classes: Mapping[str, frozenset[str]]) -> UnitMutations:
    """Rule 1: ``static`` plus what was observed and not predicted, alias-closed, with its events."""
    missed = observed - static.mutated
    if not missed:
        return static
    closed = frozenset().union(*(classes.get(n, frozenset({n})) for n in missed))
    events = tuple(Mutation(n, unit.span.line, OBSERVED_REASON, observed=True) for n in sorted(missed))
    return UnitMutations(static.mutated | closed, static.events + events)


def unpredicted(units: Iterable[UnitFacts], profile: Mapping[str, Any],
                program: Program) -> list[tuple[Unit, str]]:
    """Rule 4: (unit, local) for each local the run saw a unit change that ``units`` (an analysis
    without the profile) does not list as mutated; in unit order, then by name."""
    facts = tuple(units)
    observed = observed_changes(program, profile, (n for f in facts for n in f.defs))
    return [(f.unit, n) for f in facts for n in sorted(observed[f.unit] - f.mutated)]


def explain_observed(units: Iterable[UnitFacts]) -> list[str]:
    """``scadc split --explain`` lines: each mutation the profile added (rule 1), in unit order."""
    return [f"  unit {f.index} (line {m.line}): `{m.name}` {OBSERVED_REASON}; counted as a mutation"
            for f in units for m in f.mutations if m.observed]
