"""Data-driven test files: ``[case name]``, the program, ``[out]``, the expected text.

A case's program may be ``@path/to/file.py`` (relative to the repository root) instead of
inline source. The first line may be ``# flags: --heavy-bytes N --entry NAME --explain``.
``pytest tests/scadc --update-golden`` rewrites the ``[out]`` sections from the current output.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
_HEADER = re.compile(r"^\[case ([A-Za-z0-9_]+)\]\s*$")


@dataclass
class Case:
    name: str
    source: str
    expected: str
    file: Path

    @property
    def flags(self) -> dict[str, str | bool]:
        first = self.source.splitlines()[0] if self.source else ""
        out: dict[str, str | bool] = {}
        if first.startswith("# flags:"):
            words = shlex.split(first[len("# flags:"):])
            for i, w in enumerate(words):
                if w.startswith("--"):
                    nxt = words[i + 1] if i + 1 < len(words) and not words[i + 1].startswith("--") else True
                    out[w[2:]] = nxt
        return out


def parse(path: Path) -> list[Case]:
    cases: list[Case] = []
    name, block, source, out = None, "", "", ""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)

    def finish() -> None:
        if name is not None:
            cases.append(Case(name, source, out, path))

    for line in lines:
        m = _HEADER.match(line)
        if m:
            finish()
            name, block, source, out = m.group(1), "source", "", ""
        elif line.strip() == "[out]" and name is not None:
            block = "out"
        elif block == "source":
            source += line
        elif block == "out":
            out += line
    finish()
    return cases


def write(path: Path, cases: list[Case], actual: dict[str, str]) -> None:
    text = ""
    for c in cases:
        body = actual.get(c.name, c.expected)
        text += f"[case {c.name}]\n{c.source.rstrip()}\n[out]\n{body.rstrip()}\n\n"
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
