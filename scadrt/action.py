"""What element code sees as its second argument: ``main(params, action)``.

Compatible with Scad's ``LibdAction`` for the parts element code uses (reference-notes §4.1):
``action.get_transport(name, "rdma")`` returns the transport to the corunning memory element
``name`` (or instance ``name@i`` of a parallel one), the same object on every call; ``"rdma"``
means "the memory-access interface, whatever carries it" (local, shm, tcp or rdma).
A parallel instance may also ask for a parallel memory element by its plain name (``mem1``):
it gets its sibling, ``mem1@<par_index>`` (or the one instance configured), as Scad's invoker
wires it. ``action.par_index`` is the parallel instance index (the engine also exports it as ``__OW_PAR``),
``action.name`` the element's name. ``action.profile(n)`` records a sample into the run report
(:mod:`scadrt.profile`).

An engine builds one ``Action`` per element instance from a mapping *memory element name →
descriptor* (text, :class:`~scadrt.transports.Descriptor`, an opened transport, or a zero-argument
factory); transports are opened lazily, on first use, and closed by :meth:`Action.close`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Self

from scadrt.errors import TransportConfigError, UserError
from scadrt.profile import Profiler, ProfileSample
from scadrt.transports import Descriptor, open_descriptor, parse_descriptor
from scadrt.transports.base import Transport

__all__ = ["PAR_INDEX_ENV", "Action", "TransportSource"]

#: environment variable carrying the parallel instance index (Scad/OpenWhisk convention)
PAR_INDEX_ENV = "__OW_PAR"

TransportSource = str | Descriptor | Transport | Callable[[], Transport]


def _par_index_from_env() -> int:
    raw = os.environ.get(PAR_INDEX_ENV, "0")
    try:
        index = int(raw)
    except ValueError:
        raise UserError(f"{PAR_INDEX_ENV}={raw!r} is not a parallel instance index") from None
    if index < 0:
        raise UserError(f"{PAR_INDEX_ENV}={raw!r} is negative")
    return index


class Action:
    """The element's handle on the runtime; see the module docstring."""

    def __init__(self, name: str = "main", transports: Mapping[str, TransportSource] | None = None, *,
                 par_index: int | None = None) -> None:
        #: the element's name
        self.name = name
        #: parallel instance index, 0-based (from ``__OW_PAR`` when not given)
        self.par_index = _par_index_from_env() if par_index is None else par_index
        self._sources: dict[str, Descriptor | Transport | Callable[[], Transport]] = {}  # text parsed
        for key, given in (transports or {}).items():
            source = parse_descriptor(given) if isinstance(given, str) else given
            if isinstance(source, Descriptor) and source.name != key:
                raise TransportConfigError(f"transport {key!r} is configured with a descriptor for {source.name!r}")
            self._sources[key] = source
        self._open: dict[str, Transport] = {}
        self._profiler = Profiler()

    @classmethod
    def from_descriptors(cls, name: str, descriptors: Iterable[str | Descriptor], *,
                         par_index: int | None = None) -> Action:
        """Build from descriptors, each naming its memory element (like Scad's ``add_transport``)."""
        parsed = [parse_descriptor(d) if isinstance(d, str) else d for d in descriptors]
        mapping: dict[str, TransportSource] = {}
        for descriptor in parsed:
            if descriptor.name in mapping:
                raise TransportConfigError(f"two transports are configured for {descriptor.name!r}")
            mapping[descriptor.name] = descriptor
        return cls(name, mapping, par_index=par_index)

    @property
    def transport_names(self) -> tuple[str, ...]:
        """The memory elements (instances) this action has transports for, sorted."""
        return tuple(sorted(self._sources))

    def get_transport(self, name: str, kind: str = "rdma") -> Transport:
        """The transport to memory element ``name`` (or ``name@i``), opened on first use.

        ``kind`` is ``"rdma"`` (any transport: Scad's element code always says rdma) or the
        configured transport's own kind (``local``, ``shm``, ``tcp``) to insist on one.
        """
        transport = self._open.get(name)
        if transport is None:
            transport = self._open_transport(name)
        if kind not in ("rdma", transport.kind):
            raise TransportConfigError(
                f"element {self.name!r}: transport {name!r} is {transport.kind}, not {kind!r} "
                "(ask for 'rdma' to accept whatever the engine configured)"
            )
        return transport

    def _open_transport(self, name: str) -> Transport:
        source = self._sources.get(name)
        if source is None and (sibling := self._sibling(name)) is not None:
            transport = self._open.get(sibling) or self._open_transport(sibling)
            self._open[name] = transport
            return transport
        if source is None:
            raise TransportConfigError(self._unknown(name))
        if isinstance(source, Transport):
            transport = source
        elif isinstance(source, Descriptor):
            transport = open_descriptor(source)
        else:
            transport = source()
        self._open[name] = transport
        return transport

    def _sibling(self, name: str) -> str | None:
        """The instance of parallel memory element ``name`` that the plain name stands for, as Scad's
        invoker gives each parallel instance its sibling under the plain name: the only instance
        configured, or else the one with this instance's index."""
        if "@" in name:
            return None
        instances = [n for n in self._sources if n.partition("@")[0] == name and "@" in n]
        if len(instances) == 1:
            return instances[0]
        own = f"{name}@{self.par_index}"
        return own if own in instances else None

    def _unknown(self, name: str) -> str:
        configured = ", ".join(self.transport_names) or "none"
        message = f"element {self.name!r} has no transport to {name!r}; configured: {configured}"
        instances = [n for n in self.transport_names if n.split("@")[0] == name]
        if instances:
            message += f" ({name!r} is a parallel memory element: ask for an instance, e.g. {instances[0]!r})"
        else:
            message += " (is it listed in the element's corunning?)"
        return message

    def transfer_counts(self) -> dict[str, dict[str, int]]:
        """Bytes read and written so far through the transports opened, per transport kind."""
        counts: dict[str, dict[str, int]] = {}
        for transport in {id(t): t for t in self._open.values()}.values():  # a sibling's is open under two names
            entry = counts.setdefault(transport.kind, {"read": 0, "written": 0})
            entry["read"] += transport.bytes_read
            entry["written"] += transport.bytes_written
        return counts

    def profile(self, point: int) -> None:
        """Record a profile sample labelled ``point`` (time, CPU use since the previous sample,
        resident memory, bytes each transport moved) into the run report, as Scad's monitor did."""
        opened = {id(t): t for t in self._open.values()}.values()  # a sibling's is open under two names
        moved = tuple(sorted((t.name, t.bytes_read, t.bytes_written) for t in opened))
        self._profiler.sample(point, moved)

    @property
    def profile_samples(self) -> tuple[ProfileSample, ...]:
        """The samples :meth:`profile` recorded, in order."""
        return tuple(self._profiler.samples)

    def close(self) -> None:
        """Close every transport this action opened (transports handed in as objects included)."""
        opened, self._open = self._open, {}
        for transport in opened.values():
            transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Action {self.name!r} par_index={self.par_index} transports={list(self.transport_names)}>"
