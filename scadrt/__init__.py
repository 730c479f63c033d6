"""scadrt: the runtime of Scad programs (element directories of compute and memory elements).

scadrt runs without the compiler: hand-written element directories load, validate, export
and (with the engines) run the same way as the ones ``scadc split`` writes.
"""

from __future__ import annotations

from scadrt.dag import Corun, ElementSpec, Limits, Program, load_program
from scadrt.errors import InternalError, MissingToolError, Problem, ProgramError, ScadError, UserError

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
    "ScadError",
    "UserError",
    "__version__",
    "load_program",
]
