"""Keep an instance's numeric libraries to the CPUs its element asks for (``limits.cpu``).

numpy's OpenBLAS starts a thread per core and lets idle ones spin. One process alone on the
machine gains little from that; several instances running at once, each with a thread per
core, fight over the cores and spend most of their CPU time spinning (5 parallel folds of a
logistic regression took 3.5 s of CPU instead of 1 s on this 2-core machine). So each instance
caps the thread pools of the BLAS and OpenMP libraries it has loaded at its element's
``limits.cpu`` (rounded up), as a container's CPU quota would.

The libraries are found in ``/proc/self/maps`` and capped through their own C functions;
a library without one is left alone (nothing here is required for correctness).
"""

from __future__ import annotations

import ctypes
import math
import os
from contextlib import suppress

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


def _call(path: str, symbols: tuple[str, ...], *args: int) -> int | None:
    try:
        library = ctypes.CDLL(path)
    except OSError:
        return None
    for symbol in symbols:
        function = getattr(library, symbol, None)
        if function is not None:
            function.argtypes = [ctypes.c_int] * len(args)
            function.restype = ctypes.c_int
            return int(function(*args))
    return None


def thread_counts() -> dict[str, int]:
    """Loaded BLAS/OpenMP library → the threads it may use now."""
    counts = {}
    for path in _loaded_libraries():
        kind = _kind(path)
        if kind is not None and (count := _call(path, _GETTERS[kind])) is not None:
            counts[os.path.basename(path)] = count
    return counts


def limit_threads(cpu: float) -> list[str]:
    """Cap the loaded BLAS/OpenMP thread pools at ``ceil(cpu)`` threads; return the libraries capped."""
    count = max(1, math.ceil(cpu))
    capped = []
    for path in _loaded_libraries():
        kind = _kind(path)
        if kind is not None and _call(path, _SETTERS[kind], count) is not None:
            capped.append(os.path.basename(path))
    return capped
