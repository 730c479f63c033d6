"""Fixtures for scadrt.remote: a fresh region on each transport kind, and the no-leftovers check.

``region`` gives, per test, one region of ``REGION_SIZE`` bytes reached by the ``local``,
``shm`` or ``tcp`` transport (a real memory server process on 127.0.0.1, shared by the tests of a module:
its heap header is zeroed before each test, which makes it a fresh heap). ``region.open()`` opens
one more client transport on it (closed at teardown); ``region.descriptor`` is what another process
opens (None for local).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from scadrt.transports import open_descriptor
from scadrt.transports.launcher import ServerProcess, spawn_memory_server
from scadrt.transports.local import LocalTransport
from scadrt.transports.shm import SharedRegion
from tests.leftovers import nothing_left_behind
from tests.scadrt.remote.regions import KINDS, REGION_SIZE, Region

#: children that outlive one test (the memory server), started by whichever test needs them first
_SESSION_CHILDREN: set[int] = set()


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    with nothing_left_behind(lambda: _SESSION_CHILDREN):
        yield


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    srv = spawn_memory_server(REGION_SIZE)
    _SESSION_CHILDREN.add(srv.pid)
    try:
        yield srv
    finally:
        assert srv.stop() == 0
        _SESSION_CHILDREN.discard(srv.pid)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def region(kind: str, request: pytest.FixtureRequest) -> Iterator[Region]:
    owner: SharedRegion | None = None
    if kind == "local":
        storage = np.zeros(REGION_SIZE, dtype=np.uint8)
        result = Region(kind, lambda: LocalTransport(storage, name="mem"), None)
    elif kind == "shm":
        owner = SharedRegion(REGION_SIZE)
        descriptor = f"mem;shm;segment,{owner.name};"
        result = Region(kind, lambda: open_descriptor(descriptor), descriptor)
    else:
        url = request.getfixturevalue("server").url
        descriptor = f"mem;tcp;url,{url};"
        result = Region(kind, lambda: open_descriptor(descriptor), descriptor)
        wipe = result.open()  # a fresh heap: the allocator formats an all-zero header
        wipe.reg(64)
        wipe.write(64, 0)
    try:
        yield result
    finally:
        for transport in result.opened:
            transport.close()
        if owner is not None:
            owner.close()
