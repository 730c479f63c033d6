"""Where commands write what they produce: stdout, a replaced file, a private file.

Rules:

1. A file is replaced atomically: written to a temporary file beside it, then renamed over it, so
   a reader sees the old content or the new, never half of it. ``write_output`` (``dag``, ``gen``,
   ``profile``) makes it mode 0644; ``write_file`` (run data: ``--report``, ``--html``,
   ``--result-json``) creates it with mode 0600, an existing one keeping its mode, and writes a
   device or pipe (``/dev/stdout``) in place.
2. ``check_output_path`` refuses, before any work, a run output that cannot be written: a missing
   or unwritable directory, or a target that is a directory.
3. A finished run's output is never lost: if writing it fails anyway (``/dev/full``, a disk that
   filled up during the run), ``write_or_keep`` puts it in a private temporary file and says where.
4. ``private_write`` creates a file only its owner may read (mode 0600).
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from scadrt.errors import UserError, shorten

__all__ = ["check_output_path", "private_write", "write_file", "write_or_keep", "write_output"]


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Rule 1: ``data`` into a temporary file beside ``path`` with ``mode``, renamed over ``path``; raise OSError."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_output(target: str | None, data: bytes, *, binary: bool = False) -> None:
    """Write ``data`` to ``target`` atomically, or to stdout when ``target`` is None or '-'."""
    if target is None or target == "-":
        if binary and sys.stdout.isatty():
            raise UserError("refusing to write binary output to a terminal; pass -o FILE")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        _replace(Path(target), data, 0o644)
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror}") from exc


def check_output_path(option: str, target: str) -> None:
    """Rule 2: refuse, before the run, an output path that cannot be written."""
    path = Path(target)
    shown = f"{option} {shorten(str(target))}"
    if path.is_dir():
        raise UserError(f"{shown}: is a directory")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise UserError(f"{shown}: not writable")
        if not path.is_file():
            return  # a device or a pipe: written in place
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{shown}: directory {shorten(str(parent))} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{shown}: directory {shorten(str(parent))} is not writable")


def write_file(target: str, text: str) -> None:
    """Write ``text`` to ``target`` as run data (rule 1); raise OSError."""
    data = text.encode("utf-8")
    path = Path(target)
    try:
        existing = path.stat()
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(path, "wb") as out:
            out.write(data)
        return
    _replace(path, data, 0o600 if existing is None else stat.S_IMODE(existing.st_mode))


def write_or_keep(option: str, target: str, text: str) -> bool:
    """Write one output (:func:`write_file`); on failure keep it in a temporary file and say where (rule 3).
    False when it is not at ``target``."""
    try:
        write_file(target, text)
        return True
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
    suffix = Path(target).suffix or ".txt"
    try:
        fd, kept = tempfile.mkstemp(prefix=f"scadc-{option.lstrip('-')}-", suffix=suffix)
        with os.fdopen(fd, "wb") as out:
            out.write(text.encode("utf-8"))
    except OSError as exc:
        print(f"scadc: cannot write {option} {shorten(str(target))} ({why}), nor a temporary copy "
              f"({exc.strerror}); it is lost", file=sys.stderr)
        return False
    print(f"scadc: cannot write {option} {shorten(str(target))} ({why}); it is in {kept}", file=sys.stderr)
    return False


def private_write(path: Path, text: str) -> None:
    """Rule 4: ``text`` into ``path``, created with mode 0600 (truncated if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
