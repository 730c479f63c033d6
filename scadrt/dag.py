"""The Scad element format: load a program directory into frozen specs and a DAG.

A program is a directory of elements (see ``docs/element-format.md`` in the design notes):

* ``<name>.o.py``   a compute element: a leading block of ``#@ `` comment lines forms a YAML
  header; the rest is Python that defines ``main(params, action)``;
* ``<name>.o.yaml`` a memory element: the whole file is YAML.

Loading is all-or-nothing. :func:`load_program` either returns a :class:`Program` whose
relations are complete and consistent, or raises :class:`~scadrt.errors.ProgramError` with
*every* problem found, each with its file and line. The rules it enforces:

(1) names are letters, digits, ``_`` and ``-``; one file per name; extensions ``py``/``yaml``;
(2) headers are valid YAML mappings with known keys only (typos get a did-you-mean), and a
    ``#@ `` line after the first line of code is an error, not metadata;
(3) every referenced element exists; memory elements take no part in dependent edges (a
    compute element that lists one among its ``dependents``, as Scad's programs do, is accepted
    with a warning: Scad's scheduler starts it with its corunning group, and so does ours);
(4) ``parents`` and ``dependents`` describe the same edges: each side is derived from the
    other, and an edge missing from a side that lists something is a contradiction;
(5) corunning is symmetric; between a compute and a memory element where one lists the other
    and the other lists only other peers, the link is taken from the side that names it, with a
    warning (Scad accepted such files); an element cannot corun with its own
    ancestor or descendant (it would have to run before and alongside it at once);
(6) dependent edges form no cycle;
(7) a compute element parses and defines ``main(params, action)`` at module level
    (checked with ``ast``, never by importing the code);
(8) ``parallelism`` is at most ``max_parallelism`` (default :data:`DEFAULT_MAX_PARALLELISM`,
    ``--max-parallelism`` on the command line); ``limits.cpu`` is finite and at most 1024;
    sizes are below 2**63 bytes (:mod:`scadrt.sizes`); ``withMerged`` holds JSON data only.

Whatever the files hold, loading takes time and memory in proportion to the directory's size,
and never a traceback (rule 9):

(9) an element file is a regular file (a FIFO, directory, broken link or symlink loop is a
    problem, and is never opened in a way that blocks) of at most 1 MiB; its YAML (the whole
    ``.o.yaml``, or the ``#@ `` header) at most 64 KiB, nested at most 32 levels, with numbers
    of at most 64 characters, and no aliases (``*name``: a dozen lines of them expand to
    billions of nodes; Scad's element files use none). Names are at most 255 characters;
    every value quoted in a problem is cut to 80 (:func:`scadrt.errors.shorten`), and at most
    100 problems are listed.
"""

from __future__ import annotations

import ast
import heapq
import io
import math
import os
import re
import stat
import tokenize
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from scadrt.element import instance_names
from scadrt.errors import Problem, ProgramError, UserError, shorten
from scadrt.header import parse_header

if TYPE_CHECKING:  # networkx is imported only by graph(): loading a program must stay fast
    import networkx as nx
from scadrt.sizes import format_size, parse_size

__all__ = [
    "DEFAULT_MAX_PARALLELISM",
    "TRANSPORT_KINDS",
    "Corun",
    "ElementSpec",
    "Limits",
    "MergedMemory",
    "Program",
    "load_program",
    "read_element",
]

Kind = Literal["compute", "memory"]
MiB = 1024**2
#: the transport kinds a corunning link may ask for; ``rdma`` is Scad's name for "remote memory
#: access, whatever carries it" and is what every original program writes
TRANSPORT_KINDS = ("local", "rdma", "shm", "tcp")
#: the largest ``parallelism`` an element may ask for unless the caller raises it (rule 8): every
#: instance is a process or a memory region, so a typo of a few digits must not reach the engine
DEFAULT_MAX_PARALLELISM = 1024
_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")  # always fullmatch: '$' would let a trailing newline in
_EXTENSIONS: dict[str, Kind] = {"py": "compute", "yaml": "memory"}
_KEYS = ("corunning", "dependents", "limits", "parallelism", "parents", "type", "withMerged")
_LIMIT_KEYS = ("cpu", "mem", "storage")
_CORUN_KEYS = ("trans", "type")
_HEADER_PREFIX = "#@ "
# Bounds of rule 9. Scad's largest element file is 3.3 KB with a 9-line header; ast.parse needs
# about 500 bytes of memory per byte of the worst code, PyYAML about 20 µs per byte of YAML.
_MAX_FILE_BYTES = 1 * MiB
_MAX_HEADER_BYTES = 64 * 1024
_MAX_CPU = 1024
_MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Limits:
    """Resource request of one element instance (for a memory element, ``mem`` is its size)."""

    cpu: float = 1.0
    #: bytes
    mem: int = 128 * MiB
    #: bytes
    storage: int = 512 * MiB


@dataclass(frozen=True)
class MergedMemory:
    """A memory element merged into its compute element's process (Scad's ``withMerged`` entry with
    ``elem: Memory``): the element's code reaches a region of ``size`` bytes as transport ``name``."""

    name: str
    size: int

    def __str__(self) -> str:
        return f"{self.name} (merged, {self.size} B)"


def merged_memory(with_merged: tuple[Any, ...]) -> tuple[tuple[MergedMemory, ...], list[tuple[tuple[Any, ...], str]]]:
    """The merged memory elements of a ``withMerged`` list, and the problems (path, message) of
    the entries that name one wrongly. Entries of other kinds are kept for export only."""
    found: list[MergedMemory] = []
    problems: list[tuple[tuple[Any, ...], str]] = []
    for i, entry in enumerate(with_merged):
        if not isinstance(entry, Mapping) or entry.get("elem") != "Memory":
            continue
        action = entry.get("action")
        name = action.get("name") if isinstance(action, Mapping) else None
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            problems.append((("withMerged", i, "action"), "a merged memory element needs 'action: {name: <name>}', "
                             f"the transport name its compute element asks for, not {shorten(name)}"))
            continue
        resources = entry.get("resources")
        mem = resources.get("mem") if isinstance(resources, Mapping) else None
        try:
            size = parse_size(mem)
        except ValueError as exc:
            problems.append((("withMerged", i, "resources"), f"merged memory element {name!r}: 'resources: "
                             f"{{mem: <size>}}' is its region's size ({exc})"))
            continue
        if any(m.name == name for m in found):
            problems.append((("withMerged", i), f"merged memory element {name!r} is listed twice"))
            continue
        found.append(MergedMemory(name, size))
    return tuple(found), problems


@dataclass(frozen=True, order=True)
class Corun:
    """One corunning link as seen from the element that holds it."""

    peer: str
    #: the name element code passes to ``action.get_transport`` for this peer
    trans: str
    #: the transport kind asked for, one of :data:`TRANSPORT_KINDS`
    kind: str = "rdma"


@dataclass(frozen=True)
class ElementSpec:
    """One element, with its relations completed in both directions (rule 4, 5)."""

    name: str
    kind: Kind
    #: the element's file, as the loader was given it
    path: str
    parents: tuple[str, ...] = ()
    dependents: tuple[str, ...] = ()
    corunning: tuple[Corun, ...] = ()
    parallelism: int = 1
    limits: Limits = field(default_factory=Limits)
    #: Scad's merge annotations, kept verbatim (deeply frozen: mappings and tuples)
    with_merged: tuple[Any, ...] = ()
    #: the Python source without its ``#@ `` header lines; ``None`` for memory elements
    code: str | None = None

    @property
    def corunning_names(self) -> tuple[str, ...]:
        return tuple(link.peer for link in self.corunning)

    @property
    def merged_memory(self) -> tuple[MergedMemory, ...]:
        """The memory elements merged into this element's process (from ``withMerged``)."""
        return merged_memory(self.with_merged)[0]

    def instance_names(self) -> tuple[str, ...]:
        """``name`` for a single instance, ``name@0 … name@N-1`` for a parallel one
        (:func:`scadrt.element.instance_names`)."""
        return instance_names(self.name, self.parallelism)

    def format(self) -> str:
        corun = ", ".join(f"{c.peer}({c.trans}:{c.kind})" for c in self.corunning)
        return (
            f"{self.name} [{self.kind}] parents=[{', '.join(self.parents)}]"
            f" dependents=[{', '.join(self.dependents)}] corunning=[{corun}]"
            f" parallelism={self.parallelism} cpu={self.limits.cpu:g}"
            f" mem={self.limits.mem} storage={self.limits.storage}"
        )


@dataclass(frozen=True)
class Program:
    """A validated element directory."""

    #: the directory's base name (the application name in exports)
    name: str
    path: str
    #: every element by name, in name order
    elements: Mapping[str, ElementSpec]
    #: what the loader accepted but found odd (rules 3 and 5), in reading order; `scadc dag --strict`
    warnings: tuple[Problem, ...] = ()

    def compute_elements(self) -> tuple[ElementSpec, ...]:
        return tuple(e for e in self.elements.values() if e.kind == "compute")

    def memory_elements(self) -> tuple[ElementSpec, ...]:
        return tuple(e for e in self.elements.values() if e.kind == "memory")

    def graph(self) -> nx.DiGraph[str]:
        """A new DiGraph: a node per element (attribute ``spec``), edges with ``kind``.

        Dependent edges run parent → child. Corunning edges are symmetric; they are stored
        once, memory → compute, or between two compute elements in name order.
        """
        import networkx as nx

        graph: nx.DiGraph[str] = nx.DiGraph()
        for spec in self.elements.values():
            graph.add_node(spec.name, spec=spec)
        for spec in self.elements.values():
            for child in spec.dependents:
                graph.add_edge(spec.name, child, kind="dependent")
            for peer in spec.corunning_names:
                a, b = _corun_edge(spec, self.elements[peer])
                graph.add_edge(a, b, kind="corunning")
        return graph

    def topological_order(self) -> tuple[str, ...]:
        """Compute elements in dependency order; ties broken by name."""
        computes = self.compute_elements()
        indegree = {spec.name: len(spec.parents) for spec in computes}
        ready = [name for name, degree in indegree.items() if degree == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            name = heapq.heappop(ready)
            order.append(name)
            for child in self.elements[name].dependents:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, child)
        return tuple(order)

    def format(self) -> str:
        return "\n".join([f"program {self.name}", *(e.format() for e in self.elements.values())])


def _corun_edge(a: ElementSpec, b: ElementSpec) -> tuple[str, str]:
    if a.kind != b.kind:
        return (a.name, b.name) if a.kind == "memory" else (b.name, a.name)
    return (a.name, b.name) if a.name < b.name else (b.name, a.name)


# --------------------------------------------------------------------------- loading


def load_program(directory: str | Path, *, max_parallelism: int = DEFAULT_MAX_PARALLELISM) -> Program:
    """Load and validate the element directory ``directory``.

    Raises :class:`~scadrt.errors.ProgramError` listing every problem found, and
    :class:`~scadrt.errors.UserError` when ``max_parallelism`` is not a whole number ≥ 1.
    """
    if isinstance(max_parallelism, bool) or not isinstance(max_parallelism, int) or max_parallelism < 1:
        raise UserError(f"the parallelism bound (--max-parallelism) must be a whole number ≥ 1, "
                        f"not {shorten(max_parallelism)}")
    root = Path(directory)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise ProgramError([Problem(str(root), 0, f"program directory {what}")])
    problems: list[Problem] = []
    raws = _read_elements(root, problems, max_parallelism)
    if not raws and not problems:
        problems.append(Problem(str(root), 0, "no elements found (expected <name>.o.py or <name>.o.yaml files)"))
    warnings: list[Problem] = []
    specs = _link(raws, problems, warnings)
    if problems:
        raise ProgramError(_capped(root, problems), total=len(set(problems)))
    name = root.resolve().name
    return Program(name=name, path=str(root), elements=MappingProxyType(dict(sorted(specs.items()))),
                   warnings=tuple(sorted(set(warnings))))


def read_element(path: str | Path, *, max_parallelism: int = DEFAULT_MAX_PARALLELISM) -> ElementSpec:
    """Load the one element file ``path`` (``<name>.o.py`` or ``<name>.o.yaml``) on its own.

    The per-file rules hold (1, 2, 7, 8, 9); the relations are taken as written, neither completed
    nor checked against other elements (rules 3-6 need the whole directory). For a runtime that
    is handed one element, such as an OpenWhisk action. Raises :class:`~scadrt.errors.ProgramError`.
    """
    path = Path(path)
    named = _element_file(path)
    if isinstance(named, Problem):
        raise ProgramError([named])
    stem, kind = named
    problems: list[Problem] = []
    raw = _read_element(path, stem, kind, problems, max_parallelism)
    if problems or raw is None:
        raise ProgramError(_capped(path.parent, problems), total=len(set(problems)))
    return ElementSpec(
        name=raw.name, kind=raw.kind, path=raw.path,
        parents=tuple(ref.name for ref in raw.parents), dependents=tuple(ref.name for ref in raw.dependents),
        corunning=tuple(sorted(link for _, link in raw.corunning)), parallelism=raw.parallelism,
        limits=raw.limits, with_merged=raw.with_merged, code=raw.code,
    )


def _capped(root: Path, problems: list[Problem]) -> list[Problem]:
    unique = sorted(set(problems))
    if len(unique) <= _MAX_PROBLEMS:
        return unique
    return [*unique[:_MAX_PROBLEMS], Problem(str(root), 0, (
        f"{len(unique) - _MAX_PROBLEMS} more problems not shown ({len(unique)} in all; "
        f"the first {_MAX_PROBLEMS} in file order are listed)"
    ))]


@dataclass
class _Ref:
    """A reference to another element, with the line it was written on."""

    name: str
    line: int


@dataclass(eq=False)
class _RawElement:
    """One element file after per-file checks, before its relations are completed."""

    name: str
    kind: Kind
    path: str
    parents: list[_Ref] = field(default_factory=list)
    dependents: list[_Ref] = field(default_factory=list)
    corunning: list[tuple[_Ref, Corun]] = field(default_factory=list)
    #: the line of each relation key, for problems about the list as a whole
    key_lines: dict[str, int] = field(default_factory=dict)
    parallelism: int = 1
    limits: Limits = field(default_factory=Limits)
    with_merged: tuple[Any, ...] = ()
    code: str | None = None


def _read_elements(root: Path, problems: list[Problem], max_parallelism: int) -> dict[str, _RawElement]:
    raws: dict[str, _RawElement] = {}
    seen: dict[str, str] = {}
    try:
        paths = sorted(root.iterdir())
    except OSError as exc:
        problems.append(Problem(str(root), 0, f"cannot list the directory: {exc.strerror}"))
        return raws
    for path in paths:
        if ".o." not in path.name:
            continue
        shown = str(path)
        named = _element_file(path)
        if isinstance(named, Problem):
            problems.append(named)
            continue
        stem, kind = named
        if stem in seen:
            problems.append(Problem(shown, 0, f"duplicate element name {stem!r} (also defined by {seen[stem]})"))
            continue
        seen[stem] = shown
        raw = _read_element(path, stem, kind, problems, max_parallelism)
        if raw is not None:
            raws[stem] = raw
    return raws


def _element_file(path: Path) -> tuple[str, Kind] | Problem:
    """The element name and kind an element file's name gives, or what is wrong with the name."""
    stem, _, rest = path.name.partition(".")
    ext = rest[2:] if rest.startswith("o.") else ""
    if not _NAME.fullmatch(stem) or rest != f"o.{ext}":
        return Problem(str(path), 0, (
            f"illegal element file name {path.name!r}: expected <name>.o.py or <name>.o.yaml, "
            "where <name> has only letters, digits, '_' and '-'"
        ))
    kind = _EXTENSIONS.get(ext)
    if kind is None:
        return Problem(str(path), 0, (
            f"unknown element file type '.o.{ext}': compute elements are .o.py, memory elements .o.yaml"
        ))
    return stem, kind


def _read_element(path: Path, name: str, kind: Kind, problems: list[Problem],
                  max_parallelism: int) -> _RawElement | None:
    shown = str(path)
    limit = _MAX_FILE_BYTES if kind == "compute" else _MAX_HEADER_BYTES
    text = _read_text(path, shown, limit, problems)
    if text is None:
        return None
    if kind == "compute":
        header, code = _split_header(shown, text, problems)
        _check_main(shown, text, problems)
    else:
        header, code = [(i + 1, line) for i, line in enumerate(text.splitlines())], None
    if not header:
        problems.append(Problem(shown, 1, "missing header: the file must start with '#@ type: compute'"))
        return None
    if kind == "compute" and sum(len(line) + 1 for _, line in header) > _MAX_HEADER_BYTES:
        problems.append(Problem(shown, header[0][0], (
            f"the '#@ ' header is larger than {format_size(_MAX_HEADER_BYTES)}, the most a header may hold"
        )))
        return None
    data, lines = parse_header(shown, header, problems)
    if data is None:
        return None
    # Kept even when its keys have problems, so its references are checked too (report everything).
    raw = _RawElement(name=name, kind=kind, path=shown, code=code)
    _check_keys(raw, data, lines, problems, max_parallelism)
    return raw


def _read_text(path: Path, shown: str, limit: int, problems: list[Problem]) -> str | None:
    """The file's text, or None after a problem: not a regular file, over ``limit`` bytes, not UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (the is-it-regular check comes after)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        problems.append(Problem(shown, 0, f"cannot read: {exc.strerror}"))
        return None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "a FIFO, socket or device"
        problems.append(Problem(shown, 0, f"not a regular file ({what}); an element is a regular file"))
        return None
    with open(fd, "rb") as file:
        try:
            data = file.read(limit + 1)  # never more, however large the file is (or grows)
        except OSError as exc:
            problems.append(Problem(shown, 0, f"cannot read: {exc.strerror}"))
            return None
    if len(data) > limit:
        what = "an element file" if limit == _MAX_FILE_BYTES else "a memory element's YAML"
        problems.append(Problem(shown, 0, f"the file is larger than {format_size(limit)}, the most {what} may hold"))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(shown, 0, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None


def _split_header(shown: str, text: str, problems: list[Problem]) -> tuple[list[tuple[int, str]], str]:
    """Return the header's (line number, YAML text) pairs and the code without them."""
    header: list[tuple[int, str]] = []
    code: list[str] = []
    first_code_line = 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not first_code_line and line.startswith(_HEADER_PREFIX):
            header.append((number, line[len(_HEADER_PREFIX):].rstrip("\r\n")))
            continue
        if not first_code_line and line.strip() and not line.lstrip().startswith("#"):
            first_code_line = number
        code.append(line)
    if first_code_line:
        for number in _late_header_lines(text, first_code_line):
            problems.append(Problem(shown, number, (
                "'#@ ' header line after code; the header must come before the first line of code"
            )))
    return header, "".join(code)


def _late_header_lines(text: str, first_code_line: int) -> Iterator[int]:
    # Comments, not lines: '#@ ' at the start of a line inside a string literal is data.
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if (token.type == tokenize.COMMENT and token.start[1] == 0
                    and token.start[0] > first_code_line and token.string.startswith(_HEADER_PREFIX)):
                yield token.start[0]
    except (tokenize.TokenError, SyntaxError):
        return  # the syntax error is reported by _check_main


def _check_main(shown: str, text: str, problems: list[Problem]) -> None:
    try:
        module = ast.parse(text, filename=shown)
    except SyntaxError as exc:
        problems.append(Problem(shown, exc.lineno or 0, f"syntax error: {exc.msg}"))
        return
    except (MemoryError, RecursionError):
        # how CPython's parser says "nested too deeply" ('-' * 100_000 + '1'); the file is ≤ 1 MiB
        problems.append(Problem(shown, 0, "the code is too complex to parse (nested too deeply)"))
        return
    mains = [n for n in module.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == "main"]
    if not mains:
        problems.append(Problem(shown, 1, "compute element does not define main(params, action) at module level"))
        return
    main = mains[-1]
    if isinstance(main, ast.AsyncFunctionDef):
        problems.append(Problem(shown, main.lineno, "main must be a plain function, not 'async def'"))
        return
    args = main.args
    positional = len(args.posonlyargs) + len(args.args)
    required_kwonly = sum(default is None for default in args.kw_defaults)
    if (positional < 2 and args.vararg is None) or required_kwonly:
        problems.append(Problem(shown, main.lineno, "main must accept two positional arguments: main(params, action)"))


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    # a word far longer than every choice is close to none (and difflib is quadratic in it)
    import difflib  # for a problem's message only

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6) if len(word) <= 255 else []
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(choices)})" if len(choices) <= 10 else ""


def _check_keys(raw: _RawElement, data: dict[str, Any], lines: dict[tuple[Any, ...], int],
                problems: list[Problem], max_parallelism: int) -> None:
    def line(*path: Any) -> int:
        while path not in lines:
            path = path[:-1]
        return lines[path]

    def problem(path: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(raw.path, line(*path), message))

    for key in data:
        if key not in _KEYS:
            problem((key,), f"unknown key {shorten(key)}{_did_you_mean(str(key), _KEYS)}")
    kind = data.get("type")
    if kind is None:
        problem((), f"missing required key 'type' (expected 'type: {raw.kind}')")
    elif kind != raw.kind:
        expected = "memory elements are .o.yaml files" if kind == "memory" else "compute elements are .o.py files"
        if kind in _EXTENSIONS.values():
            problem(("type",), f"'type: {kind}' does not match the file's extension: {expected}")
        else:
            problem(("type",), f"'type' must be 'compute' or 'memory', not {shorten(kind)}")
    for key in ("parents", "dependents"):
        if key in data:
            raw.key_lines[key] = line(key)
            setattr(raw, key, _names(data[key], (key,), problem, line))
    if "corunning" in data:
        raw.key_lines["corunning"] = line("corunning")
        raw.corunning = _corunning(data["corunning"], problem, line)
    if "parallelism" in data:
        value = data["parallelism"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problem(("parallelism",), f"'parallelism' must be a whole number ≥ 1, not {shorten(value)}")
        elif value > max_parallelism:
            problem(("parallelism",), (
                f"'parallelism' {shorten(value)} is above the limit of {max_parallelism} instances "
                "(raise the limit with --max-parallelism N)"
            ))
        else:
            raw.parallelism = value
    if "limits" in data:
        raw.limits = _limits(data["limits"], problem)
    if "withMerged" in data:
        merged = data["withMerged"]
        if merged is None:
            merged = []
        bad = _not_json(merged, ("withMerged",))
        if not isinstance(merged, list):
            problem(("withMerged",), "'withMerged' must be a list")
        elif bad is not None:
            path, value = bad
            problem(path, f"'withMerged' holds JSON data only (text, numbers, lists, mappings), not {shorten(value)}")
        else:
            raw.with_merged = _freeze(merged)
            found, wrong = merged_memory(raw.with_merged)
            for path, message in wrong:
                problem(path, message)
            transports = {link.trans for _, link in raw.corunning}
            for m in found:
                if m.name in transports:
                    problem(("withMerged",), f"merged memory element {m.name!r} has the name of a corunning "
                            "link's transport: the element's code could not tell them apart")


def _not_json(value: Any, path: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any] | None:
    """The path and value of the first part of ``value`` that exports cannot write as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    if value is None or isinstance(value, str | int | float):
        return None
    if isinstance(value, list):
        items: Any = enumerate(value)
    elif isinstance(value, dict):
        items = value.items()
        for key in value:
            if not isinstance(key, str):
                return (*path, key), key
    else:  # dates, bytes (!!binary)
        return path, value
    for key, item in items:
        bad = _not_json(item, (*path, key))
        if bad is not None:
            return bad
    return None


def _names(value: Any, path: tuple[Any, ...], problem: Any, line: Any) -> list[_Ref]:
    if value is None:
        return []
    if isinstance(value, str):  # a single name is a common slip for a one-item list
        value = [value]
    if not isinstance(value, list):
        problem(path, f"{path[-1]!r} must be a list of element names")
        return []
    refs = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _NAME.fullmatch(item):
            problem((*path, index), f"{shorten(item)} in {path[0]!r} is not an element name")
        else:
            refs.append(_Ref(item, line(*path, index)))
    return refs


def _corunning(value: Any, problem: Any, line: Any) -> list[tuple[_Ref, Corun]]:
    if value is None:
        return []
    if isinstance(value, list):
        return [(ref, Corun(ref.name, ref.name)) for ref in _names(value, ("corunning",), problem, line)]
    if not isinstance(value, dict):
        problem(("corunning",), "'corunning' must be a mapping of element names, or a list of them")
        return []
    links = []
    for peer, link in value.items():
        path = ("corunning", peer)
        if not isinstance(peer, str) or not _NAME.fullmatch(peer):
            problem(path, f"{shorten(peer)} in 'corunning' is not an element name")
            continue
        if link is None:
            link = {}  # noqa: PLW2901 - 'peer:' with no value means all defaults
        if not isinstance(link, dict):
            problem(path, f"corunning entry {peer!r} must be a mapping such as '{{trans: {peer}, type: rdma}}'")
            continue
        for key in link:
            if key not in _CORUN_KEYS:
                problem((*path, key), (
                    f"unknown key {shorten(key)} in corunning entry{_did_you_mean(str(key), _CORUN_KEYS)}"
                ))
        trans, kind = link.get("trans", peer), link.get("type", "rdma")
        # The engine hands the code its transport as 'trans' or 'trans@i' inside a descriptor
        # 'NAME;IMPL;…' (scadrt.transports): so a transport name follows the element-name rule.
        if not isinstance(trans, str) or not _NAME.fullmatch(trans):
            problem((*path, "trans"), (
                f"'trans' must be a transport name (letters, digits, '_' and '-'), not {shorten(trans)}"
            ))
            continue
        if kind not in TRANSPORT_KINDS:
            problem((*path, "type"), (
                f"unknown transport type {shorten(kind)}{_did_you_mean(str(kind), TRANSPORT_KINDS)}"
            ))
            continue
        links.append((_Ref(peer, line(*path)), Corun(peer, trans, kind)))
    return links


def _limits(value: Any, problem: Any) -> Limits:
    if value is None:
        return Limits()
    if not isinstance(value, dict):
        problem(("limits",), "'limits' must be a mapping such as '{cpu: 1, mem: 256 MB}'")
        return Limits()
    for key in value:
        if key not in _LIMIT_KEYS:
            problem(("limits", key), f"unknown key {shorten(key)} in limits{_did_you_mean(str(key), _LIMIT_KEYS)}")
    result = Limits()
    cpu = value.get("cpu", result.cpu)
    if isinstance(cpu, bool) or not isinstance(cpu, int | float) or not 0 < cpu <= _MAX_CPU:
        problem(("limits", "cpu"), f"'limits.cpu' must be a positive number up to {_MAX_CPU}, not {shorten(cpu)}")
    else:
        result = Limits(float(cpu), result.mem, result.storage)
    sizes = {}
    for key in ("mem", "storage"):
        if key in value:
            try:
                sizes[key] = parse_size(value[key])
            except ValueError as exc:
                problem(("limits", key), f"'limits.{key}': {exc}")
                continue
            if sizes[key] == 0:
                problem(("limits", key), f"'limits.{key}' must be larger than 0")
    return Limits(result.cpu, sizes.get("mem", result.mem), sizes.get("storage", result.storage))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Turn a value frozen by the loader back into JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


# --------------------------------------------------------------------------- relations


def _link(raws: dict[str, _RawElement], problems: list[Problem], warnings: list[Problem]) -> dict[str, ElementSpec]:
    """Complete and check the relations between elements (rules 3–6); what is accepted but odd
    goes to ``warnings``."""
    edges: set[tuple[str, str]] = set()
    corun: dict[frozenset[str], dict[str, Corun]] = {}

    def check_ref(raw: _RawElement, ref: _Ref, key: str) -> bool:
        if ref.name not in raws:
            hint = _did_you_mean(ref.name, sorted(raws)) if raws else ""
            problems.append(Problem(raw.path, ref.line, f"unknown element {ref.name!r} in {key!r}{hint}"))
            return False
        if ref.name == raw.name:
            problems.append(Problem(raw.path, ref.line, f"element {raw.name!r} lists itself in {key!r}"))
            return False
        return True

    for raw in raws.values():
        for key in ("parents", "dependents"):
            refs = getattr(raw, key)
            if raw.kind == "memory" and refs:
                problems.append(Problem(raw.path, raw.key_lines[key], (
                    f"a memory element has no {key}: it lives while its corunning compute elements run"
                )))
                continue
            for ref in refs:
                if not check_ref(raw, ref, key):
                    continue
                if raws[ref.name].kind == "memory":
                    if key == "dependents":  # Scad's programs do this (accum_access): its scheduler
                        warnings.append(Problem(raw.path, ref.line, (  # starts it with its group
                            f"{ref.name!r} is a memory element: as a dependent it adds no edge (it starts "
                            f"with the compute elements it coruns with); list it under 'corunning'"
                        )))
                    else:
                        problems.append(Problem(raw.path, ref.line, (
                            f"{ref.name!r} is a memory element and cannot be a parent; list it under 'corunning'"
                        )))
                    continue
                edges.add((ref.name, raw.name) if key == "parents" else (raw.name, ref.name))
        for ref, link in raw.corunning:
            if raw.kind == "memory" and ref.name not in raws:  # Scad's programs do this (parallelism-2-node):
                hint = _did_you_mean(ref.name, sorted(raws)) if raws else ""  # its scheduler read only
                warnings.append(Problem(raw.path, ref.line, (  # the compute side's list
                    f"'corunning' lists {ref.name!r}, which is not an element of the program: ignored (a "
                    f"memory element coruns with the compute elements that list it){hint}"
                )))
                continue
            if not check_ref(raw, ref, "corunning"):
                continue
            if raw.kind == "memory" and raws[ref.name].kind == "memory":
                problems.append(Problem(raw.path, ref.line, (
                    f"memory elements cannot corun with each other ({raw.name!r} and {ref.name!r})"
                )))
                continue
            corun.setdefault(frozenset((raw.name, ref.name)), {})[raw.name] = link

    _check_contradictions(raws, edges, problems)
    _check_corunning(raws, corun, warnings)
    successors: dict[str, list[str]] = {}
    for parent, child in sorted(edges):
        successors.setdefault(parent, []).append(child)
    if not _check_cycles(raws, successors, problems):
        _check_corun_vs_order(raws, successors, corun, problems)
    specs = {}
    for raw in raws.values():
        links = []
        for pair, sides in corun.items():
            if raw.name in pair:
                (peer,) = pair - {raw.name}
                links.append(sides.get(raw.name) or Corun(peer, peer))
        specs[raw.name] = ElementSpec(
            name=raw.name, kind=raw.kind, path=raw.path,
            parents=tuple(sorted(p for p, c in edges if c == raw.name)),
            dependents=tuple(sorted(c for p, c in edges if p == raw.name)),
            corunning=tuple(sorted(links)), parallelism=raw.parallelism, limits=raw.limits,
            with_merged=raw.with_merged, code=raw.code,
        )
    return specs


def _check_contradictions(raws: dict[str, _RawElement], edges: set[tuple[str, str]],
                          problems: list[Problem]) -> None:
    for parent, child in sorted(edges):
        p, c = raws[parent], raws[child]
        in_parents = parent in {r.name for r in c.parents}
        in_dependents = child in {r.name for r in p.dependents}
        if in_parents and not in_dependents and p.dependents:
            problems.append(Problem(p.path, p.key_lines["dependents"], (
                f"'dependents' does not list {child!r}, but {c.path}:{c.key_lines['parents']} "
                f"lists {parent!r} among its parents"
            )))
        if in_dependents and not in_parents and c.parents:
            problems.append(Problem(c.path, c.key_lines["parents"], (
                f"'parents' does not list {parent!r}, but {p.path}:{p.key_lines['dependents']} "
                f"lists {child!r} among its dependents"
            )))


def _check_corunning(raws: dict[str, _RawElement], corun: dict[frozenset[str], dict[str, Corun]],
                     warnings: list[Problem]) -> None:
    for pair, sides in sorted(corun.items(), key=lambda item: sorted(item[0])):
        if len(sides) == 2 or len({raws[n].kind for n in pair}) == 1:
            continue
        (writer,) = sides
        (silent,) = pair - {writer}
        s, w = raws[silent], raws[writer]
        if s.corunning:
            warnings.append(Problem(s.path, s.key_lines["corunning"], (
                f"'corunning' does not list {writer!r}, but {w.path}:{w.key_lines['corunning']} "
                f"lists {silent!r} as corunning (taken as corunning)"
            )))


def _check_cycles(raws: dict[str, _RawElement], successors: dict[str, list[str]], problems: list[Problem]) -> bool:
    """Report each dependency cycle once, starting at its smallest name; return whether any exists."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: set[frozenset[str]] = set()
    for root in sorted(successors):
        if state.get(root):
            continue
        path, stack = [root], [iter(successors.get(root, ()))]
        state[root] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                cycle = path[path.index(child):]
                if frozenset(cycle) not in found:
                    found.add(frozenset(cycle))
                    first = cycle.index(min(cycle))
                    cycle = cycle[first:] + cycle[:first]
                    raw = raws[cycle[0]]
                    line = raw.key_lines.get("dependents") or raw.key_lines.get("parents", 1)
                    shown = [*cycle, cycle[0]] if len(cycle) <= 8 else [*cycle[:8], f"… ({len(cycle)} elements)"]
                    problems.append(Problem(raw.path, line, f"dependency cycle: {' → '.join(shown)}"))
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(successors.get(child, ())))
    return bool(found)


def _reaches(successors: dict[str, list[str]], start: str, goal: str) -> bool:
    seen, todo = {start}, [start]
    while todo:
        for child in successors.get(todo.pop(), ()):
            if child == goal:
                return True
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return False


def _check_corun_vs_order(raws: dict[str, _RawElement], successors: dict[str, list[str]],
                          corun: dict[frozenset[str], dict[str, Corun]], problems: list[Problem]) -> None:
    for pair in sorted(corun, key=sorted):
        a, b = sorted(pair)
        if _reaches(successors, a, b) or _reaches(successors, b, a):
            writer = raws[min(corun[pair])]
            problems.append(Problem(writer.path, writer.key_lines["corunning"], (
                f"{a!r} and {b!r} are corunning, but one depends on the other, so they cannot run at once"
            )))


def to_json_ready(spec: ElementSpec) -> dict[str, Any]:
    """The spec as plain JSON data (used by exports and reports)."""
    return {
        "name": spec.name,
        "type": spec.kind,
        "parents": list(spec.parents),
        "dependents": list(spec.dependents),
        "corunning": {c.peer: {"trans": c.trans, "type": c.kind} for c in spec.corunning},
        "parallelism": spec.parallelism,
        "limits": {"cpu": spec.limits.cpu, "mem": spec.limits.mem, "storage": spec.limits.storage},
        "withMerged": thaw(spec.with_merged),
    }

