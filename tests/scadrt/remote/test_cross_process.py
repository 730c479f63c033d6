"""Store in one process, attach by JSON metadata in another: as elements of a DAG do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from scadrt.action import Action
from scadrt.remote import RemoteArray, load_object, store_object
from tests.scadrt.remote.regions import Region

DTYPE = np.dtype([("id", "<i8"), ("point", "<f4", (2,)), ("tag", "S4")])

# An element in another process: given the metadata of its parents on stdin, it checks them, keeps
# allocating in the same memory element, and prints its own metadata (JSON, as element results are).
_ELEMENT = """
import json, sys
import numpy as np
from scadrt.action import Action
from scadrt.remote import RemoteArray, load_object, store_object

descriptor, role = sys.argv[1], sys.argv[2]
dtype = np.dtype([("id", "<i8"), ("point", "<f4", (2,)), ("tag", "S4")])
inputs = json.loads(sys.stdin.read() or "{}")
with Action("child", {"mem": descriptor}) as action:
    if role == "produce":
        data = np.zeros(50_000, dtype=dtype)
        data["id"] = np.arange(50_000)
        array = RemoteArray.store(action, "mem", data[::-1])
        obj = store_object(action, "mem", {"ids": data["id"][:1000], "note": "from the child"})
        print(json.dumps({"array": array.metadata(), "object": obj}))
    else:
        array = RemoteArray.attach(action, inputs["array"])
        assert array.dtype == dtype and array.shape == (3000, 7), (array.dtype, array.shape)
        expected = np.arange(21_000, dtype=np.int64).reshape(3000, 7)
        assert (array.materialize()["id"] == expected).all()
        assert array[123, 4]["id"] == expected[123, 4]
        assert load_object(action, inputs["object"])["numbers"] == list(range(10))
        array[-1] = np.zeros(7, dtype=dtype)  # write-through: the parent sees it when it attaches again
        mine = RemoteArray.store(action, "mem", np.full(10_000, 7, dtype=np.uint8))  # allocates after the parent
        print(json.dumps({"array": mine.metadata()}))
"""


def run_element(descriptor: str, role: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", _ELEMENT, descriptor, role], input=json.dumps(inputs or {}),
                            check=False, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_a_child_process_stores_and_the_parent_attaches(region: Region) -> None:
    assert region.descriptor is not None
    produced = run_element(region.descriptor, "produce")
    with Action("parent", {"mem": region.descriptor}) as action:
        array = RemoteArray.attach(action, produced["array"])
        back = array.materialize()
        assert back.dtype == DTYPE and (back["id"] == np.arange(50_000)[::-1]).all()
        obj = load_object(action, produced["object"])
        assert obj["note"] == "from the child" and (obj["ids"] == np.arange(1000)).all()


@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_the_parent_stores_a_child_attaches_writes_and_allocates_without_clobbering(region: Region) -> None:
    assert region.descriptor is not None
    data = np.zeros((3000, 7), dtype=DTYPE)  # 420 KB: several pool pages
    data["id"] = np.arange(21_000).reshape(3000, 7)
    data["tag"] = b"abcd"
    with Action("parent", {"mem": region.descriptor}) as action:
        array = RemoteArray.store(action, "mem", np.asfortranarray(data))
        obj = store_object(action, "mem", {"numbers": list(range(10))})
        child = run_element(region.descriptor, "consume", {"array": array.metadata(), "object": obj})
        theirs = RemoteArray.attach(action, child["array"])
        assert (theirs.materialize() == 7).all()
        # attach is where another process's writes become visible (the pool's coherence rule)
        mine = RemoteArray.attach(action, array.metadata()).materialize()
        assert (mine[-1]["id"] == 0).all() and np.array_equal(mine[:-1], data[:-1])  # its allocation clobbered nothing
        assert load_object(action, obj) == {"numbers": list(range(10))}
