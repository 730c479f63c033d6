"""The element ABI: what a compute element file is, what it receives, what it returns.

Every engine (the local one's forked instances, ``scadc run-element`` in its own process, Ray
next) runs an instance through this module, and the compiler generates elements against it:

1. **Loading.** An element file ``NAME.o.py`` is executed as the module :data:`PROGRAM_MODULE`
   (not ``__main__``: an element is not a script), with its directory first on ``sys.path`` so
   that it may import modules beside it, and with Scad's ``disaggrt``, ``npjoin`` and ``disagg``
   importable (:mod:`scadrt.compat`). Every element of a program uses the one module name, so
   an instance of a class the program defines pickles in one element and unpickles in the next.
2. **Params.** A root element receives the run's input; any other element receives
   ``{parent: [result of instance 0, 1, …]}`` for each of its parents (:func:`element_params`;
   with one instance, ``params[parent]["key"]`` reads its result too, as Scad's programs did).
3. **Instances.** An element with ``parallelism`` 1 has one instance named ``NAME``; a parallel
   one has ``NAME@0 … NAME@N-1`` (:func:`instance_name`). An instance learns its index from
   ``action.par_index`` and from the environment variable :data:`~scadrt.action.PAR_INDEX_ENV`.
4. **Running.** ``main(params, action)`` is called with a :class:`~scadrt.action.Action` holding
   the transports to the memory elements it coruns with; warnings show as they did when the
   original program ran as a script (:func:`warnings_as_in_main`).
5. **Result.** ``main`` returns a JSON object (``None`` counts as ``{}``), anything else is a
   ``TypeError`` (:func:`check_result`). Elements scadc generates return
   ``{RESULT_VALUES: {name: packed value}, RESULT_RNG: generator state}``, the second key only
   when a dependent restores the random generators; an element written by hand may return
   any JSON object.
6. **Errors.** What an instance's failure shows is the traceback from the element's own frames
   on (:func:`format_element_error`): the frames of the engine and of this module are dropped.
   An engine that reports a failure across a process boundary sends :func:`error_record`, which
   also says, by type, whether the element ran out of region or lost its memory element.
7. **Exit.** An instance's process ends as the original's interpreter did (:func:`end_program`):
   the exit handlers its code registered run, and what its module holds is finalised, so a file
   the element opened at module level is flushed and closed, however the process then exits.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import linecache
import os
import re
import sys
import threading
import traceback
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from scadrt.errors import ConnectionLostError, RegionFullError

if TYPE_CHECKING:
    from warnings import _ActionKind  # typeshed's name for filterwarnings' actions

    from scadrt.action import TransportSource
    from scadrt.profile import ProfileSample

    #: an entry of warnings.filters: action, message, category, module, lineno
    _Filter = tuple[str, re.Pattern[str] | None, type[Warning] | tuple[type[Warning], ...], re.Pattern[str] | None,
                    int]

__all__ = [
    "PROGRAM_MODULE", "RESULT_RNG", "RESULT_VALUES", "Outcome", "ParentResults", "check_result", "element_params",
    "end_program", "error_record", "format_element_error", "instance_index", "instance_name", "instance_names",
    "load_element", "run_element", "warnings_as_in_main",
]

JSON = Any

#: the module name element code runs under (rule 1)
PROGRAM_MODULE = "__scad_program__"
#: a generated element's result: the values it sends to its dependents, by name (rule 5)
RESULT_VALUES = "values"
#: a generated element's result: the random generators' state, for the next element (rule 5)
RESULT_RNG = "rng"


@dataclass(frozen=True)
class Outcome:
    """What one instance produced."""

    #: the result of ``main``, a JSON object
    result: dict[str, JSON]
    #: transport kind → {"read": bytes, "written": bytes} moved through the action's transports
    transfer: dict[str, dict[str, int]]
    #: what ``action.profile(n)`` recorded
    profile: tuple[ProfileSample, ...] = ()


def instance_name(name: str, index: int, parallelism: int) -> str:
    """Instance ``index`` of the element ``name`` (rule 3).

    >>> instance_name("square", 0, 1), instance_name("square", 2, 3)
    ('square', 'square@2')
    """
    return name if parallelism == 1 else f"{name}@{index}"


def instance_index(instance: str) -> int:
    """The index in an instance's name (rule 3).

    >>> instance_index("m"), instance_index("m@3")
    (0, 3)
    """
    _, at, index = instance.partition("@")
    return int(index) if at else 0


def instance_names(name: str, parallelism: int) -> tuple[str, ...]:
    """Every instance of the element ``name``, in index order (rule 3).

    >>> instance_names("m", 1), instance_names("m", 2)
    (('m',), ('m@0', 'm@1'))
    """
    return tuple(instance_name(name, i, parallelism) for i in range(parallelism))


def element_params(parents: Sequence[str], run_input: JSON, results: Mapping[str, Sequence[JSON]]) -> JSON:
    """The params of an element with ``parents`` (rule 2); ``results``: each parent's results in
    instance order (other elements' may be there too).

    >>> element_params((), {"n": 5}, {})
    {'n': 5}
    >>> element_params(("a", "b"), {"n": 5}, {"a": [{"x": 1}], "b": [{"i": 0}, {"i": 1}], "c": [{}]})
    {'a': [{'x': 1}], 'b': [{'i': 0}, {'i': 1}]}
    """
    if not parents:
        return run_input
    return {parent: ParentResults(results[parent]) for parent in parents}


class ParentResults(list[JSON]):
    """A parent's results, one per instance: a list, which also answers ``results["key"]`` as
    ``results[0]["key"]`` when the parent has one instance. Scad's runners passed lists too, but
    most of its own programs indexed them as the one result (``params["step1"]["meta"]``) and
    failed; here they run. Indexing with text is a TypeError on a plain list, so no program that
    worked before means anything else by it.

    >>> r = ParentResults([{"meta": "m"}])
    >>> r["meta"], r[0]["meta"], r
    ('m', 'm', [{'meta': 'm'}])
    """

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if len(self) == 1 and isinstance(self[0], dict):
                return self[0][key]
            raise TypeError(f"a parent with {len(self)} instances gives a list of their results: "
                            f"take one first (params[parent][i][{key!r}])")
        return super().__getitem__(key)


def load_element(path: str) -> types.ModuleType:
    """Execute the element file ``path`` as :data:`PROGRAM_MODULE` (rule 1) and return the module.

    Call it inside :func:`warnings_as_in_main` for warnings of its module-level code to show as
    in the original (:func:`run_element` does).
    """
    sys.path.insert(0, str(Path(path).parent))
    from scadrt.compat import install  # after the program's directory: a module of its own wins

    install()  # Scad's libraries under their names, for programs written against Scad
    source = Path(path).read_text(encoding="utf-8")
    module = types.ModuleType(PROGRAM_MODULE)
    module.__file__ = path
    # importable while the element runs: unpickling a program class looks it up there
    sys.modules[PROGRAM_MODULE] = module
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def end_program() -> None:
    """Do what the interpreter does at exit for the program this process ran (rule 7).

    An engine that ends an instance with ``os._exit`` (the local engine's forked instances, and
    ``scadc run`` after running the one element itself: each skips a teardown of its address space
    that takes 25 ms and more) calls it first. In the interpreter's order: the threads the program
    started and did not make daemons are waited for, the exit handlers run (``atexit``, which
    ``logging`` uses to flush its handlers), then the element module's namespace is cleared and a
    collection run, which finalises what only the program holds: a file opened at module level
    flushes its buffer. (A forked instance's gc is frozen: what it inherited is not collected.)
    An error in a handler is printed and ignored, as at exit. An engine whose process ran code of
    its own before the instance should clear the handlers first (``atexit._clear()``): they are
    not the program's. What a library module holds is not finalised (the interpreter would).
    """
    # what Py_Finalize calls first: it joins the non-daemon threads (those they start too) and runs
    # the hooks of threading._register_atexit (concurrent.futures' executors wait for their work)
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    module = sys.modules.pop(PROGRAM_MODULE, None)
    if module is not None:
        module.__dict__.clear()
    gc.collect()  # what is left in cycles (a file held by an object that refers to itself), as the exit collects it


def check_result(result: object) -> dict[str, JSON]:
    """``main``'s return value as an element's result (rule 5), or TypeError saying what is wrong.

    >>> check_result(None), check_result({"values": {"n": 1}})
    ({}, {'values': {'n': 1}})
    >>> check_result([1])
    Traceback (most recent call last):
    TypeError: main() must return a dict (a JSON object), not list
    """
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"main() must return a dict (a JSON object), not {type(result).__name__}")
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"main() returned a value that is not JSON-serialisable: {exc}") from exc
    return result


def run_element(path: str, element: str, index: int, params: JSON,
                transports: Mapping[str, TransportSource], *, entry: str = "main",
                before_main: Callable[[], object] | None = None) -> Outcome:
    """Run ``main(params, action)`` of the element file ``path``, instance ``index``, in this process.

    ``transports``: memory element (instance) name → what :class:`~scadrt.action.Action` takes.
    ``entry``: the function to call instead of ``main`` (OpenWhisk's ``/init`` may name another).
    ``before_main`` runs after the module is loaded (its imports done), before ``main`` is called.
    Raises whatever the element raises, or TypeError when its result is not a JSON object. The
    process is the instance's: its environment, ``sys.path`` and ``sys.modules`` are changed.
    """
    # imported here, not above: loading a program (scadrt.dag) imports this module for instance
    # naming and must stay fast, and the action brings the transports and numpy along (a worker
    # has imported it before it forks the instance)
    from scadrt.action import PAR_INDEX_ENV, Action

    os.environ[PAR_INDEX_ENV] = str(index)
    with warnings_as_in_main(path):
        main = getattr(load_element(path), entry)
        if before_main is not None:
            before_main()
        with Action(element, transports, par_index=index) as action:
            result = main(params, action)
            transfer = action.transfer_counts()
    return Outcome(check_result(result), transfer, action.profile_samples)


def format_element_error(exc: BaseException) -> str:
    """The traceback of ``exc`` from the element's own frames on (rule 6).

    The frames up to and including this module's (the engine's, :func:`run_element`'s) are
    dropped. An error this module raised itself (a result that is not JSON, a syntax error in
    the file) keeps no frame: its message says it all. An exception that never passed through
    this module keeps its whole traceback.
    """
    tb = exc.__traceback__
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename != __file__:
        first = first.tb_next
    if first is not None:
        tb = first
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


@contextlib.contextmanager
def warnings_as_in_main(path: str) -> Iterator[None]:
    """While the element file ``path`` runs: warnings its code triggers are shown as they were when
    the original program ran as a script, and say where in the original they come from.

    Python's default filters show a DeprecationWarning (pandas' FutureWarnings about ``inplace``,
    numpy's deprecations…) only when the code that triggers it is in ``__main__``; element code
    runs as :data:`PROGRAM_MODULE`. So every filter naming ``__main__`` (the default one, or a
    ``-W``/``PYTHONWARNINGS`` one) gets a twin for the element's module right beside it, which keeps
    the filters' order, and with it the precedence of the user's own options. A warning whose
    location is a line of the element that :mod:`scadrt.sourcemap` maps names the original file
    and line (the source's absolute path when it is found from the working directory, as Python
    prints a script's), with the same source text. Filters and ``warnings.showwarning`` are
    restored afterwards.
    """
    with warnings.catch_warnings():
        _twin_main_filters()
        shown = warnings.showwarning
        where = _SourceLines(path)

        def showwarning(  # noqa: PLR0917 - warnings.showwarning's signature, positional parameters and all
                message: Warning | str, category: type[Warning], filename: str, lineno: int,
                file: TextIO | None = None, line: str | None = None) -> None:
            if filename == path and (original := where.lookup(lineno)) is not None:
                line = linecache.getline(path, lineno) if line is None else line
                filename, lineno = original
            shown(message, category, filename, lineno, file, line)

        warnings.showwarning = showwarning
        yield


def _twin_main_filters() -> None:
    module = re.compile(re.escape(PROGRAM_MODULE) + r"\Z")
    # typeshed declares the list a Sequence ("do not mutate"); placing the twins is what this does
    filters = cast("list[_Filter]", warnings.filters)
    for entry in list(filters):
        action, message, category, pattern, lineno = entry
        names_main = pattern == "__main__" if isinstance(pattern, str) else (
            pattern is not None and pattern.match("__main__") is not None and pattern.match(PROGRAM_MODULE) is None)
        if not names_main:
            continue
        # added through the public call, which tells the warnings machinery its filters changed,
        # then moved next to its model (nothing warns in between, so nothing sees the first place)
        # (an entry's action and category were accepted by filterwarnings or simplefilter: a tuple
        # of categories, which only simplefilter's signature admits, is stored as given and works)
        warnings.filterwarnings(cast("_ActionKind", action), message.pattern if message is not None else "",
                                cast("type[Warning]", category), module.pattern, lineno)
        twin = filters.pop(0)
        filters.insert(filters.index(entry) + 1, twin)


class _SourceLines:
    """Lines of an element file → (original file, line), read from the program's sourcemap.json
    when first asked (a warning is rare; most elements never read it)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: Any = None
        self._source = ""

    def lookup(self, lineno: int) -> tuple[str, int] | None:
        from scadrt.sourcemap import load_sourcemap  # only when a warning is shown

        if self._map is None:
            self._map = load_sourcemap(Path(self.path).parent) or False
            if self._map:
                source = self._map.source
                # a script's warnings name its absolute path; the map has it as given to scadc split
                self._source = source if os.path.isabs(source) or not os.path.isfile(source) else (
                    os.path.abspath(source))
        if not self._map:
            return None
        original = self._map.lookup(Path(self.path).name.partition(".")[0], lineno)
        return None if original is None else (self._source, original)


def error_record(exc: BaseException) -> dict[str, Any]:
    """A failure as JSON: its kind and message, the element's traceback (rule 6), and two typed flags.

    ``region_full``: the engine adds a sizing hint for generated programs; ``connection_lost``: it
    waits a moment for the memory element to be seen dead. Both are decided here with
    ``isinstance`` (a subclass counts; a user class merely named the same does not), so that the
    receiving side never matches class names.
    """
    return {"kind": type(exc).__name__, "message": str(exc), "traceback": format_element_error(exc),
            "region_full": isinstance(exc, RegionFullError), "connection_lost": isinstance(exc, ConnectionLostError)}
