"""The watcher's body (:mod:`scadrt.engines.watcher`): wait for EOF on a pipe, then remove the
shared-memory segments and directories named on it.

It is also a script, ``python -I -S cleanup.py FD``, which is how the watcher runs: an interpreter
without site-packages that imports only the standard library holds ~10 MB, where a fork of the
engine holds the engine's ~22 MB for the whole run. So it imports nothing from scadrt; records are
``s<segment name>`` or ``d<path>``, each ended by a NUL byte.
"""

from __future__ import annotations

import _posixshmem
import contextlib
import os
import shutil
import sys
import time

SEGMENT, DIRECTORY = b"s", b"d"
#: how long a directory that instances still being killed write into is retried
RMTREE_PATIENCE = 3.0


def watch(pipe: int) -> None:
    """Read ``pipe`` to EOF, then remove what its records name (those gone already are skipped)."""
    data = bytearray()
    while chunk := os.read(pipe, 1 << 16):
        data += chunk
    records = [bytes(r) for r in data.split(b"\0") if r]
    for record in records:
        name = record[1:].decode(errors="replace").lstrip("/")
        if record[:1] == SEGMENT and name and "/" not in name:  # a name the engine gave, nothing else
            with contextlib.suppress(OSError):
                _posixshmem.shm_unlink("/" + name)
    deadline = time.monotonic() + RMTREE_PATIENCE
    for record in records:
        if record[:1] != DIRECTORY:
            continue
        path = record[1:]
        # instances killed with the engine may still be writing into it for a moment
        while os.path.lexists(path):
            shutil.rmtree(path, ignore_errors=True)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
