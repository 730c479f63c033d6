"""Values across a cut: small ones inline in JSON, heavy ones in a memory element; RNG state."""

from __future__ import annotations

import json
import math
import random
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

from scadrt.errors import RemoteMetadataError
from scadrt.remote.values import capture_rng, pack, restore_rng, unpack
from scadrt.transports.local import LocalTransport


@pytest.fixture
def region() -> LocalTransport:
    return LocalTransport(size=8 * 2**20, name="mem")


@pytest.mark.parametrize("value, kind", [
    (None, "json"), (3, "json"), (2.5, "json"), ("s", "json"), ([1, [2, {"a": None}]], "json"),
    ((1, 2), "pickle"), ({1: "a"}, "pickle"), (float("nan"), "pickle"), (np.float64(2.5), "pickle"),
    ({1, 2}, "pickle"), (OrderedDict(a=1), "pickle"), (True, "json"), (np.arange(3), "pickle"),
])
def test_small_values_round_trip_with_their_types(value: Any, kind: str) -> None:
    packed = pack(value)
    assert packed["kind"] == kind
    back = unpack(json.loads(json.dumps(packed)))  # it really travels as JSON
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert np.array_equal(back, value)
    elif isinstance(value, float) and math.isnan(value):
        assert math.isnan(back)
    else:
        assert back == value


def test_heavy_array_lives_in_the_memory_element(region: LocalTransport) -> None:
    data = np.arange(100_000, dtype=np.float64).reshape(1000, 100)
    packed = pack(data, region, "mem")
    assert packed["kind"] == "array" and len(json.dumps(packed)) < 500
    back = unpack(json.loads(json.dumps(packed)), region)
    assert back.dtype == data.dtype and np.array_equal(back, data)


def test_unchanged_heavy_value_is_not_rewritten(region: LocalTransport) -> None:
    data = np.ones(50_000)
    packed = pack(data, region, "mem")
    written = region.bytes_written
    assert pack(data, region, "mem", previous=packed, changed=False) is packed
    assert region.bytes_written == written


def test_changed_array_is_written_back_in_place(region: LocalTransport) -> None:
    data = np.ones(50_000)
    packed = pack(data, region, "mem")
    data *= 3
    again = pack(data, region, "mem", previous=packed)
    assert again == packed  # same address
    assert np.array_equal(unpack(again, region), data)
    grown = np.ones(60_000)
    moved = pack(grown, region, "mem", previous=packed)
    assert moved["meta"]["nbytes"] == grown.nbytes
    assert np.array_equal(unpack(moved, region), grown)
    # the old block was freed: the region holds one live block, the new one
    from scadrt.remote import remote_memory

    assert [size for _, size in remote_memory(region, "mem").allocator.blocks() if size >= grown.nbytes] == [
        remote_memory(region, "mem").allocator.size_of(moved["meta"]["addr"])]


def test_heavy_non_array_values_are_remote_objects(region: LocalTransport) -> None:
    value = {"rows": [np.arange(10_000), "text" * 1000], "n": 3}
    packed = pack(value, region, "mem")
    assert packed["kind"] == "object"
    back = unpack(packed, region)
    assert back["n"] == 3 and back["rows"][1] == "text" * 1000 and np.array_equal(back["rows"][0], np.arange(10_000))


def test_rng_state_travels_as_json() -> None:
    np.random.seed(5)
    random.seed(7)
    np.random.random(3)
    np.random.standard_normal()  # leaves a cached gaussian in the state
    random.gauss(0, 1)
    state = json.loads(json.dumps(capture_rng()))
    expected = (np.random.random(4).tolist(), np.random.standard_normal(), random.random(), random.gauss(0, 1))
    np.random.seed(0)
    random.seed(0)
    restore_rng(state)
    assert (np.random.random(4).tolist(), np.random.standard_normal(), random.random(), random.gauss(0, 1)) == expected


def test_not_a_packed_value() -> None:
    with pytest.raises(RemoteMetadataError):
        unpack({"kind": "mystery"})
    with pytest.raises(RemoteMetadataError):
        pack(np.ones(3), None, "mem")
