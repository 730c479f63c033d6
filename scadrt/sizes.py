"""Byte sizes as the element format writes them: ``512 MB``, ``640M``, ``1 GiB``, ``4096``.

Decimal units (``KB``, ``MB``, ``GB``, ``TB``) and their one-letter forms (``K``, ``M``, ``G``,
``T``) follow Scad and OpenWhisk, where ``512 MB`` means 512 × 2**20 bytes; binary units
(``KiB``, ``MiB``, ``GiB``, ``TiB``) mean the same powers of two. Units are case-insensitive;
``B`` or no unit means bytes.

A size is exact: ``1.5 GiB`` is computed in integers, never through a float, and must come out
as a whole number of bytes. Sizes are below :data:`SIZE_LIMIT` (2**63 bytes, 8 EiB: what a
signed 64-bit offset holds); anything larger is refused with a ``ValueError`` before it is
converted, so ``9999…`` of any length costs nothing.
"""

from __future__ import annotations

import re

from scadrt.errors import shorten

__all__ = ["SIZE_LIMIT", "format_size", "parse_size"]

#: every size is below this many bytes
SIZE_LIMIT = 2**63
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
# matched against the stripped text: one \s* only, so no input makes the match quadratic
_SIZE = re.compile(r"^(\d+)(?:\.(\d+))?\s*([kmgt]?)(?:i?b)?$", re.IGNORECASE)
# 2**63 has 19 digits; a fraction of more than 40 digits times 1024**4 (2**40) is never whole
_MAX_WHOLE_DIGITS, _MAX_FRACTION_DIGITS = 19, 40


def parse_size(value: object) -> int:
    """Return the number of bytes ``value`` denotes.

    Raises ``ValueError`` with a message fit for a user when ``value`` is not a size.

    >>> parse_size("512 MB"), parse_size("640M"), parse_size("1 GiB"), parse_size(4096), parse_size("1.5 KiB")
    (536870912, 671088640, 1073741824, 4096, 1536)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as '512 MB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {shorten(value)}")
        if value >= SIZE_LIMIT:
            raise _too_large(value)
        return value
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match:
            whole, fraction, unit = match[1].lstrip("0"), (match[2] or "").rstrip("0"), match[3]
            if len(whole) > _MAX_WHOLE_DIGITS:
                raise _too_large(value)
            if len(fraction) > _MAX_FRACTION_DIGITS:
                raise ValueError(f"size {shorten(value)} is not a whole number of bytes")
            scale: int = 10 ** len(fraction)  # int ** int is typed Any (a negative exponent gives a float)
            size, rest = divmod(int(whole + fraction or "0") * _UNITS[unit.lower()], scale)
            if rest:
                raise ValueError(f"size {shorten(value)} is not a whole number of bytes")
            if size >= SIZE_LIMIT:
                raise _too_large(value)
            return size
    raise ValueError(f"expected a size such as '512 MB', '640M', '1 GiB' or bytes, got {shorten(value)}")


def _too_large(value: object) -> ValueError:
    return ValueError(f"size {shorten(value)} is too large: sizes are below 2**63 bytes (8 EiB)")


def format_size(nbytes: int) -> str:
    """Render ``nbytes`` with the largest binary unit that divides it exactly.

    >>> format_size(536870912), format_size(1536), format_size(7)
    ('512 MiB', '1536 B', '7 B')
    """
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if nbytes and nbytes % 1024**power == 0:
            return f"{nbytes // 1024**power} {unit}"
    return f"{nbytes} B"
