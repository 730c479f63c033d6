"""Which locals cannot cross a cut (they cannot be pickled, or make no sense elsewhere).

A local is *not transferable* when any of its bindings in the entry region is:

1. an open file or socket: ``open(...)``, ``io.open``, ``os.fdopen``, ``socket.socket``, a pandas
   reader that reads as it goes (``pd.read_csv(..., chunksize=…)`` or ``iterator=True``), or a
   ``with … as`` target of such a call;
2. a generator: a generator expression, or a call of a program function that contains ``yield``;
3. an iterator: ``iter()``, ``map()``, ``filter()``, ``zip()``, ``enumerate()``, ``reversed()``,
   anything from ``itertools``;
4. a lambda, or a ``def``/``class`` nested in the entry region (local functions and classes);
5. a module (an ``import`` inside the entry region);
6. a lock, thread or process: ``threading.*``, ``multiprocessing.*``, ``concurrent.futures.*``;
7. an alias (same object) of a non-transferable local;
8. a container the entry region puts such a value into: ``later.append(lambda: ...)``,
   ``table[k] = (v for v in x)``, ``box.f = f`` where ``f`` is not transferable, or a binding to a
   display holding one (``[lambda: 1]``); found where the region itself stores it (a lambda, a
   generator expression, an open file or iterator call of rules 1-3, a local of rules 1-8), to a
   fixed point.

Everything else is assumed to pickle; a value that fails only at run time is reported then.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import EffectsProvider
from scadc.analysis.mutation import AliasProvider
from scadc.analysis.names import Names, NamesProvider, root_name
from scadc.analysis.program import Program

__all__ = ["TransferProvider"]

_FILES = ("builtins.open", "io.open", "os.fdopen", "socket.socket", "gzip.open", "bz2.open", "lzma.open",
          "tempfile.NamedTemporaryFile", "tempfile.TemporaryFile")
_ITERATORS = ("builtins.iter", "builtins.map", "builtins.filter", "builtins.zip", "builtins.enumerate",
              "builtins.reversed")
_SYNC = ("threading.", "multiprocessing.", "concurrent.futures.", "subprocess.Popen", "sqlite3.connect")


#: methods that store their arguments into the receiver (rule 8)
_STORING = frozenset({"append", "add", "extend", "insert", "appendleft", "extendleft", "setdefault", "update",
                      "put", "put_nowait"})


class _Stores(cst.CSTVisitor):
    """Rule 8 over one unit: the locals it stores an unpicklable value into (name -> line)."""

    def __init__(self, program: Program, names: Names, pinned: set[str]) -> None:
        self.program, self.names, self.pinned = program, names, pinned
        self.found: dict[str, int] = {}

    def _unpicklable(self, e: cst.BaseExpression) -> bool:
        if isinstance(e, (cst.Lambda, cst.GeneratorExp)):
            return True
        if isinstance(e, cst.Name):
            return e.value in self.pinned and self.names.classify(e) == "local"
        if isinstance(e, (cst.List, cst.Tuple, cst.Set)):
            return any(self._unpicklable(el.value) for el in e.elements)
        if isinstance(e, cst.Dict):
            return any(self._unpicklable(el.value) or (isinstance(el, cst.DictElement) and self._unpicklable(el.key))
                       for el in e.elements)
        if isinstance(e, cst.Call):
            q = self.names.qualname(e.func) or ""
            return q in _FILES or q in _ITERATORS or q.startswith(("itertools.", *_SYNC))
        return False

    def _store(self, target: cst.BaseExpression, node: cst.CSTNode) -> None:
        root = root_name(target)
        if root is not None and self.names.classify(root) == "local":
            self.found.setdefault(root.value, self.program.positions[node].start.line)

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Attribute) and node.func.attr.value in _STORING \
                and any(self._unpicklable(a.value) for a in node.args):
            self._store(node.func.value, node)

    def visit_Assign(self, node: cst.Assign) -> None:
        if not self._unpicklable(node.value):
            return
        for t in node.targets:
            if isinstance(t.target, (cst.Subscript, cst.Attribute)):
                self._store(t.target, node)
            elif isinstance(t.target, cst.Name) and isinstance(node.value, (cst.List, cst.Tuple, cst.Set, cst.Dict)) \
                    and self.names.binds_local(t.target, t.target.value):
                self.found.setdefault(t.target.value, self.program.positions[node].start.line)


class TransferProvider(Provider[str, str]):
    """Each non-transferable local -> the reason, citing its line."""

    DEPENDENCIES = (NamesProvider, DefUseProvider, EffectsProvider, AliasProvider)

    def compute(self, program: Program, results: Results) -> Mapping[str, str]:
        names = results.get(NamesProvider)["names"]
        reasons: dict[str, str] = {}
        for unit in program.units:
            generators = results.get(EffectsProvider)[unit].generator_calls
            for b in results.get(DefUseProvider)[unit].bindings:
                reason = None
                value = b.value
                if b.kind == "import":
                    reason = "a module"  # rule 5
                elif b.kind == "def":
                    reason = "a local function"  # rule 4
                elif b.kind == "class":
                    reason = "a local class"
                elif isinstance(value, cst.Lambda) and b.kind == "assign":
                    reason = "a lambda"
                elif isinstance(value, cst.GeneratorExp) and b.kind in ("assign", "with"):
                    reason = "a generator"  # rule 2
                elif b.name in generators:
                    reason = "a generator (the function contains yield)"
                elif isinstance(value, cst.Call) and b.kind in ("assign", "with", "walrus"):
                    q = names.qualname(value.func) or ""
                    if q in _FILES:
                        reason = "an open file"  # rule 1
                    elif q.startswith("pandas.read_") and (chunked := next(
                            (a.keyword.value for a in value.args if a.keyword is not None
                             and a.keyword.value in ("chunksize", "iterator")), None)):
                        reason = f"a reader holding an open file ({q.removeprefix('pandas.')}({chunked}=…))"
                    elif q in _ITERATORS or q.startswith("itertools."):
                        reason = f"an iterator ({q.removeprefix('builtins.')}())"  # rule 3
                    elif q.startswith(_SYNC):
                        reason = f"a {q} object"  # rule 6
                if reason is not None and b.name not in reasons:
                    reasons[b.name] = f"{reason} (line {b.line})"
        pinned = set(reasons)
        while True:  # rule 8, to a fixed point: a list put into a pinned dict is pinned too
            before = len(pinned)
            for unit in program.units:
                scan = _Stores(program, names, pinned)
                unit.node.visit(scan)
                for name, line in scan.found.items():
                    if name not in reasons:
                        reasons[name] = f"holds a value that cannot cross a cut (line {line})"
                        pinned.add(name)
            if len(pinned) == before:
                break
        classes = results.get(AliasProvider)
        done: set[int] = set()  # the first pinned name of a class gives every other member its reason
        for name, reason in list(reasons.items()):
            group = classes.get(name, frozenset())
            if id(group) not in done:
                done.add(id(group))
                for other in group:
                    reasons.setdefault(other, f"aliases {name}: {reason}")  # rule 7
        return reasons
