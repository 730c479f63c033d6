"""Scad's ``disaggrt.util``: helpers for parallel steps over partitioned data (reference-notes §6.3).

``getParIndex``, ``initTrans`` (one buffer shared by a memory element's parallel instances),
``remoteRead``/``remoteWrite`` (transfers split into :data:`requestSize` pieces), ``asArray``,
``getGroups`` and ``ArrayLoader`` behave as Scad's did, without its debug prints. ``ArrayLoader.getNext``
also works when it stops inside a partition (Scad's raised AttributeError there), and by default
reads after what it returned before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from scadrt.action import PAR_INDEX_ENV, Action
from scadrt.transports.base import Transport

__all__ = ["ArrayLoader", "asArray", "getGroups", "getParIndex", "initTrans", "remoteRead", "remoteWrite",
           "requestSize"]

#: the largest single transfer remoteRead/remoteWrite make (2 MiB)
requestSize = 2 * 1024 * 1024


def remoteRead(trans: Transport, offset: int, raddr: int, size: int) -> None:
    """Read ``size`` bytes at remote ``raddr`` into ``trans.buf[offset:]``."""
    for i in range(0, int(size), requestSize):
        trans.read(min(requestSize, int(size) - i), raddr + i, offset + i)


def remoteWrite(trans: Transport, offset: int, raddr: int, size: int) -> None:
    """Write ``trans.buf[offset:offset+size]`` to remote ``raddr``."""
    for i in range(0, int(size), requestSize):
        trans.write(min(requestSize, int(size) - i), raddr + i, offset + i)


def initTrans(action: Action, name: str, par: int, bufsize: int) -> list[Transport]:
    """The transports to memory element ``name`` (``name@0 … name@par-1`` when ``par > 1``), all
    sharing one staging buffer of ``bufsize`` bytes."""
    first = action.get_transport(f"{name}@0" if par > 1 else name, "rdma")
    first.reg(bufsize)
    transports = [first]
    for i in range(1, par):
        t = action.get_transport(f"{name}@{i}", "rdma")
        t.reg(bufsize, first)
        transports.append(t)
    return transports


def asArray(trans: Transport, dtype: Any, size: int) -> np.ndarray:
    """The first ``size`` records of ``trans``'s staging buffer, viewed as ``dtype``."""
    view: np.ndarray = np.asarray(trans.buf).view(np.dtype(dtype))
    return view[:size]


def getParIndex() -> int:
    """This parallel instance's index."""
    return int(os.environ.get(PAR_INDEX_ENV, "0"))


def getGroups(arr: Sequence[Mapping[str, Any]], trans: Sequence[Transport],
              i: int) -> tuple[list[int], list[int], list[Transport]]:
    """For parallel index ``i``: (records, first record, transport) of partition ``i`` of every
    parent's table. ``arr[t]['groups']`` is a list of cumulative partition boundaries per table
    the parent wrote through ``trans[t]``."""
    groups: list[int] = []
    offsets: list[int] = []
    where: list[Transport] = []
    for t, result in enumerate(arr):
        for bounds in result["groups"]:
            groups.append(int(bounds[i + 1]) - int(bounds[i]))
            offsets.append(int(bounds[i]))
            where.append(trans[t])
    return groups, offsets, where


class ArrayLoader:
    """Reads partitions (``groups[k]`` records from record ``groupOffsets[k]`` of ``trans[k]``) one
    after another into the first transport's staging buffer, and hands them out as ``dtype`` records."""

    def __init__(self, trans: Sequence[Transport], dtype: Any, groups: Sequence[int],
                 groupOffsets: Sequence[int]) -> None:
        self.trans = list(trans)
        self.dtype = np.dtype(dtype)
        self.itemsize = self.dtype.itemsize
        self.groups = [int(g) for g in groups]
        self.groupOffsets = [int(o) for o in groupOffsets]
        self.numGroups = len(self.groups)
        self.cur = 0
        self.index = 0
        self.view = np.asarray(self.trans[0].buf).view(self.dtype) if self.trans else np.empty(0, self.dtype)

    def getAll(self, offset: int | None = None) -> np.ndarray:
        return self.getNext(sum(self.groups), offset)

    def getNext(self, n: int, offset: int | None = None) -> np.ndarray:
        """The next ``n`` records (fewer at the end), read into the staging buffer after the
        records handed out so far (or at byte ``offset``, as Scad's callers said; Scad's default
        of 0 overwrote the earlier records while the view it returned pointed past them)."""
        if offset is None:
            offset = self.index * self.itemsize
        rem = int(n)
        while rem > 0 and self.cur < self.numGroups:
            take = min(rem, self.groups[self.cur])
            remoteRead(self.trans[self.cur], offset, self.groupOffsets[self.cur] * self.itemsize, take * self.itemsize)
            offset += take * self.itemsize
            rem -= take
            self.groups[self.cur] -= take
            self.groupOffsets[self.cur] += take
            if self.groups[self.cur] == 0:
                self.cur += 1
        start = self.index
        self.index += int(n) - rem
        return self.view[start:self.index]
