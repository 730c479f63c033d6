"""The deterministic text form of an :class:`~scadc.analysis.Analysis` (what the tests compare).

Layout: a header, then one block per unit (defs, uses, mutations, hidden state, live-in,
live-out), the boundaries (``*`` heavy, ``!`` not transferable), the heavy decisions, alias
classes, helper summaries and module-level definitions. Names are sorted; ``-`` means none.
Paths are printed as the file name only, so a table does not depend on the working directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from scadc.analysis.heavy import format_bytes

if TYPE_CHECKING:
    from scadc.analysis import Analysis

__all__ = ["format_analysis"]


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
    if a.not_transferable:
        out.append("not transferable:")
        out += [f"  {n:<10} {r}" for n, r in sorted(a.not_transferable.items())]
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
