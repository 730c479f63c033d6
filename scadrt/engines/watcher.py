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
import signal
import sys

from scadrt.engines import cleanup
from scadrt.engines.worker import detach_inherited_fds, fork_frozen

__all__ = ["Watcher"]

_IGNORED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class Watcher:
    """The engine's side: fork the watcher, tell it names (rule 2), :meth:`close` at the end."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        pid = fork_frozen((read_end, write_end))
        if pid == 0:
            try:
                detach_inherited_fds({read_end})
                for sig in _IGNORED:  # rule 4; ignored dispositions survive the exec
                    signal.signal(sig, signal.SIG_IGN)
                os.setpgrp()
                os.set_inheritable(read_end, True)
                with contextlib.suppress(OSError):  # a small interpreter (cleanup.py says why)
                    os.execv(sys.executable, [sys.executable, "-I", "-S", cleanup.__file__, str(read_end)])
                cleanup.watch(read_end)  # no interpreter to exec: this fork does it
            finally:
                os._exit(0)
        os.close(read_end)
        self.pid = pid
        self._pipe: int | None = write_end

    def segment(self, name: str) -> None:
        """A shared-memory segment of this run, about to be created."""
        self._send(cleanup.SEGMENT + name.encode())

    def directory(self, path: str) -> None:
        """A directory of this run, just made."""
        self._send(cleanup.DIRECTORY + os.fsencode(path))

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
