"""Choosing cuts and building the :class:`~scadc.partition.plan.PartitionPlan`.

Where a cut is *allowed* (boundary ``i`` lies between unit ``i-1`` and unit ``i``):

(1) no value live there is non-transferable (an open file, a generator, a lambda …): its whole
    live range stays in one element;
(2) no value live there has another live name for the same object: two packed copies would
    come apart, and the program could observe it;
(3) no unit before it may ``return`` from the entry function: everything after an early exit
    stays with it, so nothing runs that the original would have skipped;
(4) no module-level state that helpers change (``module:NAME``) is touched on both sides;
(5) the global RNGs may be touched on both sides: their state is carried across the cut.

Which allowed cuts are *taken* is the policy's choice (:mod:`scadc.partition.policies`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from scadc.analysis import Analysis
from scadc.errors import InternalCompilerError
from scadc.partition.plan import ComputePlan, MemoryPlan, PartitionPlan, ValuePlan
from scadc.partition.policies import Policy, reads_of

__all__ = ["allowed_cuts", "build_plan"]

_MiB = 2**20
_RNG = frozenset({"numpy.random", "random"})
#: memory element size when the analysis has no estimate (regions are allocated lazily)
_UNKNOWN_SIZE = 1024 * _MiB


def allowed_cuts(analysis: Analysis) -> dict[int, str]:
    """Boundary index → ``""`` if a cut is allowed there, else the rule that forbids it."""
    units = analysis.units
    verdict: dict[int, str] = {}
    first_exit = next((u.index for u in units if u.exits), len(units))
    module_state: dict[str, tuple[int, int]] = {}
    for u in units:
        for state in u.hidden:
            if state.startswith("module:"):
                lo, hi = module_state.get(state, (u.index, u.index))
                module_state[state] = (min(lo, u.index), max(hi, u.index))
    for boundary in analysis.boundaries[1:-1]:
        i = boundary.index
        live = {v.name: v for v in boundary.live}
        pinned = [v for v in boundary.live if v.not_transferable is not None]
        aliased = [v for v in boundary.live if v.aliases & live.keys()]
        spanning = [s for s, (lo, hi) in sorted(module_state.items()) if lo < i <= hi]
        if pinned:  # (1)
            verdict[i] = f"(1) {pinned[0].name!r} cannot cross a cut: {pinned[0].not_transferable}"
        elif aliased:  # (2)
            other = sorted(aliased[0].aliases & live.keys())[0]
            verdict[i] = f"(2) {aliased[0].name!r} and {other!r} may be the same object"
        elif i > first_exit:  # (3)
            verdict[i] = f"(3) unit {first_exit} may return early"
        elif spanning:  # (4)
            verdict[i] = f"(4) {spanning[0]} is changed on both sides"
        else:
            verdict[i] = ""
    return verdict


def _heavy(analysis: Analysis, name: str) -> bool:
    decision = analysis.heavy.get(name)
    return bool(decision and decision.heavy)


def _size(analysis: Analysis, name: str) -> int | None:
    decision = analysis.heavy.get(name)
    return decision.size if decision else None


def build_plan(analysis: Analysis, policy: Policy) -> PartitionPlan:
    """Cut where ``policy`` says, among the allowed cuts, and describe the resulting elements."""
    allowed = allowed_cuts(analysis)
    cuts, reasons = policy.choose(analysis, sorted(i for i, why in allowed.items() if not why))
    decisions = dict(allowed)
    for i, why in reasons.items():
        decisions[i] = why
    for i, why in allowed.items():
        if why:
            decisions[i] = f"not cut: {why}"
    plan = _describe(analysis, sorted(cuts), policy.name, tuple(sorted(decisions.items())))
    problems = plan.validate()
    if problems:
        raise InternalCompilerError("the partition plan is invalid:\n  " + "\n  ".join(problems))
    return plan


def _describe(analysis: Analysis, cuts: Sequence[int], policy: str,
              decisions: tuple[tuple[int, str], ...]) -> PartitionPlan:
    units = analysis.units
    n = len(units)
    edges = [0, *cuts, n]
    groups = [tuple(range(a, b)) for a, b in itertools.pairwise(edges) if b > a]
    rng_used = any(u.hidden & _RNG for u in units)
    names = [f"step{k + 1:02d}" for k in range(len(groups))]
    # what each element loads: the values live on entry that its statements read or change
    unpacks = [
        tuple(sorted((units[g[0]].live_in if k else frozenset()) & set().union(*(reads_of(units[i]) for i in g))))
        for k, g in enumerate(groups)
    ]
    # a value live across a cut but loaded by no later element is live only for a `del`:
    # it is not sent at all (the `del` gets a placeholder), so it never costs a memory element
    loaded_later = [set().union(*unpacks[k + 1:]) for k in range(len(groups))]
    crossing = {name for k, i in enumerate(cuts) for name in analysis.boundaries[i].names & loaded_later[k]}
    memory_of = {name: f"mem_{name}" for name in sorted(crossing) if _heavy(analysis, name)}

    computes: list[ComputePlan] = []
    users: dict[str, list[str]] = {m: [] for m in memory_of.values()}
    received: set[str] = set()
    for k, group in enumerate(groups):
        first, last = units[group[0]], units[group[-1]]
        touched = set().union(*(reads_of(units[i]) for i in group))
        deleted = set().union(*(u.deletes for u in (units[i] for i in group)))
        defined = set().union(*(u.defs for u in (units[i] for i in group)))
        changed = set().union(*(u.mutated | u.defs for u in (units[i] for i in group)))
        live_in = first.live_in if k else frozenset()
        unpack = unpacks[k]
        # only deleted here: the name must exist for `del`, but its value need not be loaded
        placeholders = tuple(sorted((live_in & deleted) - touched))
        send: list[ValuePlan] = []
        if k < len(groups) - 1:
            for name in sorted(last.live_out & loaded_later[k]):
                memory = memory_of.get(name)
                forward = name in received and name not in unpack and name not in defined
                how = "forward" if forward else "unpacked"
                send.append(ValuePlan(name, memory is not None, memory, how, name in changed))
        memories = sorted({memory_of[v] for v in unpack if v in memory_of}
                          | {v.memory for v in send if v.memory and v.how == "unpacked"})
        for memory in memories:
            users[memory].append(names[k])
        holds = sum(_size(analysis, v) or 0 for v in set(unpack) | (defined & set(analysis.heavy))
                    if _heavy(analysis, v))
        computes.append(ComputePlan(
            name=names[k], units=group, unpack=unpack, placeholders=placeholders, send=tuple(send),
            memories=tuple(memories),
            restore_rng=rng_used and k > 0, capture_rng=rng_used and k < len(groups) - 1,
            lines=(first.unit.first_line, last.unit.span.end_line or last.unit.span.line), holds=holds,
        ))
        received = {v.name for v in send}

    memories = []
    for name, memory in sorted(memory_of.items()):
        decision = analysis.heavy[name]
        size = decision.size
        if size is None:
            region, reason = _UNKNOWN_SIZE, "size unknown: 1 GiB (regions are allocated lazily)"
        elif decision.reason.startswith("profile"):
            # measured: headroom for the allocator's table, alignment, and a value that grows a little
            region = max(16 * _MiB, math.ceil(size * 1.5 / _MiB) * _MiB)
            reason = f"measured {size} B × 1.5, at least 16 MiB"
        else:
            # a static estimate covers one version of the value; later ones may be larger
            region = max(256 * _MiB, math.ceil(size * 4 / _MiB) * _MiB)
            reason = f"static estimate {size} B × 4, at least 256 MiB (profile for a tighter size)"
        memories.append(MemoryPlan(memory, name, region, tuple(users[memory]), reason))
    return PartitionPlan(policy, tuple(computes), tuple(memories), decisions, n)
