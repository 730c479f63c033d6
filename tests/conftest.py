from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden/ from the current output")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Long fuzzing runs only under `make fuzz` (which sets SCAD_FUZZ to the number of examples).
    if os.environ.get("SCAD_FUZZ"):
        return
    skip = pytest.mark.skip(reason="fuzzing: run with `make fuzz`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """No process, shared-memory segment or temporary directory the test started outlives it
    (``pytestmark = pytest.mark.usefixtures("no_leftovers")`` in a module that wants it)."""
    from tests.leftovers import nothing_left_behind

    with nothing_left_behind():
        yield
