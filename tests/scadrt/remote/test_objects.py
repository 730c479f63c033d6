"""Remote objects: pickle protocol 5, with array bytes stored out of band."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from scadrt.remote import ObjectMeta, RemoteMetadataError, free_object, load_object, store_object
from scadrt.remote.objects import object_nbytes
from tests.scadrt.remote.regions import Region


@dataclass
class Model:
    weights: np.ndarray
    names: list[str]


def test_nested_objects_round_trip_with_arrays_out_of_band(region: Region) -> None:
    big = np.arange(1 << 19, dtype=np.float64)  # 4 MiB: larger than the 64 KiB pool
    rec = np.zeros(10, dtype=[("a", "<i4"), ("b", "S3")])
    obj: dict[str, Any] = {
        "big": big, "list": [big[:10], rec, "text", b"bytes", 3.5, None], "model": Model(big[::-1], ["x", "y"]),
        "fortran": np.asfortranarray(np.arange(12).reshape(3, 4)), "empty": np.zeros((0, 3))}
    metadata = json.loads(json.dumps(store_object(region.memory(), "mem", obj)))
    meta = ObjectMeta.from_json(metadata)
    assert object_nbytes(obj) == meta.nbytes  # what scadc profile measures is what was allocated
    assert meta.stream[1] < 64 << 10  # the 8 MiB of array data did not go into the pickle stream…
    assert len(meta.buffers) >= 4 and all(offset % 64 == 0 for offset, _ in meta.buffers)  # …but beside it
    back = load_object(region.memory(), metadata)  # another transport, as a later element
    assert np.array_equal(back["big"], big) and back["big"].flags.writeable
    assert np.array_equal(back["list"][0], big[:10]) and np.array_equal(back["list"][1], rec)
    assert back["list"][2:] == ["text", b"bytes", 3.5, None]
    assert np.array_equal(back["model"].weights, big[::-1]) and back["model"].names == ["x", "y"]
    assert np.array_equal(back["fortran"], obj["fortran"]) and back["fortran"].flags.f_contiguous
    assert back["empty"].shape == (0, 3)
    again = load_object(region.memory(), metadata)  # every load is independent of the others
    again["big"][0] = -1
    assert back["big"][0] == 0


def test_plain_objects_and_free(region: Region) -> None:
    memory = region.memory()
    metadata = store_object(memory, "mem", [1, "two", {"three": 3}])
    assert load_object(memory, metadata) == [1, "two", {"three": 3}]
    free_object(memory, metadata)
    with pytest.raises(RemoteMetadataError, match="no live block"):
        load_object(memory, metadata)
    with pytest.raises(RemoteMetadataError, match="not remote-object"):
        load_object(memory, {"kind": "scad.remote_array"})
    with pytest.raises(RemoteMetadataError, match="inconsistent"):
        load_object(memory, {**metadata, "stream": [0, metadata["nbytes"] + 1]})


def test_unpicklable_objects_leave_nothing_allocated(region: Region) -> None:
    memory = region.memory()
    before = memory.allocator.blocks()
    with pytest.raises(Exception, match="pickle"):
        store_object(memory, "mem", {"f": lambda: 1})
    assert memory.allocator.blocks() == before


def test_metadata_round_trips() -> None:
    meta = ObjectMeta("mem", 64, 300, (0, 100), ((128, 172),))
    data: Any = json.loads(json.dumps(meta.to_json()))
    assert ObjectMeta.from_json(data) == meta
