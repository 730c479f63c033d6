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
7. an alias (same object) of a non-transferable local.

Everything else is assumed to pickle; a value that fails only at run time is reported then.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import EffectsProvider
from scadc.analysis.mutation import AliasProvider
from scadc.analysis.names import NamesProvider
from scadc.analysis.program import Program

__all__ = ["TransferProvider"]

_FILES = ("builtins.open", "io.open", "os.fdopen", "socket.socket", "gzip.open", "bz2.open", "lzma.open",
          "tempfile.NamedTemporaryFile", "tempfile.TemporaryFile")
_ITERATORS = ("builtins.iter", "builtins.map", "builtins.filter", "builtins.zip", "builtins.enumerate",
              "builtins.reversed")
_SYNC = ("threading.", "multiprocessing.", "concurrent.futures.", "subprocess.Popen", "sqlite3.connect")


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
        classes = results.get(AliasProvider)
        done: set[int] = set()  # the first pinned name of a class gives every other member its reason
        for name, reason in list(reasons.items()):
            group = classes.get(name, frozenset())
            if id(group) not in done:
                done.add(id(group))
                for other in group:
                    reasons.setdefault(other, f"aliases {name}: {reason}")  # rule 7
        return reasons
