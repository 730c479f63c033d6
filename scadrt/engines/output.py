"""Writing the captured output of instances in program order, whatever order they finish in.

Every engine captures each instance's stdout and stderr in files and hands them to an
:class:`OutputSequencer` when the instance ends; the bytes a run prints then depend on neither
timing nor concurrency nor the engine: what a sequential run would have printed, up to the
failure when there is one.
"""

from __future__ import annotations

import shutil
from contextlib import suppress
from typing import BinaryIO

__all__ = ["OutputSequencer"]


class OutputSequencer:
    """Writes captured output of instances in program order, as soon as the prefix is complete."""

    def __init__(self, order: list[tuple[str, int]], stdout: BinaryIO, stderr: BinaryIO) -> None:
        self.order = order
        self.position = 0
        self.complete: dict[tuple[str, int], tuple[str, str]] = {}
        self.stdout, self.stderr = stdout, stderr

    def finished(self, key: tuple[str, int], stdout_path: str, stderr_path: str) -> None:
        self.complete[key] = (stdout_path, stderr_path)
        while self.position < len(self.order) and self.order[self.position] in self.complete:
            self._emit(self.order[self.position])
            self.position += 1

    def failed(self, key: tuple[str, int], stdout_path: str, stderr_path: str) -> None:
        # What a sequential run would have printed: everything before the failure, then its output.
        for earlier in self.order[self.position:]:
            if earlier == key:
                break
            if earlier in self.complete:
                self._emit(earlier)
        self.complete[key] = (stdout_path, stderr_path)
        self._emit(key)
        self.position = len(self.order)

    def _emit(self, key: tuple[str, int]) -> None:
        out_path, err_path = self.complete[key]
        for path, stream in ((out_path, self.stdout), (err_path, self.stderr)):
            with suppress(FileNotFoundError), open(path, "rb") as captured:
                shutil.copyfileobj(captured, stream)
            stream.flush()
