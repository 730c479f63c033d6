"""Module-level statements that must run exactly once, as they did before the original's ``main()``.

Every element is a process that runs the module's prelude again (imports, constants, helpers, and
the module-level data its units need). That is the original's behaviour only for statements whose
effect is the same however often they run: definitions, constants, settings
(:data:`scadc.analysis.program.SETTING_CALLS`), and data built from known deterministic
constructors. Anything else (a ``print``, a seed or a draw of the global generator, a file opened
for writing, a call of the program's own or another library's function, a module-level ``if`` or
``for``) would run once per element, or, left out, not at all: the output, the random numbers or
the files would differ. Sound by default: a call not in :data:`PURE_CALLS` counts as an effect.
A program with such a statement runs as one element whose prelude is the whole module, in order
(cut rule (6) in :func:`scadc.partition.build.allowed_cuts`).

A thread goes on past the statement that starts it, and the interpreter waits for it at exit: an
element waits for its threads when it ends (:func:`scadrt.element.end_program`), so the later
statements of other elements would run after the thread, not beside it. A program that imports
a module that starts threads or processes (:data:`THREAD_MODULES`) runs as one element too
(rule (7)).
"""

from __future__ import annotations

import libcst as cst

from scadc.analysis.names import dotted
from scadc.analysis.program import Definition, Program

__all__ = ["PURE_CALLS", "THREAD_MODULES", "run_once", "thread_import"]

#: calls (fully qualified; builtins bare) whose result is the same every time for the same
#: arguments and that change nothing else: module-level data built from them may be rebuilt in
#: every element. Generator constructors are here because a generator's state is carried across
#: cuts like any changed module-level object (:mod:`scadc.analysis.hidden_state`).
PURE_CALLS = frozenset({
    "dict", "list", "set", "tuple", "frozenset", "int", "float", "complex", "str", "bytes", "bool", "range",
    "len", "sorted", "min", "max", "sum", "abs", "round", "enumerate", "zip", "reversed", "object",
    "numpy.dtype", "numpy.array", "numpy.asarray", "numpy.arange", "numpy.zeros", "numpy.ones", "numpy.full",
    "numpy.empty", "numpy.linspace", "numpy.eye", "numpy.float32", "numpy.float64", "numpy.int32", "numpy.int64",
    "numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.Generator", "numpy.random.PCG64",
    "random.Random", "pathlib.Path", "re.compile", "collections.namedtuple", "collections.defaultdict",
    "collections.OrderedDict", "collections.Counter", "collections.deque", "typing.NamedTuple", "typing.TypeVar",
    "datetime.date", "datetime.datetime", "datetime.timedelta", "pandas.Timestamp", "pandas.Timedelta",
    "decimal.Decimal", "fractions.Fraction", "os.path.join", "os.path.dirname", "os.path.abspath",
    "os.path.basename", "dataclasses.field", "functools.partial",
})


def _aliases(program: Program) -> dict[str, str]:
    """Module-level import alias → what it names (``np`` → ``numpy``, ``Path`` → ``pathlib.Path``)."""
    found: dict[str, str] = {}
    for d in program.definitions:
        if d.kind != "import" or not isinstance(d.node, cst.SimpleStatementLine):
            continue
        for small in d.node.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    full = ".".join(dotted(alias.name) or [])
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        found[alias.asname.name.value] = full
                    else:
                        found[full.split(".")[0]] = full.split(".")[0]
            elif isinstance(small, cst.ImportFrom) and small.module is not None and not small.relative \
                    and not isinstance(small.names, cst.ImportStar):
                module = ".".join(dotted(small.module) or [])
                for alias in small.names:
                    name = alias.name.value if isinstance(alias.name, cst.Name) else ""
                    local = alias.asname.name.value if alias.asname is not None and isinstance(
                        alias.asname.name, cst.Name) else name
                    found[local] = f"{module}.{name}"
    return found


class _Calls(cst.CSTVisitor):
    """Whether an expression calls only :data:`PURE_CALLS` (and holds no lambda, comprehension
    over a call, ``await`` or walrus: each may run code)."""

    def __init__(self, aliases: dict[str, str], module_names: frozenset[str]) -> None:
        self.aliases, self.module_names, self.pure = aliases, module_names, True

    def visit_Call(self, node: cst.Call) -> bool:
        parts = dotted(node.func)
        if parts is None:
            self.pure = False
        elif parts[0] in self.aliases:
            self.pure &= ".".join([self.aliases[parts[0]], *parts[1:]]) in PURE_CALLS
        else:  # a builtin, unless the program binds the name itself
            self.pure &= len(parts) == 1 and parts[0] not in self.module_names and parts[0] in PURE_CALLS
        return self.pure

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        self.pure = False
        return False

    def visit_Await(self, node: cst.Await) -> bool:
        self.pure = False
        return False


def _repeatable(d: Definition, aliases: dict[str, str], module_names: frozenset[str]) -> bool:
    if d.kind in ("import", "function", "class", "constant", "setting"):
        return True
    if d.kind != "data" or not isinstance(d.node, cst.SimpleStatementLine):
        return False
    calls = _Calls(aliases, module_names)
    for small in d.node.body:
        if not isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            return False
        small.visit(calls)  # the targets too: ``TABLE[key()] = 1`` calls key()
    return calls.pure


def run_once(program: Program) -> tuple[Definition, ...]:
    """The module-level statements that running the prelude in every element would repeat (or,
    left out, skip): those whose effect is not known to be the same however often they run."""
    if program.entry.kind == "script":  # the module body is the entry region: its statements are units
        return ()
    aliases = _aliases(program)
    return tuple(d for d in program.definitions if not _repeatable(d, aliases, program.module_names))


#: modules whose threads or processes may run on past the statement that starts them
THREAD_MODULES = ("threading", "_thread", "concurrent.futures", "multiprocessing")


def thread_import(program: Program) -> int | None:
    """The line of the first import, anywhere in the program, of a module in :data:`THREAD_MODULES`."""
    lines: list[int] = []

    def starts_threads(name: str) -> bool:
        return any(name == m or name.startswith(m + ".") for m in THREAD_MODULES)

    class _Imports(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            if any(starts_threads(".".join(dotted(a.name) or [])) for a in node.names):
                lines.append(program.positions[node].start.line)

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if node.module is None or node.relative:
                return
            module = ".".join(dotted(node.module) or [])
            names = [] if isinstance(node.names, cst.ImportStar) else [
                a.name.value for a in node.names if isinstance(a.name, cst.Name)]
            if starts_threads(module) or any(starts_threads(f"{module}.{n}") for n in names):
                lines.append(program.positions[node].start.line)

    program.wrapper.module.visit(_Imports())
    return program.original_line(min(lines)) if lines else None
