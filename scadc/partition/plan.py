"""The partition plan: which units form which compute element, how they depend on each other,
and which memory elements exist.

A plan is the boundary between the partitioner and code generation: plain frozen values, no
libcst. Compute elements are named in program order (``step01``, ``step02`` …) and form a DAG:
an edge ``a → b`` either delivers values (``b`` loads what ``a`` made or changed last) or only
orders the two (they touch the same memory element, the outside world, or a global RNG). Elements
with no path between them are siblings and may run at the same time.

Validation (:meth:`PartitionPlan.validate`) returns a list of problems; an empty list means:
(1) every unit is in exactly one compute element, in order; (2) every edge goes forward in program
order (so the graph is acyclic, and program order is a topological order); (3) every value an
element loads comes over an edge from the element that sends it, and the RNG state from the
element that captured it; (4) every heavy value that crosses an edge lives in a memory element
that coruns with every element that sends or loads it; (5) two elements whose effects conflict
(:attr:`ComputePlan.writes` of one meets the reads or writes of the other) have a path between
them; (6) a parallel loop's element is its loop unit alone, sends only its accumulators and
carries no RNG state.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, TypeVar

import networkx as nx

from scadc.analysis.hidden_state import HiddenState

__all__ = ["ComputePlan", "ElementEdge", "MemoryPlan", "ParallelLoop", "PartitionPlan", "Received", "Touched",
           "ValuePlan", "conflict", "conflict_steps", "longer_paths", "touched_text"]

#: what elements may both touch (rule 5): a memory element, named by the heavy local it holds, or
#: state beyond the process (a global RNG, module-level state, the outside world)
Touched = str | HiddenState
#: how an edge prints the global random generators' state it delivers: not an identifier, so a
#: local named ``rng`` is never taken for it
_RNG_STATE_TEXT = "<rng state>"
_H = TypeVar("_H", bound=Hashable)


def touched_text(thing: Touched) -> str:
    """``thing`` as printed (and sorted): a local's name, or ``@`` and the state (``@io``)."""
    return thing if isinstance(thing, str) else f"@{thing}"


def conflict(reads_a: Iterable[_H], writes_a: Iterable[_H], reads_b: Iterable[_H],
             writes_b: Iterable[_H]) -> set[_H]:
    """What two elements both touch with at least one of them writing it (rule 5): they must be
    ordered."""
    writes_a, writes_b = set(writes_a), set(writes_b)
    return (writes_a & (set(reads_b) | writes_b)) | (set(reads_a) & writes_b)


def conflict_steps(reads: Sequence[Iterable[Touched]], writes: Sequence[Iterable[Touched]]) -> list[tuple[int, int]]:
    """The conflicting pairs (of elements ``0..n-1`` in program order) that order all the others.

    For each thing an element touches, only two kinds of earlier element can be its nearest
    conflict: the last one that wrote it, and (when this one writes it) those that only read it
    since. Any other conflicting pair ``(j, k)`` is joined through shorter conflicting pairs (an
    earlier writer through the later writers, an earlier reader through the next writer), so
    when these pairs are ordered, every conflicting pair is (rule 5). There are at most as many
    of them as touches, where all the conflicting pairs could be the square of the elements.
    """
    last_writer: dict[Touched, int] = {}
    readers: dict[Touched, list[int]] = {}
    steps: list[tuple[int, int]] = []
    for k, (read, write) in enumerate(zip(reads, writes, strict=True)):
        written = set(write)
        for thing in sorted(written | set(read), key=touched_text):
            if thing in last_writer:
                steps.append((last_writer[thing], k))
            if thing in written:
                steps += [(j, k) for j in readers.pop(thing, ())]
                last_writer[thing] = k
            else:
                readers.setdefault(thing, []).append(k)
    return steps


def longer_paths(count: int, edges: Iterable[tuple[int, int]],
                 pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """The pairs ``(j, k)`` among ``pairs`` that a path of two or more edges joins, in a graph of
    nodes ``0..count-1`` whose edges all go forward (``j < k``, as a plan's do).

    One scan in program order keeps the ancestors of each node as the bits of an int, and
    forgets them after the node's last successor: O(edges × count / 64) word operations, where
    a search per pair (or a transitive reduction) costs O(count × edges) steps of Python.
    """
    preds: list[list[int]] = [[] for _ in range(count)]
    pending = [0] * count  # successors not yet scanned
    for j, k in set(edges):
        preds[k].append(j)
        pending[j] += 1
    asked: dict[int, list[int]] = {}
    for j, k in pairs:
        asked.setdefault(k, []).append(j)
    ancestors: dict[int, int] = {}
    found: set[tuple[int, int]] = set()
    for k in range(count):
        further = 0  # the nodes with a path of two or more edges to k
        direct = 0
        for p in preds[k]:
            further |= ancestors[p]
            direct |= 1 << p
            pending[p] -= 1
            if not pending[p]:
                del ancestors[p]
        found.update((j, k) for j in asked.get(k, ()) if further >> j & 1)
        if pending[k]:
            ancestors[k] = further | direct
    return found


@dataclass(frozen=True)
class Received:
    """A value an element loads, and the element it comes from."""

    name: str
    source: str


@dataclass(frozen=True)
class ValuePlan:
    """A value an element sends to the later elements that load it."""

    name: str
    #: heavy values travel through memory element ``memory``; small ones inline in the result
    heavy: bool
    memory: str | None


@dataclass(frozen=True)
class ParallelLoop:
    """A loop unit that runs as one element with ``count`` instances (:mod:`scadc.partition.loops`)."""

    unit: int
    count: int
    #: the loop's iterable, as written (``range(N_FOLDS)``)
    iterable: str
    #: names the loop appends to (sorted): all that its element sends
    accumulators: tuple[str, ...]

    def format(self) -> str:
        return (f"unit {self.unit}: {self.count} iterations of {self.iterable}, appending to "
                f"[{', '.join(self.accumulators)}]")


@dataclass(frozen=True)
class ComputePlan:
    name: str
    #: unit indices, consecutive, in program order
    units: tuple[int, ...]
    #: values loaded on entry, each from the element that made or changed it last (sorted by name)
    unpack: tuple[Received, ...]
    #: values received only to be deleted: bound to None, never loaded
    placeholders: tuple[str, ...]
    #: values it sends (sorted): it made or changed them, and a later element loads them
    send: tuple[ValuePlan, ...]
    #: memory elements this element reads or writes
    memories: tuple[str, ...]
    #: restore the global RNG state captured by this element on entry; capture it on exit
    rng_from: str | None
    capture_rng: bool
    #: what conflicts with other elements (rule 5): remote values it reads / writes, and state
    #: it touches (a global RNG, module state, the outside world), counted as written
    reads: tuple[str, ...]
    writes: tuple[Touched, ...]
    #: lines of the original file this element's statements come from (first, last)
    lines: tuple[int, int]
    #: estimated bytes of heavy values the element holds at once
    holds: int
    #: the element is a parallel loop: one instance per iteration
    loop: ParallelLoop | None = None
    #: (unit, the heavy locals it drops after that unit), for the units after which it drops any
    #: (:mod:`scadc.partition.releases`)
    releases: tuple[tuple[int, tuple[str, ...]], ...] = ()

    @property
    def parallelism(self) -> int:
        return self.loop.count if self.loop is not None else 1

    def received(self, name: str) -> Received | None:
        return self._received.get(name)

    @cached_property
    def _received(self) -> dict[str, Received]:
        found: dict[str, Received] = {}
        for r in self.unpack:
            found.setdefault(r.name, r)
        return found

    def as_dict(self) -> dict[str, Any]:
        """The element as plain data (``split.json``): its fields, state in its text form."""
        data = asdict(self)
        data["writes"] = [touched_text(w) for w in self.writes]
        return data

    def format(self) -> str:
        unpack = ", ".join(f"{r.name}<{r.source}" for r in self.unpack)
        send = ", ".join(f"{v.name}{'*' if v.heavy else ''}" for v in self.send)
        rng = (f"restore<{self.rng_from} " if self.rng_from else "") + ("capture" if self.capture_rng else "")
        return (f"{self.name}: units {self.units[0]}-{self.units[-1]} (lines {self.lines[0]}-{self.lines[1]})"
                f" unpack [{unpack}] send [{send}] memories [{', '.join(self.memories)}]"
                f"{' rng ' + rng.strip() if rng else ''}"
                f"{f' parallel {self.loop.count}' if self.loop else ''}")


@dataclass(frozen=True)
class ElementEdge:
    """``source`` runs before ``target``; ``values`` are the locals it delivers, ``rng`` whether
    it also delivers the global generators' state."""

    source: str
    target: str
    values: tuple[str, ...]
    #: why they are ordered, when nothing is delivered
    reason: str
    rng: bool = False

    @property
    def delivers(self) -> bool:
        return bool(self.values) or self.rng

    def shown_values(self) -> list[str]:
        """What it delivers as printed: the RNG state (as ``<rng state>``, which sorts first) and
        the values."""
        return [_RNG_STATE_TEXT] * self.rng + list(self.values)

    def as_dict(self) -> dict[str, Any]:
        """The edge as plain data (``split.json``)."""
        return {"source": self.source, "target": self.target, "values": self.shown_values(), "reason": self.reason}

    def format(self) -> str:
        what = f"values [{', '.join(self.shown_values())}]" if self.delivers else f"order: {self.reason}"
        return f"{self.source} -> {self.target}: {what}"


@dataclass(frozen=True)
class MemoryPlan:
    name: str
    #: the heavy local it holds (every version of it)
    value: str
    #: bytes (the region's size)
    size: int
    corunning: tuple[str, ...]
    #: why this size
    reason: str

    def format(self) -> str:
        return f"{self.name}: holds {self.value}, {self.size} B, corunning [{', '.join(self.corunning)}]"


@dataclass(frozen=True)
class PartitionPlan:
    policy: str
    computes: tuple[ComputePlan, ...]
    edges: tuple[ElementEdge, ...]
    memories: tuple[MemoryPlan, ...]
    #: boundary index → why it was cut (or not)
    decisions: tuple[tuple[int, str], ...]
    unit_count: int
    #: loop unit index → why it runs in parallel, or not
    loops: tuple[tuple[int, str], ...] = ()
    #: what the policy's cost model compared (``--explain``; empty when it compared none)
    costs: tuple[str, ...] = ()

    def format(self) -> str:
        lines = [f"plan ({self.policy}): {len(self.computes)} compute, {len(self.memories)} memory"]
        lines += [f"  {c.format()}" for c in self.computes]
        lines += [f"  {e.format()}" for e in self.edges]
        lines += [f"  {m.format()}" for m in self.memories]
        return "\n".join(lines)

    def parents(self, name: str) -> tuple[str, ...]:
        return tuple(self._neighbours[0].get(name, ()))

    def dependents(self, name: str) -> tuple[str, ...]:
        return tuple(self._neighbours[1].get(name, ()))

    @cached_property
    def _neighbours(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Each element's parents and dependents, in edge order (built once: a plan is frozen)."""
        parents: dict[str, list[str]] = {}
        dependents: dict[str, list[str]] = {}
        for e in self.edges:
            parents.setdefault(e.target, []).append(e.source)
            dependents.setdefault(e.source, []).append(e.target)
        return parents, dependents

    def graph(self) -> nx.DiGraph[str]:
        graph: nx.DiGraph[str] = nx.DiGraph()
        graph.add_nodes_from(c.name for c in self.computes)
        graph.add_edges_from((e.source, e.target) for e in self.edges)
        return graph

    def validate(self) -> list[str]:
        problems: list[str] = []
        units = [u for c in self.computes for u in c.units]
        if units != list(range(self.unit_count)):  # (1)
            problems.append(f"units are not each in exactly one element, in order: {units}")
        position = {c.name: k for k, c in enumerate(self.computes)}
        bad_edges = False
        for edge in self.edges:  # (2)
            if edge.source not in position or edge.target not in position:
                problems.append(f"edge {edge.format()} names an unknown element")
                bad_edges = True
            elif position[edge.source] >= position[edge.target]:
                problems.append(f"edge {edge.format()} does not go forward in program order")
                bad_edges = True
        if bad_edges:
            return problems  # the rules below assume a DAG of known elements
        delivered = {(e.source, e.target): set(e.values) for e in self.edges}
        rng_edges = {(e.source, e.target) for e in self.edges if e.rng}
        computes = {c.name: c for c in self.computes}
        sends = {c.name: {v.name for v in c.send} for c in self.computes}
        for compute in self.computes:  # (3)
            for value in compute.unpack:
                source = computes.get(value.source)
                if source is None or value.name not in sends[source.name]:
                    problems.append(f"{compute.name} loads {value.name!r} from {value.source}, which does not send it")
                if value.name not in delivered.get((value.source, compute.name), ()):
                    problems.append(f"{compute.name} loads {value.name!r}, but no edge from {value.source} delivers it")
            if compute.rng_from is not None and (
                    (compute.rng_from, compute.name) not in rng_edges
                    or compute.rng_from not in computes or not computes[compute.rng_from].capture_rng):
                problems.append(f"{compute.name} restores the RNG state, which {compute.rng_from} does not deliver")
        memories = {m.name: m for m in self.memories}
        holding: dict[str, MemoryPlan] = {}
        for m in reversed(self.memories):  # the first memory element that holds a value
            holding[m.value] = m
        corunning = {m.name: set(m.corunning) for m in self.memories}
        for compute in self.computes:  # (4)
            for sent in compute.send:
                if not sent.heavy:
                    continue
                memory = memories.get(sent.memory or "")
                if memory is None:
                    problems.append(f"heavy {sent.name!r} sent by {compute.name} has no memory element")
                elif compute.name not in corunning[memory.name]:
                    problems.append(f"{compute.name} writes {sent.name!r} but does not corun with {memory.name}")
            for received in compute.unpack:
                memory = holding.get(received.name)
                if memory is not None and compute.name not in corunning[memory.name]:
                    problems.append(f"{compute.name} reads {received.name!r} but does not corun with {memory.name}")
        if not self._conflicts_ordered(position):  # (5)
            graph = self.graph()
            for k, a in enumerate(self.computes):
                for b in self.computes[k + 1:]:
                    both = conflict(a.reads, a.writes, b.reads, b.writes)
                    if both and not nx.has_path(graph, a.name, b.name):
                        problems.append(f"{a.name} and {b.name} both touch {sorted(map(touched_text, both))} "
                                        "but are not ordered")
        for compute in self.computes:  # (6)
            loop = compute.loop
            if loop is None:
                continue
            if compute.units != (loop.unit,):
                problems.append(f"{compute.name} is a parallel loop but holds units {list(compute.units)}")
            if not {v.name for v in compute.send} <= set(loop.accumulators):
                problems.append(f"{compute.name} is a parallel loop but sends more than its accumulators")
            if compute.rng_from is not None or compute.capture_rng:
                problems.append(f"{compute.name} is a parallel loop but carries the RNG state")
        return problems

    def _conflicts_ordered(self, position: dict[str, int]) -> bool:
        """Rule 5 holds: checked on the pairs of :func:`conflict_steps` alone, which order every
        conflicting pair when they are ordered (the full pairwise search runs only to name what
        is wrong)."""
        steps = conflict_steps([c.reads for c in self.computes], [c.writes for c in self.computes])
        edges = {(position[e.source], position[e.target]) for e in self.edges}
        apart = {pair for pair in steps if pair not in edges}
        return longer_paths(len(self.computes), edges, apart) == apart
