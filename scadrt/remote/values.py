"""Values that cross a cut between two compute elements, as generated elements pass them.

An element returns a JSON object; every value live across a cut travels inside it as a
*packed value*, a small JSON dict tagged with ``kind``:

(1) ``json``   a value whose JSON round trip gives it back unchanged (same types all the way
               down: no tuples, no non-string keys, no NaN): ``{"kind": "json", "value": …}``;
(2) ``pickle`` any other small value, pickled and base64-encoded inline;
(3) ``array``  a numpy array kept in a memory element as a :class:`RemoteArray`:
               ``{"kind": "array", "meta": …}``;
(4) ``object`` any other heavy value kept in a memory element as a remote object (pickle
               protocol 5, out-of-band buffers). pandas DataFrames, Series and Indexes are
               objects: their column data (numeric blocks, categorical codes, datetime and
               timedelta columns, strings joined into one UTF-8 buffer) sits beside the small
               pickle stream, not in it (objects.py rule 5). A separate "frame" kind storing
               columns as RemoteArrays would move the same bytes; bench/frames_transfer.py
               measures it as a yardstick for numeric frames, and it is no faster.

Heavy values (3, 4) are written only when the caller asks for a memory element; the compiler
decides which values are heavy. Unpacking a heavy value over shm maps it copy-on-write rather
than copying it (:meth:`.RemoteMemory.share`). Packing a heavy value that came from a memory element and was
*not* changed costs nothing: pass ``previous`` (its packed form when it arrived) and
``changed=False`` and the same packed form is returned. A changed array of the same dtype and
shape is written back in place; anything else gets new space and the old space is freed.

The global random generators (``random`` and ``numpy.random``) are hidden state that the
original program carried from one statement to the next; :func:`capture_rng` and
:func:`restore_rng` carry it across a cut as JSON.
"""

from __future__ import annotations

import base64
import math
import pickle
import random
from typing import Any

import numpy as np

from scadrt.errors import RemoteMetadataError
from scadrt.remote.array import RemoteArray
from scadrt.remote.memory import Target
from scadrt.remote.objects import free_object, load_object, object_nbytes, store_object

__all__ = ["capture_rng", "early_exit", "gather", "pack", "packed_nbytes", "restore_rng", "unpack"]

Packed = dict[str, Any]


def _json_exact(value: Any) -> bool:
    """True when ``json.loads(json.dumps(value)) == value`` with the same types (rule 1)."""
    if value is None or isinstance(value, bool | str):
        return True
    if type(value) is int:
        return True
    if type(value) is float:
        return math.isfinite(value)
    if type(value) is list:
        return all(_json_exact(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _json_exact(v) for k, v in value.items())
    return False


def pack(value: Any, target: Target | None = None, memory: str | None = None, *,
         previous: Packed | None = None, changed: bool = True) -> Packed:
    """Pack ``value`` for an element's result; into memory element ``memory`` when given."""
    if memory is None:
        if _json_exact(value):
            return {"kind": "json", "value": value}
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return {"kind": "pickle", "data": base64.b64encode(data).decode("ascii")}
    if target is None:
        raise RemoteMetadataError(f"packing a value into memory element {memory!r} needs the element's action")
    if previous is not None and previous.get("kind") in ("array", "object"):
        if not changed:
            return previous
        if previous["kind"] == "array" and isinstance(value, np.ndarray):
            old = RemoteArray.attach(target, previous["meta"])
            if old.dtype == value.dtype and old.shape == value.shape and old.shape:
                old[:] = value  # whole rows along axis 0: written without reading
                return previous
            old.free()
        elif previous["kind"] == "object":
            free_object(target, previous["meta"])
        elif previous["kind"] == "array":
            RemoteArray.attach(target, previous["meta"]).free()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return {"kind": "array", "meta": RemoteArray.store(target, memory, value).metadata()}
    return {"kind": "object", "meta": store_object(target, memory, value)}


def packed_nbytes(value: Any) -> int:
    """The bytes :func:`pack` asks a memory element's allocator for when it stores ``value`` anew
    (the allocator rounds them up to its granule)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return int(value.nbytes)
    return object_nbytes(value)


def unpack(packed: Packed, target: Target | None = None) -> Any:
    """The value ``packed`` stands for (heavy values read from their memory element)."""
    kind = packed.get("kind") if isinstance(packed, dict) else None
    if kind == "json":
        return packed["value"]
    if kind == "pickle":
        return pickle.loads(base64.b64decode(packed["data"]))
    if kind in ("array", "object"):
        if target is None:
            raise RemoteMetadataError(f"unpacking a remote {kind} needs the element's action")
        # shared where the transport can map the memory element (shm): the element then holds no
        # second copy of what it only reads, and what it changes in place stays its own (its
        # write-back in pack() is what reaches the memory element); the compiler orders every
        # element that changes a value after the elements that read it, which sharing assumes
        if kind == "array":
            return RemoteArray.attach(target, packed["meta"]).materialize(share=True)
        return load_object(target, packed["meta"], share=True)
    raise RemoteMetadataError(f"not a packed value: {packed!r:.200}")


def gather(parts: list[list[Any]]) -> list[Any]:
    """One list from the parts the instances of a parallel loop appended, in instance order."""
    return [item for part in parts for item in part]


def capture_rng() -> Packed:
    """The state of the global ``random`` and ``numpy.random`` generators, as JSON."""
    # the dict form: the legacy tuple is typed "tuple or dict" (a dict for generators other than MT19937)
    numpy_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {
        "numpy": {"name": numpy_state["bit_generator"], "keys": numpy_state["state"]["key"].tolist(),
                  "pos": int(numpy_state["state"]["pos"]), "has_gauss": int(numpy_state["has_gauss"]),
                  "cached_gaussian": float(numpy_state["gauss"])},
        "random": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def restore_rng(state: Packed) -> None:
    """Put the generators back into the state :func:`capture_rng` recorded."""
    n = state["numpy"]
    np.random.set_state((n["name"], np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    r = state["random"]
    random.setstate((r["version"], tuple(r["internal"]), r["gauss"]))


def early_exit(value: Any = None) -> dict[str, Any]:
    """What ``return X`` in the original entry function becomes: X was evaluated (for its side
    effects); the element ends with an empty result, and no element after it runs (the compiler
    never cuts after a statement that may return)."""
    return {}
