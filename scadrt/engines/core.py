"""The scheduler core: one state machine over a program's DAG, shared by every engine.

The scheduler decides *what* happens; an engine decides *how* (processes, Ray tasks). Engines
feed it events (:meth:`Scheduler.start`, :meth:`Scheduler.instance_done`,
:meth:`Scheduler.instance_failed`) and carry out the commands it returns, in order:

* :class:`StartMemory` — start every instance of a memory element; the engine returns only
  when it is ready to serve (so a compute element never runs before its memory exists);
* :class:`Submit` — run one instance of a compute element with these params;
* :class:`StopMemory` — no compute element that coruns with it remains: free it;
* :class:`Finish` — every compute element is done; here are the results of the sinks;
* :class:`Abort` — an instance failed for good, or the engine lost a memory element
  (:meth:`Scheduler.abort`): stop everything.

State
-----
``waiting``  compute element → parents not done yet (only elements with at least one)
``ready``    compute elements whose parents are done, not yet submitted, in program order
``running``  compute element → instance indices submitted and not finished
``done``     compute element → its results, one per instance, in instance order
``attempts`` (element, instance) → how many times it has failed so far
``memory``   memory element → ``pending`` | ``started`` | ``released``
``users``    memory element → corunning compute elements that are not done yet
``failing``  the failure a run in program order would have stopped at, or None

Program order is :meth:`Program.topological_order` (dependency order, ties by name); ``ready``
is drained in it, so submissions, and so stdout, follow it whatever the timing.

How many workers an engine needs (:meth:`Scheduler.wanted_workers`) follows from the same state:
no more than the instances that can still run at once (the widest antichain of what is not done,
:func:`widest_antichain`), and no more than run now plus what becomes ready when they finish.

Rules: (1) a compute element is ready when all its parents are done; a root receives the run's
input, any other element ``{parent: [result of instance 0, 1, …]}``; (2) before a ready element
is submitted, every memory element it coruns with is started; (3) a memory element is stopped
as soon as no compute element it coruns with remains undone; (4) a failed instance is submitted
again with the same params while it has failed at most ``retries`` times, else the run stops as
a run in program order would have: (5) every instance before the failed one in program order
still runs (and may fail first, which then becomes the failure), none after it is submitted,
and :class:`Abort` comes when the instances before it are all done. So what a failed run prints
does not depend on which of two siblings happened to fail first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from scadrt.dag import ElementSpec, Program
from scadrt.element import element_params
from scadrt.errors import InternalError

__all__ = [
    "Abort", "Command", "Failure", "Finish", "Scheduler", "StartMemory", "StopMemory", "Submit",
    "merged_transports", "widest_antichain",
]

JSON = Any
MemoryState = Literal["pending", "started", "released"]


@dataclass(frozen=True)
class Failure:
    """Why an instance failed: the exception's type and message and the formatted traceback.

    For a memory element that could not start or died, ``element``/``index`` are the memory
    element's, ``memory`` names its instance, and ``message`` says what happened to it.
    """

    element: str
    index: int
    kind: str
    message: str
    traceback: str = ""
    #: the memory instance (``m`` or ``m@3``) when a memory element failed, else ""
    memory: str = ""

    def format(self) -> str:
        return f"{self.element}[{self.index}]: {self.kind}: {self.message}"


@dataclass(frozen=True)
class StartMemory:
    name: str


@dataclass(frozen=True)
class Submit:
    element: str
    index: int
    params: JSON
    attempt: int = 0


@dataclass(frozen=True)
class StopMemory:
    name: str


@dataclass(frozen=True)
class Finish:
    #: sink element → its results, one per instance
    results: dict[str, list[JSON]]


@dataclass(frozen=True)
class Abort:
    failure: Failure


Command = StartMemory | Submit | StopMemory | Finish | Abort


@dataclass
class Scheduler:
    """The state machine; see the module docstring for its state and rules."""

    program: Program
    run_input: JSON = field(default_factory=dict)
    retries: int = 0

    def __post_init__(self) -> None:
        self.order = self.program.topological_order()
        specs = self.program.elements
        self.waiting: dict[str, set[str]] = {n: set(specs[n].parents) for n in self.order if specs[n].parents}
        self.ready: list[str] = [n for n in self.order if not specs[n].parents]
        self.running: dict[str, set[int]] = {}
        self.done: dict[str, list[JSON]] = {}
        self.attempts: dict[tuple[str, int], int] = {}
        self.memory: dict[str, MemoryState] = {m.name: "pending" for m in self.program.memory_elements()}
        self.users: dict[str, set[str]] = {m.name: set(m.corunning_names) for m in self.program.memory_elements()}
        self._partial: dict[str, list[JSON]] = {}
        self.failing: Failure | None = None
        self.aborted = False

    # ------------------------------------------------------------------ events

    def start(self) -> list[Command]:
        commands: list[Command] = []
        for name, users in self.users.items():  # (3) nobody will ever use it
            if not users:
                self.memory[name] = "released"
        commands += self._submit_ready()
        if not self.order:
            commands.append(Finish({}))
        return commands

    def instance_done(self, element: str, index: int, result: JSON) -> list[Command]:
        self._check_running(element, index)
        self.running[element].discard(index)
        self._partial[element][index] = result
        if self.running[element]:
            return []
        del self.running[element]
        self.done[element] = self._partial.pop(element)
        commands: list[Command] = []
        for name, users in self.users.items():  # (3)
            if element in users:
                users.discard(element)
                if not users and self.memory[name] == "started":
                    self.memory[name] = "released"
                    commands.append(StopMemory(name))
        specs = self.program.elements
        for child in specs[element].dependents:  # (1)
            self.waiting[child].discard(element)
            if not self.waiting[child]:
                del self.waiting[child]
                self.ready.append(child)
        self.ready.sort(key=self.order.index)
        commands += self._submit_ready()
        if self.failing is not None:
            return commands + self._settle()
        if len(self.done) == len(self.order):
            sinks = [n for n in self.order if not specs[n].dependents]
            commands.append(Finish({n: self.done[n] for n in sinks}))
        return commands

    def instance_failed(self, failure: Failure, params: JSON) -> list[Command]:
        element, index = failure.element, failure.index
        self._check_running(element, index)
        key = (element, index)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if self.attempts[key] <= self.retries:  # (4)
            return [Submit(element, index, params, self.attempts[key])]
        self.running[element].discard(index)  # (5): it stays not done
        if self.still_needed(element, index):  # it comes before the failure so far, if any
            self.failing = failure
        return self._settle()

    def abort(self, failure: Failure) -> list[Command]:
        """The engine lost something no retry brings back (a memory element): stop now."""
        if self.aborted:
            return []
        self.failing = failure
        self.aborted = True
        return [Abort(failure)]

    # ------------------------------------------------------------------ helpers

    def params_for(self, element: str) -> JSON:
        """Rule (1), as :func:`scadrt.element.element_params` words it for every engine."""
        return element_params(self.program.elements[element].parents, self.run_input, self.done)

    def still_needed(self, element: str, index: int) -> bool:
        """False for an instance after the failure (rule 5): a submitted one need not run."""
        failing = self.failing
        return failing is None or self._position((element, index)) < self._position((failing.element, failing.index))

    def remaining_width(self) -> int:
        """The most instances that can still run at once: the widest antichain of the elements not
        done, a submitted one weighted by its instances still running, one not yet submitted by its
        parallelism (none after a failure: rule 5)."""
        specs = self.program.elements
        weights = {e: len(self.running[e]) if e in self.running else
                   specs[e].parallelism if self.still_needed(e, 0) else 0
                   for e in self.order if e not in self.done}
        return widest_antichain(self.program, weights)

    def wanted_workers(self, cap: int) -> int:
        """How many workers an engine running at most ``cap`` instances at once should have now:
        enough for the instances running and those of the elements that become ready when they
        finish (so a worker is warm before its task comes), never more than can still run at once."""
        specs = self.program.elements
        running = sum(len(indices) for indices in self.running.values())
        ahead = sum(specs[e].parallelism for e, parents in self.waiting.items()
                    if parents <= self.running.keys() and self.still_needed(e, 0))
        return min(cap, running + ahead, self.remaining_width())

    def _position(self, key: tuple[str, int]) -> tuple[int, int]:
        return self.order.index(key[0]), key[1]

    def _settle(self) -> list[Command]:
        """(5) Abort once no instance before the failing one is running or about to be submitted."""
        if any(self.still_needed(e, i) for e, indices in self.running.items() for i in indices):
            return []
        if self.failing is None:
            raise InternalError("settling a run that has not failed")
        self.aborted = True
        return [Abort(self.failing)]

    def _submit_ready(self) -> list[Command]:
        # (5): after a failure, only elements before it still run (index 0: their first instance)
        runnable = [e for e in self.ready if self.still_needed(e, 0)]
        self.ready = [e for e in self.ready if e not in runnable]
        return self._submit(runnable)

    def _submit(self, elements: list[str]) -> list[Command]:
        commands: list[Command] = []
        specs = self.program.elements
        for element in elements:
            for peer in specs[element].corunning_names:  # (2)
                if self.memory.get(peer) == "pending":
                    self.memory[peer] = "started"
                    commands.append(StartMemory(peer))
            params = self.params_for(element)
            count = specs[element].parallelism
            self.running[element] = set(range(count))
            self._partial[element] = [None] * count
            commands += [Submit(element, i, params) for i in range(count)]
        return commands

    def _check_running(self, element: str, index: int) -> None:
        if self.aborted or index not in self.running.get(element, ()):
            raise InternalError(f"event for {element}[{index}], which is not running")

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain, sorted data (for tests and debugging)."""
        return {
            "waiting": {k: sorted(v) for k, v in sorted(self.waiting.items())},
            "ready": list(self.ready),
            "running": {k: sorted(v) for k, v in sorted(self.running.items())},
            "done": dict(sorted(self.done.items())),
            "attempts": dict(sorted(self.attempts.items())),
            "memory": dict(sorted(self.memory.items())),
            "users": {k: sorted(v) for k, v in sorted(self.users.items())},
            "failing": self.failing.format() if self.failing else None,
        }


def merged_transports(spec: ElementSpec) -> dict[str, str]:
    """The transports to the memory elements merged into ``spec``'s process (``withMerged``): a
    region in the instance's own memory, as Scad's ``rdma_local`` was, on every engine."""
    return {m.name: f"{m.name};local;size,{m.size};" for m in spec.merged_memory}


def widest_antichain(program: Program, weights: Mapping[str, int]) -> int:
    """The largest total weight of compute elements none of which depends on another, directly or
    not: how many instances can run at once when element ``e`` has ``weights[e]`` of them (absent:
    0). By Dilworth's theorem (each element taken as ``weights[e]`` incomparable copies) it is the
    total weight minus a maximum flow from each element to those that come after it.

    The network has the program's own edges only, not one per pair of comparable elements: each
    element also passes flow through (``in`` → ``out``, unbounded), so a flow from ``a`` reaches
    every element after it, through elements that are done or weigh nothing. That keeps one call
    linear in the program's size times the flow; the pair-per-ancestor network was quadratic, and
    the engine asks after every change of state (a chain of 300 elements ran 20 times slower)."""
    specs = program.elements
    order = program.topological_order()
    # nodes: "s", "t", ("out", e), ("in", e); capacity None is unbounded
    capacity: dict[object, dict[object, int | None]] = {"s": {}, "t": {}}
    for name in order:
        capacity[("out", name)] = {}
        capacity[("in", name)] = {("out", name): None}
    for name in order:
        for parent in specs[name].parents:
            capacity[("out", parent)][("in", name)] = None
        weight = weights.get(name, 0)
        if weight > 0:
            capacity["s"][("out", name)] = weight
            capacity[("in", name)]["t"] = weight
    return sum(w for n in order if (w := weights.get(n, 0)) > 0) - _max_flow(capacity)


def _max_flow(capacity: dict[object, dict[object, int | None]]) -> int:
    """Edmonds–Karp from "s" to "t" (``capacity`` is changed into the residual graph), after a
    greedy first pass along the paths ``s → a → b → t``: on the engine's networks (a chain above
    all) that pass finds most of the flow, and each unit it finds saves a search of the graph."""
    for node, edges in list(capacity.items()):
        for other in edges:
            capacity.setdefault(other, {}).setdefault(node, 0)
    total = 0
    for a in list(capacity["s"]):
        for b in list(capacity[a]):
            left = [capacity[u][v] for u, v in (("s", a), (a, b), (b, "t")) if v in capacity[u]]
            bounded = [c for c in left if c is not None]
            if len(left) == 3 and bounded and (pushed := min(bounded)) > 0:
                _push(capacity, (("s", a), (a, b), (b, "t")), pushed)
                total += pushed
    while True:
        previous: dict[object, object] = {"s": "s"}
        queue: deque[object] = deque(["s"])
        while queue and "t" not in previous:
            node = queue.popleft()
            for other, left_ in capacity[node].items():
                if other not in previous and (left_ is None or left_ > 0):
                    previous[other] = node
                    queue.append(other)
        if "t" not in previous:
            return total
        path: list[tuple[object, object]] = []
        node = "t"
        while node != "s":
            path.append((previous[node], node))
            node = previous[node]
        pushed = min(left_ for u, v in path if (left_ := capacity[u][v]) is not None)
        _push(capacity, path, pushed)
        total += pushed


def _push(capacity: dict[object, dict[object, int | None]], path: Iterable[tuple[object, object]],
          amount: int) -> None:
    """Send ``amount`` along ``path`` in the residual graph (unbounded edges stay unbounded)."""
    for u, v in path:
        forward, backward = capacity[u][v], capacity[v][u]
        if forward is not None:
            capacity[u][v] = forward - amount
        if backward is not None:
            capacity[v][u] = backward + amount
