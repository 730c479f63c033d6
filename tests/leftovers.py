"""Checks that a test left no child process and no shared-memory segment behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

from scadrt.transports.shm import SEGMENT_PREFIX


def shm_segments() -> set[str]:
    try:
        return {name for name in os.listdir("/dev/shm") if name.startswith(SEGMENT_PREFIX)}
    except FileNotFoundError:  # not Linux: nothing to check
        return set()


def live_children() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE}


@contextmanager
def nothing_left_behind(allowed: Callable[[], set[int]] = set) -> Iterator[None]:
    """Fail if the block leaves new segments or children (other than ``allowed()`` pids)."""
    segments, children = shm_segments(), live_children()
    yield
    deadline = time.monotonic() + 5.0  # a child killed in teardown may take a moment to be reaped
    while True:
        new_segments = shm_segments() - segments
        new_children = live_children() - children - allowed()
        if not (new_segments or new_children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not new_segments, f"shared-memory segments left behind: {sorted(new_segments)}"
    assert not new_children, f"child processes left behind: {sorted(new_children)}"
