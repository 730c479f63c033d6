"""Every transport test must leave no child process and no shared-memory segment behind."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psutil
import pytest

from scadrt.transports.shm import SEGMENT_PREFIX


def _segments() -> set[str]:
    try:
        return {name for name in os.listdir("/dev/shm") if name.startswith(SEGMENT_PREFIX)}
    except FileNotFoundError:  # not Linux: nothing to check
        return set()


def _children() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True) if child.status() != psutil.STATUS_ZOMBIE}


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    segments, children = _segments(), _children()
    yield
    deadline = time.monotonic() + 3.0  # a child killed in teardown may take a moment to be reaped
    while True:
        new_segments, new_children = _segments() - segments, _children() - children
        if not (new_segments or new_children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not new_segments, f"shared-memory segments left behind: {sorted(new_segments)}"
    assert not new_children, f"child processes left behind: {sorted(new_children)}"
