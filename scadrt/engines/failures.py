"""Why an instance failed, in the same words on every engine.

An instance reports an exception as :func:`scadrt.element.error_record` (JSON); a process that
exits without one crashed. Both become a :class:`~scadrt.engines.core.Failure` here: a generated
program's traceback points at the original source's lines (its sourcemap), and a region that
filled up gets the hint to profile.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from scadrt.element import instance_index
from scadrt.engines.core import Failure
from scadrt.sourcemap import SourceMap

__all__ = ["crash_failure", "error_failure", "instance_failure", "memory_lost_failure"]


def error_failure(element: str, index: int, error: dict[str, Any], sourcemap: SourceMap | None) -> Failure:
    """The failure an :func:`~scadrt.element.error_record` describes."""
    traceback, message = error["traceback"], error["message"]
    if sourcemap is not None:  # a generated program: point at the original's lines
        traceback = sourcemap.rewrite(traceback)
        if error["region_full"]:  # its memory elements were sized by estimate or another input
            hint = (f"hint: scadc split sized the memory elements from static estimates or from a "
                    f"profile of a smaller input; measure them on this input with `scadc profile "
                    f"{sourcemap.source} -o app.profile.json` and split again with "
                    f"`--profile app.profile.json`")
            message = f"{message} ({hint})"
            traceback = f"{traceback.rstrip()}\n{hint}\n"
    return Failure(element, index, error["kind"], message, traceback)


def crash_failure(element: str, index: int, status: int) -> Failure:
    """The failure of a process that ended with wait ``status`` and left no error record."""
    if os.WIFSIGNALED(status):
        sig = signal.Signals(os.WTERMSIG(status))
        hint = " (out of memory?)" if sig == signal.SIGKILL else ""
        return Failure(element, index, "crash", f"the process was killed by {sig.name}{hint}")
    return Failure(element, index, "crash",
                   f"the process exited with status {os.waitstatus_to_exitcode(status)} without a result")


def instance_failure(element: str, index: int, status: int, error: dict[str, Any] | None,
                     sourcemap: SourceMap | None) -> tuple[Failure, bool]:
    """Why an instance whose process ended with wait ``status`` failed (``error``: the record it
    wrote, if any), and whether it lost its connection to a memory element (the instance's typed
    flag: a subclass counts, a user class of the same name does not)."""
    if os.WIFEXITED(status) and error is not None:
        return error_failure(element, index, error, sourcemap), bool(error["connection_lost"])
    return crash_failure(element, index, status), False


def memory_lost_failure(lost: list[tuple[str, str, str]], user: tuple[str, int] | None = None) -> Failure:
    """The failure of a run whose memory instances ``lost`` ((element, instance, what happened),
    the first in program order is named) went away, while compute instance ``user`` used them."""
    element, instance, what = min(lost, key=lambda m: (m[0], instance_index(m[1])))
    while_ = f" (while {user[0]!r} instance {user[1]} was using it)" if user else ""
    return Failure(element, instance_index(instance), "MemoryLost",
                   f"memory element {instance!r} died: {what}{while_}", memory=instance)

