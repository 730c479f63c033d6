"""Keep an instance's numeric libraries to the CPUs its element asks for (``limits.cpu``).

numpy's OpenBLAS starts a thread per core and lets idle ones spin. One process alone on the
machine gains little from that; several instances running at once, each with a thread per
core, fight over the cores and spend most of their CPU time spinning (5 parallel folds of a
logistic regression took 3.5 s of CPU instead of 1 s on this 2-core machine). So each instance
caps the thread pools of the BLAS and OpenMP libraries it has loaded at its element's
``limits.cpu`` (rounded up), as a container's CPU quota would.

The libraries are found in ``/proc/self/maps`` and capped through their own C functions;
a library without one is left alone (nothing here is required for correctness). A worker caps
them at one thread before it forks any instance, so an element of ``cpu: 1`` pays nothing.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
from contextlib import suppress
from typing import Any

__all__ = ["limit_threads", "thread_counts"]

#: per library kind: the setters to try, in order (scipy-openblas, the one numpy wheels bundle, first)
_SETTERS = {
    "openblas": ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
                 "openblas_set_num_threads"),
    "omp": ("omp_set_num_threads",),
}
_GETTERS = {
    "openblas": ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads", "openblas_get_num_threads64_",
                 "openblas_get_num_threads"),
    "omp": ("omp_get_max_threads",),
}


def _loaded_libraries() -> list[str]:
    paths: set[str] = set()
    with suppress(OSError), open("/proc/self/maps") as maps:
        for line in maps:
            path = line.rsplit(" ", 1)[-1].strip()
            if ".so" in os.path.basename(path):
                paths.add(path)
    return sorted(paths)


def _kind(path: str) -> str | None:
    name = os.path.basename(path).lower()
    if "openblas" in name:
        return "openblas"
    if name.startswith(("libgomp", "libomp", "libiomp")):
        return "omp"
    return None


@functools.cache
def _libraries() -> tuple[tuple[str, Any, Any], ...]:
    """(file name, getter, setter) of each loaded BLAS/OpenMP library that has both. Cached: a
    worker finds them once, and the instances forked from it inherit the list."""
    found = []
    for path in _loaded_libraries():
        kind = _kind(path)
        if kind is None:
            continue
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        getter = next((f for name in _GETTERS[kind] if (f := getattr(library, name, None)) is not None), None)
        setter = next((f for name in _SETTERS[kind] if (f := getattr(library, name, None)) is not None), None)
        if getter is not None and setter is not None:
            getter.argtypes, getter.restype = [], ctypes.c_int
            setter.argtypes, setter.restype = [ctypes.c_int], None
            found.append((os.path.basename(path), getter, setter))
    return tuple(found)


def thread_counts() -> dict[str, int]:
    """Loaded BLAS/OpenMP library → the threads it may use now."""
    return {name: int(getter()) for name, getter, _ in _libraries()}


def limit_threads(cpu: float) -> list[str]:
    """Cap the loaded BLAS/OpenMP thread pools at ``ceil(cpu)`` threads; return the libraries
    changed. A pool already at that size is left alone: setting it can start its threads."""
    count = max(1, math.ceil(cpu))
    changed = []
    for name, getter, setter in _libraries():
        if getter() != count:
            setter(count)
            changed.append(name)
    return changed
