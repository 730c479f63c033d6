"""The ``local`` transport: the region is a buffer in this process.

It is how a memory element merged into its compute element's process behaves (Scad's
``rdma_local``), and the in-process fake the other layers' tests use. Several transports may share
one region object, e.g. one per thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from scadrt.errors import TransportConfigError
from scadrt.sizes import parse_size
from scadrt.transports.base import InProcessRegionTransport, allocate_buffer

__all__ = ["LocalTransport"]


class LocalTransport(InProcessRegionTransport):
    """A transport whose region is ``region`` (any writable C-contiguous buffer), or ``size`` fresh bytes."""

    kind = "local"
    config_keys: ClassVar[tuple[str, ...]] = ("size",)

    def __init__(self, region: object = None, *, size: int | None = None, name: str = "local") -> None:
        super().__init__(name)
        if (region is None) == (size is None):
            raise TransportConfigError("LocalTransport takes either a region or a size")
        # region is typed object, not Buffer: numpy's stubs declare ndarray a Buffer only on Python 3.12+
        view = allocate_buffer(size) if size is not None else memoryview(region).cast("B")  # type: ignore[arg-type]
        if view.readonly:
            raise TransportConfigError("the region of a local transport must be writable")
        self._region: memoryview | None = view

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, str]) -> LocalTransport:
        cls.check_config_keys(name, config)
        if "size" not in config:
            raise TransportConfigError(f"transport {name!r} (local): needs size,<bytes>")
        try:
            size = parse_size(config["size"])
        except ValueError as exc:
            raise TransportConfigError(f"transport {name!r} (local): {exc}") from exc
        return cls(size=size, name=name)

    @property
    def size(self) -> int:
        return len(self._region) if self._region is not None else 0

    def _close(self) -> None:
        self._region = None
