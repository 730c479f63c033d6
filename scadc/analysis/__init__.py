"""Program analysis for ``scadc split``: units, def/use, mutation, liveness, heavy objects.

The partitioner's entry point is :func:`analyze`, which returns a frozen :class:`Analysis`::

    >>> a = analyze("examples/monolithic/mutate_helpers.py")      # doctest: +SKIP
    >>> [b.index for b in a.boundaries if b.cuttable]              # doctest: +SKIP
    >>> a.units[2].live_out, a.heavy["data"].heavy                 # doctest: +SKIP

The analyses themselves are providers (:mod:`scadc.analysis.base`), one module per concept:
``program`` (parse, entry, units, definitions), ``names`` (scope resolution), ``defuse``,
``types`` (what kind of value a name holds), ``effects`` (what code does: in-place changes,
aliasing, state; helper summaries), ``mutation`` (what each unit changes, closed under
aliasing), ``dataflow`` (the one gen/kill solver), ``liveness``, ``transfer`` (what cannot cross
a cut), ``hidden_state``, ``constants`` (split-time arithmetic), ``heavy``, ``shapes`` (what a
statement looks like: the facts of a ``for`` loop the partitioner decides on), ``unsupported``,
``observed`` (what a profile saw each unit change in place: added to ``UnitFacts.mutated``),
``release`` (which locals an element may drop once dead);
``facts`` holds the frozen result types and their text form.
May import ``scadrt`` but never ``scadc.partition``/``scadc.codegen``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scadc.analysis.base import resolve
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import HelperSummaryProvider
from scadc.analysis.facts import Analysis, Boundary, LiveValue, Options, UnitFacts
from scadc.analysis.heavy import DEFAULT_HEAVY_BYTES, HeavyDecision, HeavyProvider, HeavyReason, HeavyRule
from scadc.analysis.hidden_state import HiddenState, HiddenStateProvider, StateKind
from scadc.analysis.inline import load_inlined
from scadc.analysis.liveness import LivenessProvider
from scadc.analysis.module_effects import module_effects
from scadc.analysis.mutation import AliasProvider, Mutation, MutationProvider
from scadc.analysis.names import NamesProvider
from scadc.analysis.observed import ObservedProvider, check_source, with_observed
from scadc.analysis.program import Definition, Entry, Program, Unit
from scadc.analysis.release import ReleaseProvider
from scadc.analysis.shapes import ForLoop, ShapeProvider, UnitShape
from scadc.analysis.transfer import TransferProvider
from scadc.analysis.unsupported import check_supported
from scadc.errors import CompileError
from scadc.source import Span

__all__ = ["DEFAULT_HEAVY_BYTES", "Analysis", "Boundary", "Definition", "Entry", "ForLoop", "HeavyDecision",
           "HeavyReason", "HeavyRule", "HiddenState", "LiveValue", "Mutation", "Options", "Program",
           "StateKind", "Unit", "UnitFacts", "UnitShape", "analyze", "load_profile"]


def load_profile(path: str) -> dict[str, Any]:
    """Read a ``scadc profile`` JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CompileError(f"cannot read the profile: {exc.strerror}", Span(path)) from exc
    except json.JSONDecodeError as exc:
        raise CompileError(f"the profile is not JSON: {exc.msg}", Span(path, exc.lineno, exc.colno - 1)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("units"), dict):
        raise CompileError("not a scadc profile (no 'units' object)", Span(path))
    return data


def analyze(path: str, *, entry: str | None = None, heavy_bytes: int = DEFAULT_HEAVY_BYTES,
            profile: str | Mapping[str, Any] | None = None, inline: bool = True) -> Analysis:
    """Parse and analyse ``path``; raise :class:`~scadc.errors.CompileError` for unsupported input.

    ``profile`` is a path to (or the loaded content of) a ``scadc profile`` JSON file; units are
    matched by span, and a profile of a different source text is refused. What the profile saw a
    unit change in place counts as a mutation of that unit (:mod:`scadc.analysis.observed`).
    ``inline`` inlines the entry region's calls of the program's own helpers where that is safe
    (:mod:`scadc.analysis.inline`), so that cuts may fall inside them.
    """
    program = load_inlined(path, entry=entry, inline=inline)
    loaded = load_profile(profile) if isinstance(profile, str) else profile
    if loaded is not None:
        recorded = loaded.get("inline")
        if isinstance(recorded, bool) and recorded != inline:
            taken, split = ("with", "--no-inline") if recorded else ("without", "--inline")
            raise CompileError(f"the profile was taken {taken} inlining, which gives other units; re-run "
                               f"`scadc profile` with the same choice, or split with {split}", Span(path))
        keys = {u.span.key for u in program.units}
        if set(loaded.get("units", {})) - keys:
            raise CompileError("the profile does not match the program (its units are at other lines); "
                               "re-run `scadc profile`", Span(path))
        check_source(program, loaded)
    options = Options(heavy_bytes, MappingProxyType(dict(loaded)) if loaded is not None else None)
    r = resolve(program, NamesProvider, DefUseProvider, LivenessProvider, MutationProvider, HiddenStateProvider,
                HeavyProvider, TransferProvider, AliasProvider, HelperSummaryProvider, ObservedProvider,
                ShapeProvider, ReleaseProvider, options=options)
    du, live, mut = r[DefUseProvider], r[LivenessProvider], r[MutationProvider]
    resolver = r[NamesProvider]["names"]
    check_supported(program, resolver, du)
    heavy, transfer, classes = r[HeavyProvider], r[TransferProvider], r[AliasProvider]
    # static mutations plus what the profile saw changed (unchanged without a profile)
    changes = {u: with_observed(u, mut[u], r[ObservedProvider][u], classes) for u in program.units}
    units = tuple(
        UnitFacts(u, du[u].defs, du[u].kills, du[u].deletes, du[u].uses, du[u].module_refs, du[u].needs,
                  changes[u].mutated, changes[u].events, r[HiddenStateProvider][u], du[u].exits,
                  live[u].live_in, live[u].live_out, r[ShapeProvider][u])
        for u in program.units)
    values: dict[str, LiveValue] = {}  # a local's LiveValue is the same at every boundary: one object each

    def value(n: str) -> LiveValue:
        found = values.get(n)
        if found is None:
            found = values[n] = LiveValue(n, heavy[n].heavy if n in heavy else False, transfer.get(n),
                                          classes.get(n, frozenset()))
        return found

    boundaries = []
    for i in range(len(units) + 1):
        names = units[i].live_in if i < len(units) else frozenset()
        boundaries.append(Boundary(i, tuple(value(n) for n in sorted(names))))
    aliases = tuple(sorted({c for c in classes.values() if len(c) > 1}, key=sorted))
    return Analysis(program, options, units, tuple(boundaries), heavy, transfer, aliases,
                    r[HelperSummaryProvider], frozenset(r[ReleaseProvider]), module_effects(program, resolver))
