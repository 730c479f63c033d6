"""The entry region of a program without an ``if __name__ == "__main__":`` guard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scadc.analysis import analyze
from scadc.errors import CompileError

BARE_MAIN = """\
import numpy as np


def noise(gen, n):
    return gen.standard_normal(n)


def main():
    gen = np.random.default_rng(7)
    a = noise(gen, 300_000)
    b = noise(gen, 300_000)
    print(float(a.sum()), float(b.sum()))


main()
"""


def test_a_bare_main_call_makes_main_the_entry(tmp_path: Path) -> None:
    """Before: the script's one unit was `main()`, and the element's own main(params, action)
    shadowed the user's, so every split program failed with a TypeError."""
    app = tmp_path / "app.py"
    app.write_text(BARE_MAIN)
    assert analyze(str(app)).program.entry.kind == "main"
    scadc = [sys.executable, "-m", "scadc"]
    subprocess.run([*scadc, "split", str(app), "-o", str(tmp_path / "prog"), "--policy", "every"], check=True)
    got = subprocess.run([*scadc, "run", str(tmp_path / "prog"), "--quiet"], capture_output=True, text=True,
                         check=False)
    want = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, check=True)
    assert (got.returncode, got.stdout) == (0, want.stdout), got.stderr


def test_a_script_that_defines_main_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text('print("start")\n\n\ndef main():\n    print("hi")\n\n\nmain()\n')
    with pytest.raises(CompileError) as info:
        analyze(str(app))
    assert info.value.span.line == 4 and "defines main()" in str(info.value)
