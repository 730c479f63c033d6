"""The private directories Ray tasks run their instances in, and the sweep of those a killed task left.

A compute task writes its instance's output, result and (without a shared file system) the
program's files to a fresh directory and removes it when the instance ends. A task cancelled with
``force=True`` (the run failed or was interrupted while it ran) dies with its worker process, before
its ``finally``: its directory stays. So each directory is named for the worker process that made it
(``scadrt-task-<pid>-<random>``), and every task first removes the directories of workers of this
user that no longer exist. A worker process that is alive may still be using its directory; a pid
reused by another process keeps a stale directory until that process ends too (never the reverse).
A private cluster's tasks put theirs inside the cluster's session directory (:data:`TASK_DIR_ENV`),
which goes with the cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

__all__ = ["TASK_DIR_ENV", "new_task_dir", "sweep_task_dirs"]

#: where a private cluster's tasks make their directories (set for the cluster's processes)
TASK_DIR_ENV = "SCADRT_TASK_DIR"
_PREFIX = "scadrt-task-"
_NAME = re.compile(re.escape(_PREFIX) + r"(\d+)-[A-Za-z0-9_]+")


def task_root() -> str:
    """The directory the task directories of this process go in."""
    return os.environ.get(TASK_DIR_ENV) or tempfile.gettempdir()


def new_task_dir() -> str:
    """A fresh directory (mode 0700) for one task of this worker process, after the sweep."""
    root = task_root()
    sweep_task_dirs(root)
    os.makedirs(root, mode=0o700, exist_ok=True)
    return tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root)


def sweep_task_dirs(root: str) -> list[str]:
    """Remove the task directories in ``root`` whose worker process is gone; return their paths."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        if _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
