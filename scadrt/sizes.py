"""Byte sizes as the element format writes them: ``512 MB``, ``640M``, ``1 GiB``, ``4096``.

Decimal units (``KB``, ``MB``, ``GB``, ``TB``) and their one-letter forms (``K``, ``M``, ``G``,
``T``) follow Scad and OpenWhisk, where ``512 MB`` means 512 × 2**20 bytes; binary units
(``KiB``, ``MiB``, ``GiB``, ``TiB``) mean the same powers of two. Units are case-insensitive;
``B`` or no unit means bytes.
"""

from __future__ import annotations

import re

__all__ = ["format_size", "parse_size"]

_UNITS = {"": 0, "b": 0, "k": 1, "m": 2, "g": 3, "t": 4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Return the number of bytes ``value`` denotes.

    Raises ``ValueError`` with a message fit for a user when ``value`` is not a size.

    >>> parse_size("512 MB"), parse_size("640M"), parse_size("1 GiB"), parse_size(4096)
    (536870912, 671088640, 1073741824, 4096)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as '512 MB', got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            number, unit = match.groups()
            size = float(number) * 1024 ** _UNITS[unit.lower()]
            if size == int(size):
                return int(size)
            raise ValueError(f"size {value!r} is not a whole number of bytes")
    raise ValueError(f"expected a size such as '512 MB', '640M', '1 GiB' or bytes, got {value!r}")


def format_size(nbytes: int) -> str:
    """Render ``nbytes`` with the largest binary unit that divides it exactly.

    >>> format_size(536870912), format_size(1536), format_size(7)
    ('512 MiB', '1536 B', '7 B')
    """
    for unit, power in (("TiB", 4), ("GiB", 3), ("MiB", 2), ("KiB", 1)):
        if nbytes and nbytes % 1024**power == 0:
            return f"{nbytes // 1024**power} {unit}"
    return f"{nbytes} B"
