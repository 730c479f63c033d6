"""Helpers of the runtime's tests: hand-written element directories and the ``scadc`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
