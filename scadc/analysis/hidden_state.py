"""Hidden module state each unit reads or changes, which a cut must carry across.

Rules (see :mod:`scadc.analysis.effects` S1-S3):

1. ``numpy.random``: the unit calls a ``numpy.random`` function that uses the global generator
   (``seed``, ``random``, ``normal``, …; not ``default_rng``/``Generator``/``RandomState``), or a
   helper that does, transitively.
2. ``random``: the same for the standard ``random`` module (not ``random.Random``).
3. ``module:NAME``: the unit rebinds (through a helper's ``global``) or mutates in place
   (directly or through helpers) the module-level object ``NAME``, including a module-level
   random generator object whose methods it calls.

4. ``module:NAME`` also marks every unit that reads (directly or through the definitions it needs)
   a module-level name that some unit changes by rule 3: it must see the changed value.

5. ``io``: the unit may touch the world outside the process (files, processes, sockets; rule S4),
   directly or through helpers. Cuts may divide such units, but the elements holding them run
   one after another, in program order.

Seeding counts as use: the state written by ``seed`` is read by later draws.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import EffectsProvider
from scadc.analysis.program import Program, Unit

__all__ = ["IO", "HiddenState", "HiddenStateProvider", "StateKind"]


class StateKind(enum.Enum):
    #: a global random generator (rules 1-2)
    RNG = "rng"
    #: a module-level object (rules 3-4)
    MODULE = "module"
    #: the world outside the process (rule 5)
    IO = "io"


@dataclass(frozen=True)
class HiddenState:
    """One piece of hidden state; ``str()`` is how tables print it (``numpy.random``,
    ``module:NAME``, ``io``), and sets of them sort in that text's order."""

    kind: StateKind
    #: ``RNG``: the module whose global generator it is (``numpy.random``, ``random``);
    #: ``MODULE``: the module-level name; ``IO``: empty
    name: str = ""

    def __str__(self) -> str:
        if self.kind is StateKind.MODULE:
            return f"module:{self.name}"
        return self.name if self.kind is StateKind.RNG else "io"

    def __lt__(self, other: HiddenState) -> bool:
        return str(self) < str(other)


#: rule 5's state (there is one outside world)
IO = HiddenState(StateKind.IO)


class HiddenStateProvider(Provider[Unit, frozenset[HiddenState]]):
    """Per unit: the hidden state it touches (rules 1-5)."""

    DEPENDENCIES = (EffectsProvider, DefUseProvider)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, frozenset[HiddenState]]:
        effects = results.get(EffectsProvider)
        du = results.get(DefUseProvider)
        changed = frozenset(n for u in program.units for n in effects[u].module_state)
        return {u: frozenset(HiddenState(StateKind.RNG, n) for n in effects[u].rng)  # rules 1-2
                | frozenset(HiddenState(StateKind.MODULE, n) for n in effects[u].module_state)  # rule 3
                | frozenset(HiddenState(StateKind.MODULE, n) for n in du[u].needs & changed)  # rule 4
                | (frozenset({IO}) if effects[u].io else frozenset())  # rule 5
                for u in program.units}
