"""The exception tree of scadrt, the Scad runtime.

Every error scadrt raises on purpose derives from :class:`ScadError`; errors of the
libraries underneath (PyYAML, pyzmq, pyverbs, ray) are mapped to these at the boundary
where they occur, with ``raise ... from exc``::

    ScadError
    ├── UserError                     something the user gave us is wrong; the CLI prints it and exits 2
    │   ├── ProgramError              an element directory is invalid (carries every Problem found)
    │   ├── MissingToolError          an optional dependency or binary is absent (carries an install hint)
    │   ├── TransportConfigError      a transport descriptor, address, size, token or name is invalid
    │   ├── RegionFullError           no free gap of a memory element is large enough for an allocation
    │   ├── AllocationError           free() of an address that is not allocated, or a bad alignment
    │   └── RemoteMetadataError       metadata of remote data is malformed or refers to freed data
    ├── TransportError                moving bytes to or from a memory element failed
    │   ├── TransportClosedError      the transport was used after close()
    │   ├── OutOfBoundsError          a range (or a negative value) outside the remote region or the buffer
    │   ├── ConnectionLostError       the memory element did not answer within the timeout
    │   ├── AccessDeniedError         the memory server refused the request's token
    │   ├── ProtocolError             a peer sent a malformed or unexpected message
    │   ├── TransportUnavailableError the transport cannot work on this machine (no RDMA device)
    │   ├── HeapFormatError           a region holds no valid heap (foreign data, newer version, corruption)
    │   └── StagingBufferError        a staging buffer was re-registered while a pool held unwritten data
    ├── RunFailed                     an element of a run failed for good; the CLI exits 1 (defined in
    │                                 scadrt.report: it carries the report up to the failure)
    └── InternalError                 a bug in scadc/scadrt itself, never the user's fault

    KeyboardInterrupt                 Ctrl-C (Python's own, not a ScadError)
    └── Terminated                    SIGTERM arrived during a run (the CLI exits 143, not 130)

``scadc`` defines its own compile errors on top of :class:`UserError`, so the CLI needs to
know only this tree. :class:`Terminated` is no :class:`ScadError`: a SIGTERM must unwind
through every ``except Exception`` like Ctrl-C does, so that each ``finally`` stops what it
started, and code that catches ``KeyboardInterrupt`` to clean up catches it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AccessDeniedError",
    "AllocationError",
    "ConnectionLostError",
    "HeapFormatError",
    "InternalError",
    "MissingToolError",
    "OutOfBoundsError",
    "Problem",
    "ProgramError",
    "ProtocolError",
    "RegionFullError",
    "RemoteMetadataError",
    "ScadError",
    "StagingBufferError",
    "Terminated",
    "TransportClosedError",
    "TransportConfigError",
    "TransportError",
    "TransportUnavailableError",
    "UserError",
    "clip",
    "shorten",
]


def shorten(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to at most ``limit`` characters with an ellipsis: the way to quote a
    value the user wrote (which may be megabytes long) in an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        return f"<a number of {value.bit_length()} bits>"  # its repr is slow, or refused past 4300 digits
    if isinstance(value, str | bytes) and len(value) > limit:
        value = value[:limit]  # cut before repr, which escapes and may grow it
    try:
        text = repr(value)
    except ValueError:  # a huge int inside a container
        return f"<a {type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit - 1]}…"


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to at most ``limit`` characters, with an ellipsis after the cut: the way to
    quote text we did not write (an address, a library's message, a line a child printed).

    >>> clip("tcp://" + "x" * 300, limit=10)
    'tcp://xxxx…'
    """
    return text if len(text) <= limit else text[:limit] + "…"


class ScadError(Exception):
    """Base class of every error raised on purpose by scadrt and scadc."""


class UserError(ScadError):
    """The input is wrong; the message says where and how to fix it."""


class InternalError(ScadError):
    """A bug in scadc/scadrt: an invariant did not hold."""

    def __str__(self) -> str:
        return f"internal error (this is a bug in scadc, please report it): {super().__str__()}"


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived during a run; it unwinds like Ctrl-C (see the module docstring) so that
    teardown runs. The local engine raises it from its SIGTERM handler."""


class MissingToolError(UserError):
    """An optional library or program is not installed."""

    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what} is not available; {hint}")
        self.what = what
        self.hint = hint


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an element directory.

    Ordered by file, then line, so a list of problems prints in reading order.
    """

    #: path of the offending file as given to the loader (or the directory itself)
    file: str
    #: 1-based line in ``file``; 0 when the problem concerns the whole file
    line: int
    message: str

    def format(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ProgramError(UserError):
    """An element directory failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem], *, total: int | None = None) -> None:
        """``total``: how many problems were found, when ``problems`` lists only the first of them."""
        self.problems: tuple[Problem, ...] = tuple(sorted(set(problems)))
        if not self.problems:
            raise InternalError("ProgramError raised without problems")
        count = len(self.problems) if total is None else total
        head = f"invalid program: {count} problem{'s' if count > 1 else ''}"
        super().__init__("\n".join([head, *(p.format() for p in self.problems)]))


class TransportConfigError(UserError):
    """A transport descriptor, listen address, size, token or transport name is invalid."""


class TransportError(ScadError):
    """Moving bytes to or from a memory element failed; raised instead of any status code."""


class TransportClosedError(TransportError):
    """The transport (or the region behind it) was used after ``close()``."""


class OutOfBoundsError(TransportError):
    """A read or write range falls outside the remote region or the staging buffer, or is negative."""


class ConnectionLostError(TransportError):
    """The memory element could not be reached, or did not answer within the timeout."""


class AccessDeniedError(TransportError):
    """The memory server requires a token and the request's token was missing or wrong."""


class ProtocolError(TransportError):
    """A peer sent a malformed or unexpected message, or rejected ours as malformed."""


class TransportUnavailableError(TransportError):
    """The transport cannot work on this machine (for example: no RDMA device)."""


class RegionFullError(UserError):
    """No free gap of the region is large enough for an allocation."""


class AllocationError(UserError):
    """``free`` of an address that is not an allocated block, or an invalid alignment."""


class RemoteMetadataError(UserError):
    """Metadata of remote data is malformed, or refers to data that is not there (freed, wrong element)."""


class HeapFormatError(TransportError):
    """The region holds something other than a valid heap (foreign data, a newer version, corruption)."""


class StagingBufferError(TransportError):
    """The transport's staging buffer was re-registered by someone else while the pool held unwritten data."""
