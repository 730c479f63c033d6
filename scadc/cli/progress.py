"""Progress of a run on stderr: a live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["PlainProgress", "RichProgress", "make_progress"]


class PlainProgress:
    """One line per event: ``scadc: 0.12s started square[1]``."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.t0 = time.monotonic()

    def __call__(self, event: str, element: str, index: int) -> None:
        self.stream.write(f"scadc: {time.monotonic() - self.t0:7.2f}s {event:<8} {element}[{index}]\n")
        self.stream.flush()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class RichProgress:
    """A live table of running and finished instances (rich), cleared when the run ends."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.live import Live

        self.t0 = time.monotonic()
        self.states: dict[tuple[str, int], tuple[str, float]] = {}
        self.live = Live(console=Console(file=stream), refresh_per_second=8, transient=True,
                         get_renderable=self._render)

    def _render(self) -> Any:
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        now = time.monotonic()
        for (element, index), (state, since) in self.states.items():
            colour = {"started": "yellow", "ok": "green"}.get(state, "red")
            shown = "running" if state == "started" else state
            table.add_row(f"{element}[{index}]", f"[{colour}]{shown}[/]", f"{now - since:.1f}s")
        return table

    def __call__(self, event: str, element: str, index: int) -> None:
        self.states[(element, index)] = (event, time.monotonic())

    def __enter__(self) -> RichProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)


def make_progress(quiet: bool, stream: TextIO | None = None) -> PlainProgress | RichProgress | None:
    stream = stream or sys.stderr
    if quiet:
        return None
    return RichProgress(stream) if stream.isatty() else PlainProgress(stream)
