"""The examples in docstrings run."""

from __future__ import annotations

import doctest

import pytest

import scadrt.sizes


@pytest.mark.parametrize("module", [scadrt.sizes], ids=lambda m: m.__name__)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, verbose=False)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
