"""``scadc profile``: run a program once and measure it at unit boundaries.

Rules:

1. The program runs as ``__main__`` in this process, with ``sys.argv = [path]`` and its directory
   first on ``sys.path``; its stdout and stderr are untouched.
2. A tracer follows only the entry frame (``main()``'s first call, or the module frame of a
   script): ``sys.settrace`` here, which on 3.12+ could be replaced by ``sys.monitoring``; other
   frames are not traced line by line, so helper-heavy code pays only a per-call cost. The one
   exception is the frame of a helper that split inlines (:mod:`scadc.analysis.inline`), called
   by the entry frame from the inlined call's lines: its statements are units of the entry region.
3. A unit starts when the entry frame, or an inlined helper's frame, executes a line of a unit
   other than the current one (a loop going back to its header stays in its unit); it ends when
   the next one starts or the entry frame returns (normally, by an exception, or by ``sys.exit``).
   While an inlined helper's frame runs, its locals count as the entry frame's under the names
   inlining gave them (``_inl1_x``; a parameter substituted by its argument is not counted twice).
4. After each unit: wall and CPU time of the unit (measurement excluded), the size in bytes of
   every local that holds data (numpy ``nbytes``; pandas objects: their buffers plus their strings,
   sampled; containers deep, bounded: at most :data:`SAMPLE` items per container, extrapolated,
   and :data:`MAX_DEPTH` levels), and the process RSS. Modules, functions and classes are not sized.
5. The JSON is stable: keys sorted, units keyed by their span ``line:col`` (column 0-based), and
   the SHA-256 of the source recorded as ``source_sha256``: analysis refuses a profile of another
   version of the file (:func:`scadc.analysis.observed.check_source`), and one taken with another
   ``inline`` choice (recorded as ``inline``: its units are others).
6. Observed mutation: at every unit boundary (once: the fingerprints after a unit are those before
   the next) each local of the entry frame is fingerprinted (:func:`fingerprint`: a SHA-1 digest of
   its contents, in which a buffer of :data:`_CRC_BYTES` (64 KiB) or more counts as its length and
   CRC-32 instead of its bytes). A unit ``changed`` a local when the name holds the *same object*
   before and after it and the fingerprint differs: changed in place. A rebinding (``x = x + 1``) is a new object, not a
   change. ``unchecked`` lists the locals that could not be fingerprinted (they fail to pickle);
   modules, functions, classes, generators, files and the like are neither. To compare identities
   soundly the tracer holds the objects of the last boundary (weakly where the type allows, so a
   deleted array is freed as it would be; strongly otherwise, until the next boundary).
7. The program runs in a module object installed as ``sys.modules["__main__"]`` (restored after),
   as under ``python app.py``: its own classes pickle, both for the program and for rule 6.
8. Sizing elements (:mod:`scadc.partition.build`, :mod:`scadc.codegen.emit`): after each unit,
   ``stored_bytes`` holds, for every local of at least :data:`STORED_MIN` bytes, the size of the block
   the runtime would allocate for it in a memory element (:func:`scadrt.remote.values.packed_nbytes`:
   the pickle stream and the out-of-band buffers, strings joined as UTF-8; counted, not stored, and
   once per fingerprint); ``start_rss_bytes`` is the RSS when the unit started, ``peak_rise_bytes``
   how far the RSS rose above it at its highest (``VmHWM``, reset as the unit starts; where it cannot
   be reset, the rise at the unit's end). A unit run several times keeps the largest of each.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import itertools
import json
import os
import pickle
import struct
import sys
import time
import types
import weakref
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from scadc.analysis.inline import load_inlined
from scadc.analysis.program import InlineDecision, deep_call

__all__ = ["MAX_DEPTH", "PROFILE_FORMAT", "SAMPLE", "STORED_MIN", "deep_size", "fingerprint", "profile_program",
           "rss_bytes"]

#: the format tag of a profile: `scadc profile -o` replaces only a file that carries it
PROFILE_FORMAT = "scadc-profile/1"
SAMPLE = 1000
MAX_DEPTH = 4
#: locals smaller than this get no stored size (rule 8): they are far below any heavy threshold
STORED_MIN = 1 << 16
_SKIP = (types.ModuleType, types.FunctionType, types.BuiltinFunctionType, type, types.MethodType)
#: buffers at least this large are fingerprinted by CRC-32 (:func:`_feed_buffer`)
_CRC_BYTES = 1 << 16
#: what rule 6 does not fingerprint: code and machinery, not data (and none of it pickles usefully)
_UNFINGERPRINTED = (*_SKIP, types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType, types.FrameType,
                    types.CodeType, types.TracebackType, types.BuiltinMethodType, io.IOBase)


def rss_bytes() -> int:
    """The process's resident set size now (Linux ``/proc``), else its peak (``getrusage``)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> bool:
    """Start a new peak RSS (Linux 4.0+: ``5`` in ``clear_refs`` resets ``VmHWM``); False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int | None:
    """The process's peak RSS since the last :func:`_reset_peak` (``VmHWM``), or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def deep_size(obj: object, depth: int = 0, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` (rule 4): numpy ``nbytes``, containers deep and bounded."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if type(obj).__module__.partition(".")[0] == "pandas" and hasattr(obj, "memory_usage"):
        return _pandas_size(obj)
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


class _Hash(Protocol):
    """hashlib's hash objects, as far as fingerprints use them."""

    def update(self, data: bytes | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...


def _hasher() -> _Hash:
    # SHA-1 as a fingerprint, not a signature; large buffers go through :func:`_feed_buffer`
    return hashlib.sha1(usedforsecurity=False)


def _feed_buffer(h: Any, buf: Any) -> None:
    """A buffer's bytes: its CRC-32 and length when large, which reads memory at about 4 GB/s here
    against 1.5 GB/s for SHA-1 and 0.8 GB/s for BLAKE2b. A random change escapes a CRC-32 with
    probability 2**-32 and a change within 32 consecutive bits never does; the fingerprint finds
    the program's own changes, it does not need to resist an adversary."""
    view = memoryview(buf).cast("B")
    if view.nbytes < _CRC_BYTES:
        h.update(view)
    else:
        h.update(struct.pack("<QI", view.nbytes, zlib.crc32(view)))


def _feed_array(h: Any, a: Any, np: Any) -> None:
    """An ndarray's dtype, shape and buffer (its logical contents, whatever its strides)."""
    h.update(f"ndarray {a.dtype!r} {a.shape}|".encode())
    if a.dtype.hasobject:  # the buffer holds pointers: hash what they point to
        _feed_pickle(h, a)
        return
    flat = np.ascontiguousarray(a).reshape(-1)  # a copy only for a non-contiguous view
    _feed_buffer(h, flat.view(np.uint8) if flat.size else b"")


class _Sink:
    """A file whose writes go into a hash: a pickle is hashed as the pickler writes its frames, so a
    large object's pickle is never whole in memory."""

    def __init__(self, h: Any) -> None:
        self.write = h.update


def _feed_pickle(h: Any, obj: object) -> None:
    """The pickle of ``obj``; contiguous array buffers inside it are hashed where they are, not copied."""
    buffers: list[pickle.PickleBuffer] = []
    pickle.Pickler(_Sink(h), protocol=5, buffer_callback=buffers.append).dump(obj)
    for buf in buffers:
        raw = buf.raw()
        h.update(f"|buffer {raw.nbytes}|".encode())
        _feed_buffer(h, raw)


def _feed_objects(h: Any, a: Any, np: Any) -> None:
    """A pandas object ndarray's elements. Strings are fed as their UTF-8 text joined by NUL (with
    each one's length too when a string holds NUL itself, so that no two columns join alike): joining
    runs in C at some 15 ns a string, where a hash per element took 30-50 ns and their pickle more
    (a profile of pandas_report spent 8.4 of its 12 s fingerprinting string columns at its 41
    boundaries). Missing values among the strings count by position and pickle (None, NaN and NA
    stay apart). Any other element (a list, a dict, an
    instance of the program's class) may be changed in place with no new element: only its pickle
    sees that, so such an array is pickled whole. A ``str`` subclass counts as a string: its extra
    attributes are not fingerprinted."""
    import pandas as pd  # a pandas object holds the array

    flat = np.ascontiguousarray(a).reshape(-1)
    h.update(f"objects {a.shape}|".encode())
    if pd.api.types.infer_dtype(flat, skipna=False) != "string":
        if pd.api.types.infer_dtype(flat, skipna=True) != "string":
            _feed_pickle(h, flat)
            return
        missing = pd.isna(flat)
        _feed_buffer(h, missing.view(np.uint8))
        _feed_pickle(h, list(flat[missing]))
        flat = flat[~missing]
    strings = flat.tolist()
    text = "\x00".join(strings)
    h.update(b"utf-8|")
    if text.count("\x00") != max(len(strings) - 1, 0):
        _feed_buffer(h, np.fromiter(map(len, strings), dtype=np.int64, count=len(strings)).view(np.uint8))
    _feed_buffer(h, text.encode("utf-8", "surrogatepass"))


def _feed_values(h: Any, values: Any, np: Any) -> None:
    """A column's or an index's values by what they hold: the same values in another layout give
    the same bytes. An ExtensionArray whose values sit in fixed-width buffers (datetimes, periods,
    timedeltas, nullable numbers, categoricals' codes) is fed those buffers with its dtype."""
    import pandas as pd  # a pandas object holds the values

    if type(values) is np.ndarray:
        if values.dtype.hasobject:
            _feed_objects(h, values, np)
        else:
            _feed_array(h, values, np)
        return
    h.update(f"{type(values).__name__}|".encode())
    if isinstance(values, pd.Categorical):
        h.update(b"ordered|" if values.ordered else b"unordered|")
        _feed_values(h, values.codes, np)
        _feed_pandas(h, values.categories, np)
        return
    h.update(f"{values.dtype!r}|".encode())
    backing = getattr(values, "_ndarray", None)  # datetimes, periods, timedeltas, python strings
    data, mask = getattr(values, "_data", None), getattr(values, "_mask", None)  # nullable numbers
    if type(backing) is np.ndarray:
        _feed_values(h, backing, np)
    elif type(data) is np.ndarray and type(mask) is np.ndarray:
        _feed_array(h, data, np)
        _feed_array(h, mask, np)
    else:  # arrow, sparse, intervals, the program's own: its pickle
        _feed_pickle(h, values)


def _feed_pandas(h: Any, obj: object, np: Any) -> bool:
    """A DataFrame's columns + index + each column's values in order, a Series' values + index +
    name, an Index's values + names; False for any other pandas object (it is pickled). The
    frame's blocks do not count: pandas consolidates them (``df[mask]``, ``df.take``) without
    changing what the frame holds."""
    import pandas as pd  # loaded already: the value is a pandas object

    if isinstance(obj, pd.DataFrame):
        h.update(b"DataFrame|")
        _feed_pandas(h, obj.columns, np)
        _feed_pandas(h, obj.index, np)
        for _, column in obj.items():  # a view of its block, not a copy
            _feed_values(h, column._values, np)
        _feed_pickle(h, (obj.attrs, obj.flags.allows_duplicate_labels))
    elif isinstance(obj, pd.Series):
        h.update(b"Series|")
        _feed_pickle(h, (obj.name, obj.attrs))
        _feed_pandas(h, obj.index, np)
        _feed_values(h, obj._values, np)
    elif isinstance(obj, pd.Index):
        h.update(f"{type(obj).__name__}|".encode())
        if isinstance(obj, pd.RangeIndex):
            _feed_pickle(h, (obj.start, obj.stop, obj.step, obj.name))
        else:
            _feed_pickle(h, tuple(obj.names))
            # pandas-stubs leave out Index._values: the backing array (numpy or extension) with no copy
            _feed_values(h, obj._values, np)  # type: ignore[attr-defined]
    else:
        return False
    return True


def fingerprint(obj: object) -> bytes | None:
    """Rule 6: a digest of ``obj``'s contents, or None when it has none (code, files, generators) or
    cannot be read (it fails to pickle). numpy arrays: dtype + shape + buffer; pandas DataFrame /
    Series / Index: each column's values + index + columns (:func:`_feed_pandas`); anything else: its
    pickle."""
    if isinstance(obj, _UNFINGERPRINTED):
        return None
    np = sys.modules.get("numpy")  # no array exists unless the program loaded numpy
    h = _hasher()
    try:
        if np is not None and type(obj) in (np.ndarray, np.memmap):
            _feed_array(h, obj, np)
            return h.digest()
        if type(obj).__module__.startswith("pandas"):
            try:
                if _feed_pandas(h, obj, np):
                    return h.digest()
            except Exception:  # pandas internals (_values, _ndarray) moved: its pickle still says what it holds
                pass
            h = _hasher()
        _feed_pickle(h, obj)
    except Exception:  # whatever the program's objects raise while pickled: the value is not checked
        return None
    return h.digest()


def _reference(obj: object) -> Callable[[], object]:
    """A way back to ``obj`` at the next boundary that does not keep it alive where the type allows."""
    try:
        return weakref.ref(obj)
    except TypeError:  # lists, dicts, ints, ...: held until the next boundary (rule 6)
        return lambda: obj


class _Snapshot:
    """The locals of one boundary: name -> (a way back to the object, its fingerprint or None)."""

    def __init__(self, items: list[tuple[str, object]]) -> None:
        by_id: dict[int, bytes | None] = {}  # names sharing one object are fingerprinted once
        self.values: dict[str, tuple[Callable[[], object], bytes | None]] = {}
        for name, value in items:
            if name.startswith("__") or isinstance(value, _UNFINGERPRINTED):
                continue
            if id(value) not in by_id:
                by_id[id(value)] = fingerprint(value)
            self.values[name] = (_reference(value), by_id[id(value)])

    def changed_since(self, before: _Snapshot, current: dict[str, object]) -> list[str]:
        """The names holding the same object as at ``before`` whose fingerprint differs."""
        out = []
        for name, (_, digest) in self.values.items():
            old = before.values.get(name)
            if old is not None and old[0]() is current[name] and old[1] is not None and digest is not None \
                    and old[1] != digest:
                out.append(name)
        return out

    def unchecked(self) -> list[str]:
        return [name for name, (_, digest) in self.values.items() if digest is None]


def _boxed(values: Any) -> Any:
    """The object ndarray behind a column's or an index's values when its elements are Python
    objects (object columns, python-backed strings), else None: periods, datetimes, categoricals
    (codes) and nullable numbers sit in fixed-width buffers that ``memory_usage`` counts already."""
    np = sys.modules["numpy"]  # pandas loaded it
    array: Any
    for array in (values, getattr(values, "_ndarray", None)):
        if type(array) is np.ndarray:
            return array if array.dtype.hasobject else None
    return None


def _pandas_size(obj: Any) -> int:
    """A frame's, Series' or Index's bytes: its buffers, plus its Python objects (strings) sampled.

    ``sys.getsizeof`` of a frame is ``memory_usage(deep=True)``, which walks every string of every
    object column after every unit (seconds on a few million rows); only the sample is read here,
    where it lies, with no column converted."""
    import pandas as pd  # the value is a pandas object

    try:
        usage = obj.memory_usage(index=True, deep=False)
    except TypeError:  # an Index has no index= parameter
        usage = obj.memory_usage(deep=False)
    total = int(usage.sum()) if hasattr(usage, "sum") else int(usage)
    columns = [col for _, col in obj.items()] if hasattr(obj, "columns") else [obj]
    for col in columns:
        values = getattr(col, "_values", None)
        if isinstance(values, pd.Categorical):  # its codes are counted: its categories' strings are not
            categories: Any = values.categories  # pandas-stubs leave out Index._values
            values = categories._values
        boxed = _boxed(values)
        if boxed is not None and boxed.size:
            flat = boxed.reshape(-1)
            sample = flat[:SAMPLE]
            total += sum(sys.getsizeof(v) for v in sample) * flat.size // sample.size  # rule 4
    return total


class _Tracer:
    """Rules 2-4: the entry frame's unit transitions and what is measured at each."""

    def __init__(self, target: types.CodeType, line_unit: dict[int, int], keys: list[str],
                 inlined: dict[types.CodeType, InlineDecision] | None = None) -> None:
        self.target, self.line_unit, self.keys = target, line_unit, keys
        self.frame: types.FrameType | None = None
        #: rule 2: the helpers inlined, by code object; the frame of one running now and its decision
        self.inlined = inlined or {}
        self.helper: tuple[types.FrameType, InlineDecision] | None = None
        self.current: int | None = None
        self.wall0 = self.cpu0 = 0.0
        self.units: dict[str, dict[str, Any]] = {}
        #: the locals at the last boundary (rule 6); None before the first unit starts
        self.snapshot: _Snapshot | None = None
        #: rule 8: the RSS when the current unit started, and whether its peak was reset then
        self.rss0, self.peak_reset = 0, False
        #: rule 8: fingerprint -> stored size, so an unchanged value is packed (counted) once
        self.stored: dict[bytes, int | None] = {}

    def global_trace(self, frame: types.FrameType, event: str, arg: object) -> Any:
        if self.frame is None and frame.f_code is self.target:
            self.frame = frame
            return self.local_trace
        decision = self.inlined.get(frame.f_code)
        if decision is not None and self.helper is None and self.frame is not None and frame.f_back is self.frame \
                and decision.line <= self.frame.f_lineno <= decision.end_line:
            self.helper = (frame, decision)
            return self.helper_trace
        return None

    def local_trace(self, frame: types.FrameType, event: str, arg: object) -> Any:
        if frame is not self.frame:
            return None
        if event == "line":
            self.line(frame.f_lineno)
        elif event == "return":
            self.finish()
        return self.local_trace

    def helper_trace(self, frame: types.FrameType, event: str, arg: object) -> Any:
        """An inlined helper's frame (rule 2): its lines are units; it is forgotten when it returns."""
        if self.helper is None or frame is not self.helper[0]:
            return None
        if event == "line":
            self.line(frame.f_lineno)
        elif event == "return":
            self.helper = None  # the unit of its return goes on: the entry frame assigns the value
        return self.helper_trace

    def line(self, lineno: int) -> None:
        unit = self.line_unit.get(lineno)
        if unit is not None and unit != self.current:
            self.finish()
            if self.snapshot is None:
                self.snapshot = _Snapshot(self.locals())
            self.current = unit
            self.peak_reset, self.rss0 = _reset_peak(), rss_bytes()
            self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def locals(self) -> list[tuple[str, object]]:
        """The entry frame's locals, and an inlined helper's under their inlined names (rule 3)."""
        assert self.frame is not None
        items = list(self.frame.f_locals.items())
        if self.helper is not None:
            frame, decision = self.helper
            items += [(decision.prefix + name, value) for name, value in frame.f_locals.items()
                      if name not in decision.substituted]
        return items

    def finish(self) -> None:
        if self.current is None:
            return
        wall, cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0
        # read before measuring: sizing and fingerprinting allocate too
        peak = _peak_rss() if self.peak_reset else None
        items = self.locals()
        sizes = {name: deep_size(value) for name, value in items
                 if not name.startswith("__") and not isinstance(value, _SKIP)}
        after = _Snapshot(items)
        changed = after.changed_since(self.snapshot, dict(items)) if self.snapshot is not None else []
        # the old snapshot goes before RSS is read: it may be the last holder of a deleted list
        self.snapshot = after
        del items
        rss = rss_bytes()
        key = self.keys[self.current]
        previous = self.units.get(key) or {}
        stored = dict(previous.get("stored_bytes", {}))
        for name, size in self.stored_sizes(after, sizes).items():
            stored[name] = max(size, stored.get(name, 0))
        rise = max(peak if peak is not None else rss, rss) - self.rss0
        self.units[key] = {"index": self.current, "wall_s": round(wall + previous.get("wall_s", 0.0), 6),
                           "cpu_s": round(cpu + previous.get("cpu_s", 0.0), 6),
                           "rss_bytes": rss, "live_bytes": dict(sorted(sizes.items())),
                           "start_rss_bytes": previous.get("start_rss_bytes", self.rss0),
                           "peak_rise_bytes": max(rise, previous.get("peak_rise_bytes", 0)),
                           "stored_bytes": dict(sorted(stored.items())),
                           "changed": sorted({*changed, *previous.get("changed", ())}),
                           "unchecked": sorted({*after.unchecked(), *previous.get("unchecked", ())})}
        self.current = None


    def stored_sizes(self, after: _Snapshot, sizes: dict[str, int]) -> dict[str, int]:
        """Rule 8: the bytes a memory element would hold for each local of at least :data:`STORED_MIN`
        bytes, as :func:`scadrt.remote.values.pack` stores it; a local that cannot be pickled has none."""
        out: dict[str, int] = {}
        for name, size in sizes.items():
            entry = after.values.get(name)
            if size < STORED_MIN or entry is None or entry[1] is None:
                continue
            digest = entry[1]
            if digest not in self.stored:
                value = entry[0]()
                from scadrt.remote.values import packed_nbytes  # numpy is loaded: the value holds data

                try:
                    self.stored[digest] = packed_nbytes(value)
                except Exception:  # it fingerprinted but does not pickle with the runtime's rules
                    self.stored[digest] = None
                del value
            if (stored := self.stored[digest]) is not None:
                out[name] = stored
        return out


def _find_code(code: types.CodeType, name: str, line: int) -> types.CodeType | None:
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and const.co_name == name and const.co_firstlineno <= line:
            return const
    return None


def profile_program(path: str, *, entry: str | None = None, inline: bool = True) -> tuple[dict[str, Any], int]:
    """Run ``path`` under the unit tracer; return (the profile, the program's exit status).

    A program that raises has its traceback printed to stderr and exit status 1.
    """
    # parsed on a deep stack (libcst recurses per level of nesting); run here, as `python app.py` would
    program = deep_call(lambda: load_inlined(path, entry=entry, inline=inline))
    module_code = compile(program.source, path, "exec")
    if program.entry.kind == "script":
        target: types.CodeType | None = module_code
    else:
        target = _find_code(module_code, program.entry.name, program.entry.span.line)
    assert target is not None, "the entry function's code object"
    line_unit = {line: u.index for u in program.units for line in range(u.span.line, u.span.end_line + 1)}
    inlined = {}
    for decision in program.inlining:
        helper = _find_code(module_code, decision.helper, sys.maxsize) if decision.inlined else None
        if helper is not None:
            inlined[helper] = decision
    tracer = _Tracer(target, line_unit, [u.span.key for u in program.units], inlined)
    module = types.ModuleType("__main__")  # rule 7
    module.__dict__.update(__file__=path, __builtins__=builtins)
    env = module.__dict__
    if program.entry.kind == "function":
        call = compile(f"\n{program.entry.name}()", path, "exec")
    saved_argv, saved_path, saved_main = sys.argv, list(sys.path), sys.modules.get("__main__")
    sys.argv = [path]
    sys.modules["__main__"] = module
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
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        else:
            del sys.modules["__main__"]
        sys.stdout.flush()
    total = time.perf_counter() - start
    profile = {
        "format": PROFILE_FORMAT,
        "program": Path(path).name,
        "source_sha256": hashlib.sha256(program.source.encode()).hexdigest(),
        "entry": program.entry.name,
        "inline": inline,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "total_wall_s": round(total, 6),
        "exit_status": status,
        "units": tracer.units,
    }
    return profile, status


def dumps(profile: dict[str, Any]) -> str:
    """Rule 5: stable JSON."""
    return json.dumps(profile, indent=2, sort_keys=True) + "\n"
