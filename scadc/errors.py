"""The errors scadc raises while compiling; both sit in scadrt's tree (see :mod:`scadrt.errors`)::

    UserError (scadrt)
    └── CompileError            the program is outside the input subset, or does not parse/read
    InternalError (scadrt)
    └── InternalCompilerError   a bug in scadc: an analysis invariant did not hold

A :class:`CompileError` renders as ``file:line:col: message``, then the source line and a caret
under the construct (when the source is at hand), then its ``hint:`` if it has one, so the CLI
(which prints ``UserError`` without a traceback and exits 2) shows the user exactly where the
problem is.
"""

from __future__ import annotations

from scadc.source import Span, render_caret
from scadrt.errors import InternalError, UserError

__all__ = ["CompileError", "InternalCompilerError"]


class CompileError(UserError):
    """The user's program cannot be compiled; ``span`` says where, ``message`` says why."""

    def __init__(self, message: str, span: Span, source: str | None = None, *, hint: str | None = None) -> None:
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        parts = [f"{self.span}: {self.message}"]
        caret = render_caret(self.span, self.source)
        if caret:
            parts.append(caret)
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class InternalCompilerError(InternalError):
    """An invariant of scadc's analysis did not hold: a bug in scadc, not in the user's program."""
