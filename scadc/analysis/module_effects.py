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

from dataclasses import dataclass

import libcst as cst

from scadc.analysis.names import Names, dotted
from scadc.analysis.program import Definition, Program

__all__ = ["NO_MODULE_EFFECTS", "PURE_CALLS", "SETTING_FUNCTIONS", "THREAD_MODULES", "ModuleEffects", "module_effects"]

#: calls (qualified as :meth:`Names.qualname` names them) whose result is the same every time for
#: the same arguments and that change nothing else: module-level data built from them may be
#: rebuilt in every element. Generator constructors are here because a generator's state is
#: carried across cuts like any changed module-level object (:mod:`scadc.analysis.hidden_state`).
PURE_CALLS = frozenset({
    *(f"builtins.{name}" for name in (
        "dict", "list", "set", "tuple", "frozenset", "int", "float", "complex", "str", "bytes", "bool", "range",
        "len", "sorted", "min", "max", "sum", "abs", "round", "enumerate", "zip", "reversed", "object")),
    "numpy.dtype", "numpy.array", "numpy.asarray", "numpy.arange", "numpy.zeros", "numpy.ones", "numpy.full",
    "numpy.empty", "numpy.linspace", "numpy.eye", "numpy.float32", "numpy.float64", "numpy.int32", "numpy.int64",
    "numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.Generator", "numpy.random.PCG64",
    "random.Random", "pathlib.Path", "re.compile", "collections.namedtuple", "collections.defaultdict",
    "collections.OrderedDict", "collections.Counter", "collections.deque", "typing.NamedTuple", "typing.TypeVar",
    "datetime.date", "datetime.datetime", "datetime.timedelta", "pandas.Timestamp", "pandas.Timedelta",
    "decimal.Decimal", "fractions.Fraction", "os.path.join", "os.path.dirname", "os.path.abspath",
    "os.path.basename", "dataclasses.field", "functools.partial",
})

#: the functions a module-level "setting" (:data:`scadc.analysis.program.SETTING_CALLS`, matched
#: there by the attribute's name alone) must resolve to for every element to run it again
SETTING_FUNCTIONS = frozenset({
    "warnings.filterwarnings", "warnings.simplefilter", "warnings.resetwarnings", "pandas.set_option",
    "numpy.set_printoptions", "numpy.seterr", "sys.setrecursionlimit", "logging.basicConfig",
})

#: modules whose threads or processes may run on past the statement that starts them
THREAD_MODULES = ("threading", "_thread", "concurrent.futures", "multiprocessing")


@dataclass(frozen=True)
class ModuleEffects:
    """What keeps a program whole: its module-level statements that must run once, in source
    order, and the line of its first import of a :data:`THREAD_MODULES` module (None: none)."""

    run_once: tuple[Definition, ...] = ()
    thread_import: int | None = None

    def format(self) -> str:
        """One line per fact, in source order; empty when there is none."""
        lines = [f"  line {d.span.line:<4} runs once: {d.code.strip().splitlines()[0]}" for d in self.run_once]
        if self.thread_import is not None:
            lines.append(f"  line {self.thread_import:<4} imports a module that starts threads or processes")
        return "\n".join(lines)


#: a program with none: every cut the other rules allow may be taken
NO_MODULE_EFFECTS = ModuleEffects()


def module_effects(program: Program, names: Names) -> ModuleEffects:
    """The program's :class:`ModuleEffects`."""
    return ModuleEffects(_run_once(program, names), _thread_import(program))


class _Calls(cst.CSTVisitor):
    """Whether an expression calls only :data:`PURE_CALLS` (and holds no ``await`` or walrus)."""

    def __init__(self, names: Names) -> None:
        self.names, self.pure = names, True

    def visit_Call(self, node: cst.Call) -> bool:
        self.pure &= self.names.qualname(node.func) in PURE_CALLS
        return self.pure

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        self.pure = False
        return False

    def visit_Await(self, node: cst.Await) -> bool:
        self.pure = False
        return False


def _repeatable(d: Definition, names: Names) -> bool:
    if d.kind in ("import", "function", "class", "constant"):
        return True
    if d.kind == "setting":  # ``cfg.set_option(...)`` of the program's own object is not pandas'
        return isinstance(d.node, cst.SimpleStatementLine) and all(
            isinstance(s, cst.Expr) and isinstance(s.value, cst.Call)
            and names.qualname(s.value.func) in SETTING_FUNCTIONS for s in d.node.body)
    if d.kind != "data" or not isinstance(d.node, cst.SimpleStatementLine):
        return False
    calls = _Calls(names)
    for small in d.node.body:
        if not isinstance(small, (cst.Assign, cst.AnnAssign, cst.AugAssign)):
            return False
        small.visit(calls)  # the targets too: ``TABLE[key()] = 1`` calls key()
    return calls.pure


def _run_once(program: Program, names: Names) -> tuple[Definition, ...]:
    """The module-level statements that running the prelude in every element would repeat (or,
    left out, skip): those whose effect is not known to be the same however often they run."""
    if program.entry.kind == "script":  # the module body is the entry region: its statements are units
        return ()
    return tuple(d for d in program.definitions if not _repeatable(d, names))


def _starts_threads(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in THREAD_MODULES)


def _thread_import(program: Program) -> int | None:
    """The line of the first import, anywhere in the program, of a module in :data:`THREAD_MODULES`."""
    lines: list[int] = []

    class _Imports(cst.CSTVisitor):
        def visit_Import(self, node: cst.Import) -> None:
            if any(_starts_threads(".".join(dotted(a.name) or [])) for a in node.names):
                lines.append(program.positions[node].start.line)

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            if node.module is None or node.relative:
                return
            module = ".".join(dotted(node.module) or [])
            imported = [] if isinstance(node.names, cst.ImportStar) else [
                a.name.value for a in node.names if isinstance(a.name, cst.Name)]
            if _starts_threads(module) or any(_starts_threads(f"{module}.{n}") for n in imported):
                lines.append(program.positions[node].start.line)

    program.wrapper.module.visit(_Imports())
    return program.original_line(min(lines)) if lines else None
