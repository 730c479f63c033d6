"""Writing a partition plan as an element directory.

Decisions are made here in Python; the templates in ``templates/`` only lay out text. Each
compute element gets: its ``#@ `` header; a comment naming the original file and lines; only
the imports and module-level definitions its statements need (transitively), verbatim; and a
``main(params, action)`` whose body is a short prologue (unpack what the parent sent), the
user's statements verbatim with their comments, and an epilogue (pack what the next element
needs). The body is assembled with libcst, not by re-indenting text, so multi-line strings
keep their exact contents.

Beside the elements: ``split.json`` (format tag :data:`SPLIT_FORMAT`, policy, decisions, sizes)
and ``sourcemap.json`` (for each element, runs of generated lines and the original lines they
came from, for tracebacks).

Where the directory may go (:func:`check_output`, checked before analysis and again before writing):

1. ``DIR`` is never a symbolic link, the input program, a directory that contains the input, or
   the current directory or one of its ancestors; its parent must be an existing directory.
2. An existing ``DIR`` is replaced only with ``force`` and only when an earlier split wrote it: its
   ``split.json`` carries :data:`SPLIT_FORMAT` and it holds nothing but regular files split
   writes (``*.o.py``, ``*.o.yaml``, ``split.json``, ``sourcemap.json``). A directory of an older
   split (no tag) is refused too: the user removes it by hand.
3. The new directory is written complete beside ``DIR`` (a staging directory in the same parent)
   and only then swapped in: atomically with ``renameat2(RENAME_EXCHANGE)`` where Linux offers it,
   else by two renames that are undone if the second fails. The old directory is removed only
   after the swap; a failed split leaves it untouched and no staging directory behind.
4. Any problem writing is a :class:`~scadrt.errors.UserError` ``cannot write DIR: why``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jinja2
import libcst as cst
import networkx as nx
from libcst.metadata import MetadataWrapper, PositionProvider

from scadc.analysis import Analysis, Definition
from scadc.errors import CompileError, InternalCompilerError
from scadc.partition.plan import ComputePlan, PartitionPlan
from scadc.source import Span
from scadrt.element import RESULT_RNG, RESULT_VALUES
from scadrt.errors import UserError
from scadrt.sizes import format_size

__all__ = ["SPLIT_FORMAT", "check_output", "check_parent", "quote_path", "refuse_input", "render_program",
           "write_program"]

#: the format tag of split.json: what marks a directory as one split wrote (rule 2)
SPLIT_FORMAT = "scadc-split/1"
_REPORTS = frozenset({"split.json", "sourcemap.json"})
_MAX_REPORT = 256 * 2**20  # a split.json larger than this was not written by split

_MiB = 2**20
#: an element process beside its program's data: Python with numpy, pandas and scadrt imported is
#: 75 MiB resident here, its transport's buffer pool up to 8 MiB, and what the profile cannot see
#: (the worker's own start, the pickle machinery, the JSON of parameters and results) the rest:
#: with 96 MiB, tpcds_pandas' first element came within 3% of its profiled limit at scale 1
_BASELINE = 128 * _MiB
#: on a profiled peak: the profile saw one run; the element's heap differs from the monolith's
#: (malloc's arenas, when the collector runs, what it frees late), and the figures were sampled
#: between statements and at the unit's peak, not at every allocation inside a loaded value
_PEAK_MARGIN = 1.25
#: the share of a core the profiled units may keep busy without it counting (the interpreter's own
#: threads, a short BLAS call): :func:`_profiled_cpu`
_IDLE_CORE = 0.1
_RUNTIME = "_scad"  # the name generated code imports scadrt.remote.values as (not a user name)
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("scadc.codegen", "templates"), keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined, autoescape=False,
)


class _EarlyExit(cst.CSTTransformer):
    """``return X`` of the entry function becomes ``return _scad.early_exit(X)``: X is still
    evaluated, and main() returns a JSON object as elements must."""

    def __init__(self) -> None:
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.depth -= 1
        return updated

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def leave_Return(self, original: cst.Return, updated: cst.Return) -> cst.Return:
        if self.depth:
            return updated
        value = updated.value if updated.value is not None else cst.Name("None")
        call = cst.Call(cst.Attribute(cst.Name(_RUNTIME), cst.Name("early_exit")), [cst.Arg(value)])
        return updated.with_changes(value=call, whitespace_after_return=cst.SimpleWhitespace(" "))


def _transformed(unit: cst.BaseStatement, transformer: cst.CSTTransformer) -> cst.BaseStatement:
    """``unit`` with ``transformer`` applied (ours change parts of a statement, never remove one)."""
    changed = unit.visit(transformer)
    if not isinstance(changed, cst.BaseStatement):
        raise InternalCompilerError(f"{type(transformer).__name__} turned a statement into {type(changed).__name__}")
    return changed


class _Blanks(cst.CSTTransformer):
    """Empty blank lines in copied statements. Module-level code moved into main() keeps its blank
    lines' ``indent`` flag, which would print main()'s indentation on them (whitespace-only lines);
    and a block's footer loses the blank lines after its last comment, which would add to the blank
    line before the epilogue. No line inside a statement goes (the source map maps them one to
    one), and strings are other nodes: their text is never touched."""

    def leave_EmptyLine(self, original: cst.EmptyLine, updated: cst.EmptyLine) -> cst.EmptyLine:
        if updated.comment is not None:
            return updated
        return updated.with_changes(indent=False, whitespace=cst.SimpleWhitespace(""))

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        footer = list(updated.footer)
        while footer and footer[-1].comment is None:
            footer.pop()
        return updated.with_changes(footer=footer)


def _without_leading_blanks(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """The leading lines of an element's first statement from its first comment on: the blank lines
    before it separated it from the previous statement, which is in another element."""
    lines = list(lines)
    while lines and lines[0].comment is None:
        lines.pop(0)
    return lines


def _received(parent: str) -> str:
    """The local holding what ``parent`` sent (its result's values)."""
    return f"_scad_{parent}"


def _prologue(compute: ComputePlan, parallel: set[str]) -> list[str]:
    """Load what the element needs; ``parallel``: the parallel-loop elements, whose instances'
    parts of an accumulator are concatenated in instance order."""
    lines = []
    for parent in sorted({r.source for r in compute.unpack} - parallel):
        lines.append(f"{_received(parent)} = params[{parent!r}][0][{RESULT_VALUES!r}]")
    if compute.rng_from is not None:
        lines.append(f"{_RUNTIME}.restore_rng(params[{compute.rng_from!r}][0][{RESULT_RNG!r}])")
    for r in compute.unpack:
        if r.source in parallel:
            lines.append(f"{r.name} = {_RUNTIME}.gather([{_RUNTIME}.unpack(part[{RESULT_VALUES!r}][{r.name!r}], "
                         f"action) for part in params[{r.source!r}]])")
        else:
            lines.append(f"{r.name} = {_RUNTIME}.unpack({_received(r.source)}[{r.name!r}], action)")
    for name in compute.placeholders:
        lines.append(f"{name} = None  # only deleted below: not loaded")
    if compute.loop is not None:
        lines += [f"{_start(name)} = len({name}) if action.par_index else 0" for name in compute.loop.accumulators]
    return lines


def _runs_alone(plan: PartitionPlan) -> set[str]:
    """The compute elements that run with no other beside them: one instance, and a path to or from
    every other element."""
    graph = plan.graph()
    everyone = {c.name for c in plan.computes}
    return {c.name for c in plan.computes if c.loop is None
            and nx.ancestors(graph, c.name) | nx.descendants(graph, c.name) | {c.name} == everyone}


def _profiled_cpu(analysis: Analysis, compute: ComputePlan) -> int:
    """``limits.cpu`` of an element that runs alone (:func:`_runs_alone`; any other gets 1, as
    instances side by side must not fight over the cores): the cores the profiled run kept busy over
    its units (CPU time over wall, a core busy for more than a tenth of the time counting as one), so
    its numeric libraries get the threads the monolith's had; 1 without a profile that measured CPU
    time. With 1 thread where the monolith had 2, logreg_cv's BLAS-heavy folds ran 1.41× slower (and
    1.31× when its profile's 1.33 busy cores were rounded down)."""
    units = (getattr(analysis.options, "profile", None) or {}).get("units", {})
    measured = [u for i in compute.units if (u := units.get(analysis.program.units[i].span.key)) and "cpu_s" in u]
    wall = sum(float(u.get("wall_s", 0.0)) for u in measured)
    if wall <= 0:
        return 1
    return max(1, math.ceil(sum(float(u["cpu_s"]) for u in measured) / wall - _IDLE_CORE))


def _profiled_limit(analysis: Analysis, compute: ComputePlan) -> int | None:
    """``limits.mem`` from the profile's measurements (:mod:`scadc.profile` rule 8), or None when
    the profile measured none of the element's units (no profile, or one from an older scadc).

    The element's RSS is followed through its units as the profiled run saw it: it starts at the
    baseline plus the heavy values it loads (:func:`_loaded`), rises by each unit's peak above where
    the unit started, and moves by the unit's net change; packing the heavy values at the end needs
    room for one value's block at a time (its strings joined into one buffer; the transports copy a
    block out, they do not keep it mapped). The highest point above the baseline ×
    :data:`_PEAK_MARGIN`, plus the baseline, rounded up to a MiB."""
    profile = getattr(analysis.options, "profile", None) or {}
    units = profile.get("units", {})
    measured = [units.get(analysis.program.units[i].span.key) for i in compute.units]
    if not any(u is not None and "peak_rise_bytes" in u for u in measured):
        return None
    stored: dict[str, int] = {}
    for unit in units.values():
        for name, size in unit.get("stored_bytes", {}).items():
            stored[name] = max(size, stored.get(name, 0))
    heavy = analysis.heavy
    loads = {r.name for r in compute.unpack if (d := heavy.get(r.name)) is not None and d.heavy}
    rss = _BASELINE + sum(_loaded(heavy[name].size or 0, stored.get(name, 0)) for name in loads)
    peak = rss
    for unit in measured:
        if unit is None or "peak_rise_bytes" not in unit:  # did not run in the profiled run
            continue
        peak = max(peak, rss + unit["peak_rise_bytes"])
        rss = max(_BASELINE, rss + unit["rss_bytes"] - unit["start_rss_bytes"])
    packed = [stored.get(v.name, 0) for v in compute.send if v.heavy]
    peak = max(peak, rss + max(packed, default=0))
    return -(-(_BASELINE + int((peak - _BASELINE) * _PEAK_MARGIN)) // _MiB) * _MiB


def _loaded(in_memory: int, stored: int) -> int:
    """What a heavy value takes in the element that loads it: the block it reads (``stored``), and
    what is rebuilt beside it: nothing for an array or a numeric frame (views of the block), the
    Python objects for strings and other objects (the in-memory size bounds them)."""
    return stored + in_memory if in_memory > stored else stored


def _start(accumulator: str) -> str:
    return f"_scad_{accumulator}_start"


def _epilogue(compute: ComputePlan) -> list[str]:
    if not compute.send and not compute.capture_rng:
        return ["return {}"]
    items = []
    for value in compute.send:
        if value.heavy:
            received = compute.received(value.name)
            # the version it loaded: written over in place when the shape allows, else freed
            previous = f", previous={_received(received.source)}[{value.name!r}]" if received else ""
            items.append(f"{value.name!r}: {_RUNTIME}.pack({value.name}, action, {value.memory!r}{previous}),")
        elif compute.loop is not None:
            items.append(f"{value.name!r}: {_RUNTIME}.pack({value.name}[{_start(value.name)}:]),")
        else:
            items.append(f"{value.name!r}: {_RUNTIME}.pack({value.name}),")
    rng = [f"{RESULT_RNG!r}: {_RUNTIME}.capture_rng(),"] if compute.capture_rng else []
    # an element that only captures the RNG state sends no values: `{}` on one line, not an empty block
    values = ([f"    {RESULT_VALUES!r}: {{", *(f"        {i}" for i in items), "    },"] if items
              else [f"    {RESULT_VALUES!r}: {{}},"])
    return ["return {", *values, *(f"    {r}" for r in rng), "}"]


def _release(names: tuple[str, ...]) -> cst.BaseStatement:
    """``del`` of dead heavy locals (:mod:`scadc.partition.releases`): the monolith held them to its end."""
    return cst.parse_statement(f"del {', '.join(names)}  # freed: not read below\n")


def _main(analysis: Analysis, compute: ComputePlan, parallel: set[str]) -> tuple[str, int, list[int]]:
    """The text of main(), the 1-based line (within it) where the user's statements start, and the
    lines of the (rewritten) module before which a release was inserted, for the source map."""
    lines = _prologue(compute, parallel)
    prologue = [cst.parse_statement(line + "\n") for line in lines]
    if compute.loop is not None and compute.loop.accumulators:
        first = len(lines) - len(compute.loop.accumulators)
        note = cst.EmptyLine(comment=cst.Comment(
            "# one iteration per instance: each sends what it appends, the first also what was there"))
        prologue[first] = prologue[first].with_changes(leading_lines=[note])
    units = [analysis.units[i].unit.node for i in compute.units]
    if compute.loop is not None:  # the loop over this instance's one-iteration slice of its range
        loop = units[0]
        assert isinstance(loop, cst.For)
        mine = cst.parse_expression(f"{compute.loop.iterable}[action.par_index : action.par_index + 1]")
        units = [loop.with_changes(iter=mine)]
    if any(analysis.units[i].exits for i in compute.units):
        units = [_transformed(u, _EarlyExit()) for u in units]
    units = [_transformed(u, _Blanks()) for u in units]
    epilogue = list(cst.parse_module("\n".join(_epilogue(compute)) + "\n").body)
    first_unit = units[0].with_changes(leading_lines=[
        cst.EmptyLine(comment=cst.Comment(f"# ---- {Path(analysis.program.path).name}, from line "
                                          f"{compute.lines[0]}")),
        *_without_leading_blanks(getattr(units[0], "leading_lines", ())),
    ]) if hasattr(units[0], "leading_lines") else units[0]
    marker = cst.EmptyLine(comment=cst.Comment("# ---- values for the next element"))
    epilogue[0] = epilogue[0].with_changes(leading_lines=[cst.EmptyLine(indent=False), marker])
    function = cst.parse_statement("def main(params, action):\n    pass\n")
    assert isinstance(function, cst.FunctionDef)
    statements: list[cst.BaseStatement] = []
    inserted: list[int] = []
    releases = dict(compute.releases)
    for k, unit in enumerate([first_unit, *units[1:]]):
        statements.append(unit)
        if names := releases.get(compute.units[k], ()):
            statements.append(_release(names))
            if k + 1 < len(units):  # after the unit's footer, before the next one's leading lines
                following = analysis.units[compute.units[k + 1]].unit
                inserted.append(following.module_lines[0] - len(getattr(units[k + 1], "leading_lines", ())))
    body = [*prologue, *statements, *epilogue]
    module = cst.Module(body=[function.with_changes(body=function.body.with_changes(body=body))])
    # where the user's statements start depends only on what comes before them: position just that
    # much, not the whole element (a second rendering of every statement)
    head = cst.Module(body=[function.with_changes(body=function.body.with_changes(body=[*prologue, first_unit]))])
    start = MetadataWrapper(head, unsafe_skip_copy=True).resolve(PositionProvider)[first_unit].start.line
    return module.code, start, inserted


def _uses_runtime(analysis: Analysis, compute: ComputePlan) -> bool:
    """Whether main() calls the runtime: :func:`_prologue` does for every value it receives and to
    restore the RNG, :func:`_epilogue` for every value it sends and to capture the RNG, and
    :class:`_EarlyExit` for a ``return``. An element that does not is left without the import: it
    costs an in-process run some 4 ms of a 0.1 s program's start."""
    return bool(compute.unpack or compute.send or compute.rng_from is not None or compute.capture_rng
                or any(analysis.units[i].exits for i in compute.units))


def _definitions(definitions: list[Definition], *, runtime: bool) -> str:
    """The runtime's import (if ``runtime``) and the definitions an element copies, spaced as PEP 8
    asks: two blank lines around a def, a class or any other compound statement, one between simple
    statements."""
    parts = [f"import scadrt.remote.values as {_RUNTIME}"] if runtime else []
    simple = True  # the runtime's import, or the start of the file
    for definition in definitions:
        follows_simple, simple = simple, isinstance(definition.node, cst.SimpleStatementLine)
        space = "" if not parts else "\n\n" if simple and follows_simple else "\n\n\n"
        parts.append(space + definition.code.strip("\n"))
    return "".join(parts)


def render_program(analysis: Analysis, plan: PartitionPlan) -> tuple[dict[str, str], dict[str, Any]]:
    """File name → text for every element, and the source map."""
    source = Path(analysis.program.path).name
    files: dict[str, str] = {}
    sourcemap: dict[str, Any] = {"source": analysis.program.path, "elements": {}}
    computes = plan.computes
    template = _ENV.get_template("compute.o.py.j2")
    parallel = {c.name for c in computes if c.loop is not None}
    # values that cross a cut may be instances of the program's classes: unpickling needs them
    classes = analysis.program.needs(n for d in analysis.program.definitions if d.kind == "class" for n in d.names)
    # settings run in every element, with what they read, as they ran before the original's main()
    settings = [d for d in analysis.program.definitions if d.kind == "setting"]
    setting_needs = analysis.program.needs(set().union(*(d.refs for d in settings)))
    alone = _runs_alone(plan)
    whole_module = bool(analysis.module_effects.run_once)
    if whole_module and len(computes) != 1:
        raise InternalCompilerError(f"a module with statements that run once was split into {len(computes)} elements")
    for k, compute in enumerate(computes):
        header = ["type: compute"]
        if parents := plan.parents(compute.name):
            header.append(f"parents: [{', '.join(parents)}]")
        if dependents := plan.dependents(compute.name):
            header.append(f"dependents: [{', '.join(dependents)}]")
        if compute.loop is not None:
            header.append(f"parallelism: {compute.loop.count}")
        if compute.memories:
            header.append("corunning:")
            header += [f"  {m}: {{trans: {m}, type: rdma}}" for m in compute.memories]
        request = _profiled_limit(analysis, compute)
        if request is None:  # static: the values it holds, twice (loaded and a changed copy), and the baseline
            request = max(256 * _MiB, -(-(2 * compute.holds + _BASELINE) // _MiB) * _MiB)
        cpu = _profiled_cpu(analysis, compute) if compute.name in alone else 1
        header.append(f"limits: {{cpu: {cpu}, mem: {format_size(request)}}}")
        needs = set().union(*(analysis.units[i].needs for i in compute.units))
        if compute.unpack or compute.send:
            needs |= classes
        needs |= setting_needs
        if whole_module:  # it runs as one element: the module's statements run once, in order, as before main()
            chosen = {id(d) for d in analysis.program.definitions}
        else:
            chosen = {id(d) for d in (*analysis.program.definitions_of(needs), *settings) if d.kind != "statement"}
        definitions = [d for d in analysis.program.definitions if id(d) in chosen]
        main, unit_line, inserted = _main(analysis, compute, parallel)
        runtime = _uses_runtime(analysis, compute)
        # main ends with its newline: the template adds none after it
        text = template.render(header=header, source=source, first_line=compute.lines[0],
                               last_line=compute.lines[1], name=compute.name, position=k + 1,
                               count=len(computes), main=main,
                               definitions=_definitions(definitions, runtime=runtime))
        main_line = text.splitlines().index("def main(params, action):") + 1
        files[f"{compute.name}.o.py"] = text
        runs = _unit_runs(analysis, compute, main_line + unit_line - 1, inserted)
        for definition in definitions:  # the helpers, copied verbatim: map them too
            block = definition.code.strip("\n")
            generated = text[: text.index(block)].count("\n") + 1
            count = block.count("\n") + 1
            runs.append([generated, definition.span.end_line - count + 1, count])
        sourcemap["elements"][compute.name] = sorted(runs)
    memory_template = _ENV.get_template("memory.o.yaml.j2")
    for memory in plan.memories:
        files[f"{memory.name}.o.yaml"] = memory_template.render(
            source=source, value=memory.value, reason=memory.reason, corunning=memory.corunning,
            size=format_size(memory.size))
    return files, sourcemap


def _unit_runs(analysis: Analysis, compute: ComputePlan, generated_start: int,
               inserted: Sequence[int] = ()) -> list[list[Any]]:
    """[generated first line, original first line, line count] of the element's statements, from the
    first statement itself: ``generated_start`` is its line, not that of the comments before it;
    ``inserted``: the module lines before which a line of its own (a release) was put.

    One run when the statements are the file's own lines; where helpers were inlined they are lines
    of the rewritten module, each mapped to its original (the helper's, the call's): a run per
    stretch of consecutive original lines, and a helper's runs name it (tracebacks say ``in helper``).
    An inserted line ends a run: it maps to nothing."""
    program = analysis.program
    first = analysis.units[compute.units[0]].unit
    if not program.line_map and not inserted:
        return [[generated_start, first.span.line, compute.lines[1] - first.span.line + 1]]
    last = analysis.units[compute.units[-1]].unit
    start = first.module_lines[0] if program.line_map else first.span.line
    end = last.module_lines[1] if program.line_map else compute.lines[1]
    helpers = [(d.span.line, d.span.end_line, d.names[0]) for d in program.definitions
               if d.kind == "function" and d.names and d.names[0] != program.entry.name]

    def function(line: int) -> str | None:
        return next((name for lo, hi, name in helpers if lo <= line <= hi), None)

    runs: list[list[Any]] = []
    shift = 0
    for k in range(end - start + 1):
        while shift < len(inserted) and inserted[shift] <= start + k:
            shift += 1
        original = program.original_line(start + k)
        generated = generated_start + k + shift
        name = function(original)
        if runs and runs[-1][1] + runs[-1][2] == original and runs[-1][0] + runs[-1][2] == generated \
                and (runs[-1][3] if len(runs[-1]) > 3 else None) == name:
            runs[-1][2] += 1
        else:
            runs.append([generated, original, 1] + ([name] if name is not None else []))
    return runs


def split_report(analysis: Analysis, plan: PartitionPlan) -> dict[str, Any]:
    return {
        "format": SPLIT_FORMAT,
        "source": analysis.program.path,
        "entry": analysis.program.entry.name,
        "policy": plan.policy,
        "units": plan.unit_count,
        "heavy": {name: {"heavy": d.heavy, "size": d.size, "reason": str(d.reason)}
                  for name, d in sorted(analysis.heavy.items())},
        "decisions": [{"boundary": i, "decision": why} for i, why in plan.decisions],
        "loops": [{"unit": i, "verdict": why} for i, why in plan.loops],
        "computes": [c.as_dict() for c in plan.computes],
        "edges": [e.as_dict() for e in plan.edges],
        "memories": [asdict(m) for m in plan.memories],
    }


def quote_path(path: Path | str, limit: int = 200) -> str:
    """``path`` for an error message, capped at ``limit`` characters."""
    text = str(path)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_parent(target: Path, *, missing_ok: bool = False) -> None:
    """The directory ``target`` goes into exists (rule 1), or with ``missing_ok`` may be made
    (its nearest existing ancestor is a directory); else ``cannot write`` saying why."""
    parent = target.parent
    if not parent.exists() and not missing_ok:
        raise UserError(f"cannot write {quote_path(target)}: directory {quote_path(parent)} does not exist")
    while missing_ok and not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {quote_path(target)}: {quote_path(parent)} is not a directory")


def _real(path: str | Path) -> Path:
    # os.path.realpath, not Path.resolve: a symlink loop stays a path instead of raising RuntimeError
    return Path(os.path.realpath(path))


def refuse_input(target: Path, source: str | Path) -> None:
    """``target`` is not the input program itself, nor a directory holding it (rule 1)."""
    where, program = _real(target), _real(source)
    if where == program:
        raise CompileError("is the input program; pass another -o", Span(quote_path(target)))
    if program.is_relative_to(where):
        raise CompileError(f"contains the input program {quote_path(source)}; --force never replaces it",
                           Span(quote_path(target)))


def check_output(out: str | Path, source: str | Path, *, force: bool) -> Path:
    """Where ``scadc split`` may write its directory (rules 1-2); returns ``out`` as a Path."""
    target = Path(out)
    span = Span(quote_path(target))
    try:
        mode: int | None = os.lstat(target).st_mode
    except (FileNotFoundError, NotADirectoryError):  # a missing parent: check_parent words it
        mode = None
    except OSError as exc:
        raise UserError(f"cannot write {quote_path(target)}: {exc.strerror}") from exc
    if mode is not None and stat.S_ISLNK(mode):
        raise CompileError("is a symbolic link; pass the directory itself (--force never replaces a link)", span)
    refuse_input(target, source)
    try:
        cwd = _real(os.getcwd())
    except OSError:  # the current directory was removed: it cannot be DIR
        cwd = None
    if cwd is not None and cwd.is_relative_to(_real(target)):
        raise CompileError("is the current directory or one of its ancestors; --force never replaces it", span)
    check_parent(target, missing_ok=True)  # split makes missing parents, as `mkdir -p` would
    if mode is None:
        return target
    if not stat.S_ISDIR(mode):
        raise CompileError("exists and is not a directory", span)
    if not force:
        raise CompileError("exists; pass --force to replace it", span)
    _check_written_by_split(target)
    return target


def _check_written_by_split(target: Path) -> None:
    """Rule 2: ``target`` holds a previous split's output and nothing else."""
    span = Span(quote_path(target))
    marker = target / "split.json"
    not_ours = (f"not written by scadc split (no split.json with format {SPLIT_FORMAT}); --force replaces only a "
                "directory split wrote")
    try:
        info = os.lstat(marker)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_REPORT:
            raise CompileError(not_ours, span)
        report = json.loads(marker.read_bytes())
    except (OSError, ValueError):  # missing, unreadable, not JSON (UnicodeDecodeError is a ValueError)
        raise CompileError(not_ours, span) from None
    if not isinstance(report, dict):
        raise CompileError(not_ours, span)
    tag = report.get("format")
    if tag is None and {"computes", "policy", "decisions"} <= report.keys():
        raise CompileError("written by an older scadc split (its split.json has no format tag); remove it by hand "
                           "and split again", span)
    if tag != SPLIT_FORMAT:
        if isinstance(tag, str) and tag.startswith("scadc-split/"):
            raise CompileError(f"written in split format {quote_path(tag, 40)!r}, not {SPLIT_FORMAT!r}; remove it by "
                               "hand and split again", span)
        raise CompileError(not_ours, span)
    try:
        entries = sorted(os.scandir(target), key=lambda e: e.name)
    except OSError as exc:
        raise UserError(f"cannot write {quote_path(target)}: {exc.strerror}") from exc
    foreign = [e.name for e in entries
               if not (e.is_file(follow_symlinks=False)
                       and (e.name in _REPORTS or e.name.endswith((".o.py", ".o.yaml"))))]
    if foreign:
        shown = ", ".join(quote_path(n, 60) for n in foreign[:5]) + (f" and {len(foreign) - 5} more"
                                                                 if len(foreign) > 5 else "")
        raise CompileError(f"holds files scadc split did not write ({shown}); move them away or remove the "
                           "directory by hand", span)


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a libc older than glibc 2.28
        return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` in one step (rule 3); False where the system cannot."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # e.g. a filesystem without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _install(staging: Path, target: Path) -> None:
    """Put the complete ``staging`` at ``target``; an old ``target`` goes only after (rule 3)."""
    if not os.path.lexists(target):
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # staging now holds the old directory
    else:
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.rename(target, old / "prog")
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old / "prog", target)
            old.rmdir()
            raise
        shutil.rmtree(old, ignore_errors=True)


def write_program(analysis: Analysis, plan: PartitionPlan, out: str | Path, *, force: bool = False) -> Path:
    """Write the element directory ``out`` atomically: all of it, or (on any error) nothing.

    ``out`` must be a place :func:`check_output` allows; ``force`` replaces an earlier split.
    """
    target = check_output(out, analysis.program.path, force=force)
    files, sourcemap = render_program(analysis, plan)
    files["split.json"] = json.dumps(split_report(analysis, plan), indent=2) + "\n"
    files["sourcemap.json"] = json.dumps(sourcemap, indent=2) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise UserError(f"cannot write {quote_path(target)}: cannot create a directory in {quote_path(target.parent)}: "
                        f"{exc.strerror}") from exc
    try:
        for name, text in sorted(files.items()):
            (staging / name).write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        _check_unchanged(target, force=force)
        _install(staging, target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"cannot write {quote_path(target)}: {exc.strerror}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _check_unchanged(target: Path, *, force: bool) -> None:
    """Rule 2 again just before the swap: what is at ``target`` now may differ from what was checked."""
    if os.path.lexists(target):
        if not force or not target.is_dir() or target.is_symlink():
            raise CompileError("appeared while splitting; split again", Span(quote_path(target)))
        _check_written_by_split(target)
