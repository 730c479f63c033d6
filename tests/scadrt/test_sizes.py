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


@pytest.mark.parametrize("text, expected", [
    ("1.5 GiB", 3 * 2**29), ("0.25 KiB", 256), ("9007199254740993", 2**53 + 1), ("9007199254740993 B", 2**53 + 1),
    ("8388607.5 TiB", 8388607 * 2**40 + 2**39), ("1.50000 KiB", 1536), ("0.0 B", 0),
    (2**63 - 1, 2**63 - 1), (str(2**63 - 1), 2**63 - 1),
    ("0001 KiB", 1024),
])
def test_parse_is_exact_up_to_the_bound(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", [
    2**63, str(2**63), "9" * 400, "9" * 400 + " GB", "9" * 400 + ".5 GB", "1" + "0" * 5000, 10**400,
    "8 EiB", "8388608 TiB", "1." + "0" * 5000 + "1 KiB", "0.1 KiB", "0" * 60_000 + "x", "1" + " " * 60_000 + "x",
])
def test_absurd_sizes_are_a_clear_value_error(bad: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(bad)
    assert len(str(info.value)) < 200
    assert "Exceeds the limit" not in str(info.value)
