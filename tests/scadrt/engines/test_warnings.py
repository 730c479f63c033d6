"""Warnings of a split program: shown as when the original runs as a script, naming its lines.

Each program is really split (``scadc split --policy every``: a cut after every statement) and run
(``scadc run``), and what it writes is compared byte for byte with ``python app.py`` run from the same
directory under the same warning options.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("no_leftovers")

PROGRAM = '''\
import warnings

import numpy as np
import pandas as pd


def old_helper(x):
    warnings.warn("old_helper is deprecated", DeprecationWarning, stacklevel=2)
    return x + 1


def main():
    df = pd.DataFrame({"a": np.arange(6)[::-1], "b": np.arange(6) * 2.0})
    df.sort_values("a", inplace=True)
    total = old_helper(df["b"].sum())
    warnings.warn("a user warning")
    for _ in range(3):  # each round needs the last one's total: one element, where "default" shows it once
        total = old_helper(total)
    warnings.warn("shown once more: another line", DeprecationWarning)
    print(total)  # not the order of df: whether a split sees the in-place sort is not this file's concern


if __name__ == "__main__":
    main()
'''


def run(argv: list[str], cwd: Path, options: str | None) -> subprocess.CompletedProcess[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    if options is not None:
        env["PYTHONWARNINGS"] = options
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("warnings")
    (where / "app.py").write_text(PROGRAM, encoding="utf-8")
    done = run([sys.executable, "-m", "scadc", "split", "app.py", "-o", "p", "--policy", "every"], where, None)
    assert done.returncode == 0, done.stderr.decode()
    return where


@pytest.mark.parametrize("options", [None, "ignore", "default", "ignore::UserWarning"])
def test_split_program_writes_the_warnings_the_original_writes(split: Path, options: str | None) -> None:
    original = run([sys.executable, "app.py"], split, options)
    assert original.returncode == 0, original.stderr.decode()
    if options is None:  # what the test is about: pandas' and the program's own DeprecationWarnings
        assert b"Pandas4Warning" in original.stderr and b"old_helper is deprecated" in original.stderr
        assert f"{split / 'app.py'}:14: Pandas4Warning".encode() in original.stderr
        assert original.stderr.count(b"old_helper is deprecated") == 2  # line 15, and line 18 once
    ran = run([sys.executable, "-m", "scadc", "run", "p", "--quiet"], split, options)
    assert ran.returncode == 0, ran.stderr.decode()
    assert ran.stdout == original.stdout
    assert ran.stderr.decode() == original.stderr.decode()


def test_warnings_as_errors_stay_errors(split: Path) -> None:
    ran = run([sys.executable, "-m", "scadc", "run", "p", "--quiet"], split, "error::DeprecationWarning")
    assert ran.returncode == 1
    assert b"Pandas4Warning: The inplace keyword" in ran.stderr
