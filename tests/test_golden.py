"""Golden files: the exports of every example element directory.

Regenerate with `make golden` (or `pytest tests/test_golden.py --update-golden`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

import pytest

from scadrt.dag import Program, load_program
from scadrt.export import to_dot, to_graph_json, to_openwhisk

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "elements"
GOLDEN = ROOT / "golden" / "elements"
OUTPUTS: dict[str, Callable[[Program], str]] = {"dag.dot": to_dot, "dag.json": to_graph_json, "app.json": to_openwhisk}
EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())


def check_golden(path: Path, actual: str, update: bool) -> None:
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    expected = path.read_text() if path.exists() else ""
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            f"{path} (golden)", f"{path} (now)"))
        pytest.fail(f"{path.relative_to(ROOT)} is out of date; if the change is intended, run "
                    f"`make golden`\n{diff}", pytrace=False)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
@pytest.mark.parametrize("output", sorted(OUTPUTS))
def test_exports_match_golden(example: str, output: str, update_golden: bool) -> None:
    program = load_program(EXAMPLES / example)
    check_golden(GOLDEN / example / output, OUTPUTS[output](program), update_golden)


def test_no_stale_golden_directories() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == EXAMPLE_NAMES
