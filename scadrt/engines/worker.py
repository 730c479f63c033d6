"""A warm worker process of the local engine, and the code that runs one element instance.

The engine starts a few workers (``python -c`` calling :func:`serve` with two pipe fds); each
imports numpy and scadrt once, then waits for tasks. For every task it forks: the child runs
the element and exits, so each instance has its own address space (its peak RSS is its own,
and nothing leaks into the next instance), while the fork of a warm process costs about a
millisecond instead of a Python start-up. The worker waits for the child with ``wait4``,
which gives the child's exact peak RSS and CPU time, and reports to the engine.

Frames on both pipes are a 4-byte big-endian length and a pickle (engine and worker are the
same program; nothing else writes to these pipes). The child writes its result or its error as
JSON into files named by the task, and its stdout/stderr go to capture files, so neither can
be confused with the worker's frames.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["Exited", "Ready", "Started", "Task", "read_frame", "write_frame"]

_LENGTH = struct.Struct(">I")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Task:
    """One attempt at one instance, as sent to a worker."""

    task_id: int
    element: str
    index: int
    parallelism: int
    #: the element's file; the program directory goes first on sys.path
    path: str
    params: Any
    #: memory element (instance) name → transport descriptor
    transports: dict[str, str]
    stdout_path: str
    stderr_path: str
    result_path: str
    error_path: str


@dataclass(frozen=True)
class Ready:
    """The worker has imported everything and waits for tasks."""

    pid: int


@dataclass(frozen=True)
class Started:
    task_id: int
    #: the child process running the instance
    pid: int
    #: wall-clock time (time.time()) just before the fork
    start: float


@dataclass(frozen=True)
class Exited:
    task_id: int
    pid: int
    #: as returned by wait4 (decode with os.WIFEXITED and friends)
    status: int
    #: wall-clock time (time.time()) when wait4 returned
    end: float
    #: bytes (the kernel's ru_maxrss of the child)
    peak_rss: int
    cpu_user: float
    cpu_system: float


def write_frame(out: BinaryIO, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def read_frame(inp: BinaryIO) -> Any:
    """The next frame, or None at end of file."""
    head = inp.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(head)
    data = inp.read(length)
    if len(data) < length:
        return None
    return pickle.loads(data)


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent exits, so nothing is orphaned."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the engine's teardown still kills us by PID
        pass


def _element_frames_only(exc: BaseException) -> str:
    # Drop this module's frames so the traceback starts in the user's element.
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_instance(task: Task) -> int:
    """Run one element instance in this process (a fresh fork); return the exit status."""
    from scadrt.action import Action

    try:
        os.environ["__OW_PAR"] = str(task.index)
        sys.path.insert(0, str(Path(task.path).parent))
        source = Path(task.path).read_text(encoding="utf-8")
        namespace: dict[str, Any] = {"__name__": f"scad_element_{task.element}", "__file__": task.path}
        exec(compile(source, task.path, "exec"), namespace)
        with Action(task.element, task.transports, par_index=task.index) as action:
            result = namespace["main"](task.params, action)
            transfer = action.transfer_counts()
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise TypeError(f"main() must return a dict (a JSON object), not {type(result).__name__}")
        try:
            text = json.dumps({"result": result, "transfer": transfer})
        except (TypeError, ValueError) as exc:
            raise TypeError(f"main() returned a value that is not JSON-serialisable: {exc}") from exc
        Path(task.result_path).write_text(text)
        return 0
    except BaseException as exc:
        error = {"kind": type(exc).__name__, "message": str(exc), "traceback": _element_frames_only(exc)}
        Path(task.error_path).write_text(json.dumps(error))
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _child(task: Task) -> None:
    code = 1
    try:
        die_with_parent()
        for fd, path in ((1, task.stdout_path), (2, task.stderr_path)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        code = run_instance(task)
    finally:
        os._exit(code)


def serve(task_fd: int, event_fd: int) -> None:
    die_with_parent()
    # Ctrl-C reaches the whole process group; the engine decides what happens to us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import numpy  # noqa: F401 - warm: every fork inherits it already imported

    import scadrt.action
    import scadrt.transports  # noqa: F401

    with os.fdopen(task_fd, "rb") as tasks, os.fdopen(event_fd, "wb") as events:
        write_frame(events, Ready(os.getpid()))
        while (task := read_frame(tasks)) is not None:
            start = time.time()
            pid = os.fork()
            if pid == 0:
                _child(task)
            write_frame(events, Started(task.task_id, pid, start))
            _, status, usage = os.wait4(pid, 0)
            write_frame(events, Exited(task.task_id, pid, status, time.time(),
                                       usage.ru_maxrss * 1024, usage.ru_utime, usage.ru_stime))
