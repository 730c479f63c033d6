"""The examples in docstrings run: every module of scadc/ and scadrt/ is imported and its doctests run."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for package in ("scadc", "scadrt") for path in (ROOT / package).rglob("*.py")
    if path.name != "__main__.py"  # importing it runs the command line
)
#: third-party modules a module may need at import time that the dev extra does not always install
OPTIONAL = ("pyverbs", "ray")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        if exc.name is not None and exc.name.partition(".")[0] in OPTIONAL:
            pytest.skip(f"{name} needs the optional dependency {exc.name} (not installed here)")
        raise
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(module, name):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} doctest examples of {name} failed (output above)"


def test_the_examples_are_found() -> None:
    """The collection is not vacuous: modules known to have examples are listed and have them."""
    import scadrt.sizes

    assert {"scadc.source", "scadrt.sizes", "scadrt.transports"} <= set(MODULES)
    assert sum(len(t.examples) for t in doctest.DocTestFinder().find(scadrt.sizes)) >= 2
