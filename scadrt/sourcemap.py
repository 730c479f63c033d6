"""Source maps of generated element directories: tracebacks point at the original program.

``scadc split`` writes ``sourcemap.json`` beside the elements::

    {"source": "app.py", "elements": {"step02": [[generated_line, original_line, count], ...]}}

Each run says that ``count`` lines starting at ``generated_line`` of ``step02.o.py`` are lines
``original_line …`` of the source. A traceback line ``File ".../step02.o.py", line 24, in main``
becomes ``File "app.py", line 50, in main (step02.o.py:24)``; lines outside every run (the
generated prologue and epilogue) stay as they are. A run may carry a fourth item, the function the
original lines are in when the element runs them in another (a helper inlined into ``main``):
``[24, 6, 3, "check"]`` makes that frame ``File "app.py", line 6, in check (step02.o.py:24)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SourceMap", "load_sourcemap"]

_FRAME = re.compile(r'^(?P<indent>\s*)File "(?P<file>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')


@dataclass(frozen=True)
class SourceMap:
    source: str
    #: element name → (generated first line, original first line, count)
    runs: dict[str, tuple[tuple[int, int, int], ...]]
    #: element name → generated first line of a run → the original function of its lines, where
    #: that is not the one the element runs them in (an inlined helper)
    functions: dict[str, dict[int, str]] = field(default_factory=dict)

    def lookup(self, element: str, line: int) -> int | None:
        found = self._run(element, line)
        return None if found is None else found[1] + line - found[0]

    def _run(self, element: str, line: int) -> tuple[int, int, int] | None:
        for run in self.runs.get(element, ()):
            if run[0] <= line < run[0] + run[2]:
                return run
        return None

    def rewrite(self, traceback: str) -> str:
        out = []
        for text in traceback.splitlines(keepends=True):
            out.append(self._rewrite_line(text))
        return "".join(out)

    def _rewrite_line(self, text: str) -> str:
        match = _FRAME.match(text.rstrip("\n"))
        if not match:
            return text
        name = Path(match["file"]).name
        element, line = name.partition(".")[0], int(match["line"])
        run = self._run(element, line) if name.endswith(".o.py") else None
        if run is None:
            return text
        newline = "\n" if text.endswith("\n") else ""
        where = f'File "{self.source}", line {run[1] + line - run[0]}'
        rest = match["rest"]
        function = self.functions.get(element, {}).get(run[0])
        if function is not None and rest.startswith(", in "):
            rest = f", in {function}"
        return f'{match["indent"]}{where}{rest} ({name}:{match["line"]}){newline}'


def load_sourcemap(program_dir: str | Path) -> SourceMap | None:
    """The directory's source map, or None when it has none (hand-written) or it is unreadable."""
    try:
        data = json.loads((Path(program_dir) / "sourcemap.json").read_text(encoding="utf-8"))
        runs = {name: tuple((int(g), int(o), int(c)) for g, o, c, *_ in spans)
                for name, spans in data["elements"].items()}
        functions = {name: {int(run[0]): str(run[3]) for run in spans if len(run) > 3}
                     for name, spans in data["elements"].items()}
        return SourceMap(str(data["source"]), runs, functions)
    except (OSError, ValueError, KeyError, TypeError):
        return None
