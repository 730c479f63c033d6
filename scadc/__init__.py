"""scadc: a compiler from monolithic Python programs to Scad element directories.

The command line (``scadc``) is one interface; see ``scadc --help``. The library's door is
:func:`split_program` (what ``scadc split`` does) and :func:`analyze_program` (``scadc analyze``),
in :mod:`scadc.pipeline`. The runtime that runs the directories it writes is the separate package
:mod:`scadrt` (``scadrt.run``).
"""

from __future__ import annotations

from scadc.pipeline import analyze_program, split_program
from scadrt import __version__

__all__ = ["__version__", "analyze_program", "split_program"]
