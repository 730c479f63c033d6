"""Analyses as providers: each declares what it depends on and returns a read-only map.

The model is libcst's metadata providers (``BaseMetadataProvider`` + ``MetadataWrapper``):

1. A provider is a class with ``DEPENDENCIES`` (other provider classes) and a ``compute``
   method that receives the :class:`~scadc.analysis.program.Program` and a :class:`Results`
   view from which it may read *only* the providers it declared.
2. :func:`resolve` computes dependencies first (depth first, each provider once), detects
   cycles (the error names the providers involved) and freezes every result in a
   ``MappingProxyType``, so no analysis can change another's answer.
3. Results are keyed by identity-equal IR objects (:class:`~scadc.analysis.program.Unit`) or by
   local name (``str``); the key type is part of each provider's documentation.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from scadc.errors import InternalCompilerError

if TYPE_CHECKING:
    from scadc.analysis.program import Program

__all__ = ["Provider", "Results", "resolve"]

K = TypeVar("K")
V = TypeVar("V")


class Provider(Generic[K, V]):
    """One analysis; subclasses set ``DEPENDENCIES`` and implement :meth:`compute`."""

    #: the providers whose results :meth:`compute` reads through ``results.get``
    DEPENDENCIES: ClassVar[tuple[type[Provider[Any, Any]], ...]] = ()

    def compute(self, program: Program, results: Results) -> Mapping[K, V]:
        raise NotImplementedError


class Results:
    """The finished results a provider may read: only those it declared in ``DEPENDENCIES``."""

    def __init__(self, owner: type[Provider[Any, Any]], done: Mapping[type[Provider[Any, Any]], Mapping[Any, Any]],
                 options: Any = None):
        self._owner = owner
        self._done = done
        #: the analysis options (``scadc.analysis.Options``) given to :func:`resolve`
        self.options = options

    def get(self, provider: type[Provider[K, V]]) -> Mapping[K, V]:
        if provider not in self._owner.DEPENDENCIES:
            raise InternalCompilerError(
                f"{self._owner.__name__} reads {provider.__name__} without declaring it; "
                f"add it to {self._owner.__name__}.DEPENDENCIES")
        return self._done[provider]


def resolve(program: Program, *providers: type[Provider[Any, Any]],
            options: Any = None) -> dict[type[Provider[Any, Any]], Mapping[Any, Any]]:
    """Compute ``providers`` and everything they depend on; every result is read-only."""
    done: dict[type[Provider[Any, Any]], Mapping[Any, Any]] = {}

    def visit(cls: type[Provider[Any, Any]], path: tuple[type[Provider[Any, Any]], ...]) -> None:
        if cls in done:
            return
        if cls in path:
            cycle = " -> ".join(p.__name__ for p in (*path[path.index(cls):], cls))
            raise InternalCompilerError(f"circular provider dependencies: {cycle}")
        for dep in cls.DEPENDENCIES:
            visit(dep, (*path, cls))
        done[cls] = MappingProxyType(dict(cls().compute(program, Results(cls, done, options))))

    for cls in providers:
        visit(cls, ())
    return done
