"""The partition plan: which units form which compute element, and which memory elements exist.

A plan is the boundary between the partitioner and code generation: plain frozen values, no
networkx, no libcst. Compute elements form a chain in program order (element ``k`` is the only
parent of element ``k+1``); every value live across a cut is listed on the element that sends it.

Validation (:meth:`PartitionPlan.validate`) returns a list of problems; an empty list means:
(1) every unit is in exactly one compute element, in order; (2) the element graph is acyclic;
(3) every value an element loads was sent by the element before it, and every value an element
passes on it received (a value live across a cut only for a later ``del`` is not sent at all);
(4) every heavy value that crosses a cut lives in a memory element that coruns with every
element that reads or writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

__all__ = ["ComputePlan", "MemoryPlan", "PartitionPlan", "ValuePlan"]


@dataclass(frozen=True)
class ValuePlan:
    """How one value crosses the cut after an element."""

    name: str
    #: heavy values travel through memory element ``memory``; small ones inline in the result
    heavy: bool
    memory: str | None
    #: ``unpacked``: the element holds it as a local (it came in and is packed again, or it was made here);
    #: ``forward``: the element does not touch it and passes the packed form on unchanged
    how: str
    #: the element may have changed it in place (a heavy value is written back only then)
    changed: bool


@dataclass(frozen=True)
class ComputePlan:
    name: str
    #: unit indices, consecutive, in program order
    units: tuple[int, ...]
    #: values received from the parent and unpacked into locals (sorted)
    unpack: tuple[str, ...]
    #: values received only to be deleted: bound to None, never loaded
    placeholders: tuple[str, ...]
    #: values sent on to the next element (empty for the last)
    send: tuple[ValuePlan, ...]
    #: memory elements this element reads or writes
    memories: tuple[str, ...]
    #: restore the global RNG state on entry / capture it on exit
    restore_rng: bool
    capture_rng: bool
    #: lines of the original file this element's statements come from (first, last)
    lines: tuple[int, int]
    #: estimated bytes of heavy values the element holds at once
    holds: int

    def format(self) -> str:
        send = ", ".join(
            f"{v.name}{'*' if v.heavy else ''}{'>' if v.how == 'forward' else ''}{'!' if v.changed else ''}"
            for v in self.send)
        rng = ("restore " if self.restore_rng else "") + ("capture" if self.capture_rng else "")
        return (f"{self.name}: units {self.units[0]}-{self.units[-1]} (lines {self.lines[0]}-{self.lines[1]})"
                f" unpack [{', '.join(self.unpack)}] send [{send}] memories [{', '.join(self.memories)}]"
                f"{' rng ' + rng.strip() if rng else ''}")


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
    memories: tuple[MemoryPlan, ...]
    #: boundary index → why it was cut (or not)
    decisions: tuple[tuple[int, str], ...]
    unit_count: int

    def format(self) -> str:
        lines = [f"plan ({self.policy}): {len(self.computes)} compute, {len(self.memories)} memory"]
        lines += [f"  {c.format()}" for c in self.computes]
        lines += [f"  {m.format()}" for m in self.memories]
        return "\n".join(lines)

    def graph(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(c.name for c in self.computes)
        graph.add_edges_from((a.name, b.name) for a, b in zip(self.computes, self.computes[1:], strict=False))
        return graph

    def validate(self) -> list[str]:
        problems: list[str] = []
        units = [u for c in self.computes for u in c.units]
        if units != list(range(self.unit_count)):  # (1)
            problems.append(f"units are not each in exactly one element, in order: {units}")
        graph = self.graph()
        if not nx.is_directed_acyclic_graph(graph):  # (2)
            problems.append(f"element graph has a cycle: {nx.find_cycle(graph)}")
        memories = {m.name: m for m in self.memories}
        for before, after in zip(self.computes, self.computes[1:], strict=False):  # (3)
            sent = {v.name for v in before.send}
            for name in after.unpack:
                if name not in sent:
                    problems.append(f"{after.name} unpacks {name!r}, which {before.name} does not send")
            for value in after.send:
                if value.how == "forward" and value.name not in sent:
                    problems.append(f"{after.name} forwards {value.name!r}, which it never received")
        for compute in self.computes:  # (4)
            for value in compute.send:
                if not value.heavy:
                    continue
                memory = memories.get(value.memory or "")
                if memory is None:
                    problems.append(f"heavy {value.name!r} sent by {compute.name} has no memory element")
                elif value.how == "unpacked" and compute.name not in memory.corunning:
                    problems.append(f"{compute.name} writes {value.name!r} but does not corun with {memory.name}")
            for name in compute.unpack:
                memory = next((m for m in self.memories if m.value == name), None)
                if memory is not None and compute.name not in memory.corunning:
                    problems.append(f"{compute.name} reads {name!r} but does not corun with {memory.name}")
        return problems
