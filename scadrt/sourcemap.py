"""Source maps of generated element directories: tracebacks point at the original program.

``scadc split`` writes ``sourcemap.json`` beside the elements::

    {"source": "app.py", "elements": {"step02": [[generated_line, original_line, count], ...]}}

Each run says that ``count`` lines starting at ``generated_line`` of ``step02.o.py`` are lines
``original_line …`` of the source. A traceback line ``File ".../step02.o.py", line 24, in main``
becomes ``File "app.py", line 50, in main (step02.o.py:24)``; lines outside every run (the
generated prologue and epilogue) stay as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceMap", "load_sourcemap"]

_FRAME = re.compile(r'^(?P<indent>\s*)File "(?P<file>[^"]+)", line (?P<line>\d+)(?P<rest>.*)$')


@dataclass(frozen=True)
class SourceMap:
    source: str
    #: element name → (generated first line, original first line, count)
    runs: dict[str, tuple[tuple[int, int, int], ...]]

    def lookup(self, element: str, line: int) -> int | None:
        for generated, original, count in self.runs.get(element, ()):
            if generated <= line < generated + count:
                return original + line - generated
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
        original = self.lookup(name.partition(".")[0], int(match["line"])) if name.endswith(".o.py") else None
        if original is None:
            return text
        newline = "\n" if text.endswith("\n") else ""
        where = f'File "{self.source}", line {original}'
        return f'{match["indent"]}{where}{match["rest"]} ({name}:{match["line"]}){newline}'


def load_sourcemap(program_dir: str | Path) -> SourceMap | None:
    """The directory's source map, or None when it has none (hand-written) or it is unreadable."""
    try:
        data = json.loads((Path(program_dir) / "sourcemap.json").read_text(encoding="utf-8"))
        runs = {name: tuple((int(g), int(o), int(c)) for g, o, c in spans)
                for name, spans in data["elements"].items()}
        return SourceMap(str(data["source"]), runs)
    except (OSError, ValueError, KeyError, TypeError):
        return None
