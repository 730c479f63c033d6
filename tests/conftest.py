from __future__ import annotations

import os

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
