"""The frozen result of the analysis (:class:`Analysis`, per unit :class:`UnitFacts`, per
boundary :class:`Boundary`) and its deterministic text form (what the tests compare).

Text layout (:func:`format_analysis`): a header, then one block per unit (defs, uses,
mutations, hidden state, live-in, live-out), the boundaries (``*`` heavy, ``!`` not
transferable), the heavy decisions, alias classes, helper summaries and module-level
definitions. Names are sorted; ``-`` means none. Paths are printed as the file name only, so a
table does not depend on the working directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scadc.analysis.effects import Summary
from scadc.analysis.heavy import DEFAULT_HEAVY_BYTES, HeavyDecision, format_bytes
from scadc.analysis.hidden_state import HiddenState
from scadc.analysis.module_effects import NO_MODULE_EFFECTS, ModuleEffects
from scadc.analysis.mutation import Mutation
from scadc.analysis.program import Program, Unit
from scadc.analysis.shapes import UnitShape
from scadc.source import Span

__all__ = ["Analysis", "Boundary", "LiveValue", "Options", "UnitFacts", "format_analysis"]


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
    #: the locals an element may ``del`` once nothing reads them (:mod:`scadc.analysis.release`)
    releasable: frozenset[str] = frozenset()
    #: what keeps the program whole (:mod:`scadc.analysis.module_effects`)
    module_effects: ModuleEffects = NO_MODULE_EFFECTS

    def format(self, *, explain: bool = False) -> str:
        """The analysis as a table (sorted, stable); ``explain`` adds the reasons behind each fact."""
        return format_analysis(self, explain=explain)


def _names(items: Iterable[str]) -> str:
    s = sorted(items)
    return " ".join(s) if s else "-"


def format_analysis(a: Analysis, *, explain: bool = False) -> str:
    p = a.program
    entry = "the module body" if p.entry.kind == "script" else f"{p.entry.name}() at line {p.entry.span.line}"
    out = [f"program {Path(p.path).name}: entry {entry}, {len(a.units)} units, "
           f"heavy ≥ {format_bytes(a.options.heavy_bytes)}{', with profile' if a.options.profile else ''}"]
    for f in a.units:
        out.append(f"unit {f.index} (line {f.span.line}): {f.unit.summary}")
        rows = [("defs", _names(f.defs)), ("uses", _names(f.uses)), ("module", _names(f.module_refs))]
        if f.needs != f.module_refs:
            rows.append(("needs", _names(f.needs)))
        if f.deletes:
            rows.append(("deletes", _names(f.deletes)))
        rows.append(("mutates", _names(f.mutated)))
        if explain:
            rows += [("  because", f"{m.name}: {m.reason} (line {m.line})") for m in sorted(set(f.mutations))]
        if f.hidden:
            rows.append(("hidden", _names(map(str, f.hidden))))
        if f.exits:
            rows.append(("exits", "may return from the entry"))
        rows += [("live-in", _names(f.live_in)), ("live-out", _names(f.live_out))]
        out += [f"  {k:<9} {v}" for k, v in rows]
    out.append("boundaries (* heavy, ! not transferable):")
    for b in a.boundaries:
        where = f"{b.index - 1}|{b.index}" if 0 < b.index < len(a.units) else ("start" if b.index == 0 else "end")
        vals = " ".join(f"{v.name}{'*' if v.heavy else ''}{'!' if v.not_transferable else ''}" for v in b.live)
        out.append(f"  {where:<7} {vals or '-'}{'' if b.cuttable else '   (not cuttable)'}")
    out.append("heavy:")
    for name in sorted(a.heavy):
        d = a.heavy[name]
        if d.heavy or explain:
            size = f" ~{format_bytes(d.size)}" if d.size is not None else ""
            out.append(f"  {name:<10} {'heavy' if d.heavy else 'small'}{size}: {d.reason}")
    if not any(d.heavy for d in a.heavy.values()) and not explain:
        out.append("  -")
    if whole := a.module_effects.format():
        out += ["module effects:", whole]
    if a.not_transferable:
        out.append("not transferable:")
        out += [f"  {n:<10} {r}" for n, r in sorted(a.not_transferable.items())]
    if a.releasable:
        out.append(f"releasable: {_names(a.releasable)}")
    if a.aliases:
        out.append("aliases: " + "  ".join("{" + ", ".join(sorted(c)) + "}" for c in a.aliases))
    effects = [(name, s) for name, s in sorted(a.helpers.items())
               if name != p.entry.name and (s.params or s.module_state or s.rng or s.generator or s.io)]
    if effects:
        out.append("helpers:")
        for name, s in effects:
            bits = []
            if s.params:
                bits.append("mutates params " + ",".join(str(i) for i in sorted(s.params)))
            if s.module_state:
                bits.append("module state " + _names(s.module_state))
            if s.rng:
                bits.append("rng " + _names(s.rng))
            if s.generator:
                bits.append("generator")
            if s.io:
                bits.append("io " + ", ".join(sorted(s.io)))
            out.append(f"  {name}: {'; '.join(bits)}")
    if p.definitions:
        out.append("definitions:")
        for definition in p.definitions:
            out.append(f"  line {definition.span.line:<4} {definition.kind:<9} {_names(definition.names)}: "
                       f"refs {_names(definition.refs)}")
    return "\n".join(out) + "\n"
