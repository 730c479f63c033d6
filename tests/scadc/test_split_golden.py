"""Golden files pin what scadc split writes for every example: the element files, split.json,
sourcemap.json and the DAG as DOT. Regenerate with `make golden`."""

from __future__ import annotations

from pathlib import Path

import pytest

import scadc
from scadrt.dag import load_program
from scadrt.export import to_dot
from tests.test_golden import check_golden

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples" / "monolithic").glob("*.py"))
GOLDEN = ROOT / "golden" / "monolithic"


@pytest.mark.parametrize("example", EXAMPLES)
def test_split_output_matches_golden(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     update_golden: bool) -> None:
    monkeypatch.chdir(ROOT)  # paths inside split.json and the comments are as the user typed them
    prog = tmp_path / example
    scadc.split_program(f"examples/monolithic/{example}.py", prog)
    files = {p.name: p.read_text() for p in sorted(prog.iterdir())}
    files["dag.dot"] = to_dot(load_program(prog))
    expected = GOLDEN / example
    if update_golden and expected.exists():
        for stale in set(p.name for p in expected.iterdir()) - set(files):
            (expected / stale).unlink()
    for name, text in files.items():
        check_golden(expected / name, text, update_golden)
    assert sorted(p.name for p in expected.iterdir()) == sorted(files)


def test_no_stale_golden_directories() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == EXAMPLES
