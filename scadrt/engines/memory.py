"""Memory backends of the local engine: how a memory element comes to exist on this machine.

``shm``  a POSIX shared-memory segment per memory instance, owned by the engine's process;
         compute instances map it and copy directly (no server in the data path).
``tcp``  a memory-server process per memory instance on 127.0.0.1 (a free port each), reached
         over pyzmq; the same path a multi-machine run takes.

A backend's :meth:`start` returns, per memory instance (``name`` or ``name@i``), the tail of a
transport descriptor (``IMPL;KEY,VALUE;…``); the engine prefixes the name under which each
compute element asks for it (its corunning ``trans``), so the element code never changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from scadrt.dag import ElementSpec, Program
from scadrt.errors import UserError
from scadrt.transports.shm import SharedRegion

if TYPE_CHECKING:
    from scadrt.transports.memory_server import ServerProcess

__all__ = ["TRANSPORT_CHOICES", "ShmMemory", "TcpMemory", "memory_backend"]

TRANSPORT_CHOICES = ("auto", "local", "shm", "tcp", "rdma")


class ShmMemory:
    kind = "shm"

    def __init__(self) -> None:
        self.regions: dict[str, list[SharedRegion]] = {}

    def start(self, specs: Sequence[ElementSpec]) -> dict[str, dict[str, str]]:
        started = {}
        for spec in specs:
            regions = self.regions.setdefault(spec.name, [])
            for _ in spec.instance_names():
                regions.append(SharedRegion(spec.limits.mem))
            started[spec.name] = {instance: f"shm;segment,{region.name};"
                                  for instance, region in zip(spec.instance_names(), regions, strict=True)}
        return started

    def stop(self, name: str) -> list[int]:
        """Free every instance; return the bytes each had resident (tmpfs blocks in use)."""
        used = []
        for region in self.regions.pop(name, []):
            try:
                used.append(os.stat(f"/dev/shm/{region.name}").st_blocks * 512)
            except OSError:
                used.append(0)
            region.close()
        return used

    def close(self) -> None:
        for name in list(self.regions):
            self.stop(name)


class TcpMemory:
    kind = "tcp"

    def __init__(self) -> None:
        # pyzmq is imported only when a run really uses tcp
        self.servers: dict[str, list[ServerProcess]] = {}
        #: servers told to stop, not yet reaped
        self.stopping: list[ServerProcess] = []

    def start(self, specs: Sequence[ElementSpec]) -> dict[str, dict[str, str]]:
        from scadrt.transports.memory_server import launch_memory_server

        # all at once: each server is an interpreter importing zmq and numpy (~0.3 s)
        for spec in specs:
            self.servers.setdefault(spec.name, []).extend(
                launch_memory_server(spec.limits.mem) for _ in spec.instance_names())
        for spec in specs:
            for server in self.servers[spec.name]:
                if not server.url:
                    server.wait_ready()
        return {spec.name: {instance: f"tcp;url,{server.url};"
                            for instance, server in zip(spec.instance_names(), self.servers[spec.name], strict=True)}
                for spec in specs}

    def stop(self, name: str) -> list[int]:
        """Stop every instance; return each server's peak resident bytes (VmHWM). The servers
        get SIGTERM and are reaped later (at the next stop, or at close): waiting for each to
        exit would hold up the next element."""
        used = []
        for server in self.servers.pop(name, []):
            used.append(_peak_rss(server.pid))
            server.process.terminate()
            self.stopping.append(server)
        exited = [s for s in self.stopping if s.process.poll() is not None]
        for server in exited:
            server.stop()  # only closes its pipe
        self.stopping = [s for s in self.stopping if s not in exited]
        return used

    def close(self) -> None:
        for name in list(self.servers):
            self.stop(name)
        for server in self.stopping:
            server.stop()  # waits, then SIGKILL
        self.stopping = []


def _peak_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


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
