from __future__ import annotations

import pytest

from scadrt.sizes import format_size, parse_size


@pytest.mark.parametrize("text, expected", [
    ("512 MB", 512 * 2**20), ("640M", 640 * 2**20), ("1 GiB", 2**30), ("1GB", 2**30), ("64K", 65536),
    ("4096", 4096), (4096, 4096), ("0.5 MiB", 2**19), ("7 b", 7), ("2 tib", 2 * 2**40), (" 3 kb ", 3072),
])
def test_parse(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["lots", "", "1.3 B", "-1", -5, True, None, 1.5, "1 XB", "MB"])
def test_reject(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("nbytes", [0, 1, 1023, 1024, 1536, 2**20, 3 * 2**30, 5 * 2**40])
def test_format_round_trips(nbytes: int) -> None:
    assert parse_size(format_size(nbytes)) == nbytes
