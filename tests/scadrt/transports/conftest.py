"""Every transport test must leave no child process and no shared-memory segment behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.leftovers import nothing_left_behind


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    with nothing_left_behind():
        yield
