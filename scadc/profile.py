"""``scadc profile``: run a program once and measure it at unit boundaries.

Rules:

1. The program runs as ``__main__`` in this process, with ``sys.argv = [path]`` and its directory
   first on ``sys.path``; its stdout and stderr are untouched.
2. A tracer follows only the entry frame (``main()``'s first call, or the module frame of a
   script): ``sys.settrace`` here, which on 3.12+ could be replaced by ``sys.monitoring``; other
   frames are not traced line by line, so helper-heavy code pays only a per-call cost.
3. A unit starts when the entry frame executes a line of a unit other than the current one (a
   loop going back to its header stays in its unit); it ends when the next one starts or the
   entry frame returns (normally, by an exception, or by ``sys.exit``).
4. After each unit: wall and CPU time of the unit (measurement excluded), the size in bytes of
   every local that holds data (numpy ``nbytes``; containers deep, bounded: at most
   :data:`SAMPLE` items per container, extrapolated, and :data:`MAX_DEPTH` levels), and the
   process RSS. Modules, functions and classes are not sized.
5. The JSON is stable: keys sorted, units keyed by their span ``line:col`` (column 0-based), the
   source's SHA-256 recorded so analysis can refuse a profile of another version of the file.
"""

from __future__ import annotations

import builtins
import hashlib
import itertools
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

from scadc.analysis.program import deep_call, load_program

__all__ = ["MAX_DEPTH", "PROFILE_FORMAT", "SAMPLE", "deep_size", "profile_program", "rss_bytes"]

#: the format tag of a profile: `scadc profile -o` replaces only a file that carries it
PROFILE_FORMAT = "scadc-profile/1"
SAMPLE = 1000
MAX_DEPTH = 4
_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, types.MethodType)


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc``), else its peak (``getrusage``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def deep_size(obj: object, depth: int = 0, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` (rule 4): numpy ``nbytes``, containers deep and bounded."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    nbytes = getattr(obj, "nbytes", None)
    if isinstance(nbytes, int) and hasattr(obj, "dtype"):
        return nbytes
    size = sys.getsizeof(obj, 0)
    if depth >= MAX_DEPTH:
        return size
    items: list[Any]
    if isinstance(obj, dict):
        items = [x for kv in list(obj.items())[:SAMPLE] for x in kv]
        total = len(obj)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = list(itertools.islice(obj, SAMPLE))
        total = len(obj)
    elif hasattr(obj, "__dict__") and not isinstance(obj, _SKIP):
        return size + deep_size(vars(obj), depth + 1, seen)
    else:
        return size
    inner = sum(deep_size(x, depth + 1, seen) for x in items)
    sampled = min(total, SAMPLE)
    if sampled and total > sampled:
        inner = inner * total // sampled  # extrapolate (rule 4)
    return size + inner


class _Tracer:
    """Rules 2-4: the entry frame's unit transitions and what is measured at each."""

    def __init__(self, target: types.CodeType, line_unit: dict[int, int], keys: list[str]) -> None:
        self.target, self.line_unit, self.keys = target, line_unit, keys
        self.frame: types.FrameType | None = None
        self.current: int | None = None
        self.wall0 = self.cpu0 = 0.0
        self.units: dict[str, dict[str, Any]] = {}

    def global_trace(self, frame: types.FrameType, event: str, arg: object) -> Any:
        if self.frame is None and frame.f_code is self.target:
            self.frame = frame
            return self.local_trace
        return None

    def local_trace(self, frame: types.FrameType, event: str, arg: object) -> Any:
        if frame is not self.frame:
            return None
        if event == "line":
            unit = self.line_unit.get(frame.f_lineno)
            if unit is not None and unit != self.current:
                self.finish(frame)
                self.current = unit
                self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        elif event == "return":
            self.finish(frame)
        return self.local_trace

    def finish(self, frame: types.FrameType) -> None:
        if self.current is None:
            return
        wall, cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0
        sizes = {name: deep_size(value) for name, value in list(frame.f_locals.items())
                 if not name.startswith("__") and not isinstance(value, _SKIP)}
        key = self.keys[self.current]
        previous = self.units.get(key)
        self.units[key] = {"index": self.current, "wall_s": round(wall + (previous or {}).get("wall_s", 0.0), 6),
                           "cpu_s": round(cpu + (previous or {}).get("cpu_s", 0.0), 6),
                           "rss_bytes": rss_bytes(), "live_bytes": dict(sorted(sizes.items()))}
        self.current = None


def _find_code(code: types.CodeType, name: str, line: int) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name and const.co_firstlineno <= line:
            return const
    return None


def profile_program(path: str, *, entry: str | None = None) -> tuple[dict[str, Any], int]:
    """Run ``path`` under the unit tracer; return (the profile, the program's exit status).

    A program that raises has its traceback printed to stderr and exit status 1.
    """
    # parsed on a deep stack (libcst recurses per level of nesting); run here, as `python app.py` would
    program = deep_call(lambda: load_program(path, entry=entry))
    module_code = compile(program.source, path, "exec")
    if program.entry.kind == "script":
        target: types.CodeType | None = module_code
    else:
        target = _find_code(module_code, program.entry.name, program.entry.span.line)
    assert target is not None, "the entry function's code object"
    line_unit = {line: u.index for u in program.units for line in range(u.span.line, u.span.end_line + 1)}
    tracer = _Tracer(target, line_unit, [u.span.key for u in program.units])
    env: dict[str, Any] = {"__name__": "__main__", "__file__": path, "__builtins__": builtins}
    if program.entry.kind == "function":
        call = compile(f"\n{program.entry.name}()", path, "exec")
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path]
    sys.path.insert(0, str(Path(path).resolve().parent))
    status = 0
    start = time.perf_counter()
    sys.settrace(tracer.global_trace)
    try:
        exec(module_code, env)
        if program.entry.kind == "function":
            exec(call, env)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException as exc:
        sys.settrace(None)
        import traceback

        traceback.print_exception(exc)
        status = 1
    finally:
        sys.settrace(None)
        sys.argv, sys.path[:] = saved_argv, saved_path
        sys.stdout.flush()
    total = time.perf_counter() - start
    profile = {
        "format": PROFILE_FORMAT,
        "program": Path(path).name,
        "source_sha256": hashlib.sha256(program.source.encode()).hexdigest(),
        "entry": program.entry.name,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "total_wall_s": round(total, 6),
        "exit_status": status,
        "units": tracer.units,
    }
    return profile, status


def dumps(profile: dict[str, Any]) -> str:
    """Rule 5: stable JSON."""
    return json.dumps(profile, indent=2, sort_keys=True) + "\n"
