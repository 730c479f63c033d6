"""Source positions and the caret renderer shared by every scadc diagnostic.

Conventions (the same as libcst's ``CodePosition``): lines are 1-based, columns are 0-based and
count characters (not bytes); printed, a span shows a 1-based column (``file:line:col``, as editors
expect). A span that covers a whole file has ``line == 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Span", "render_caret"]


@dataclass(frozen=True, order=True)
class Span:
    """A range of source text: where a unit, a definition or an error is."""

    #: path of the source file as the user gave it
    file: str
    #: first line, 1-based (0: the whole file, no position)
    line: int = 0
    #: first column, 0-based, in characters
    column: int = 0
    #: last line, 1-based (inclusive)
    end_line: int = 0
    #: column just past the end on ``end_line``, 0-based
    end_column: int = 0

    def __str__(self) -> str:
        """``file:line:col`` with a 1-based column, as editors and compilers print it."""
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.column + 1}"

    @property
    def key(self) -> str:
        """``line:col`` (column 0-based): a stable key for a unit in this file (used by profiles)."""
        return f"{self.line}:{self.column}"


#: at most this many characters of a source line are shown, this many of them before the span
_CARET_WIDTH, _CARET_CONTEXT = 160, 40


def render_caret(span: Span, source: str | None) -> str:
    """The line of ``source`` that ``span`` starts on, with carets under the spanned characters.

    Tabs are kept in the indentation of the caret line so the carets line up in a terminal.
    Returns an empty string when there is no position or no such line.

    >>> print(render_caret(Span("a.py", 1, 4, 1, 7), "x = foo(1)\\n"))
        x = foo(1)
            ^^^
    """
    if source is None or span.line <= 0:
        return ""
    lines = source.splitlines()
    if span.line > len(lines):
        return ""
    text = lines[span.line - 1]
    start = min(span.column, len(text))
    end = span.end_column if span.end_line == span.line and span.end_column > start else len(text.rstrip())
    end = max(min(end, len(text)), start + 1)
    # A generated or minified line can be megabytes long: show a window around the span, so an
    # error message stays a few lines whatever the input.
    lo = max(0, start - _CARET_CONTEXT)
    hi = min(len(text), max(end, start + 1) + _CARET_CONTEXT, lo + _CARET_WIDTH)
    end = min(end, hi)
    head, tail = ("…" if lo else ""), ("…" if hi < len(text) else "")
    pad = " " * len(head) + "".join(ch if ch == "\t" else " " for ch in text[lo:start])
    return f"    {head}{text[lo:hi]}{tail}\n    {pad}{'^' * max(1, end - start)}"
