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


def _creator(name: str) -> int | None:
    """The pid that created the segment ``scad-<pid>-<random>``, or None for another name."""
    pid = name[len(SEGMENT_PREFIX):].partition("-")[0]
    return int(pid) if pid.isdigit() else None


def ours_or_orphaned(name: str) -> bool:
    """A segment this test can have leaked: made by this process or one of its children, or by a
    process that is gone. A live process outside this tree (another test session, another user's
    run on a shared machine) owns its segments and removes them itself; counting them made the
    check fail whenever two suites ran at once."""
    pid = _creator(name)
    if pid is None or pid == os.getpid() or not psutil.pid_exists(pid):
        return True
    try:
        return any(p.pid == os.getpid() for p in psutil.Process(pid).parents())
    except psutil.NoSuchProcess:
        return True


#: processes of the session that outlive tests on purpose (the session's Ray cluster): they and
#: whatever they start (Ray starts and stops workers as it likes) are nobody's leftovers
SESSION_PROCESSES: set[int] = set()


def live_children() -> set[int]:
    children = psutil.Process().children(recursive=True)
    exempt = set(SESSION_PROCESSES)
    for child in children:
        try:
            if exempt.intersection(p.pid for p in child.parents()):
                exempt.add(child.pid)
        except psutil.NoSuchProcess:
            exempt.add(child.pid)
    return {c.pid for c in children if c.pid not in exempt and _alive(c)}


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextmanager
def nothing_left_behind(allowed: Callable[[], set[int]] = set) -> Iterator[None]:
    """Fail if the block leaves new segments or children (other than ``allowed()`` pids)."""
    segments, children = shm_segments(), live_children()
    yield
    deadline = time.monotonic() + 5.0  # a child killed in teardown may take a moment to be reaped
    while True:
        new_segments = {n for n in shm_segments() - segments if ours_or_orphaned(n)}
        new_children = live_children() - children - allowed()
        if not (new_segments or new_children) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not new_segments, f"shared-memory segments left behind: {sorted(new_segments)}"
    assert not new_children, f"child processes left behind: {sorted(new_children)}"
