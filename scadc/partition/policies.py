"""Partition policies: named, typed, frozen; each chooses cuts among the allowed ones.

``--policy NAME`` selects one; options map onto its fields (``--max-elements``). An unknown
name fails fast and lists the known ones.

resource (default)
    With a profile that measured memory (``scadc profile``), choose the plan the cost model
    (:mod:`scadc.partition.cost`) says is cheapest in provisioned GB·s, among every plan of at most
    ``max_elements`` elements over the allowed cuts (dynamic programming), the single element
    included, unless one of fewer processes costs at most ``min_saving`` (5 %) more: that one is
    chosen (:func:`~scadc.partition.cost.preferred`); ``--min-element-ms`` keeps out elements that
    would run shorter. Each parallel loop runs
    as a parallel element or as a plain statement, whichever of the choices gives the cheapest plan
    (every combination, up to :data:`MAX_LOOP_CHOICES` loops; beyond, all or none): on a machine of
    few cores, instances that each load the loop's inputs can cost more than the wall they save. A
    run's report (``--from-report``) corrects the profile's figures for the units of each element it
    measured. Without one (or with a profile of times only), the rules below, and every parallel
    loop runs in parallel.

    Grow each element statement by statement and cut before a statement when (rule R1):
    (a) it works on heavy data, the element has some, and they share none: an independent
    phase, which becomes its own element (a sibling, when nothing else orders them); or
    (b) more of the element's heavy bytes die there than stay live: the element's process ends
    and frees them, while the live ones move to memory elements. Otherwise a statement stays
    with the element before it, as does any statement after an element that has used no heavy
    data yet. Sizes are the analysis's (an unknown size counts as ``--heavy-bytes``). With a profile, drop cuts
    that would leave an element shorter than ``min_element_ms`` (R3: its start-up and data
    movement would cost more than its memory saves); then, while there are more than
    ``max_elements`` elements, drop the cut whose two sides share the most heavy bytes (R2), as
    that cut moves the most data for the least memory saved.
every
    Cut at every allowed boundary (one element per statement where possible), every parallel loop
    in parallel: the strictest test that what crosses a cut arrives intact.
single
    No cut: one compute element, like the original program (no parallel loop).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol

from scadc.analysis import Analysis
from scadc.errors import CompileError
from scadc.partition.cost import (
    CostModel,
    Measured,
    UnitTable,
    around,
    best_plans,
    cheapest,
    preferred,
    read_parts,
)
from scadc.source import Span

__all__ = ["MAX_LOOP_CHOICES", "POLICIES", "Choice", "EveryPolicy", "Policy", "ResourcePolicy", "SinglePolicy",
           "make_policy", "read_parts"]

#: parallel loops up to this many: every combination of parallel and sequential ones is compared
MAX_LOOP_CHOICES = 4


@dataclass(frozen=True)
class Choice:
    """A policy's answer: the cuts to take, why (per boundary considered), the parallel loops that
    run in parallel (their units; the cuts around them are among ``cuts`` or taken by the caller),
    why each other loop does not, and, for a policy that compared costs, what it compared (lines
    ``--explain`` prints)."""

    cuts: tuple[int, ...]
    reasons: Mapping[int, str]
    costs: tuple[str, ...] = ()
    parallel: tuple[int, ...] = ()
    sequential: Mapping[int, str] = field(default_factory=dict)


class Policy(Protocol):
    name: ClassVar[str]

    def choose(self, analysis: Analysis, allowed: Sequence[int], loops: Mapping[int, int] | None = None) -> Choice:
        """The cuts to take (from ``allowed``) and, per boundary considered, why; of ``loops``
        (parallel loop unit → iterations, each of which can be cut out), those to run in parallel."""
        ...


def _working_set(analysis: Analysis, index: int, heavy: frozenset[str]) -> frozenset[str]:
    """The heavy locals (``heavy``) unit ``index`` reads, changes or binds. Each part is cut down
    on its own: a unit changing a large alias class (``acc.append(x)``) costs its heavy names."""
    u = analysis.units[index]
    return frozenset().union(*(part & heavy for part in (*read_parts(u), u.defs)))


def _bytes(analysis: Analysis, names: frozenset[str]) -> int:
    """Estimated heavy bytes of ``names``; an unknown size counts as the heavy threshold."""
    sizes = (analysis.heavy[n].size for n in names if n in analysis.heavy and analysis.heavy[n].heavy)
    return sum(size if size is not None else analysis.options.heavy_bytes for size in sizes)


def _unit_ms(analysis: Analysis) -> list[float] | None:
    """Measured wall time of each unit (ms), from the profile; None without one."""
    profile = analysis.options.profile
    if profile is None:
        return None
    units = profile.get("units", {})
    return [1000.0 * float(units.get(u.span.key, {}).get("wall_s", 0.0)) for u in analysis.units]


def _merge_short(times: Sequence[float], cuts: Sequence[int], shortest_ms: float) -> list[tuple[int, float]]:
    """R3: while the shortest element (the first of equals) runs less than ``shortest_ms`` and
    there is a cut, merge it with its shorter neighbour (the left one on a tie), so that elements
    grow evenly; returns each dropped cut with the length of the element that dropped it.

    The elements are a linked list and the candidates a heap (stale entries are skipped), so each
    merge costs a logarithm and the sum of the merged element, not a pass over all elements.
    """
    starts = [0, *cuts]
    end = dict(zip(starts, [*cuts, len(times)], strict=True))  # element start -> its end
    before = dict(zip(starts[1:], starts, strict=False))  # element start -> the start of the one before
    total = {a: sum(times[a:b]) for a, b in end.items()}
    heap = [(total[a], a, b) for a, b in end.items()]
    heapq.heapify(heap)
    dropped: list[tuple[int, float]] = []
    while len(end) > 1:
        length, a, b = heap[0]
        if end.get(a) != b:  # merged since it was pushed
            heapq.heappop(heap)
            continue
        if length >= shortest_ms:
            break
        left = total[before[a]] if a in before else float("inf")
        right = total[b] if b in end else float("inf")
        if left <= right:  # drop the cut at its start: the element before absorbs it
            drop, a = a, before[a]
        else:  # drop the cut at its end: it absorbs the element after
            drop = b
        b = end.pop(drop)
        del total[drop]
        if b in before:
            before[b] = a
        before.pop(drop, None)
        end[a] = b
        total[a] = sum(times[a:b])
        heapq.heappush(heap, (total[a], a, b))
        dropped.append((drop, length))
    return dropped


@dataclass(frozen=True)
class ResourcePolicy:
    name: ClassVar[str] = "resource"
    max_elements: int = 8
    min_element_ms: float = 0.0
    #: what a run measured of each element (``scadc split --from-report``): corrects the profile
    measured: tuple[Measured, ...] = ()
    model: CostModel = field(default_factory=CostModel)

    def choose(self, analysis: Analysis, allowed: Sequence[int], loops: Mapping[int, int] | None = None) -> Choice:
        loops = dict(loops or {})
        table = UnitTable.of(analysis, self.model)
        if table is not None:
            return self._cheapest(table.with_measured(self.model, self.measured), allowed, loops)
        cuts, reasons = self._rules(analysis, allowed)
        return Choice(tuple(cuts), reasons, parallel=tuple(sorted(loops)))

    def _cheapest(self, table: UnitTable, allowed: Sequence[int], loops: Mapping[int, int]) -> Choice:
        """The plan the cost model says is cheapest (:mod:`scadc.partition.cost`), over every choice of
        parallel loops (module docstring), and the costs compared."""
        units = sorted(loops)
        if len(units) <= MAX_LOOP_CHOICES:
            choices = [c for r in range(len(units) + 1) for c in itertools.combinations(units, r)]
        else:
            choices = [(), tuple(units)]
        # per choice of parallel loops, its plans (the loop units in it must be cut out)
        options = {c: best_plans(self.model, table, allowed, max_elements=self.max_elements,
                                 min_element_s=self.min_element_ms / 1000.0, parallel={u: loops[u] for u in c})
                   for c in choices}
        best = {c: cheapest(plans) for c, plans in options.items() if plans}
        chosen = preferred([plan for plans in options.values() for plan in plans.values()], self.model.min_saving)
        parallel = next(c for c in options if any(p is chosen for p in options[c].values()))
        plans = options[parallel]
        taken = set(chosen.cuts)
        total = f"{chosen.gb_s:.4f} GB·s"
        reasons = {i: (f"cut (cost): the chosen plan ({total}) cuts here" if i in taken else
                       f"not cut (cost): the chosen plan ({total}) does not cut here") for i in allowed}
        sequential = {}
        for u in units:
            if u not in parallel:
                other = tuple(sorted({*parallel, u}))
                alternative = f"{best[other].gb_s:.4f} GB·s" if other in best else "not compared"
                sequential[u] = (f"sequential (cost): the chosen plan ({total}) runs it as one statement; "
                                 f"in parallel: {alternative}")
        costs = [self.model.format() + (" (corrected by a run's report)" if self.measured else ""),
                 f"chosen: {chosen.format()}"]
        costs.append(f"single element: {plans[1].format()}" if 1 in plans else
                     f"single element: not possible (cuts around parallel loops at {around(parallel, table.count)})")
        costs += [f"best of {k}: {plan.format()}" for k, plan in sorted(plans.items())]
        for c in choices:
            if c != parallel and c in best:
                costs.append(f"with parallel loops [{', '.join(map(str, c))}]: {best[c].format()}")
        return Choice(chosen.cuts, reasons, tuple(costs), parallel, sequential)

    def _rules(self, analysis: Analysis, allowed: Sequence[int]) -> tuple[list[int], dict[int, str]]:
        """R1–R3 (the module docstring): without a profile that measured memory."""
        reasons: dict[int, str] = {}
        cuts = []
        allowed_set = set(allowed)
        heavy = frozenset(n for n, d in analysis.heavy.items() if d.heavy)
        held = _working_set(analysis, 0, heavy)  # the heavy data the current element has worked on
        for i in range(1, len(analysis.units)):  # R1
            works_on = _working_set(analysis, i, heavy)
            live = analysis.boundaries[i].names & held
            dead, kept = _bytes(analysis, held - live), _bytes(analysis, live)
            cut = False
            if not held:
                why = "not cut: the element before it has used no heavy data yet"
            elif works_on and not works_on & held:
                cut, why = True, (f"cut (R1a): works on [{', '.join(sorted(works_on))}], none of the element's "
                                  f"[{', '.join(sorted(held))}]")
            elif dead > kept:
                cut, why = True, f"cut (R1b): {dead} B of heavy data die here, {kept} B stay live"
            elif not works_on:
                why = "not cut: the statement uses no heavy data"
            else:
                why = f"not cut: {dead} B of heavy data die here, {kept} B stay live"
            if cut and i in allowed_set:
                cuts.append(i)
                reasons[i] = why
                held = works_on
            else:
                if i in allowed_set:
                    reasons[i] = why
                held = held | works_on
        times = _unit_ms(analysis)
        if times is not None and self.min_element_ms > 0:  # R3, shortest element first
            merged = _merge_short(times, cuts, self.min_element_ms)
            for drop, shortest in merged:
                reasons[drop] = (f"not cut (R3): an element of {shortest:.1f} ms (profiled) is shorter than "
                                 f"--min-element-ms {self.min_element_ms:g}")
            gone = {drop for drop, _ in merged}
            cuts = [i for i in cuts if i not in gone]
        excess = len(cuts) + 1 - self.max_elements
        if excess > 0:  # R2: what crosses a cut does not depend on the other cuts, so rank them once
            locals_ = frozenset(analysis.heavy)
            shared = {i: _bytes(analysis, analysis.boundaries[i].names & locals_) for i in cuts}
            dropped = sorted(cuts, key=lambda i: (-shared[i], i))[:excess]
            for drop in dropped:
                reasons[drop] = (f"not cut (R2): more than {self.max_elements} elements; "
                                 f"{shared[drop]} heavy bytes cross it")
            gone = set(dropped)
            cuts = [i for i in cuts if i not in gone]
        return cuts, reasons


@dataclass(frozen=True)
class EveryPolicy:
    name: ClassVar[str] = "every"

    def choose(self, analysis: Analysis, allowed: Sequence[int], loops: Mapping[int, int] | None = None) -> Choice:
        return Choice(tuple(allowed), {i: "cut: policy 'every'" for i in allowed}, parallel=tuple(sorted(loops or {})))


@dataclass(frozen=True)
class SinglePolicy:
    name: ClassVar[str] = "single"

    def choose(self, analysis: Analysis, allowed: Sequence[int], loops: Mapping[int, int] | None = None) -> Choice:
        return Choice((), {i: "not cut: policy 'single'" for i in allowed},
                      sequential={u: "sequential: policy 'single'" for u in loops or {}})


POLICIES: dict[str, type] = {p.name: p for p in (ResourcePolicy, EveryPolicy, SinglePolicy)}


def make_policy(name: str, *, max_elements: int | None = None, min_element_ms: float | None = None,
                cores: int | None = None) -> Policy:
    """The policy ``name`` with its options; a user error for unknown names and bad options."""
    cls = POLICIES.get(name)
    if cls is None:
        raise CompileError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}", Span("--policy"))
    if max_elements is None and min_element_ms is None and cores is None:
        policy: Policy = cls()
        return policy
    if cls is not ResourcePolicy:
        raise CompileError(f"--max-elements, --min-element-ms and --cores apply to the 'resource' policy, "
                           f"not {name!r}", Span("--policy"))
    if max_elements is not None and max_elements < 1:
        raise CompileError("--max-elements must be at least 1", Span("--max-elements"))
    if min_element_ms is not None and min_element_ms < 0:
        raise CompileError("--min-element-ms cannot be negative", Span("--min-element-ms"))
    if cores is not None and cores < 1:
        raise CompileError("--cores must be at least 1", Span("--cores"))
    defaults = ResourcePolicy()
    return ResourcePolicy(max_elements=max_elements or defaults.max_elements,
                          min_element_ms=min_element_ms or defaults.min_element_ms,
                          model=defaults.model if cores is None else replace(defaults.model, cores=cores))
