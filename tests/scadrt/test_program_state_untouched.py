"""The runtime never draws from the global random generators: they are the user program's state,
which a split program carries from one element to the next and must find unchanged."""

from __future__ import annotations

import random

import numpy as np
import pytest

from scadrt.remote.array import RemoteArray
from scadrt.transports import open_descriptor
from scadrt.transports.launcher import spawn_memory_server
from scadrt.transports.shm import SharedRegion


def states() -> tuple[object, ...]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return random.getstate(), name, keys.tolist(), pos, has_gauss, cached


@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_transports_and_remote_arrays_leave_the_global_rngs_alone(kind: str) -> None:
    random.seed(1)
    np.random.seed(1)
    before = states()
    if kind == "tcp":
        with spawn_memory_server("8MiB") as server, open_descriptor(f"mem;tcp;url,{server.url};") as transport:
            RemoteArray.store(transport, "mem", np.arange(1000)).materialize()
    else:
        with SharedRegion(8 * 2**20) as region, open_descriptor(f"mem;shm;segment,{region.name};") as transport:
            RemoteArray.store(transport, "mem", np.arange(1000)).materialize()
    assert states() == before
