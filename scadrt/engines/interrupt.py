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
    the CLI exits 143 for it, 130 for Ctrl-C). Outside the main thread the caller handles signals.

    A library the block calls may turn the exception into a plain KeyboardInterrupt on its way out
    (Ray's ``ray.wait`` does); one that leaves the block after a SIGTERM is a Terminated again."""
    terminated = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal terminated
        terminated = True
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    except KeyboardInterrupt as exc:
        if terminated and not isinstance(exc, Terminated):
            raise Terminated from exc
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
