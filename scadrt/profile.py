"""Profile samples: what ``action.profile(n)`` records, as Scad's monitor plugin did (reference-notes §4.4).

Each sample says when (seconds since the instance's action was made), how busy the instance was
since the previous sample (CPU time over wall time, in cores), how much it held (resident bytes)
and how many bytes each of its transports had moved. Samples travel with the instance's result
and land in the run report (``instances[].profile``); Scad POSTed them to a collector instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SAMPLES", "ProfileSample", "Profiler", "rss", "samples_from_json", "samples_to_json"]

#: samples kept per instance; later ``profile`` calls are counted, not kept (Scad's buffer was 64 KiB)
MAX_SAMPLES = 10_000


@dataclass(frozen=True)
class ProfileSample:
    point: int
    time: float
    cpu: float
    rss: int
    #: transport (memory element instance) → (bytes read, bytes written) so far
    transfer: tuple[tuple[str, int, int], ...] = ()

    def __str__(self) -> str:
        moved = "".join(f", {name} read {r} B written {w} B" for name, r, w in self.transfer)
        return f"point_{self.point} at {self.time:.3f} s: cpu {self.cpu:.2f}, rss {self.rss} B{moved}"

    def to_json(self) -> dict[str, Any]:
        return {"point": self.point, "time": self.time, "cpu": self.cpu, "rss": self.rss,
                "transfer": [list(t) for t in self.transfer]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileSample:
        return cls(int(data["point"]), float(data["time"]), float(data["cpu"]), int(data["rss"]),
                   tuple((str(n), int(r), int(w)) for n, r, w in data.get("transfer", ())))


def samples_to_json(samples: tuple[ProfileSample, ...]) -> list[dict[str, Any]]:
    """What an instance's result file carries of its samples."""
    return [s.to_json() for s in samples]


def samples_from_json(data: list[Mapping[str, Any]] | None) -> tuple[ProfileSample, ...]:
    """The samples :func:`samples_to_json` wrote (none when the file has no ``profile``)."""
    return tuple(ProfileSample.from_json(s) for s in data or ())


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int | None = None) -> int:
    """The resident bytes of process ``pid`` (this one: None) now; 0 once it is gone."""
    try:
        with open(f"/proc/{'self' if pid is None else pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class Profiler:
    """The samples of one instance, in call order."""

    def __init__(self) -> None:
        self.samples: list[ProfileSample] = []
        self.dropped = 0
        self._t0 = self._last_wall = time.monotonic()
        self._last_cpu = _cpu_seconds()

    def sample(self, point: object, transfer: tuple[tuple[str, int, int], ...]) -> None:
        if isinstance(point, float) and point.is_integer():
            point = int(point)  # Scad's Cython layer took any number it could convert
        if isinstance(point, bool) or not isinstance(point, int):
            raise TypeError(f"action.profile(point): point must be an integer, not {point!r}")
        wall, cpu = time.monotonic(), _cpu_seconds()
        busy = (cpu - self._last_cpu) / (wall - self._last_wall) if wall > self._last_wall else 0.0
        self._last_wall, self._last_cpu = wall, cpu
        if len(self.samples) >= MAX_SAMPLES:
            self.dropped += 1
            return
        self.samples.append(ProfileSample(point, wall - self._t0, busy, rss(), transfer))
