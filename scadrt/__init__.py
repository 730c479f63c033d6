"""scadrt: the runtime of Scad programs (element directories of compute and memory elements).

scadrt runs without the compiler: hand-written element directories load, validate, export
and (with the engines) run the same way as the ones ``scadc split`` writes. :func:`run` runs one
on this machine, as ``scadc run`` does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scadrt.errors import InternalError, MissingToolError, Problem, ProgramError, ScadError, UserError

if TYPE_CHECKING:
    from scadrt.dag import Corun, ElementSpec, Limits, Program, load_program
    from scadrt.report import RunFailed
    from scadrt.runner import run

__version__ = "0.1.0"

__all__ = [
    "Corun",
    "ElementSpec",
    "InternalError",
    "Limits",
    "MissingToolError",
    "Problem",
    "Program",
    "ProgramError",
    "RunFailed",
    "ScadError",
    "UserError",
    "__version__",
    "load_program",
    "run",
]

#: name → the module it comes from, imported on first use: every module of both packages imports
#: ``scadrt.errors``, which runs this file, and a memory server or ``scadc --help`` needs neither
#: the loader (yaml) nor the report (transports, numpy)
_LAZY = {
    "Corun": "scadrt.dag",
    "ElementSpec": "scadrt.dag",
    "Limits": "scadrt.dag",
    "Program": "scadrt.dag",
    "load_program": "scadrt.dag",
    "RunFailed": "scadrt.report",
    "run": "scadrt.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value
