"""The sweep of the task directories a force-cancelled Ray task left (no Ray here: plain processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scadrt.engines.task_dirs import TASK_DIR_ENV, new_task_dir, sweep_task_dirs


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_the_sweep_removes_the_directories_of_workers_that_are_gone_and_nothing_else(tmp_path: Path) -> None:
    dead = tmp_path / f"scadrt-task-{_dead_pid()}-ab_c1"
    (dead / "program").mkdir(parents=True)
    (dead / "program" / "a.o.py").write_text("x")
    mine = tmp_path / f"scadrt-task-{os.getpid()}-xyz"
    mine.mkdir()
    unrelated = [tmp_path / "scadrt-task-abc", tmp_path / "other-123-x", tmp_path / f"scadrt-task-{_dead_pid()}-f.txt"]
    unrelated[0].mkdir()
    unrelated[1].mkdir()
    unrelated[2].write_text("a file, not a directory")
    assert sweep_task_dirs(str(tmp_path)) == [str(dead)]
    assert sorted(tmp_path.iterdir()) == sorted([mine, *unrelated])


def test_a_task_directory_is_private_named_for_its_process_and_sweeps_first(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tasks"
    monkeypatch.setenv(TASK_DIR_ENV, str(root))
    root.mkdir()
    left = root / f"scadrt-task-{_dead_pid()}-old"
    left.mkdir()
    made = Path(new_task_dir())
    assert made.parent == root and made.name.startswith(f"scadrt-task-{os.getpid()}-")
    assert made.stat().st_mode & 0o777 == 0o700
    assert not left.exists()


def test_a_missing_root_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tasks"  # a private cluster's session directory has none until its first task
    monkeypatch.setenv(TASK_DIR_ENV, str(root))
    assert sweep_task_dirs(str(root)) == []
    assert Path(new_task_dir()).parent == root
    assert root.stat().st_mode & 0o777 == 0o700
