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

from collections.abc import Mapping

from scadc.analysis.base import Provider, Results
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import EffectsProvider
from scadc.analysis.program import Program, Unit

__all__ = ["HiddenStateProvider"]


class HiddenStateProvider(Provider[Unit, frozenset[str]]):
    """Per unit: the hidden state it touches (``numpy.random``, ``random``, ``module:NAME``, ``io``)."""

    DEPENDENCIES = (EffectsProvider, DefUseProvider)

    def compute(self, program: Program, results: Results) -> Mapping[Unit, frozenset[str]]:
        effects = results.get(EffectsProvider)
        du = results.get(DefUseProvider)
        changed = frozenset(n for u in program.units for n in effects[u].module_state)
        return {u: frozenset(effects[u].rng)  # rules 1-2
                | frozenset(f"module:{n}" for n in effects[u].module_state)  # rule 3
                | frozenset(f"module:{n}" for n in du[u].needs & changed)  # rule 4
                | (frozenset({"io"}) if effects[u].io else frozenset())  # rule 5
                for u in program.units}
