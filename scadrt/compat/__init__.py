"""Scad's Python libraries under their original names, for element programs written against Scad.

Scad's element programs import ``disaggrt`` (remote numpy arrays over a buffer pool), ``npjoin``
(joins on numpy structured arrays) and ``disagg`` (the action and transport classes). This package
holds our implementations (``scadrt.compat.disaggrt`` …) and :func:`install` makes them
importable under those top-level names, so that such programs run unchanged, with no
``PYTHONPATH``: every engine runs an element through :func:`scadrt.element.load_element`, which
installs the aliases first.

An alias is the same module object as its ``scadrt.compat`` twin (``disaggrt.rdma_array is
scadrt.compat.disaggrt.rdma_array``), not a second copy: classes keep one identity, and what one
element pickles (array metadata in ``params``) unpickles in the next, whichever name it used.
Nothing is imported until a program asks: a program that does not use them pays nothing. A real
``disaggrt``/``npjoin``/``disagg`` on the path when the name is imported (installed, or a module
beside the program) wins: the name is then not aliased.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import importlib.abc

__all__ = ["ALIASES", "install"]

#: original top-level name → the package or module that implements it
ALIASES = {"disaggrt": "scadrt.compat.disaggrt", "npjoin": "scadrt.compat.npjoin", "disagg": "scadrt.compat.disagg"}


class _AliasLoader:  # importlib.abc's base classes would cost its import (1.5 ms) at every start
    """Hands out the already-imported twin module instead of executing anything."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # the import system stamped the alias's spec on the shared module; give it back its own,
        # so that the module still describes where it really lives (reload, inspect, pickle)
        module.__spec__ = self.spec


class _AliasFinder:
    """Resolves an aliased name and its submodules to the twins (first on ``sys.meta_path``: the
    normal path finder would otherwise load ``disaggrt.util`` from the twin's directory as a second
    copy of the module)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        top, dot, rest = fullname.partition(".")
        base = ALIASES.get(top)
        if base is None:
            return None
        if dot:  # a submodule is ours only where its package is
            package = sys.modules.get(top)
            if package is None or package.__name__ != base:
                return None
        elif importlib.machinery.PathFinder.find_spec(top) is not None:
            return None  # a real one on the path (installed, or beside the program) wins, as it is found
        real = base + dot + rest
        found = importlib.util.find_spec(real)
        if found is None:
            return None
        loader = cast("importlib.abc.Loader", _AliasLoader(real))  # one by its methods, not its base class
        return importlib.machinery.ModuleSpec(fullname, loader,
                                              is_package=found.submodule_search_locations is not None)


_FINDER = _AliasFinder()


def install() -> None:
    """Make the original names importable in this process (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
