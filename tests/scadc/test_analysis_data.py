"""The analysis tables of ``tests/scadc/data/*.test`` (regenerate: ``pytest tests/scadc --update-golden``)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from scadc.analysis import analyze
from scadc.errors import CompileError
from tests.scadc.datadriven import DATA, ROOT, Case, parse, write

FILES = sorted(DATA.glob("*.test"))
CASES = [c for f in FILES for c in parse(f)]
_ACTUAL: dict[Path, dict[str, str]] = {}


def run_case(case: Case, tmp_path: Path) -> str:
    flags = case.flags
    if case.source.startswith("@"):
        path, cwd = case.source.strip()[1:], ROOT
    else:
        (tmp_path / "app.py").write_text(case.source, encoding="utf-8")
        path, cwd = "app.py", tmp_path
    old = os.getcwd()
    os.chdir(cwd)
    try:
        result = analyze(path, entry=flags.get("entry") if isinstance(flags.get("entry"), str) else None,
                         heavy_bytes=int(flags.get("heavy-bytes", 1 << 20)))
        return result.format(explain=bool(flags.get("explain")))
    except CompileError as exc:
        return f"error: {exc}\n"
    finally:
        os.chdir(old)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.file.stem}:{c.name}" for c in CASES])
def test_case(case: Case, tmp_path: Path, update_golden: bool) -> None:
    actual = run_case(case, tmp_path)
    if update_golden:
        _ACTUAL.setdefault(case.file, {})[case.name] = actual
        write(case.file, parse(case.file), _ACTUAL[case.file])
        return
    if actual.rstrip() != case.expected.rstrip():
        diff = "".join(difflib.unified_diff(case.expected.rstrip().splitlines(True), actual.rstrip().splitlines(True),
                                            "expected", "actual"))
        pytest.fail(f"{case.file.name} [case {case.name}] differs:\n{diff}\n"
                    "if the new output is right: pytest tests/scadc/test_analysis_data.py --update-golden")


def test_case_names_are_unique() -> None:
    for f in FILES:
        names = [c.name for c in parse(f)]
        assert len(names) == len(set(names)), f
