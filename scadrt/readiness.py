"""Which of some descriptors can be read without blocking: ``poll(2)``, not ``select(2)``.

``select.select`` refuses a descriptor numbered 1024 or more (FD_SETSIZE) with "filedescriptor
out of range in select()". A process that calls ``scadrt.run`` many times (a notebook, a test
session, a service) or that holds many files of its own reaches such numbers; ``poll`` takes any.
"""

from __future__ import annotations

import select
from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["readable"]


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


F = TypeVar("F", bound="int | _HasFileno")


def readable(files: Sequence[F], timeout: float | None) -> list[F]:
    """The members of ``files`` (descriptors or objects with ``fileno()``) that are readable, or have
    reached end of file or an error, within ``timeout`` seconds (None: wait for one)."""
    if not files:
        return []
    poller = select.poll()
    by_fd: dict[int, list[F]] = {}
    for f in files:
        fd = f if isinstance(f, int) else f.fileno()
        by_fd.setdefault(fd, []).append(f)
        poller.register(fd, select.POLLIN | select.POLLPRI)
    events = poller.poll(None if timeout is None else max(0, int(timeout * 1000 + 0.999)))
    ready = {fd for fd, _ in events}  # POLLHUP/POLLERR/POLLNVAL count: a read would not block
    return [f for f in files if (f if isinstance(f, int) else f.fileno()) in ready]
