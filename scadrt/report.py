"""RunReport: what a run did, per element instance and per memory element, and its totals.

Times are seconds since the run started (floats); sizes are bytes. GiB·s (2**30 bytes × s) is
memory × time summed over everything that held memory: compute instances (peak RSS × duration)
and memory elements (resident bytes at release × lifetime, the declared size when the resident
bytes are unknown; regions are allocated lazily, so the declared size overstates them).

A report holds no secret: a memory element's address is its transport descriptor with every
``token,…`` value redacted (:func:`~scadrt.transports.redact_tokens`), whoever built the
:class:`MemoryRun`, so neither the JSON nor the HTML page can leak a memory server's token.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from scadrt.errors import ScadError
from scadrt.profile import ProfileSample
from scadrt.transports import redact_tokens

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scadrt.dag import Program
    from scadrt.engines.core import Failure

__all__ = ["InstanceRun", "MemoryRun", "RunFailed", "RunReport", "RunResult", "program_report"]

_GiB = 2**30


@dataclass(frozen=True)
class InstanceRun:
    """One attempt of one compute element instance."""

    element: str
    index: int
    attempt: int
    #: ``ok``, ``failed`` (an exception) or ``crashed`` (killed, segfault, out of memory)
    status: str
    start: float
    end: float
    pid: int
    #: peak resident set size of the instance's process (from the kernel, exact)
    peak_rss: int
    cpu_user: float
    cpu_system: float
    #: (time, RSS) samples taken while it ran, for memory-over-time plots
    rss_samples: tuple[tuple[float, int], ...] = ()
    #: transport kind → {"read": bytes, "written": bytes}
    transfer: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the cluster node it ran on (the Ray engine's node id; "" on the local engine)
    node: str = ""
    #: what the instance's ``action.profile(n)`` calls recorded
    profile: tuple[ProfileSample, ...] = ()

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def gib_seconds(self) -> float:
        return self.peak_rss / _GiB * self.duration


@dataclass(frozen=True)
class MemoryRun:
    """One instance of a memory element, from start to release."""

    element: str
    instance: str
    transport: str
    size: int
    start: float
    end: float
    #: where it was served (a tcp URL or a shared-memory segment name)
    address: str = ""
    #: bytes of the region actually in memory at release (regions are allocated lazily); 0: unknown
    used: int = 0
    #: the cluster node that held it (the Ray engine's node id; "" on the local engine)
    node: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", redact_tokens(self.address, limit=None))

    @property
    def gib_seconds(self) -> float:
        """Memory × time of what the region really occupied (its size when that is unknown)."""
        return (self.used or self.size) / _GiB * (self.end - self.start)


@dataclass(frozen=True)
class RunReport:
    program: str
    #: ``ok``, ``failed`` or ``interrupted``
    status: str
    wall: float
    #: dispatch order of compute elements (program order)
    order: tuple[str, ...]
    instances: tuple[InstanceRun, ...]
    memory: tuple[MemoryRun, ...]
    #: dependent edges (parent, child) between compute elements, for drawing the DAG
    edges: tuple[tuple[str, str], ...] = ()
    #: memory element → corunning compute elements
    corunning: tuple[tuple[str, str], ...] = ()
    failure: str = ""

    @property
    def gib_seconds(self) -> float:
        return sum(i.gib_seconds for i in self.instances) + sum(m.gib_seconds for m in self.memory)

    @property
    def peak_rss(self) -> int:
        return max((i.peak_rss for i in self.instances), default=0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["totals"] = {
            "wall": self.wall,
            "gib_seconds": self.gib_seconds,
            "largest_instance_peak_rss": self.peak_rss,
            "memory_element_bytes": sum(m.size for m in self.memory),
            "bytes_read": sum(t.get("read", 0) for i in self.instances for t in i.transfer.values()),
            "bytes_written": sum(t.get("written", 0) for i in self.instances for t in i.transfer.values()),
        }
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


@dataclass(frozen=True)
class RunResult:
    """What a successful run gives back, on every engine."""

    report: RunReport
    #: sink element → its results (one per instance)
    results: dict[str, list[Any]]


def program_report(program: Program, *, status: str, wall: float, order: tuple[str, ...],
                   instances: Iterable[InstanceRun], memory: Iterable[MemoryRun], failure: str = "") -> RunReport:
    """The report of a run of ``program`` (any engine): instances by start time, its DAG's edges."""
    return RunReport(
        program=program.name, status=status, wall=wall, order=order,
        instances=tuple(sorted(instances, key=lambda i: (i.start, i.element, i.index))),
        memory=tuple(memory),
        edges=tuple((p, e.name) for e in program.compute_elements() for p in e.parents),
        corunning=tuple((m.name, c) for m in program.memory_elements() for c in m.corunning_names),
        failure=failure,
    )


class RunFailed(ScadError):
    """An element failed for good (``failure`` says which and why); ``report`` is complete up to
    the failure. It lives beside the report it carries, so that :mod:`scadrt.errors` stays a leaf."""

    def __init__(self, failure: Failure, report: RunReport) -> None:
        super().__init__(failure.format())
        self.failure = failure
        self.report = report
