"""The local transport against the conformance suite, plus what is specific to it."""

from __future__ import annotations

import numpy as np
import pytest

from scadrt.errors import TransportConfigError
from scadrt.transports.local import LocalTransport
from tests.scadrt.transports.conformance import REGION, Endpoint, TransportConformance


class TestLocal(TransportConformance):
    @pytest.fixture
    def endpoint(self) -> Endpoint:
        region = bytearray(REGION)
        return Endpoint(open=lambda: LocalTransport(region, name="mem"))


def test_region_can_be_a_numpy_array_and_is_shared() -> None:
    region = np.zeros(16, dtype=np.float64)
    with LocalTransport(region) as t:
        t.reg(8)
        t.buf[:] = np.float64(2.5).tobytes()
        t.write(8, 8 * 3)
    assert region[3] == 2.5


def test_region_or_size_but_not_both() -> None:
    with pytest.raises(TransportConfigError):
        LocalTransport()
    with pytest.raises(TransportConfigError):
        LocalTransport(bytearray(4), size=4)
    with pytest.raises(TransportConfigError, match="writable"):
        LocalTransport(b"read only")


def test_from_config() -> None:
    with LocalTransport.from_config("mem", {"size": "1 KiB"}) as t:
        assert (t.name, t.size) == ("mem", 1024)
    with pytest.raises(TransportConfigError, match="needs size"):
        LocalTransport.from_config("mem", {})
    with pytest.raises(TransportConfigError, match="unknown key url"):
        LocalTransport.from_config("mem", {"size": "1", "url": "x"})
    with pytest.raises(TransportConfigError, match="size"):
        LocalTransport.from_config("mem", {"size": "lots"})
