"""RemoteArray: any numpy array in a memory element, read and written by rows."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadrt.action import Action
from scadrt.remote import ArrayMeta, RemoteArray, RemoteMemory, RemoteMetadataError
from scadrt.remote.array import dtype_from_json, dtype_to_json
from scadrt.transports.local import LocalTransport
from tests.scadrt.remote.regions import SMALL_POOL, Region

STRUCTURED = [
    np.dtype([("id", "<i8"), ("price", "<f4"), ("name", "S5")]),
    np.dtype([(("Title A", "a"), ">i4"), ("b", [("x", "<f4"), ("y", "u1", (3,))]), ("c", "<M8[ms]")]),
    np.dtype({"names": ["a", "b"], "formats": ["i4", "i8"], "offsets": [0, 8], "itemsize": 24}),  # padding
    np.dtype({"names": ["b", "a"], "formats": ["i4", ("u1", (2,))], "offsets": [8, 0], "itemsize": 16}),  # out of order
    np.dtype([("a", "i1"), ("b", "i8")], align=True),
]


def sample(shape: tuple[int, ...], dtype: np.dtype[Any], seed: int = 0) -> np.ndarray:
    raw = np.random.default_rng(seed).integers(0, 256, int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    if dtype.kind == "f":  # avoid NaN payloads, so that == compares
        return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    return raw.view(dtype).reshape(shape)


def travel(meta: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(meta))  # what the compiler passes between elements
    return result


@pytest.mark.parametrize("dtype", [np.dtype(d) for d in ["<f8", ">i2", "?", "<c16", "<U3", "<M8[ns]", "|V7"]]
                         + STRUCTURED, ids=str)
def test_dtypes_round_trip_through_json(dtype: np.dtype[Any]) -> None:
    assert dtype_from_json(json.loads(json.dumps(dtype_to_json(dtype)))) == dtype
    memory = RemoteMemory(LocalTransport(size=1 << 20), "mem", **SMALL_POOL)
    data = sample((7, 3), dtype, seed=1)
    back = RemoteArray.attach(memory, travel(RemoteArray.store(memory, "mem", data).metadata())).materialize()
    assert back.dtype == dtype and back.tobytes() == data.tobytes()


@pytest.mark.parametrize("make", [
    lambda a: a[::2, ::-1],
    np.asfortranarray,
    lambda a: a.T,
    lambda a: a[:, 3],
    lambda a: a[5],
    lambda a: a[5, 5],  # a numpy scalar: stored as a 0-d array
    lambda a: a[:0],
    lambda a: np.zeros((3, 0, 2)),
    lambda a: np.broadcast_to(np.arange(4), (1000, 4)),  # zero strides
], ids=["strided-reversed", "fortran", "transposed", "column", "row", "scalar", "zero-rows", "zero-size", "broadcast"])
def test_any_layout_is_stored_in_c_order(region: Region, make: Any) -> None:
    data = make(np.arange(20 * 30, dtype=np.int32).reshape(20, 30))
    memory = region.memory()
    remote = RemoteArray.store(memory, "mem", data)
    assert remote.shape == np.shape(data) and remote.dtype == np.asarray(data).dtype
    assert remote.nbytes == np.asarray(data).nbytes
    back = RemoteArray.attach(region.memory(), travel(remote.metadata())).materialize()  # another transport
    assert back.flags.c_contiguous and np.array_equal(back, data) and back.shape == np.shape(data)


def test_larger_than_the_pool_and_the_staging_buffer(region: Region) -> None:
    data = sample((2048, 512), np.dtype("<u4"), seed=2)  # 4 MiB through a 64 KiB pool
    memory = region.memory()
    remote = RemoteArray.store(memory, "mem", data)
    assert len(memory.transport.buf) == SMALL_POOL["capacity"]
    other = RemoteArray.attach(region.memory(), remote.metadata())
    assert np.array_equal(other.materialize(), data)
    chunks = list(other.iter_chunks(300))
    assert [len(c) for c in chunks] == [300] * 6 + [248]
    assert np.array_equal(np.concatenate(chunks), data)
    assert np.array_equal(np.asarray(other), data)


def test_one_row_reads_only_a_few_kib(region: Region) -> None:
    data = sample((1024, 1024), np.dtype("<u4"), seed=3)  # 4 MiB, 4 KiB rows
    metadata = RemoteArray.store(region.memory(), "mem", data).metadata()
    memory = region.memory()
    remote = RemoteArray.attach(memory, metadata)
    before = memory.transport.bytes_read
    assert np.array_equal(remote[517], data[517])
    assert np.array_equal(remote[-3, 7:9], data[-3, 7:9])
    assert memory.transport.bytes_read - before <= 4 * SMALL_POOL["page_size"]
    before = memory.transport.bytes_read
    assert np.array_equal(remote[100:900:200], data[100:900:200])  # rows far apart: read one by one
    assert memory.transport.bytes_read - before <= 8 * SMALL_POOL["page_size"]


KEYS = [0, -1, 7, slice(None), slice(2, 9), slice(None, None, -1), slice(1, 18, 3), slice(15, 2, -4),
        slice(5, 5), (3, 2), (slice(1, 8, 2), slice(None, None, -2)), (4, ...), (..., 1), (slice(None), None),
        [3, 1, 3], np.array([[0, 2], [19, -20]]), [], np.arange(20) % 3 == 0, (slice(2, 6), [0, 3]), ([1, 2], [3, 4]),
        None, ..., (np.int64(3),)]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_and_setitem_match_numpy(key: Any) -> None:
    memory = RemoteMemory(LocalTransport(size=1 << 20), "mem", capacity=4096, page_size=256)
    data = np.arange(20 * 6, dtype=np.int64).reshape(20, 6)
    remote = RemoteArray.store(memory, "mem", data)
    got = remote[key]
    assert type(got) is type(data[key]) and np.array_equal(got, data[key])
    expected = data.copy()
    expected[key] = -np.arange(np.size(data[key])).reshape(np.shape(data[key]))
    remote[key] = -np.arange(np.size(data[key])).reshape(np.shape(data[key]))
    assert np.array_equal(remote.materialize(), expected)
    expected[key] = 99  # broadcast a scalar
    remote[key] = 99
    assert np.array_equal(RemoteArray.attach(memory, remote.metadata()).materialize(), expected)


def test_index_errors_are_numpys() -> None:
    remote = RemoteArray.store(LocalTransport(size=1 << 16), "mem", np.zeros((4, 2)))
    for key in (4, -5, [0, 4], (0, 2), 1.5, np.array([True, False])):
        with pytest.raises(IndexError):
            remote[key]
    with pytest.raises(IndexError, match="out of bounds"):
        remote[4] = 1
    zero_d = RemoteArray.store(LocalTransport(size=1 << 16), "mem", np.float32(2.5))
    assert zero_d[()] == np.float32(2.5) and zero_d.materialize().shape == ()
    zero_d[()] = 4
    assert zero_d.materialize() == 4
    with pytest.raises(TypeError):
        len(zero_d)


def test_setitem_of_whole_rows_does_not_read() -> None:
    memory = RemoteMemory(LocalTransport(size=1 << 20), "mem", capacity=4096, page_size=256)
    remote = RemoteArray.empty(memory, "mem", (100, 64), np.uint8)  # 64-byte rows, 4 per page
    memory.pool.invalidate()
    before = memory.transport.bytes_read
    remote[0:40] = 1  # 2560 B of whole rows: nothing to read…
    assert memory.transport.bytes_read - before <= 2 * 256  # …but the pages at the two ends, if partly covered
    remote[50] = np.arange(64)
    assert np.array_equal(remote[50], np.arange(64)) and (remote[:40] == 1).all()


def test_free_returns_the_space_and_kills_the_metadata(region: Region) -> None:
    memory = region.memory()
    remote = RemoteArray.store(memory, "mem", np.ones(1000))
    metadata, addr = remote.metadata(), remote.meta.addr
    remote.free()
    with pytest.raises(RemoteMetadataError, match="freed"):
        remote.materialize()
    with pytest.raises(RemoteMetadataError, match="no live block"):
        RemoteArray.attach(region.memory(), metadata)
    assert RemoteArray.store(memory, "mem", np.zeros(1000)).meta.addr == addr  # the space is reused


def test_metadata_is_validated() -> None:
    memory = RemoteMemory(LocalTransport(size=1 << 16), "mem")
    good = RemoteArray.store(memory, "mem", np.arange(6).reshape(2, 3)).metadata()
    assert ArrayMeta.from_json(good).to_json() == good
    for bad, match in [({**good, "kind": "x"}, "not remote-array"), ({**good, "version": 9}, "version 9"),
                       ({**good, "shape": [2, 4]}, "inconsistent"), ({**good, "dtype": "nonsense"}, "invalid dtype"),
                       ({k: v for k, v in good.items() if k != "addr"}, "malformed")]:
        with pytest.raises(RemoteMetadataError, match=match):
            RemoteArray.attach(memory, bad)
    with pytest.raises(RemoteMetadataError, match="store_object"):
        RemoteArray.store(memory, "mem", np.array([{}, []], dtype=object))


def test_through_an_action() -> None:
    transport = LocalTransport(size=1 << 20, name="mem")
    with Action("producer", {"mem": transport}) as action:
        metadata = RemoteArray.store(action, "mem", np.arange(10)).metadata()
        assert metadata["memory"] == "mem"
        assert RemoteArray.attach(action, metadata)[3] == 3
        with pytest.raises(Exception, match="memory element"):
            RemoteArray.store(action, None, np.arange(3))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(0, 40), start=st.integers(-45, 45), stop=st.integers(-45, 45),
       step=st.integers(-7, 7).filter(bool), column=st.integers(0, 2))
def test_slices_match_numpy(rows: int, start: int, stop: int, step: int, column: int) -> None:
    data = np.arange(rows * 3, dtype=np.int16).reshape(rows, 3)
    memory = RemoteMemory(LocalTransport(size=1 << 16), "mem", capacity=1024, page_size=64)
    remote = RemoteArray.store(memory, "mem", data)
    key = slice(start, stop, step)
    assert np.array_equal(remote[key], data[key]) and np.array_equal(remote[key, column], data[key, column])
    data[key, column] = 7
    remote[key, column] = 7
    assert np.array_equal(remote.materialize(), data)
