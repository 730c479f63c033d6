"""scadc: a compiler from monolithic Python programs to Scad element directories.

The command line (``scadc``) is one interface; see ``scadc --help``. The library's door is
:func:`split_program` (what ``scadc split`` does) and :func:`analyze_program` (``scadc analyze``),
in :mod:`scadc.pipeline`. The runtime that runs the directories it writes is the separate package
:mod:`scadrt` (``scadrt.run``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scadrt import __version__

if TYPE_CHECKING:
    from scadc.pipeline import analyze_program, split_program

__all__ = ["__version__", "analyze_program", "split_program"]


def __getattr__(name: str) -> Any:
    # The compiler (libcst, networkx, jinja2) is imported on first use: every ``scadc`` command
    # runs this file, and ``scadc run`` of a one-element program needs none of it (12 ms of its start)
    if name in ("analyze_program", "split_program"):
        import scadc.pipeline

        value = getattr(scadc.pipeline, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
