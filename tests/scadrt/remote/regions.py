"""What the tests of scadrt.remote share: a region on some transport, and the pool size they use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scadrt.remote import RemoteMemory
from scadrt.transports.base import Transport

__all__ = ["KINDS", "REGION_SIZE", "SMALL_POOL", "Region"]

REGION_SIZE = 24 << 20
#: a small pool, so that multi-MiB data exercises eviction and streaming
SMALL_POOL = {"capacity": 64 << 10, "page_size": 4096}
KINDS = ["local", "shm", "tcp"]


@dataclass
class Region:
    """One region and how to reach it; transports opened through it are closed at teardown."""

    kind: str
    factory: Callable[[], Transport]
    #: what another process opens (None: the region cannot leave this process)
    descriptor: str | None
    opened: list[Transport] = field(default_factory=list)

    def open(self) -> Transport:
        transport = self.factory()
        self.opened.append(transport)
        return transport

    def memory(self, **options: int) -> RemoteMemory:
        """A RemoteMemory on a new transport (a small pool unless told otherwise)."""
        return RemoteMemory(self.open(), "mem", **{**SMALL_POOL, **options})
