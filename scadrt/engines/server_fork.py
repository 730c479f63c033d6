"""Memory servers forked from the engine: the server ``python -m scadrt.transports.memory_server``
runs, with the same options, without an interpreter start of its own.

A fresh server process costs an interpreter start and the imports of zmq and numpy, some 0.25 s
of a core each, on the cores the run's first elements need; the engine imports them once
(:func:`warm`) and forks each server in a few milliseconds. Rules:

1. The child runs :func:`scadrt.transports.memory_server.main` with the options
   :func:`~scadrt.transports.launcher.server_options` gives a launched server, so it stops at
   the end of its stdin, a pipe whose write end only the engine holds, and (from the main
   thread) at the engine's death; the engine talks to it through the same
   :class:`~scadrt.transports.launcher.ServerProcess`.
2. It keeps only stdin, stdout (the pipe its "listening on" line comes through) and stderr;
   every other fd reads /dev/null (:func:`~scadrt.engines.worker.detach_inherited_fds`), so it
   holds neither another server's stdin nor the watcher's pipe open.
3. Its token is in its own environment (``SCAD_TOKEN``), as a launched server's is; it has no
   command line of its own, so the token is on none.
4. Its process name (``/proc/PID/comm``, what ``ps -o comm`` and ``top`` show) is
   :data:`PROCESS_NAME`; its command line is the engine's, as a fork's is.
5. It gets fresh stdio objects, the default handlers of the signals the engine handles, and no
   logging handlers of the engine's (an embedding program's, pytest's) before the server's own
   set-up, and it never returns into the engine's code (``os._exit``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from contextlib import suppress
from typing import IO

from scadrt.engines.worker import detach_inherited_fds, fork_frozen
from scadrt.transports.launcher import ServerProcess, server_options

__all__ = ["PROCESS_NAME", "ForkedProcess", "fork_memory_server", "warm"]

#: a forked server's process name (rule 4; at most 15 bytes)
PROCESS_NAME = "scad-memory"
_PR_SET_NAME = 15


class ForkedProcess:
    """A forked child with the methods of :class:`subprocess.Popen` that a ServerProcess uses."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: as Popen does, it counts as exited
                self.returncode = 0
            else:
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"memory server {self.pid}", timeout or 0.0)
            time.sleep(0.002)
        return code

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.poll() is None:  # never a pid that was reaped, and perhaps reused since
            with suppress(ProcessLookupError):
                os.kill(self.pid, sig)


def warm() -> None:
    """Import what a server needs (zmq; numpy, through its region), once, before the forks."""
    import numpy  # noqa: F401 - the region's allocate_buffer imports it only when called

    import scadrt.transports.memory_server  # noqa: F401


def fork_memory_server(size: int | str, *, token: str | None) -> ServerProcess:
    """Fork a memory server on a free port of 127.0.0.1 without waiting for it
    (:meth:`~scadrt.transports.launcher.ServerProcess.wait_ready` does)."""
    warm()
    options = server_options(size)
    life_r, life_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = fork_frozen((life_r, life_w, out_r, out_w))
    if pid == 0:
        code = 1
        try:
            os.dup2(life_r, 0)
            os.dup2(out_w, 1)
            detach_inherited_fds({0, 1, 2})
            code = _serve(options, token)
        except SystemExit as exc:  # argparse's
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(life_r)
    os.close(out_w)
    process = ForkedProcess(pid, os.fdopen(life_w, "wb"), os.fdopen(out_r, "rb"))
    return ServerProcess(process, url="")


def _serve(options: list[str], token: str | None) -> int:
    from scadrt.transports.memory_server import main

    with suppress(OSError, AttributeError):  # not Linux: only the name is lost
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, PROCESS_NAME.encode(), 0, 0, 0)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    logging.root.handlers.clear()
    os.environ.pop("SCAD_TOKEN", None)
    if token is not None:
        os.environ["SCAD_TOKEN"] = token
    return main(options)
