""":func:`scadrt.run`: run an element directory on this machine, as ``scadc run`` does.

A module of its own so that ``import scadrt`` loads neither the loader (yaml) nor the engines
until a name that needs them is used (see :mod:`scadrt`).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

from scadrt.dag import DEFAULT_MAX_PARALLELISM, Program, load_program
from scadrt.errors import UserError
from scadrt.report import RunReport, RunResult

if TYPE_CHECKING:
    from scadrt.engines.worker import Forked

__all__ = ["ENGINES", "run", "runs_inline"]

#: what runs a program: this machine, or a Ray cluster
ENGINES = ("local", "ray")


class _TextSink(io.RawIOBase):
    """Bytes written to a text stream looked up at each write: output reaches whatever sys.stdout or
    sys.stderr is by then (``contextlib.redirect_stdout``, pytest's capture, or rich's live view,
    which swaps them while it runs and places element output above itself)."""

    def __init__(self, stream: Callable[[], TextIO]) -> None:
        self.stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.stream().write(bytes(data).decode("utf-8", errors="replace"))
        return len(data)

    def flush(self) -> None:
        self.stream().flush()


def _text_sink(stream: Callable[[], TextIO]) -> BinaryIO:
    # Buffered so that it is a BinaryIO; the engine flushes after each instance's output, so the
    # buffer never holds output back past that
    return io.BufferedWriter(_TextSink(stream))


def run(program: str | Path | Program, *, params: Any = None, transport: str = "auto",
        max_workers: int | None = None, retries: int = 0, max_parallelism: int = DEFAULT_MAX_PARALLELISM,
        on_event: Callable[[str, str, int], None] | None = None,
        on_results: Callable[[dict[str, list[Any]]], None] | None = None,
        stdout: BinaryIO | None = None, stderr: BinaryIO | None = None, engine: str = "local",
        address: str | None = None, in_process: bool = False) -> RunReport:
    """Run an element directory (or a loaded :class:`Program`), as ``scadc run`` does.

    The elements' output is written, in program order, to ``stdout``/``stderr`` (default: the
    current ``sys.stdout``/``sys.stderr``). ``params`` is the root elements' input (a JSON-able
    object; ``scadc run``'s ``--param``/``--params-file``); ``transport`` is how compute elements
    reach memory elements (``auto``: shm on this host, or ``tcp``); ``max_workers`` instances run at
    once (default: the number of cores); a failed instance is re-run up to ``retries`` times;
    ``max_parallelism`` bounds an element's instances when ``program`` is a path. ``on_event(event,
    element, index)`` sees each instance start and end; ``on_results`` is given each sink element's
    results (one per instance) when the run succeeds. Returns the run's
    :class:`~scadrt.report.RunReport`.

    ``engine``: ``local`` (this machine, an instance per process) or ``ray`` (a Ray cluster:
    a private one started for the run, or the one at ``address``, ``auto`` or ``HOST:PORT``, or the
    one this process is connected to already; needs ``pip install 'scadc[ray]'``).

    ``in_process``: a program of one compute element and no memory element runs in this process,
    as its monolith did (:mod:`scadrt.engines.inline`), when its output would go to this process's
    own streams and there are no retries. ``scadc run`` does this: its process ends with the run.
    A long-lived caller (a notebook) should not: the program changes the process it runs in
    (``sys.path``, modules, its numeric libraries' thread counts).

    Raises :class:`ProgramError` for an invalid directory, :class:`UserError` for a bad option, and
    :class:`RunFailed` when an element fails for good (its ``failure`` says
    which and why, its ``report`` covers the run up to the failure).
    """
    if max_workers is not None and max_workers < 1:
        raise UserError("max_workers must be at least 1")
    if retries < 0:
        raise UserError("retries cannot be negative")
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise UserError("an address names a Ray cluster: use it with engine='ray' (--engine ray)")
    if not isinstance(program, Program):
        program = load_program(program, max_parallelism=max_parallelism)
    out = _text_sink(lambda: sys.stdout) if stdout is None else stdout
    err = _text_sink(lambda: sys.stderr) if stderr is None else stderr
    if engine == "ray":
        from scadrt.engines.ray_engine import RayEngine

        outcome = RayEngine(address=address, transport=transport, max_workers=max_workers, retries=retries,
                            stdout=out, stderr=err, on_event=on_event).run(program, params)
    elif in_process and runs_inline(program, retries=retries, stdout=stdout, stderr=stderr):
        from scadrt.engines import inline

        outcome = inline.run_inline(program, params, on_event)
    else:
        outcome = _run_local(program, params, transport=transport, max_workers=max_workers, retries=retries,
                             stdout=out, stderr=err, on_event=on_event)
    if on_results is not None:
        on_results(outcome.results)
    return outcome.report


def runs_inline(program: Program, *, retries: int = 0, stdout: BinaryIO | None = None,
                stderr: BinaryIO | None = None) -> bool:
    """Whether :func:`run` with ``in_process=True`` (and the local engine) runs ``program`` in this
    process: then the program's exit handlers and open files are this process's, and it must end
    as an interpreter does, not with ``os._exit`` (``scadc run`` asks before it runs)."""
    from scadrt.engines import inline  # what every engine imports too (scheduler core, failures, report)

    own = (stdout in (None, getattr(sys.stdout, "buffer", None))
           and stderr in (None, getattr(sys.stderr, "buffer", None)))  # the elements would write where we do
    return inline.fits(program, retries=retries, own_streams=own)


def _run_local(program: Program, params: Any, *, transport: str, max_workers: int | None, retries: int,
               stdout: BinaryIO, stderr: BinaryIO, on_event: Callable[[str, str, int], None] | None) -> RunResult:
    from scadrt.engines.worker import discard_worker

    forked = _first_worker(program, transport, max_workers)
    first: Forked | None = forked
    try:
        from scadrt.engines.local import LocalEngine
        from scadrt.engines.memory import memory_backend

        memory = memory_backend(transport, program)
        with LocalEngine(memory=memory, max_workers=max_workers, retries=retries, stdout=stdout, stderr=stderr,
                         on_event=on_event, workers=[] if forked is None else [forked]) as local:
            first = None  # the engine's now: it stops it
            return local.run(program, params)
    finally:
        if first is not None:
            discard_worker(first)


def _first_worker(program: Program, transport: str, max_workers: int | None) -> Forked | None:
    """The first worker, forked before the engine is imported: it imports numpy and what else
    elements need (100-200 ms of a core) meanwhile, and the engine's process never does. For a
    program that runs instances side by side it is a spawner: the pool's other workers are forked
    from it, sharing its numpy import (the engine importing numpy to fork them cost it 14 MB for
    the whole run, and one import here as well cost the time of two: the fanout example 0.84 ->
    1.0 s). None on tcp: the engine imports numpy and zmq for the memory servers it forks, and a
    worker forked after that inherits them."""
    from scadrt.engines.core import widest_antichain
    from scadrt.engines.memory import client_modules
    from scadrt.engines.worker import start_worker

    widths = {spec.name: spec.parallelism for spec in program.compute_elements()}
    width = widest_antichain(program, widths)
    if transport == "tcp" or width == 0:
        return None
    return start_worker(client_modules(transport), warm=False, spawner=width > 1 and max_workers != 1)
