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


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """The session's Ray cluster (:mod:`tests.ray_cluster`); tests that use it carry
    ``pytest.mark.xdist_group("ray")``, so that one pytest process runs them all on it."""
    from tests.ray_cluster import start

    cluster = start()
    try:
        yield cluster
    finally:
        cluster.stop()
