"""Memory backends of the local engine: how a memory element comes to exist on this machine.

``shm``  a POSIX shared-memory segment per memory instance, owned by the engine's process;
         compute instances map it and copy directly (no server in the data path).
``tcp``  a memory-server process per memory instance on 127.0.0.1 (a free port each), forked
         from the engine and reached over pyzmq; the same path a multi-machine run takes.

Each backend is a :class:`MemoryBackend`. Its :meth:`~MemoryBackend.start` returns, per memory
instance (``name`` or ``name@i``), the tail of a transport descriptor (``IMPL;KEY,VALUE;…``);
the engine prefixes the name under which each compute element asks for it (its corunning
``trans``), so the element code never changes.

Rules:

1. Every memory server gets a fresh random token (:data:`TOKEN_BYTES` of randomness) in its
   environment (``SCAD_TOKEN``, never its command line); only the descriptors the engine hands
   to the run's own compute instances carry it, so another user of the machine can neither
   read nor write the region. The report shows descriptors with the token redacted.
2. At most ``max_starting`` servers (default: cores + 2) are starting at any time; the next one
   is launched as soon as one is ready. Each is forked from the engine, which has imported zmq
   and numpy once (:mod:`scadrt.engines.server_fork`), and a parallel memory element must not
   fork hundreds of them at once.
3. A memory instance that cannot start raises :class:`MemoryStartError`, naming the element and
   the instance; whatever did start is freed by :meth:`close`, as always.
4. :meth:`lost` names every running instance that went away by itself (a server that exited, a
   segment someone removed), so the engine reports that, not the symptom in a compute element.
   The engine polls it while the run goes on where ``poll_lost`` is set (tcp: a dead server
   stops its users at once); a removed segment harms only instances that attach later, so shm
   is asked only when an instance failed.
5. Segments are named to the run's watcher before they are created (:mod:`scadrt.engines.watcher`);
   servers stop by themselves when the engine's process dies.
6. :meth:`~MemoryBackend.prepare` begins starting memory elements that will be needed soon (the
   engine asks when the elements before their first user are submitted), so that a server's
   start-up (a fork, a bind and a region: milliseconds, more on a busy machine) overlaps the
   work before it instead of holding up its first user. Only tcp has anything to begin; a
   server that fails to start is reported at :meth:`~MemoryBackend.start`, as always.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from scadrt.dag import ElementSpec, Program
from scadrt.errors import TransportError, UserError
from scadrt.readiness import readable
from scadrt.sizes import format_size
from scadrt.transports import TRANSPORT_CHOICES
from scadrt.transports.shm import SharedRegion, new_segment_name

if TYPE_CHECKING:
    from scadrt.transports.launcher import ServerProcess

__all__ = [
    "TOKEN_BYTES", "MemoryBackend", "MemoryStartError", "SegmentGuard", "ShmMemory", "TcpMemory",
    "client_modules", "memory_backend",
]

#: random bytes in each memory server's token (rule 1)
TOKEN_BYTES = 32
#: how long a memory server may take from launch to listening
READY_TIMEOUT = 20.0


class SegmentGuard(Protocol):
    """Told the name of each segment before it is created (the run's watcher)."""

    def segment(self, name: str) -> None: ...


class MemoryStartError(Exception):
    """A memory instance could not start (rule 3); the engine reports it as the run's failure."""

    def __init__(self, element: str, instance: str, reason: str) -> None:
        which = f"instance {instance}: " if instance != element else ""
        super().__init__(f"memory element {element!r} could not start: {which}{reason}")
        self.element, self.instance, self.reason = element, instance, reason


class MemoryBackend(Protocol):
    """Starts and stops memory elements for the engine (the rules in the module docstring);
    :class:`ShmMemory` and :class:`TcpMemory` are the two there are."""

    kind: str
    #: whether the engine should poll :meth:`lost` during the run, or ask only when an instance failed
    poll_lost: bool
    #: what compute instances import to reach its memory elements: workers import it before they fork them
    client_modules: tuple[str, ...]

    def prepare(self, specs: Sequence[ElementSpec]) -> None:
        """Begin starting ``specs`` without waiting (rule 6); :meth:`start` finishes the job."""
        ...

    def launched(self, name: str) -> float | None:
        """When (``time.time()``) memory element ``name`` began to start, if :meth:`prepare` began it."""
        ...

    def start(self, specs: Sequence[ElementSpec], watcher: SegmentGuard | None = None) -> dict[str, dict[str, str]]:
        """Start every instance of each of ``specs`` (at once where that is faster); return
        element name → instance name → transport descriptor. Raise :class:`MemoryStartError`
        for an instance that cannot start; name each segment to ``watcher`` before creating it."""
        ...

    def lost(self) -> list[tuple[str, str, str]]:
        """(element, instance, what happened) of each running instance that went away by itself."""
        ...

    def stop(self, name: str) -> list[int]:
        """Free every instance of memory element ``name``; return the bytes each really used."""
        ...

    def close(self) -> None:
        """Stop everything still running (idempotent)."""
        ...



class ShmMemory:
    kind = "shm"
    poll_lost = False  # rule 4
    client_modules: tuple[str, ...] = ("scadrt.transports.shm",)

    def __init__(self) -> None:
        self.regions: dict[str, list[SharedRegion]] = {}
        self.instances: dict[str, list[str]] = {}

    def prepare(self, specs: Sequence[ElementSpec]) -> None:
        """Nothing to begin: creating a segment takes microseconds (rule 6)."""

    def launched(self, name: str) -> float | None:
        return None

    def start(self, specs: Sequence[ElementSpec], watcher: SegmentGuard | None = None) -> dict[str, dict[str, str]]:
        started = {}
        for spec in specs:
            regions = self.regions.setdefault(spec.name, [])
            self.instances[spec.name] = list(spec.instance_names())
            for instance in spec.instance_names():
                name = new_segment_name()
                if watcher is not None:
                    watcher.segment(name)  # rule 5: before it exists
                try:
                    regions.append(SharedRegion(spec.limits.mem, name=name))
                except (OSError, OverflowError) as exc:  # ENOMEM, ENOSPC, EMFILE…
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                    raise MemoryStartError(spec.name, instance, f"cannot create a shared-memory segment of "
                                           f"{format_size(spec.limits.mem)}: {reason}") from exc
            started[spec.name] = {instance: f"shm;segment,{region.name};"
                                  for instance, region in zip(spec.instance_names(), regions, strict=True)}
        return started

    def stop(self, name: str) -> list[int]:
        """Free every instance; return the bytes each had resident (tmpfs blocks in use)."""
        used = []
        self.instances.pop(name, None)
        for region in self.regions.pop(name, []):
            try:
                used.append(os.stat(f"/dev/shm/{region.name}").st_blocks * 512)
            except OSError:
                used.append(0)
            region.close()
        return used

    def lost(self) -> list[tuple[str, str, str]]:
        """(element, instance, what happened) of each segment that disappeared (rule 4)."""
        return [(name, instance, f"its shared-memory segment /dev/shm/{region.name} was removed")
                for name, regions in self.regions.items()
                for instance, region in zip(self.instances.get(name, ()), regions, strict=False)
                if not os.path.exists(f"/dev/shm/{region.name}")]

    def close(self) -> None:
        for name in list(self.regions):
            self.stop(name)


@dataclass(eq=False)
class _Served:
    """One memory instance's server and the token it requires."""

    instance: str
    server: ServerProcess
    token: str

    @property
    def pid(self) -> int:
        return self.server.pid


class TcpMemory:
    kind = "tcp"
    poll_lost = True  # rule 4
    client_modules: tuple[str, ...] = ("scadrt.transports.tcp",)  # zmq: some 0.1 s in each instance otherwise

    def __init__(self, max_starting: int | None = None) -> None:
        # pyzmq is imported only when a run really uses tcp
        if max_starting is not None and max_starting < 1:
            raise UserError("at least one memory server must be allowed to start at a time")
        self.max_starting = max_starting or (os.cpu_count() or 1) + 2
        self.servers: dict[str, list[_Served]] = {}
        #: servers told to stop, not yet reaped
        self.stopping: list[ServerProcess] = []
        #: servers launched and not yet seen listening (rule 2 counts them), with their deadline
        self.starting: list[tuple[ElementSpec, _Served, float]] = []
        #: memory element → when prepare() launched its first server (rule 6)
        self.prepared: dict[str, float] = {}
        #: prepared memory elements that failed to start: reported when they are started (rule 6)
        self.broken: dict[str, MemoryStartError] = {}

    def _launch(self, spec: ElementSpec, instance: str) -> None:
        from scadrt.engines.server_fork import fork_memory_server

        token = secrets.token_urlsafe(TOKEN_BYTES)
        try:
            server = fork_memory_server(spec.limits.mem, token=token)
        except OSError as exc:  # EAGAIN (too many processes), ENOMEM…
            raise MemoryStartError(spec.name, instance, f"cannot start its memory server: {exc.strerror}") from exc
        served = _Served(instance, server, token)
        self.servers.setdefault(spec.name, []).append(served)
        self.starting.append((spec, served, time.monotonic() + READY_TIMEOUT))

    def _unlaunched(self, specs: Sequence[ElementSpec]) -> deque[tuple[ElementSpec, str]]:
        return deque((spec, instance) for spec in specs for instance in spec.instance_names()[
            len(self.servers.get(spec.name, ())):])

    def prepare(self, specs: Sequence[ElementSpec]) -> None:
        """Launch the servers of ``specs`` not launched yet, as many as rule 2 allows now (rule 6);
        a launch that fails is left to :meth:`start`, which reports it."""
        for spec, instance in self._unlaunched(specs):
            if len(self.starting) >= self.max_starting:
                return
            self.prepared.setdefault(spec.name, time.time())
            try:
                self._launch(spec, instance)
            except MemoryStartError as exc:
                self.broken.setdefault(spec.name, exc)
                return

    def launched(self, name: str) -> float | None:
        return self.prepared.get(name)

    def start(self, specs: Sequence[ElementSpec], watcher: SegmentGuard | None = None) -> dict[str, dict[str, str]]:
        for spec in specs:
            if spec.name in self.broken:
                raise self.broken[spec.name]
        todo = self._unlaunched(specs)
        wanted = {spec.name for spec in specs}
        starting = self.starting  # prepared servers of other elements finish starting here too
        while todo or any(spec.name in wanted for spec, _, _ in starting):
            while todo and len(starting) < self.max_starting:  # rule 2
                self._launch(*todo.popleft())
            wait = max(0.0, min(deadline for _, _, deadline in starting) - time.monotonic())
            ready = readable([s.server.output for _, s, _ in starting], wait)
            now = time.monotonic()
            for entry in list(starting):
                spec, served, deadline = entry
                if served.server.output in ready or now >= deadline:
                    starting.remove(entry)
                    try:
                        served.server.wait_ready(0.0)
                    except TransportError as exc:
                        failed = MemoryStartError(spec.name, served.instance, str(exc))
                        if spec.name in wanted:
                            raise failed from exc
                        self.broken.setdefault(spec.name, failed)  # prepared: its own start reports it
        return {spec.name: {s.instance: f"tcp;url,{s.server.url};token,{s.token};" for s in self.servers[spec.name]}
                for spec in specs}

    def stop(self, name: str) -> list[int]:
        """Stop every instance; return each server's peak resident bytes (VmHWM). The servers
        get SIGKILL and are reaped later (at the next stop, or at close): waiting for each to
        exit would hold up the next element. Not SIGTERM: a server notices that only at its
        next poll (up to 0.1 s, holding its region meanwhile), and the region is all it has,
        which nobody reads any more."""
        used = []
        for served in self.servers.pop(name, []):
            used.append(_peak_rss(served.pid))
            served.server.process.kill()
            self.stopping.append(served.server)
        exited = [s for s in self.stopping if s.process.poll() is not None]
        for server in exited:
            server.stop()  # only closes its pipe
        self.stopping = [s for s in self.stopping if s not in exited]
        return used

    def lost(self) -> list[tuple[str, str, str]]:
        """(element, instance, what happened) of each server that exited by itself (rule 4)."""
        gone = []
        for name, served in self.servers.items():
            for s in served:
                status = s.server.process.poll()
                if status is not None:
                    gone.append((name, s.instance, f"its memory server {describe_status(status)}"))
        return gone

    def close(self) -> None:
        for name in list(self.servers):
            self.stop(name)
        for server in self.stopping:
            server.stop()  # waits, then SIGKILL
        self.stopping = []


def describe_status(code: int) -> str:
    """A process's exit code (negative: the signal), in words."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def client_modules(transport: str) -> tuple[str, ...]:
    """What compute instances import to reach memory elements over ``transport`` (``--transport``),
    as the backend :func:`memory_backend` picks says (nothing for a transport it refuses)."""
    return {"tcp": TcpMemory.client_modules, "shm": ShmMemory.client_modules,
            "auto": ShmMemory.client_modules}.get(transport, ())


def memory_backend(transport: str, program: Program) -> ShmMemory | TcpMemory | None:
    """The backend for ``--transport``; None when the program has no memory elements."""
    if transport not in TRANSPORT_CHOICES:
        raise UserError(f"unknown transport {transport!r}; choose one of {', '.join(TRANSPORT_CHOICES)}")
    if transport == "local":
        raise UserError("the local transport keeps a region inside one process, but the local engine runs "
                        "each element in its own process; use --transport shm (one host) or tcp")
    if transport == "rdma":
        from scadrt.errors import TransportUnavailableError
        from scadrt.transports.rdma import find_device

        try:
            find_device()
        except TransportUnavailableError as exc:
            raise UserError(f"--transport rdma: {exc}") from exc
        raise UserError("--transport rdma: the local engine cannot start RDMA memory servers yet; "
                        "use --transport shm or tcp")
    if not program.memory_elements():
        return None
    return TcpMemory() if transport == "tcp" else ShmMemory()
