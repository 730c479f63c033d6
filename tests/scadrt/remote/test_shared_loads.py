"""Heavy values loaded over shm share the segment's pages (copy-on-write); other transports copy.

Real segments and real processes: the sharing is checked in /proc (the mapping in smaps, the
process's anonymous memory), the copy-on-write by writing and reading the segment back.
"""

from __future__ import annotations

import gc
import io
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scadrt.dag import load_program
from scadrt.engines.local import LocalEngine
from scadrt.engines.memory import memory_backend
from scadrt.remote import RemoteArray, load_object, store_object
from scadrt.remote.memory import SHARE_MIN_BYTES
from scadrt.remote.values import pack, unpack
from scadrt.report import RunFailed
from tests.scadrt.remote.regions import Region

#: int64s of 8 MiB (a third of the test region): far above SHARE_MIN_BYTES and above what the
#: process's own memory moves by otherwise
BIG = 1 << 20


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _private_mappings_of(segment: str) -> list[dict[str, Any]]:
    """This process's private mappings of ``segment`` (the owner and the transport map it all,
    shared): their permissions and smaps counters (bytes)."""
    found: list[dict[str, Any]] = []
    with open("/proc/self/smaps") as smaps:
        current: dict[str, Any] | None = None
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                private = segment in line and fields[1].endswith("p")
                current = {"perms": fields[1]} if private else None
                if current is not None:
                    found.append(current)
            elif current is not None and len(fields) == 3 and fields[2] == "kB":
                current[fields[0].rstrip(":")] = int(fields[1]) * 1024
    return found


def _segment(region: Region) -> str:
    assert region.descriptor is not None
    return region.descriptor.split("segment,")[1].rstrip(";")


def _shares_a_mapping(array: np.ndarray) -> bool:
    """Whether ``array``'s memory comes from a mapping scadrt made (not from numpy's allocator)."""
    base: Any = array
    while isinstance(base, np.ndarray | memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    return type(base).__name__.startswith("c_ubyte_Array")


@pytest.mark.parametrize("kind", ["shm"])
def test_a_loaded_array_shares_the_segments_pages(region: Region) -> None:
    memory = region.memory()
    data = np.arange(BIG, dtype=np.int64)
    packed = pack(data, memory, "mem")
    del data
    gc.collect()
    anon = _status("RssAnon")
    back = unpack(json.loads(json.dumps(packed)), memory)
    assert int(back.sum()) == BIG * (BIG - 1) // 2  # every page read
    assert back.flags.writeable and back.flags.c_contiguous and back.ctypes.data % 64 == 0
    assert _status("RssAnon") - anon < 2 << 20  # not a copy of the 8 MiB
    (mapping,) = _private_mappings_of(_segment(region))
    assert mapping["perms"] == "rw-p"  # private: copy-on-write
    assert mapping["Rss"] >= back.nbytes and mapping["Anonymous"] == 0
    back[: 512] = -1  # one page of the value: one private page
    (mapping,) = _private_mappings_of(_segment(region))
    assert mapping["Anonymous"] <= 2 * 4096


@pytest.mark.parametrize("kind", ["shm"])
def test_in_place_writes_stay_in_the_element(region: Region) -> None:
    memory = region.memory()
    data = np.arange(BIG, dtype=np.float64).reshape(-1, 64)
    packed = pack(data, memory, "mem")
    first, second = unpack(packed, memory), unpack(packed, memory)  # two loads, like two siblings
    first *= 2
    first[7, 3] = -1
    assert np.array_equal(second, data)  # the other load does not see them
    assert np.array_equal(RemoteArray.attach(memory, packed["meta"]).materialize(), data)  # nor the segment
    assert np.array_equal(unpack(packed, memory), data)  # nor a load after them (a retry)
    # the write-back is what reaches the memory element, and the other load keeps what it loaded
    assert pack(first, memory, "mem", previous=packed) == packed
    expected = data * 2
    expected[7, 3] = -1
    assert np.array_equal(RemoteArray.attach(memory, packed["meta"]).materialize(), expected)
    assert np.array_equal(second, data)


@pytest.mark.parametrize("kind", ["shm"])
def test_a_load_stays_a_snapshot_when_this_process_writes_the_block(region: Region) -> None:
    memory = region.memory()
    packed = pack(np.arange(BIG, dtype=np.int64), memory, "mem")
    alias = unpack(packed, memory)
    # the program rebinds the name to a new array of the same shape and sends it: written over
    # the old one in place, while the old one is still alive under another name
    assert pack(alias + 1, memory, "mem", previous=packed) == packed
    assert np.array_equal(alias, np.arange(BIG))
    assert np.array_equal(unpack(packed, memory), np.arange(BIG) + 1)
    # a freed block handed out again, written through the pool (small pieces) and directly
    RemoteArray.attach(memory, packed["meta"]).free()
    again = RemoteArray.store(memory, "mem", np.full(BIG, 5, dtype=np.int64))
    assert again.meta.addr == packed["meta"]["addr"]
    again[10:20] = np.zeros(10, dtype=np.int64)
    assert np.array_equal(alias, np.arange(BIG))


@pytest.mark.parametrize("kind", ["shm"])
def test_writing_a_load_back_unchanged_keeps_its_pages_shared(region: Region) -> None:
    memory = region.memory()
    packed = pack(np.arange(BIG, dtype=np.int64), memory, "mem")
    back = unpack(packed, memory)
    back[0] = -1
    anon = _status("RssAnon")
    assert pack(back, memory, "mem", previous=packed) == packed  # written from the mapping onto itself
    assert _status("RssAnon") - anon < 2 << 20  # no staging copy of the value, no page made private
    (mapping,) = _private_mappings_of(_segment(region))
    assert mapping["Anonymous"] <= 2 * 4096
    assert int(RemoteArray.attach(memory, packed["meta"])[0]) == -1


@pytest.mark.parametrize("kind", ["shm"])
def test_a_loaded_object_shares_its_buffers(region: Region) -> None:
    memory = region.memory()
    obj: dict[str, Any] = {
        "x": np.arange(BIG, dtype=np.float32).reshape(2048, -1), "when": np.arange(BIG // 4).astype("M8[s]"),
        "f": np.asfortranarray(np.ones((1024, 1024))), "note": "small"}
    meta = store_object(memory, "mem", obj)
    anon = _status("RssAnon")
    back = load_object(memory, meta, share=True)
    assert back["note"] == "small"
    for name in ("x", "when", "f"):
        array = back[name]
        assert _shares_a_mapping(array) and array.flags.writeable
        assert array.dtype == obj[name].dtype and array.shape == obj[name].shape
        assert array.strides == obj[name].strides and array.ctypes.data % 64 == 0
        assert np.array_equal(array, obj[name])
    assert _status("RssAnon") - anon < 4 << 20  # of 14 MiB
    back["x"][:] = 0
    assert np.array_equal(load_object(memory, meta)["x"], obj["x"])  # the segment kept the original


def test_a_loaded_data_frame_shares_its_columns(region: Region) -> None:
    pd = pytest.importorskip("pandas")
    memory = region.memory()
    frame = pd.DataFrame({"a": np.arange(BIG // 4, dtype=np.int64), "b": np.ones(BIG // 4)})
    back = unpack(pack(frame, memory, "mem"), memory)
    assert back.equals(frame)
    shared = all(_shares_a_mapping(back[c].to_numpy()) for c in back.columns)
    assert shared == (region.kind == "shm")
    back.loc[0, "a"] = -1  # writable, as the original was
    assert int(unpack(pack(frame, memory, "mem"), memory).loc[0, "a"]) == 0


def test_only_shm_shares_and_only_large_values(region: Region) -> None:
    memory = region.memory()
    big = RemoteArray.store(memory, "mem", np.arange(BIG, dtype=np.int64))
    small = RemoteArray.store(memory, "mem", np.arange(SHARE_MIN_BYTES // 8 - 1, dtype=np.int64))
    assert _shares_a_mapping(big.materialize(share=True)) == (region.kind == "shm")
    assert not _shares_a_mapping(small.materialize(share=True))
    assert not _shares_a_mapping(big.materialize())  # sharing is asked for, not the default
    loaded = big.materialize(share=True)
    loaded[:] = 1
    assert np.array_equal(big.materialize(), np.arange(BIG))  # copies and mappings alike: the caller's
    # what the run report counts as read: the value's bytes, copied or mapped
    before = memory.transport.bytes_read
    big.materialize(share=True)
    assert memory.transport.bytes_read - before >= big.nbytes


@pytest.mark.parametrize("kind", ["shm"])
def test_mappings_hold_no_descriptor_and_go_with_the_last_view(region: Region) -> None:
    memory = region.memory()
    packed = pack(np.arange(BIG, dtype=np.int64), memory, "mem")
    fds = len(os.listdir("/proc/self/fd"))
    loads = [unpack(packed, memory) for _ in range(20)]
    assert len(os.listdir("/proc/self/fd")) == fds
    assert len(_private_mappings_of(_segment(region))) == 20
    view = loads[0][::3]  # a view keeps its mapping alive
    memory.transport.close()  # and so does it outlive the transport
    del loads
    gc.collect()
    assert len(_private_mappings_of(_segment(region))) == 1
    assert np.array_equal(view[:4], [0, 3, 6, 9])
    del view
    gc.collect()
    assert _private_mappings_of(_segment(region)) == []


# A program of three elements: ``a`` stores an array in memory element ``mem``; ``b`` (which fails
# on its first attempt, after changing the array in place) and ``c`` load it at the same time.
# Each loaded copy is checked against the original, and ``b`` sends its changed copy on.
_ELEMENTS = {
    "mem.o.yaml": "type: memory\ncorunning: [a, b, c, d]\nlimits: {mem: 256 MB}\n",
    "a.o.py": """\
        #@ type: compute
        #@ dependents: [b, c]
        #@ corunning: {mem: {trans: mem, type: rdma}}
        import numpy as np
        import scadrt.remote.values as v

        def main(params, action):
            return {"x": v.pack(np.arange(N, dtype=np.int64), action, "mem")}
        """,
    "b.o.py": """\
        #@ type: compute
        #@ parents: [a]
        #@ dependents: [d]
        #@ corunning: {mem: {trans: mem, type: rdma}}
        import os
        import numpy as np
        import scadrt.remote.values as v

        def main(params, action):
            x = v.unpack(params["a"][0]["x"], action)
            assert np.array_equal(x, np.arange(N)), "b: not the original"
            x += 1
            if not os.path.exists(MARKER):  # the first attempt
                open(MARKER, "w").close()
                raise RuntimeError("b fails once, after changing x in place")
            return {"x": v.pack(x, action, "mem", previous=params["a"][0]["x"])}
        """,
    "c.o.py": """\
        #@ type: compute
        #@ parents: [a]
        #@ dependents: [d]
        #@ corunning: {mem: {trans: mem, type: rdma}}
        import numpy as np
        import scadrt.remote.values as v

        def main(params, action):
            x = v.unpack(params["a"][0]["x"], action)
            assert np.array_equal(x, np.arange(N)), "c: not the original"
            return {}
        """,
    "d.o.py": """\
        #@ type: compute
        #@ parents: [b, c]
        #@ corunning: {mem: {trans: mem, type: rdma}}
        import numpy as np
        import scadrt.remote.values as v

        def main(params, action):
            x = v.unpack(params["b"][0]["x"], action)
            print("d:", bool(np.array_equal(x, np.arange(N) + 1)))
            return {}
        """,
}


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_a_retried_element_and_its_sibling_see_the_original(tmp_path: Path, transport: str) -> None:
    marker = tmp_path / "failed-once"
    prog = tmp_path / "prog"
    prog.mkdir()
    constants = f"N = {BIG}\nMARKER = {str(marker)!r}\n\n\ndef main"
    for name, text in _ELEMENTS.items():
        source = textwrap.dedent(text)
        (prog / name).write_text(source.replace("def main", constants) if name.endswith(".py") else source)
    program = load_program(prog)
    out, err = io.BytesIO(), io.BytesIO()
    with LocalEngine(memory=memory_backend(transport, program), stdout=out, stderr=err, retries=1) as engine:
        try:
            result = engine.run(program, {})
        except RunFailed as failed:
            raise AssertionError(failed.failure.message) from None
    assert out.getvalue() == b"d: True\n"
    assert [(i.element, i.attempt, i.status) for i in result.report.instances if i.element == "b"] == [
        ("b", 0, "failed"), ("b", 1, "ok"),
    ]
