"""``disaggrt`` (Scad's remote-array API) over real transports, and the import aliases."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from scadrt.compat import install
from scadrt.errors import RegionFullError, TransportError
from scadrt.transports.local import LocalTransport
from tests.programs import ROOT

install()
import disaggrt.buffer_pool_lib as bpl  # noqa: E402 - importable only after install()
from disaggrt.rdma_array import (  # noqa: E402
    init_empty_remote_array,
    merge_arrays_metadata,
    remote_array,
    remote_array_metadata,
)


class StagedLocal(LocalTransport):
    """A local region reached only through the staging buffer, as RDMA is (no device here)."""

    kind = "local"
    direct_io: ClassVar[bool] = False


@pytest.fixture(params=["direct", "staged"])
def trans(request: pytest.FixtureRequest) -> Iterator[LocalTransport]:
    t = (LocalTransport if request.param == "direct" else StagedLocal)(size=4 * 2**20, name="mem1")
    t.reg(4096 if request.param == "staged" else bpl.buffer_size)  # staged: transfers in many pieces
    yield t
    t.close()


def test_an_array_stored_by_one_pool_reads_back_through_a_child_pool_after_pickling(trans: LocalTransport) -> None:
    pool = bpl.buffer_pool({"mem1": trans})
    data = np.arange(3000, dtype=np.float64).reshape(1000, 3)
    meta = remote_array(pool, input_ndarray=data, transport_name="mem1").get_array_metadata()
    handed = pickle.loads(pickle.dumps({"df": meta, "bp": pool.get_buffer_metadata()}))
    assert handed["bp"] == {"mem1": data.nbytes}
    child = bpl.buffer_pool({"mem1": trans}, handed["bp"])
    arr = remote_array(child, metadata=handed["df"])
    assert np.array_equal(arr.materialize(), data)
    assert np.array_equal(arr.materialize(3, 8), data.reshape(-1)[3:8])
    more = remote_array(child, input_ndarray=np.ones(10), transport_name="mem1")  # after the parent's data
    assert more.get_array_metadata().remote_mem_metadata[0][1] == data.nbytes
    assert np.array_equal(arr.materialize(), data)


def test_rows_read_and_write_through(trans: LocalTransport) -> None:
    pool = bpl.buffer_pool({"mem1": trans})
    data = np.arange(20, dtype=np.int32).reshape(10, 2)
    arr = remote_array(pool, input_ndarray=data, transport_name="mem1")
    assert arr[-1].tolist() == [18, 19] and arr[2:4].tolist() == [[4, 5], [6, 7]] and len(arr) == 10
    arr[1] = 7
    arr[8:] = [[-1, -2], [-3, -4]]
    arr[::3] = 0  # another key: read, assign, write back
    expected = data.copy()
    expected[1], expected[8:], expected[::3] = 7, [[-1, -2], [-3, -4]], 0
    assert np.array_equal(remote_array(pool, metadata=arr.get_array_metadata()).materialize(), expected)
    assert arr.get_slice(2, 5).materialize().tolist() == expected[2:5].tolist()
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 10"):
        arr[10]
    with pytest.raises(IndexError, match="the array has 10 rows"):
        arr.get_slice(4, 11)


def test_an_empty_array_filled_in_its_buffer_either_way_scad_programs_do(trans: LocalTransport) -> None:
    pool = bpl.buffer_pool({"mem1": trans})
    dt = np.dtype([("k", "<f4"), ("v", "<i8")])
    rows = np.array([(i, i * i) for i in range(100)], dtype=dt)
    one = init_empty_remote_array(pool, "mem1", dt, (100,))
    buf = one.request_mem_on_buffer_for_array(0, 100)  # tpcds_*: fill from the start
    np.frombuffer(buf, dtype=dt)[:] = rows
    one.flush_slice(0, 100)
    two = init_empty_remote_array(pool, "mem1", dt, 100)
    buf, offset = two.request_mem_on_buffer_for_array(0, 100)  # mem_test1: (buffer, offset), bytes
    buf[offset:offset + rows.nbytes] = rows.tobytes()
    two.flush_slice(0, 100)
    assert np.array_equal(one.materialize(), rows) and np.array_equal(two.materialize(), rows)
    assert one.get_array_metadata().cur_mem_size == rows.nbytes  # Scad's byte count for empty arrays
    with pytest.raises(ValueError, match="no buffer was requested for element 5"):
        two.flush_slice(5, 10)


def test_merged_metadata_reads_arrays_on_several_memory_elements_as_one() -> None:
    t1, t2 = LocalTransport(size=2**16, name="a"), LocalTransport(size=2**16, name="b")
    t1.reg(1024)
    t2.reg(1024, t1)  # one staging buffer for the pool, as Scad's programs share it
    pool = bpl.buffer_pool({"a": t1, "b": t2})
    x = remote_array(pool, input_ndarray=np.arange(6.0).reshape(3, 2), transport_name="a")
    y = remote_array(pool, input_ndarray=np.arange(6.0, 10.0).reshape(2, 2), transport_name="b")
    merged = merge_arrays_metadata([x.get_array_metadata(), y.get_array_metadata()])
    assert merged.shape == (5, 2)
    whole = remote_array(pool, metadata=merged)
    assert whole.materialize().tolist() == np.arange(10.0).reshape(5, 2).tolist()
    assert whole.get_slice(2, 4).materialize().tolist() == [[4.0, 5.0], [6.0, 7.0]]  # across both
    with pytest.raises(ValueError, match="cannot merge arrays of 8-byte elements shaped"):
        merge_arrays_metadata([merged, remote_array(pool, input_ndarray=np.ones(3, np.float32),
                                                    transport_name="a").get_array_metadata()])


def test_mistakes_are_errors_that_say_what_to_do(trans: LocalTransport) -> None:
    pool = bpl.buffer_pool({"mem1": trans})
    assert remote_array(pool, input_ndarray=np.ones(3)).get_array_metadata().remote_mem_metadata[0][0] == "mem1"
    two = bpl.buffer_pool({"mem1": trans, "other": LocalTransport(size=64, name="other")})
    with pytest.raises(ValueError, match="has 2 transports: name one"):
        remote_array(two, input_ndarray=np.ones(3))
    with pytest.raises(KeyError, match="has no transport 'mem2'"):
        remote_array(pool, input_ndarray=np.ones(3), transport_name="mem2")
    with pytest.raises(TypeError, match="not Python objects"):
        remote_array(pool, input_ndarray=np.array([{}, []], dtype=object), transport_name="mem1")
    with pytest.raises(TypeError, match="a dict"):
        bpl.buffer_pool([trans])  # type: ignore[arg-type]
    assert bpl.buffer_pool(trans).trans_map == {"mem1": trans}  # Scad's older form
    with pytest.raises(RegionFullError, match=r"raise its limits\.mem"):
        remote_array(pool, input_ndarray=np.ones(trans.size), transport_name="mem1")
    with pytest.raises(TypeError, match="metadata"):
        remote_array(pool, metadata={"shape": 3})  # type: ignore[arg-type]
    fresh = StagedLocal(size=1024, name="mem1")
    with pytest.raises(TransportError, match="call reg"):
        remote_array(bpl.buffer_pool({"mem1": fresh}), input_ndarray=np.ones(3), transport_name="mem1")


def test_the_aliases_are_the_same_modules_and_an_installed_original_wins(tmp_path: Path) -> None:
    import disaggrt
    import disaggrt.rdma_array as alias

    from scadrt.compat.disaggrt import rdma_array as twin
    assert alias is twin and disaggrt.rdma_array is twin
    assert remote_array_metadata.__module__ == "scadrt.compat.disaggrt.rdma_array"  # pickles anywhere
    (tmp_path / "disaggrt").mkdir()
    (tmp_path / "disaggrt" / "__init__.py").write_text("ORIGINAL = True\n")
    probe = ("import sys; from scadrt.compat import install; install(); import disaggrt, npjoin, disagg; "
             "print(getattr(disaggrt, 'ORIGINAL', False), npjoin.__name__, disagg.__name__)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "scadrt.compat.npjoin", "scadrt.compat.disagg"]
    # decided when the name is imported, not when install() ran: a program's own module beside it wins
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "npjoin.py").write_text("OWN = True\n")
    probe = ("import sys; from scadrt.compat import install; install(); sys.path.insert(0, sys.argv[1]); "
             "import npjoin, disaggrt.util; print(getattr(npjoin, 'OWN', False), disaggrt.util.__name__)")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "own")], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "scadrt.compat.disaggrt.util"]
