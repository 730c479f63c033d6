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
``observed`` (what a profile saw each unit change in place: added to ``UnitFacts.mutated``).
May import ``scadrt`` but never ``scadc.partition``/``scadc.codegen``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scadc.analysis.base import resolve
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import HelperSummaryProvider, Summary
from scadc.analysis.heavy import DEFAULT_HEAVY_BYTES, HeavyDecision, HeavyProvider, HeavyReason, HeavyRule
from scadc.analysis.hidden_state import HiddenState, HiddenStateProvider, StateKind
from scadc.analysis.liveness import LivenessProvider
from scadc.analysis.mutation import AliasProvider, Mutation, MutationProvider
from scadc.analysis.names import NamesProvider
from scadc.analysis.observed import ObservedProvider, check_source, with_observed
from scadc.analysis.program import Definition, Entry, Program, Unit, load_program
from scadc.analysis.shapes import ForLoop, ShapeProvider, UnitShape
from scadc.analysis.transfer import TransferProvider
from scadc.analysis.unsupported import check_supported
from scadc.errors import CompileError
from scadc.source import Span

__all__ = ["DEFAULT_HEAVY_BYTES", "Analysis", "Boundary", "Definition", "Entry", "ForLoop", "HeavyDecision",
           "HeavyReason", "HeavyRule", "HiddenState", "LiveValue", "Mutation", "Options", "Program",
           "StateKind", "Unit", "UnitFacts", "UnitShape", "analyze", "load_profile"]


@dataclass(frozen=True)
class Options:
    """What :func:`analyze` was asked to do."""

    heavy_bytes: int = DEFAULT_HEAVY_BYTES
    #: a loaded profile (``scadc profile`` JSON), or None
    profile: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class UnitFacts:
    """Everything the partitioner needs to know about one unit."""

    unit: Unit
    #: names the unit may bind / binds on every path / deletes
    defs: frozenset[str]
    kills: frozenset[str]
    deletes: frozenset[str]
    #: locals read before being bound (needed on entry)
    uses: frozenset[str]
    #: module-level names read directly, and their transitive closure over definitions
    module_refs: frozenset[str]
    needs: frozenset[str]
    #: locals whose object the unit may change in place (alias-closed), with the reasons; with a
    #: profile, also what the run was observed to change (:mod:`scadc.analysis.observed`)
    mutated: frozenset[str]
    mutations: tuple[Mutation, ...]
    #: hidden state touched: a global RNG, a module-level object, the outside world
    hidden: frozenset[HiddenState]
    #: the unit may ``return`` from the entry function (early exit)
    exits: bool
    live_in: frozenset[str]
    live_out: frozenset[str]
    #: what the statement looks like where the partitioner asks (a ``for`` loop's facts …)
    shape: UnitShape

    @property
    def index(self) -> int:
        return self.unit.index

    @property
    def span(self) -> Span:
        return self.unit.span


@dataclass(frozen=True)
class LiveValue:
    """A local live at a boundary."""

    name: str
    heavy: bool
    #: None when the value can cross a cut; else why not
    not_transferable: str | None
    #: the locals that may share its object, itself included (empty when none does); one set per
    #: class, shared by its members
    alias_class: frozenset[str]

    @property
    def aliases(self) -> frozenset[str]:
        """The other live-or-not locals that may share its object."""
        return self.alias_class - {self.name}


@dataclass(frozen=True)
class Boundary:
    """The point just before unit ``index`` (``index == len(units)``: the end of the entry region)."""

    index: int
    live: tuple[LiveValue, ...]

    @property
    def cuttable(self) -> bool:
        """No live value pins the units on both sides together."""
        return all(v.not_transferable is None for v in self.live)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(v.name for v in self.live)


@dataclass(frozen=True)
class Analysis:
    """The frozen result of :func:`analyze`; :meth:`format` prints it deterministically."""

    program: Program
    options: Options
    units: tuple[UnitFacts, ...]
    #: ``len(units) + 1`` boundaries, boundary ``i`` just before unit ``i``
    boundaries: tuple[Boundary, ...]
    #: every local of the entry region -> heavy decision
    heavy: Mapping[str, HeavyDecision]
    #: non-transferable locals -> reason
    not_transferable: Mapping[str, str]
    #: alias classes with more than one name, sorted
    aliases: tuple[frozenset[str], ...]
    #: summaries of the program's helper functions and methods
    helpers: Mapping[str, Summary]

    def format(self, *, explain: bool = False) -> str:
        """The analysis as a table (sorted, stable); ``explain`` adds the reasons behind each fact."""
        from scadc.analysis._format import format_analysis

        return format_analysis(self, explain=explain)


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
            profile: str | Mapping[str, Any] | None = None) -> Analysis:
    """Parse and analyse ``path``; raise :class:`~scadc.errors.CompileError` for unsupported input.

    ``profile`` is a path to (or the loaded content of) a ``scadc profile`` JSON file; units are
    matched by span, and a profile of a different source text is refused. What the profile saw a
    unit change in place counts as a mutation of that unit (:mod:`scadc.analysis.observed`).
    """
    program = load_program(path, entry=entry)
    loaded = load_profile(profile) if isinstance(profile, str) else profile
    if loaded is not None:
        keys = {u.span.key for u in program.units}
        if set(loaded.get("units", {})) - keys:
            raise CompileError("the profile does not match the program (its units are at other lines); "
                               "re-run `scadc profile`", Span(path))
        check_source(program, loaded)
    options = Options(heavy_bytes, MappingProxyType(dict(loaded)) if loaded is not None else None)
    r = resolve(program, NamesProvider, DefUseProvider, LivenessProvider, MutationProvider, HiddenStateProvider,
                HeavyProvider, TransferProvider, AliasProvider, HelperSummaryProvider, ObservedProvider,
                ShapeProvider, options=options)
    du, live, mut = r[DefUseProvider], r[LivenessProvider], r[MutationProvider]
    check_supported(program, r[NamesProvider]["names"], du)
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
                    r[HelperSummaryProvider])
