"""SIGTERM during a run unwinds it like Ctrl-C, so that every engine's teardown runs for both."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from scadrt.errors import Terminated

__all__ = ["signals_unwind"]


@contextmanager
def signals_unwind() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`~scadrt.errors.Terminated` (a KeyboardInterrupt:
    the CLI exits 143 for it, 130 for Ctrl-C). Outside the main thread the caller handles signals."""
    def on_term(signum: int, frame: object) -> None:
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
