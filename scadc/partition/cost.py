"""The cost model the ``resource`` policy minimises when a profile is given, and the search for its minimum.

A *plan* is a sequence of segments ``[a, b)`` of consecutive units, each one compute element; a heavy
value live at a cut lies in a memory element. What a plan costs, in provisioned GB·s (GB = 10^9 B, as
``bench/e2e.py`` counts: what a platform bills when each element is sized for its own peak), is the
sum over its elements of:

(C1) peak × time. The peak is the element process's floor (the interpreter and the program's imports,
     :attr:`UnitTable.floor`) plus the largest, over its units ``u``, of what it holds when ``u`` starts
     plus how far ``u`` raised the RSS (``peak_rise_bytes``), and at its end what it holds plus what it
     stores (× ``store_rss_factor``). What it holds: the heavy values it loaded (× ``load_rss_factor``)
     and what its own earlier units left, the larger of the sizes of the locals they bound (at most what
     the monolith's RSS had grown to since its first unit: in-memory sizes count shared objects once
     per reference) and how far the monolith's RSS grew over them, both less the locals it has
     released by then (:mod:`scadc.partition.releases`: the monolith held them to its end). The RSS
     counts what no local names (a helper's freed temporaries that the allocator keeps, caches): a
     cut sheds that too, the next element being a new process. Its time is its units' wall time, a
     fixed start-up, and its loads and stores at a measured rate.
(C2) memory elements: a heavy value live at the element's start is in a memory element for all of its
     time (it was stored before and is read here or later); one the element makes and leaves live at its
     end is, from the unit that made it last to the end. A memory element lives from its store to the end
     of its last reader, its region the stored size × ``region_margin``.
(C3) wall: the element's time × ``wall_gb`` (the ``scadc run`` process, and whatever waits on the run).
(C4) a parallel loop (:mod:`scadc.partition.loops`) of ``n`` iterations, when the plan runs it as one
     element of ``n`` instances: each instance is a process of the segment's peak that runs for the
     start-up, its loads and stores, and ``1/n`` of the loop at one thread (instances run side by side,
     each capped at one BLAS thread: the unit's profiled time stretched by ``thread_gain`` for every
     core its CPU time says it kept busy); ``cores`` of them run at once, so the element takes
     ``ceil(n / cores)`` instance times, and the pool keeps ``min(n, cores) - 1`` more warm workers (a
     floor each) while it runs. Memory elements and wall (C2, C3) count that time. Which loops run in
     parallel is part of the plan: the policy compares every choice (:func:`best_plans` per choice).

Every term belongs to one element, so the costs add up over segments and the cheapest plan of ``k``
elements is a shortest path over the allowed cuts: ``best[k][b] = min over a of best[k-1][a] +
cost(a, b)`` (dynamic programming over the unit order, each segment's cost computed once). The
single-element plan is one of the candidates, so a program that does not pay to split stays whole.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING

from scadc.partition.releases import dead_after

if TYPE_CHECKING:
    from scadc.analysis import Analysis, UnitFacts

__all__ = ["CostModel", "Measured", "PlanCost", "SegmentCost", "UnitTable", "around", "best_plans", "cheapest",
           "plan_cost", "preferred", "processes",
           "read_parts", "rounded", "segment_cost"]

_MB = 10**6
_GB = 1e9
#: locals smaller than this are left to the RSS figures (:data:`scadc.profile.STORED_MIN`, 64 KiB)
_SIZED_MIN = 1 << 16


def read_parts(facts: UnitFacts) -> tuple[frozenset[str], ...]:
    """The locals a unit needs the values of: what it uses or changes, but not what a plain
    ``del x`` statement names (the analysis counts that as a use; it needs no data). As the
    unit's own sets, not a copy into one (a unit changing a large alias class shares its set)."""
    return (facts.mutated,) if facts.shape.deletes_only else (facts.uses, facts.mutated)


@dataclass(frozen=True)
class CostModel:
    """The constants of the model (:mod:`scadc.partition.cost` (C1)–(C3)), measured on a 2-core Linux
    machine with the local engine, shm transport, Python 3.11 (December 2026)."""

    #: the smallest element process: ``scadc run`` of a program with no imports (``def main(): print(1)``)
    #: split ``--policy every``: each element peaked at 27.2–27.3 MB (a warm worker's fork, scadrt loaded)
    element_floor_bytes: int = 27 * _MB
    #: what ``scadc profile`` adds to the RSS the profile records before the first unit: a numpy-only
    #: program's first unit started at 69.8 MB under the profiler and its element peaked at 32.9 MB
    #: (kmeans: 73.7 MB profiled, its last, nearly empty element 36.4 MB)
    profiler_overhead_bytes: int = 37 * _MB
    #: an element's fixed start-up: a second element added 0.016–0.022 s to the reported wall of a
    #: trivial program (warm pool, idle machine), but whole `scadc run` commands of pagerank under
    #: bench/e2e.py's sampler took 1.75 s as one element, 1.85 s as two and 1.97 s as three (the
    #: element's own imports and first calls, its process's exit, the scheduler's round trip)
    element_start_s: float = 0.1
    #: loads and stores over shm. A heavy value is unpacked by mapping its segment copy-on-write
    #: (:mod:`scadrt.remote.values`): a load costs page faults, not a copy (2 GB/s assumed, twice a
    #: copy); a store is one copy into the segment: kmeans' first element stored 16 MB and ran within
    #: its units' profiled time plus 0.02 s, some 1 GB/s
    load_bytes_per_s: float = 2e9
    store_bytes_per_s: float = 1e9
    #: a loaded value's mapped pages count once in the element's RSS (shared, until it writes them)
    load_rss_factor: float = 1.0
    #: what storing adds to the element's RSS: shm writes go through pread/pwrite (the segment's pages
    #: stay out of it), leaving the pool's staging frames and contiguous copies: tpcds_pandas's first
    #: element storing a 62 MB frame rose 14 MB (RssAnon, RssShmem 0; run report probes, scale 1)
    store_rss_factor: float = 0.25
    #: memory element regions: the stored bytes × 1.125 (:func:`scadc.partition.build._stored_region`)
    region_margin: float = 1.125
    #: GB billed per second of wall: the ``scadc run`` process itself, 43–50 MB for the whole run in
    #: bench/e2e.py --detail on every example, rounded up for the run's idle warm workers
    wall_gb: float = 0.05
    #: instances that run at once (the local engine's default, one per core): this machine's cores
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    #: what a unit's extra busy cores (profiled ``cpu_s / wall_s`` above 1: BLAS threads) saved of
    #: its one-thread time: logreg_cv's profile (4.1 s of CPU over 2.03 s) ran in 2.87 s with one
    #: BLAS thread, 1.41×, some 0.4 per extra core
    thread_gain: float = 0.4
    #: a plan of more processes is chosen only if it saves at least this share of the cheapest
    #: plan's GB·s: the model's estimates of whole runs are off by some 10 % either way, and a split
    #: that saves less in the model (logreg_cv cut after its first statement: 0.5 %) costs more in a run
    min_saving: float = 0.05

    def format(self) -> str:
        """Deterministic text: every constant, in field order."""
        return "cost model: " + ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))


@dataclass(frozen=True)
class Measured:
    """What a run measured of one compute element (``scadc run --report``): its units (consecutive),
    its peak RSS (bytes) and its time (seconds); for a parallel element, its largest instance."""

    units: tuple[int, ...]
    peak: int
    time: float


@dataclass(frozen=True)
class UnitTable:
    """The per-unit figures the model reads, index ``i`` for unit ``i`` (0-based, program order).

    ``sizes[i]``/``stored[i]`` are the bytes of each local after unit ``i`` (in memory / as a memory
    element would store it); ``live[i]`` the heavy locals live at boundary ``i`` (before unit ``i``;
    ``len(live) == count + 1``, the first and last empty); ``scale[i]`` corrects what unit ``i``'s
    element holds (1.0 unless a run measured it: :meth:`with_measured`)."""

    def one_thread_s(self, model: CostModel, i: int) -> float:
        """Unit ``i``'s time at one BLAS thread (C4)."""
        wall = self.wall[i]
        busy = min(max(self.cpu[i] / wall, 1.0), float(model.cores)) if wall > 0 else 1.0
        return wall * (1.0 + model.thread_gain * (busy - 1.0))

    count: int
    wall: tuple[float, ...]
    rise: tuple[int, ...]
    sizes: tuple[Mapping[str, int], ...]
    stored: tuple[Mapping[str, int], ...]
    touched: tuple[frozenset[str], ...]
    changed: tuple[frozenset[str], ...]
    defs: tuple[frozenset[str], ...]
    live: tuple[frozenset[str], ...]
    floor: int
    #: the monolith's RSS when each unit started and when it ended (bytes; 0: not measured)
    start_rss: tuple[int, ...] = ()
    end_rss: tuple[int, ...] = ()
    scale: tuple[float, ...] = ()
    #: the CPU time of each unit (seconds, all threads; its wall when not measured)
    cpu: tuple[float, ...] = ()
    #: the heavy locals an element releases after each unit once it has bound them
    #: (:func:`scadc.partition.releases.dead_after`; none when not given)
    dead: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        if not self.scale:
            object.__setattr__(self, "scale", (1.0,) * self.count)
        if not self.cpu:
            object.__setattr__(self, "cpu", self.wall)
        if not self.dead:
            object.__setattr__(self, "dead", (frozenset(),) * self.count)
        for name in ("start_rss", "end_rss"):
            if not getattr(self, name):
                object.__setattr__(self, name, (0,) * self.count)

    @classmethod
    def of(cls, analysis: Analysis, model: CostModel) -> UnitTable | None:
        """The table of a profiled analysis; None without a profile that measured memory (an older
        scadc's, or a hand-made one with times only: the model has nothing to weigh)."""
        profile = analysis.options.profile
        if profile is None:
            return None
        by_key = profile.get("units", {})
        rows = [by_key.get(u.unit.span.key, {}) for u in analysis.units]
        if not any("start_rss_bytes" in row for row in rows):
            return None
        heavy = frozenset(n for n, d in analysis.heavy.items() if d.heavy)
        first_rss = next((int(row["start_rss_bytes"]) for row in rows if "start_rss_bytes" in row), 0)
        fallback = {n: d.size if d.size is not None else analysis.options.heavy_bytes
                    for n, d in analysis.heavy.items() if d.heavy}
        # only the locals a memory element would store (STORED_MIN and up): the RSS term counts the rest
        measured = [{**fallback, **{n: int(b) for n, b in row.get("live_bytes", {}).items()}} for row in rows]
        sizes = tuple({n: b for n, b in row.items() if b >= _SIZED_MIN} for row in measured)
        return cls(
            count=len(rows),
            wall=tuple(float(row.get("wall_s", 0.0)) for row in rows),
            cpu=tuple(float(row.get("cpu_s", row.get("wall_s", 0.0))) for row in rows),
            rise=tuple(int(row.get("peak_rise_bytes", 0)) for row in rows),
            sizes=sizes,
            stored=tuple({n: int(b) for n, b in row.get("stored_bytes", {}).items()} for row in rows),
            touched=tuple(frozenset().union(*read_parts(u)) for u in analysis.units),
            changed=tuple(u.mutated | u.defs for u in analysis.units),
            defs=tuple(u.defs for u in analysis.units),
            live=tuple(b.names & heavy for b in analysis.boundaries),
            floor=max(model.element_floor_bytes, first_rss - model.profiler_overhead_bytes),
            start_rss=tuple(_carried(row.get("start_rss_bytes") for row in rows)),
            end_rss=tuple(_carried(row.get("rss_bytes") for row in rows)),
            dead=tuple(dead_after(analysis, i) for i in range(len(rows))),
        )

    def with_measured(self, model: CostModel, measured: Iterable[Measured]) -> UnitTable:
        """This table corrected by what a run measured: each measured element's time, less the model's
        start-up and transfers, is shared among its units as the profile shares it; what its units hold
        is scaled so that the model gives the element exactly its measured peak. Other segments over
        those units inherit the corrections (what the profile got wrong of a unit, it got wrong for
        every element that runs it)."""
        wall, scale = list(self.wall), list(self.scale)
        for m in measured:
            a, b = m.units[0], m.units[-1] + 1
            est = segment_cost(model, self, a, b)
            work = max(0.0, m.time - (est.time - sum(self.wall[a:b])))
            profiled = sum(self.wall[a:b])
            for u in range(a, b):
                wall[u] = work * (self.wall[u] / profiled if profiled > 0 else 1.0 / (b - a))
        table = replace(self, wall=tuple(wall))
        for m in measured:
            a, b = m.units[0], m.units[-1] + 1
            est = segment_cost(model, table, a, b)
            held = est.peak - table.floor
            ratio = (m.peak - table.floor) / held if held > 0 else 1.0
            for u in range(a, b):
                scale[u] = max(0.0, ratio)
        return replace(table, scale=tuple(scale))


@dataclass(frozen=True)
class SegmentCost:
    """One element of a plan: units ``[start, end)``, its estimated peak (bytes, an instance's) and
    time (seconds, until its last instance ends), its GB·s: peak × time (C1), memory elements (C2),
    wall (C3); and its instances (more than one: a parallel loop, C4)."""

    start: int
    end: int
    peak: float
    time: float
    element_gb_s: float
    memory_gb_s: float
    wall_gb_s: float
    instances: int = 1

    @property
    def gb_s(self) -> float:
        return self.element_gb_s + self.memory_gb_s + self.wall_gb_s


@dataclass(frozen=True)
class PlanCost:
    """A plan (its cuts) and what the model says it costs."""

    cuts: tuple[int, ...]
    segments: tuple[SegmentCost, ...]

    @property
    def gb_s(self) -> float:
        return sum(s.gb_s for s in self.segments)

    @property
    def wall(self) -> float:
        return sum(s.time for s in self.segments)

    def format(self) -> str:
        """One line: elements, cuts, GB·s in parts, wall, largest peak (deterministic: fixed decimals)."""
        parts = (sum(s.element_gb_s for s in self.segments), sum(s.memory_gb_s for s in self.segments),
                 sum(s.wall_gb_s for s in self.segments))
        peak = max(s.peak for s in self.segments)
        fanned = [f"unit {s.start} ×{s.instances}" for s in self.segments if s.instances > 1]
        return (f"{len(self.segments)} element{'s' if len(self.segments) != 1 else ''}, cuts "
                f"[{', '.join(map(str, self.cuts))}]: {self.gb_s:.4f} GB·s (elements {parts[0]:.4f}, memory "
                f"{parts[1]:.4f}, wall {parts[2]:.4f}); {self.wall:.3f} s, largest {peak / _MB:.1f} MB"
                + (f"; in parallel: {', '.join(fanned)}" if fanned else ""))


def segment_cost(model: CostModel, table: UnitTable, a: int, b: int,
                 parallel: Mapping[int, int] | None = None) -> SegmentCost:
    """The cost of units ``[a, b)`` as one element (module docstring, (C1)–(C4)); ``parallel``: loop
    unit → iterations, for the loops that run as parallel elements."""
    return _Segments(model, table, parallel).row(a, (b,))[b]


class _Segments:
    """Segment costs, a row (every end for one start) at a time: what a start loads grows with the
    end, what its units hold before each of them does not, so a row costs one pass over its units."""

    def __init__(self, model: CostModel, table: UnitTable, parallel: Mapping[int, int] | None = None) -> None:
        self.model, self.table = model, table
        self.parallel = dict(parallel or {})

    def _before(self, a: int, name: str) -> int:
        return self.table.sizes[a - 1].get(name, 0) if a > 0 else 0

    def row(self, a: int, ends: Sequence[int]) -> dict[int, SegmentCost]:
        m, t = self.model, self.table
        # (C1) what the element's own units bound, before each unit u (and at the end: index b)
        bound: set[str] = set()
        freed: set[str] = set()  # what its units bound and it released since
        own: list[float] = []  # own[u - a]: what its units hold when u starts, scaled, plus u's rise
        held_at: list[float] = []  # held_at[u - a]: what its units hold after unit u
        named = 0  # the sizes of the locals its units bound, before unit u (after u - 1)
        freed_bytes = 0  # what the monolith still held of ``freed`` then
        base = t.start_rss[0]  # the monolith's RSS before its first unit: what no local holds
        for u in range(a, t.count):
            own.append(t.scale[u] * (max(_at_most(named, t.start_rss[u], base),
                                         t.start_rss[u] - t.start_rss[a] - freed_bytes) + t.rise[u]))
            bound |= t.defs[u]
            if freed:
                freed -= t.defs[u]  # bound again
            if t.dead[u]:
                freed |= t.dead[u] & bound
            named = sum(size for n, size in t.sizes[u].items() if n in bound and n not in freed)
            freed_bytes = sum(t.sizes[u].get(n, 0) for n in freed) if freed else 0
            held_at.append(max(_at_most(named, t.end_rss[u], base), t.end_rss[u] - t.start_rss[a] - freed_bytes))
        out: dict[int, SegmentCost] = {}
        touched: set[str] = set()
        changed_last: dict[str, int] = {}
        scales_one = all(s == 1.0 for s in t.scale[a:])
        running = 0.0  # max of own[:b - a] (when every scale is 1, loads add the same to each)
        wall = 0.0
        through = sorted(t.live[a]) if a > 0 else []
        through_bytes = sum(self._before(a, n) for n in through)
        b_prev = a
        for b in sorted(ends):
            for u in range(b_prev, b):
                touched |= t.touched[u]
                for n in t.changed[u]:
                    changed_last[n] = u
                running = max(running, own[u - a])
                wall += t.wall[u]
            b_prev = b
            loads = [n for n in through if n in touched]
            load_bytes = sum(self._before(a, n) for n in loads)
            stores = sorted(n for n in t.live[b] if n in changed_last) if b < t.count else []
            stored = {n: t.stored[b - 1].get(n, t.sizes[b - 1].get(n, 0)) for n in stores}
            store_bytes = sum(stored.values())
            load_held = m.load_rss_factor * load_bytes
            if scales_one:
                inside = load_held + running
            else:
                inside = max(t.scale[u] * load_held + own[u - a] for u in range(a, b))
            end = t.scale[b - 1] * (load_held + held_at[b - 1 - a] + m.store_rss_factor * store_bytes)
            peak = t.floor + max(inside, end)
            store_s = store_bytes / m.store_bytes_per_s
            load_s = load_bytes / m.load_bytes_per_s
            instances = self.parallel.get(a, 1) if b == a + 1 else 1
            if instances == 1:
                time = m.element_start_s + wall + load_s + store_s
                element = peak * time
            else:  # (C4): each instance stores its part of what the loop appends
                store_s /= instances
                alone = m.element_start_s + load_s + t.one_thread_s(m, a) / instances + store_s
                time = math.ceil(instances / m.cores) * alone
                element = instances * peak * alone + (min(instances, m.cores) - 1) * t.floor * time
            # (C2) values in memory elements while it runs
            memory = m.region_margin * through_bytes * time
            for n, size in stored.items():
                if n not in t.live[a]:
                    made = changed_last[n]
                    memory += m.region_margin * size * (sum(t.wall[made + 1:b]) + store_s)
            out[b] = SegmentCost(a, b, peak, time, element / _GB, memory / _GB, m.wall_gb * time, instances)
        return out


def _at_most(named: int, rss: int, base: int) -> int:
    """The sizes of some locals, at most what the monolith's RSS had grown to when they were all
    live (``rss - base``; unbounded where the RSS was not measured): an in-memory size counts a
    shared object once per reference (a merged frame's string column: the same few strings on
    every row), and a view as its base, so their sum can be several times what they occupy."""
    return min(named, rss - base) if rss and base else named


def _carried(values: Iterable[object]) -> list[int]:
    """Each figure, or the last one before it where a unit has none (it never ran)."""
    out: list[int] = []
    for value in values:
        out.append(int(value) if isinstance(value, int | float) else (out[-1] if out else 0))
    return out


def plan_cost(model: CostModel, table: UnitTable, cuts: Sequence[int],
              parallel: Mapping[int, int] | None = None) -> PlanCost:
    """What the plan with ``cuts`` (sorted boundaries, 0 < cut < count) costs; ``parallel`` as for
    :func:`segment_cost` (each such loop unit must be cut out on both sides)."""
    edges = [0, *cuts, table.count]
    segments = _Segments(model, table, parallel)
    return PlanCost(tuple(cuts), tuple(segments.row(a, (b,))[b] for a, b in itertools.pairwise(edges)))


def best_plans(model: CostModel, table: UnitTable, allowed: Iterable[int], *, forced: Iterable[int] = (),
               max_elements: int, min_element_s: float = 0.0,
               parallel: Mapping[int, int] | None = None) -> dict[int, PlanCost]:
    """The cheapest plan of each element count up to ``max_elements`` (those that exist), cutting only
    at ``allowed`` boundaries and at every ``forced`` one. ``parallel``: loop unit → iterations, for
    the loops that run as parallel elements (each is cut out: both its boundaries are forced).
    ``min_element_s``: no element may run shorter (by the profile's times) unless forced cuts bound it
    on both sides. Ties go to the plan whose cuts come first, so the answer is deterministic."""
    n = table.count
    forced_set = {i for i in forced if 0 < i < n} | set(around(parallel or (), n))
    points = sorted({i for i in allowed if 0 < i < n} | forced_set)
    ends = [*points, n]
    starts = [0, *points]
    limit = max(max_elements, len(forced_set) + 1)
    segments = _Segments(model, table, parallel)
    cost: dict[tuple[int, int], SegmentCost] = {}
    for a in starts:
        # an element cannot step over a forced cut
        stop = min((f for f in forced_set if f > a), default=n)
        reach = [b for b in ends if a < b <= stop]
        for b, seg in segments.row(a, reach).items():
            bounded = (a == 0 or a in forced_set) and (b == n or b in forced_set)
            if min_element_s > 0 and sum(table.wall[a:b]) < min_element_s and not bounded and (a, b) != (0, n):
                continue
            cost[(a, b)] = seg
    # best[k][b]: (GB·s, previous cut) of the cheapest k segments covering [0, b)
    best: list[dict[int, tuple[float, int]]] = [{0: (0.0, -1)}]
    for k in range(1, limit + 1):
        row: dict[int, tuple[float, int]] = {}
        previous = sorted(best[k - 1].items())
        for b in ends:
            found: tuple[float, int] | None = None
            for a, (total, _) in previous:
                step = cost.get((a, b))
                if step is None:
                    continue
                value = total + step.gb_s
                if found is None or value < found[0]:
                    found = (value, a)
            if found is not None:
                row[b] = found
        best.append(row)
    plans: dict[int, PlanCost] = {}
    for k in range(1, limit + 1):
        if n not in best[k]:
            continue
        cuts: list[int] = []
        b = n
        for level in range(k, 0, -1):
            a = best[level][b][1]
            if a > 0:
                cuts.append(a)
            b = a
        cuts.reverse()
        plans[k] = PlanCost(tuple(cuts), tuple(cost[(x, y)] for x, y in itertools.pairwise([0, *cuts, n])))
    return plans


def around(units: Iterable[int], count: int) -> list[int]:
    """The boundaries that cut the units ``units`` out (of ``count`` units), sorted."""
    return sorted({i for u in units for i in (u, u + 1) if 0 < i < count})


def cheapest(plans: Mapping[int, PlanCost]) -> PlanCost:
    """The cheapest of ``plans`` (fewer elements on a tie: each one is a process to run)."""
    return min(plans.values(), key=lambda p: (rounded(p.gb_s), len(p.segments)))


def processes(plan: PlanCost) -> int:
    """The compute processes a run of ``plan`` starts (a parallel element: one per instance)."""
    return sum(s.instances for s in plan.segments)


def preferred(plans: Iterable[PlanCost], min_saving: float) -> PlanCost:
    """Of the plans that cost at most ``1 + min_saving`` times the cheapest one, the one of fewest
    processes (then the cheaper): more processes must pay for themselves by more than the model's
    error (:attr:`CostModel.min_saving`)."""
    candidates = list(plans)
    least = min(rounded(p.gb_s) for p in candidates)
    close = [p for p in candidates if rounded(p.gb_s) <= rounded(least * (1.0 + min_saving))]
    return min(close, key=lambda p: (processes(p), rounded(p.gb_s), len(p.segments)))


def rounded(value: float) -> float:
    """``value`` to 12 significant digits: plan costs that are equal up to summation order compare equal."""
    return float(f"{value:.12g}") if math.isfinite(value) else value
