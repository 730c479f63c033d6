"""The run's watcher: removes what a run leaves on this host when the engine dies without cleaning up.

The engine's own teardown removes its shared-memory segments and its temporary directory, but a
SIGKILL (or the OOM killer) gives it no chance to. Workers and instances die with the engine
(``PR_SET_PDEATHSIG``, :mod:`scadrt.engines.worker`) and memory servers stop when their stdin
pipe from the engine closes; names in ``/dev/shm`` and directories do not die with anything, so
a small process per run removes them. Rules:

1. At the start of each run the engine forks a :class:`Watcher`, which holds the read end of a
   pipe whose only write end is the engine's: every process forked from the engine afterwards
   points its copy at /dev/null (:func:`~scadrt.engines.worker.detach_inherited_fds`), and
   executed programs never get it (Python's pipes are close-on-exec).
2. The engine tells the watcher the name of each segment *before* creating it (a SIGKILL between
   the two leaves nothing it was not told), and the run's temporary directory right after making
   it (``mkdtemp`` picks the name; telling first could name a directory that is not ours).
3. At EOF on the pipe (the engine closed it at the end of the run, or died) the watcher removes
   every segment and directory it was told about, ignoring those already gone, and exits. After
   a clean run everything is gone already, and the watcher changes nothing; it never removes a
   name it was not given.
4. It ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT and runs in a process group of its own: what
   stops the run (Ctrl-C or a hangup reaching the whole group) must not stop its cleanup. It
   never outlives the pipe by more than the cleanup.
5. The engine waits for the watcher to exit at the end of each run, so it leaves no process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

from scadrt.engines.worker import detach_inherited_fds, fork_frozen
from scadrt.transports.shm import unlink_segment

__all__ = ["Watcher"]

_SEGMENT, _DIRECTORY = b"s", b"d"
#: how long the watcher retries a directory that instances still being killed write into
_RMTREE_PATIENCE = 3.0


class Watcher:
    """The engine's side: fork the watcher, tell it names (rule 2), :meth:`close` at the end."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        pid = fork_frozen((read_end, write_end))
        if pid == 0:
            try:
                detach_inherited_fds({read_end})
                _watch(read_end)
            finally:
                os._exit(0)
        os.close(read_end)
        self.pid = pid
        self._pipe: int | None = write_end

    def segment(self, name: str) -> None:
        """A shared-memory segment of this run, about to be created."""
        self._send(_SEGMENT + name.encode())

    def directory(self, path: str) -> None:
        """A directory of this run, just made."""
        self._send(_DIRECTORY + os.fsencode(path))

    def _send(self, record: bytes) -> None:
        if self._pipe is None:
            return
        # names hold no NUL (neither paths nor segment names can); a dead watcher only loses
        # the guarantee, the run itself goes on
        with contextlib.suppress(OSError):
            os.write(self._pipe, record + b"\0")

    def close(self) -> None:
        """The run is over: the watcher removes whatever is left of it (rule 3), and exits."""
        if self._pipe is None:
            return
        os.close(self._pipe)
        self._pipe = None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _watch(pipe: int) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    os.setpgrp()
    data = bytearray()
    while chunk := os.read(pipe, 1 << 16):
        data += chunk
    records = [bytes(r) for r in data.split(b"\0") if r]
    for record in records:
        if record[:1] == _SEGMENT:
            with contextlib.suppress(OSError, ValueError):
                unlink_segment(record[1:].decode())
    deadline = time.monotonic() + _RMTREE_PATIENCE
    for record in records:
        if record[:1] != _DIRECTORY:
            continue
        path = record[1:]
        # instances killed with the engine may still be writing into it for a moment
        while os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
