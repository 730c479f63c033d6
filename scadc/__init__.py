"""scadc: a compiler from monolithic Python programs to Scad element directories.

The command line (``scadc``) is the interface; see ``scadc --help``. The runtime that runs
the directories it writes is the separate package :mod:`scadrt`.
"""

from __future__ import annotations

from scadrt import __version__

__all__ = ["__version__"]
