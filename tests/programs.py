"""Helpers of the tests: hand-written element directories, the ``scadc`` command, analyses of the examples."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scadc.analysis import Analysis

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    """The directory ``root`` with ``files`` (name → text or bytes) in it."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def scadc(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 120,
          cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``python -m scadc ARGS`` from the checkout, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "scadc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, check=False, env=env)


@functools.cache
def example_analysis(path: Path, *, inline: bool = True) -> Analysis:
    """``analyze`` of an example program, once per session: an Analysis is frozen, and the tests
    that plan every example under several policies would analyse each one again (a second each)."""
    from scadc.analysis import analyze  # libcst: only for the compiler's tests

    return analyze(str(path), inline=inline)
