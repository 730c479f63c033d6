"""scadrt.readiness.readable: poll(2) over descriptors select(2) refuses (1024 and up)."""

from __future__ import annotations

import os
import resource

import pytest

from scadrt.readiness import readable


def test_a_descriptor_above_fd_setsize_is_seen_readable() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    high = 1500
    if hard != resource.RLIM_INFINITY and hard <= high:
        pytest.skip(f"the descriptor limit ({hard}) is too low to hold descriptor {high}")
    if soft <= high:
        resource.setrlimit(resource.RLIMIT_NOFILE, (high + 1, hard))
    r, w = os.pipe()
    try:
        os.dup2(r, high)
        assert readable([high], 0.05) == []
        os.write(w, b"x")
        assert readable([high], 1.0) == [high]
        os.close(w)
        w = -1
        assert readable([r, high], 0.0) == [r, high]  # end of file counts: a read would not block
    finally:
        for fd in (r, w, high):
            if fd >= 0:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_nothing_to_wait_on_returns_at_once() -> None:
    assert readable([], None) == []
