"""Choosing cuts and building the :class:`~scadc.partition.plan.PartitionPlan`.

Where a cut is *allowed* (boundary ``i`` lies between unit ``i-1`` and unit ``i``):

(1) no value live there is non-transferable (an open file, a generator, a lambda …): its whole
    live range stays in one element;
(2) no value live there has another live name for the same object: two packed copies would
    come apart, and the program could observe it;
(3) no unit before it may ``return`` from the entry function: everything after an early exit
    stays with it, so nothing runs that the original would have skipped;
(4) no module-level state that helpers change (``module:NAME``) is touched on both sides;
(5) the global RNGs may be touched on both sides: their state is carried across the cut;
(6) the module has no statement that must run exactly once (:mod:`scadc.analysis.module_effects`:
    a ``print``, a seed, a file opened, an unknown call at module level): every element runs the
    prelude again, so such a program runs as one element whose prelude is the whole module;
(7) the program imports no module that starts threads or processes: one runs on past the statement
    that starts it, beside the later ones, and an element waits for it when it ends.

Which allowed cuts are *taken* is the policy's choice (:mod:`scadc.partition.policies`).

How the elements depend on each other (the plan's edges):

(V) an element loads each value from the element that made or changed it last (a value edge,
    as Scad delivers results only to dependents); the global RNG state likewise, from the last
    element before it that touched a global RNG;
(O) two elements that use the same memory element, at least one of them writing it, or that
    both may touch the world outside the process (``io``), run in program order (an order
    edge, left out when another path already orders them).

Elements with no path between them are siblings: the engine may run them at the same time.
Each runs in its own process on its own copies of the values it loads, so nothing else can
tell them apart from a run in program order (stdout and stderr are written in program order
by the engine).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from scadc.analysis import Analysis, HeavyRule, HiddenState, StateKind
from scadc.errors import InternalCompilerError
from scadc.partition import releases
from scadc.partition.loops import LoopContext, parallel_loop
from scadc.partition.plan import (
    ComputePlan,
    ElementEdge,
    MemoryPlan,
    ParallelLoop,
    PartitionPlan,
    Received,
    Touched,
    ValuePlan,
    conflict,
    conflict_steps,
    longer_paths,
    touched_text,
)
from scadc.partition.policies import Policy, read_parts
from scadrt.remote.allocator import heap_size

__all__ = ["allowed_cuts", "build_plan"]

_T = TypeVar("_T")
_MiB = 2**20
#: memory element size when the analysis has no estimate (regions are allocated lazily)
_UNKNOWN_SIZE = 1024 * _MiB


def _keeps_whole(analysis: Analysis) -> str | None:
    """Why no cut is allowed at all (rules (6) and (7)), or None."""
    effects = analysis.module_effects
    if effects.run_once:
        first = effects.run_once[0]
        return (f"(6) the module-level statement at line {first.span.line} "
                f"({first.code.strip().splitlines()[0][:40]}) must run once, before main()")
    if effects.thread_import is not None:
        return (f"(7) the program imports a module that starts threads or processes (line {effects.thread_import}): "
                "one runs on past the statement that starts it")
    return None


def allowed_cuts(analysis: Analysis) -> dict[int, str]:
    """Boundary index → ``""`` if a cut is allowed there, else the rule that forbids it."""
    units = analysis.units
    verdict: dict[int, str] = {}
    first_exit = next((u.index for u in units if u.exits), len(units))
    module_state: dict[HiddenState, tuple[int, int]] = {}
    for u in units:
        for state in u.hidden:
            if state.kind is StateKind.MODULE:
                lo, hi = module_state.get(state, (u.index, u.index))
                module_state[state] = (min(lo, u.index), max(hi, u.index))
    starting: dict[int, list[tuple[HiddenState, int]]] = {}
    for state, (lo, hi) in module_state.items():
        starting.setdefault(lo + 1, []).append((state, hi))
    spanning: list[tuple[HiddenState, int]] = []  # a heap of the states changed before and after the boundary
    whole = _keeps_whole(analysis)
    for boundary in analysis.boundaries[1:-1]:
        i = boundary.index
        if whole is not None:
            verdict[i] = whole
            continue
        pinned = [v for v in boundary.live if v.not_transferable is not None]
        # (2): another live name in its class (the class holds the name itself)
        live = boundary.names if any(v.alias_class for v in boundary.live) else frozenset()
        aliased = [v for v in boundary.live if len(v.alias_class & live) > 1] if live else []
        for started in starting.get(i, ()):
            heapq.heappush(spanning, started)
        while spanning and spanning[0][1] < i:  # changed for the last time before the boundary
            heapq.heappop(spanning)
        if pinned:  # (1)
            verdict[i] = f"(1) {pinned[0].name!r} cannot cross a cut: {pinned[0].not_transferable}"
        elif aliased:  # (2)
            other = sorted(aliased[0].aliases & live)[0]
            verdict[i] = f"(2) {aliased[0].name!r} and {other!r} may be the same object"
        elif i > first_exit:  # (3)
            verdict[i] = f"(3) unit {first_exit} may return early"
        elif spanning:  # (4)
            verdict[i] = f"(4) {spanning[0][0]} is changed on both sides"
        else:
            verdict[i] = ""
    return verdict


def _heavy(analysis: Analysis, name: str) -> bool:
    decision = analysis.heavy.get(name)
    return bool(decision and decision.heavy)


def _size(analysis: Analysis, name: str) -> int | None:
    decision = analysis.heavy.get(name)
    return decision.size if decision else None


def build_plan(analysis: Analysis, policy: Policy, *, parallel: bool = True) -> PartitionPlan:
    """Cut where ``policy`` says, among the allowed cuts, and describe the resulting elements.
    With ``parallel``, each parallel loop (:mod:`scadc.partition.loops`) that can be cut out on
    both sides and that the policy runs in parallel becomes an element with one instance per
    iteration."""
    allowed = allowed_cuts(analysis)
    loops, verdicts = _parallel_loops(analysis, allowed, enabled=parallel and policy.name != "single")
    choice = policy.choose(analysis, sorted(i for i, why in allowed.items() if not why),
                           {u: loop.count for u, loop in loops.items()})
    for u in set(loops) - set(choice.parallel):
        verdicts[u] = choice.sequential.get(u, "sequential: the policy runs it as one statement")
        del loops[u]
    cuts = list(choice.cuts)
    decisions = dict(allowed)
    for i, why in choice.reasons.items():
        decisions[i] = why
    for i, why in allowed.items():
        if why:
            decisions[i] = f"not cut: {why}"
    for loop in loops.values():
        for i in (loop.unit, loop.unit + 1):
            if 0 < i < len(analysis.units) and i not in cuts:
                cuts.append(i)
                decisions[i] = f"cut: around the parallel loop at unit {loop.unit}"
    plan = _describe(analysis, sorted(cuts), policy.name, tuple(sorted(decisions.items())), loops=loops,
                     verdicts=tuple(sorted(verdicts.items())), costs=choice.costs)
    problems = plan.validate()
    if problems:
        raise InternalCompilerError("the partition plan is invalid:\n  " + "\n  ".join(problems))
    return plan


def _parallel_loops(analysis: Analysis, allowed: dict[int, str], *,
                    enabled: bool) -> tuple[dict[int, ParallelLoop], dict[int, str]]:
    """The loops that become parallel elements, and for every loop unit why (or why not)."""
    loops: dict[int, ParallelLoop] = {}
    verdicts: dict[int, str] = {}
    context = LoopContext.of(analysis)
    for i in range(len(analysis.units)):
        found = parallel_loop(analysis, i, context)
        if found is None:
            continue
        if isinstance(found, str):
            verdicts[i] = f"sequential: {found}"
        elif not enabled:
            verdicts[i] = "sequential: parallel loops are off (--no-parallel, or the single policy)"
        elif blocked := next((allowed[b] for b in (i, i + 1) if allowed.get(b)), ""):
            verdicts[i] = f"sequential: it cannot be cut out: {blocked}"
        else:
            loops[i] = found
            verdicts[i] = f"parallel: {found.format()}"
    return loops, verdicts


def _describe(analysis: Analysis, cuts: Sequence[int], policy: str, decisions: tuple[tuple[int, str], ...], *,
              loops: dict[int, ParallelLoop], verdicts: tuple[tuple[int, str], ...],
              costs: tuple[str, ...] = ()) -> PartitionPlan:
    units = analysis.units
    n = len(units)
    edges = [0, *cuts, n]
    groups = [tuple(range(a, b)) for a, b in itertools.pairwise(edges) if b > a]
    names = [f"step{k + 1:02d}" for k in range(len(groups))]
    facts = [_GroupFacts.of(analysis, g, first=k == 0) for k, g in enumerate(groups)]

    # (V) each value an element loads comes from the element that made or changed it last
    sources: list[dict[str, int]] = []
    last_changed: dict[str, int] = {}
    for k, f in enumerate(facts):
        source = {}
        for name in sorted(f.loads):
            if name not in last_changed:
                raise InternalCompilerError(f"{names[k]} loads {name!r}, which no earlier element makes")
            source[name] = last_changed[name]
        sources.append(source)
        last_changed.update(dict.fromkeys(f.changed, k))
    sent: list[set[str]] = [set() for _ in groups]
    delivered: dict[tuple[int, int], set[str]] = {}
    for k, source in enumerate(sources):
        for name, j in source.items():
            sent[j].add(name)
            delivered.setdefault((j, k), set()).add(name)
    memory_of = {name: f"mem_{name}" for name in sorted(set().union(*sent)) if _heavy(analysis, name)}

    # what conflicts (plan rule 5): memory elements read / written, and state beyond the process
    reads = [frozenset(v for v in s if v in memory_of) for s in sources]
    writes: list[frozenset[Touched]] = [frozenset(v for v in sent[k] if v in memory_of) | facts[k].hidden
              for k in range(len(groups))]
    rng = [k for k, f in enumerate(facts) if any(h.kind is StateKind.RNG for h in f.hidden)]
    rng_from = {k: rng[i - 1] for i, k in enumerate(rng) if i}

    for k, j in rng_from.items():
        delivered.setdefault((j, k), set())  # a value edge even when the RNG state is all it carries
    # (O) only the conflicting pairs of conflict_steps: any other is ordered through them, so its
    # order edge would be implied (and left out below) anyway
    ordered: dict[tuple[int, int], str] = {}
    for j, k in conflict_steps(reads, writes):
        if (j, k) not in delivered and (j, k) not in ordered:
            both = conflict(reads[j], writes[j], reads[k], writes[k])
            ordered[(j, k)] = _conflict_reason(min(both, key=touched_text), names[j], names[k], writes[j], writes[k])
    # an order edge that another path implies adds nothing; value edges stay: results go to parents only
    implied = longer_paths(len(groups), [*delivered, *ordered], ordered)
    rng_edges = {(j, k) for k, j in rng_from.items()}
    element_edges = [ElementEdge(names[j], names[k], tuple(sorted(delivered[(j, k)])), "", rng=(j, k) in rng_edges)
                     for j, k in sorted(delivered)]
    element_edges += [ElementEdge(names[j], names[k], (), why)
                      for (j, k), why in sorted(ordered.items()) if (j, k) not in implied]
    element_edges.sort(key=lambda e: (e.source, e.target))

    heavy_names = frozenset(analysis.heavy)
    computes: list[ComputePlan] = []
    users: dict[str, list[str]] = {m: [] for m in memory_of.values()}
    for k, (group, f) in enumerate(zip(groups, facts, strict=True)):
        first, last = units[group[0]], units[group[-1]]
        send = tuple(ValuePlan(v, v in memory_of, memory_of.get(v)) for v in sorted(sent[k]))
        memories = sorted({memory_of[v] for v in reads[k]} | {memory_of[v] for v in sent[k] if v in memory_of})
        for memory in memories:
            users[memory].append(names[k])
        holds = sum(_size(analysis, v) or 0 for v in f.loads | (f.defined & heavy_names) if _heavy(analysis, v))
        computes.append(ComputePlan(
            name=names[k], units=group,
            unpack=tuple(Received(v, names[j]) for v, j in sorted(sources[k].items())),
            placeholders=tuple(sorted(f.placeholders)), send=send, memories=tuple(memories),
            rng_from=names[rng_from[k]] if k in rng_from else None,
            capture_rng=k in rng and k != rng[-1],
            reads=tuple(sorted(reads[k])), writes=tuple(sorted(writes[k], key=touched_text)),
            lines=(first.unit.first_line, last.unit.span.end_line or last.unit.span.line), holds=holds,
            loop=loops.get(group[0]) if len(group) == 1 else None,
            releases=releases.schedule(analysis, group, sources[k], (v.name for v in send),
                                       stores_heavy=any(v.heavy for v in send),
                                       loop=len(group) == 1 and group[0] in loops),
        ))

    memory_plans: list[MemoryPlan] = []
    for name, memory in sorted(memory_of.items()):
        decision = analysis.heavy[name]
        size = decision.size
        stored = _stored_versions(analysis, name, computes)
        if size is None:
            region, reason = _UNKNOWN_SIZE, "size unknown: 1 GiB (regions are allocated lazily)"
        elif stored:
            region, reason = _stored_region(stored)
        elif decision.reason.rule is HeavyRule.PROFILE:  # a profile without stored sizes (an older scadc)
            # measured: headroom for the allocator's table, alignment, and a value that grows a little
            region = max(16 * _MiB, math.ceil(size * 1.5 / _MiB) * _MiB)
            reason = f"measured {size} B × 1.5, at least 16 MiB"
        else:
            # a static estimate covers one version of the value; later ones may be larger
            region = max(256 * _MiB, math.ceil(size * 4 / _MiB) * _MiB)
            reason = f"static estimate {size} B × 4, at least 256 MiB (profile for a tighter size)"
        memory_plans.append(MemoryPlan(memory, name, region, tuple(users[memory]), reason))
    return PartitionPlan(policy, tuple(computes), tuple(element_edges), tuple(memory_plans), decisions, n, verdicts,
                         costs)




def _stored_versions(analysis: Analysis, name: str, computes: Sequence[ComputePlan]) -> list[tuple[bool, int]]:
    """For each element that stores ``name`` into its memory element, in program order: whether it
    frees the version it received first (scadrt.remote.values.pack with ``previous``), and the bytes
    the runtime allocates for the version it stores, as the profile measured it at the end of the
    element's last unit (its largest over the program when that unit has no figure). Empty
    without a profile that measured stored sizes (:mod:`scadc.profile` rule 8)."""
    profile = getattr(analysis.options, "profile", None) or {}
    by_key = {key: unit.get("stored_bytes", {}) for key, unit in profile.get("units", {}).items()}
    largest = max((sizes[name] for sizes in by_key.values() if name in sizes), default=None)
    if largest is None:
        return []
    out = []
    for compute in computes:
        if any(v.name == name and v.heavy for v in compute.send):
            key = analysis.program.units[compute.units[-1]].span.key
            out.append((compute.received(name) is not None, by_key.get(key, {}).get(name, largest)))
    return out


def _stored_region(versions: Sequence[tuple[bool, int]]) -> tuple[int, str]:
    """A region for the blocks the runtime allocates, from their measured sizes (``versions``:
    :func:`_stored_versions`). A version stored by an element that received the last one replaces
    it (freed first, so that space is free again); one stored by an element that did not receive
    it is a new block beside the others. The heap's own bytes and the granule are added, then
    1/8: the figures are exact for the profiled input, and the margin covers what moves between
    runs of it (a pickle stream's memo, a string column of other lengths) without the old × 1.5,
    which was sized for in-memory figures that include Python's per-string overhead."""
    live: list[int] = []
    peak = 0
    for replaces, size in versions:
        if replaces and live:
            live.pop()
        live.append(size)
        peak = max(peak, heap_size(live) - heap_size(()))
    need = heap_size(()) + peak
    region = max(_MiB, math.ceil(need * 9 / 8 / _MiB) * _MiB)
    blocks = f"{len(versions)} stored versions, at most {peak} B live" if len(versions) > 1 else f"{peak} B"
    return region, f"stored {blocks} + the heap's {heap_size(())} B, × 1.125, at least 1 MiB"


def _conflict_reason(what: Touched, a: str, b: str, writes_a: frozenset[Touched],
                     writes_b: frozenset[Touched]) -> str:
    if isinstance(what, HiddenState):
        return "both may touch files, processes or sockets" if what.kind is StateKind.IO else f"both touch {what}"
    if what in writes_a and what in writes_b:
        return f"both write {what!r} into its memory element"
    if what in writes_a:
        return f"{b} reads the {what!r} that {a} writes"
    return f"{b} writes {what!r} over the version {a} reads"


@dataclass(frozen=True)
class _GroupFacts:
    """What the units of one element do, together."""

    #: values it loads on entry: live there and read or changed, or possibly (not surely) rebound
    #: and live after it, so that the old value is there on the paths that do not rebind it
    loads: frozenset[str]
    placeholders: frozenset[str]
    defined: frozenset[str]
    #: made or changed here: later loads of these come from this element
    changed: frozenset[str]
    hidden: frozenset[HiddenState]

    @classmethod
    def of(cls, analysis: Analysis, group: tuple[int, ...], *, first: bool) -> _GroupFacts:
        facts = [analysis.units[i] for i in group]
        touched = _union(part for u in facts for part in read_parts(u))
        defined = _union(u.defs for u in facts)
        killed = _union(u.kills for u in facts)
        deleted = _union(u.deletes for u in facts)
        live_in = frozenset() if first else facts[0].live_in
        maybe_rebound = live_in & facts[-1].live_out & (defined - killed)
        loads = (live_in & touched) | maybe_rebound
        return cls(
            loads=loads,
            placeholders=(live_in & deleted) - loads,
            defined=defined,
            changed=_union(part for u in facts for part in (u.mutated, u.defs)),
            hidden=_union(u.hidden for u in facts),
        )


def _union(sets: Iterable[frozenset[_T]]) -> frozenset[_T]:
    """The union of ``sets``. Units that change one alias class share its set: each set object is
    merged once, and when one set holds all the others it is the answer itself, not a copy."""
    parts = list({id(part): part for part in sets if part}.values())
    largest = max(parts, key=len, default=frozenset())
    if all(part is largest or part <= largest for part in parts):
        return largest
    out: set[_T] = set()
    for part in parts:
        out |= part
    return frozenset(out)
