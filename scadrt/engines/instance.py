"""One element instance in a fresh interpreter: how an engine that cannot fork runs an instance.

The local engine forks each instance from a warm worker. A Ray task runs in a Ray worker, a
process with gRPC threads of its own, which must not be forked; so a task starts
``python -m scadrt.engines.instance PARENT`` (:func:`run_subprocess`), hands it the
:class:`~scadrt.engines.worker.Task` on stdin, and waits for it. The child runs the task exactly
as a forked instance does (:func:`~scadrt.engines.worker.run_instance`: the element ABI, the
result or error files, the thread limits), with its stdout and stderr in the task's capture
files, and dies with the process that started it (``PR_SET_PDEATHSIG``): a cancelled or killed
Ray task leaves no instance running.

A fresh interpreter costs its start-up and imports (0.1-0.3 s with numpy), which a cluster's
dispatch dwarfs; in exchange the instance's peak RSS, CPU time and exit status are its own, from
``wait4``, as on the local engine.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass

from scadrt.engines.worker import Task, die_with_parent, run_instance
from scadrt.profile import rss
from scadrt.readiness import readable

__all__ = ["SubprocessExit", "run_subprocess"]

_SAMPLE_INTERVAL = 0.05


@dataclass(frozen=True)
class SubprocessExit:
    pid: int
    #: as returned by wait4 (decode with os.WIFEXITED and friends)
    status: int
    #: wall-clock times (time.time()) of the start and of the exit
    start: float
    end: float
    #: bytes (the kernel's ru_maxrss of the child)
    peak_rss: int
    cpu_user: float
    cpu_system: float
    #: (time.time(), RSS) samples taken while it ran
    samples: tuple[tuple[float, int], ...]


def run_subprocess(task: Task, *, cwd: str | None = None, env: Mapping[str, str] | None = None) -> SubprocessExit:
    """Run ``task`` in a child interpreter and wait for it; sample its RSS meanwhile."""
    payload = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
    with open(task.stdout_path, "wb", opener=_private) as out, open(task.stderr_path, "wb", opener=_private) as err:
        start = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "scadrt.engines.instance", str(os.getpid())],
                                stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=cwd,
                                env=dict(env) if env is not None else None)
    assert proc.stdin is not None
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except BrokenPipeError:  # it died before reading: its status says how
        pass
    samples: list[tuple[float, int]] = []
    exited = os.pidfd_open(proc.pid)  # readable once it has exited: no sleep between its end and ours
    try:
        while not readable([exited], _SAMPLE_INTERVAL):
            samples.append((time.time(), rss(proc.pid)))
    except BaseException:  # the task was cancelled (ray.cancel raises KeyboardInterrupt here): the instance goes too
        proc.kill()
        os.waitpid(proc.pid, 0)
        proc.returncode = -9
        raise
    finally:
        os.close(exited)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return SubprocessExit(proc.pid, status, start, time.time(), usage.ru_maxrss * 1024, usage.ru_utime,
                          usage.ru_stime, tuple(samples))


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def main() -> None:
    """The child: ``python -m scadrt.engines.instance PARENT`` with a pickled Task on stdin."""
    code = 1
    try:
        die_with_parent(int(sys.argv[1]))
        task = pickle.loads(sys.stdin.buffer.read())
        if not isinstance(task, Task):
            raise TypeError(f"expected a Task on stdin, got {type(task).__name__}")
        code = run_instance(task)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
