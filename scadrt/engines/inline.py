"""A program of one compute element, run in this process: what ``scadc run`` does when there is
nothing to schedule.

A split that the cost model left whole (or a hand-written single element) has one instance, no
memory element and no other element to order output against. Running it through the local
engine costs a worker, its standby process and a watcher beside the engine, each alive for the
whole run (the numpy-loaded worker alone is ~40 MB × the run's wall), and a fork and output
copying on the way: a one-element split cost 1.3-1.8× the monolith's GB·s for nothing. Here the
element runs as the monolith did, in one process, with the same element ABI
(:func:`scadrt.element.run_element`: program module, warnings, result check), thread caps, and
failure text (source-mapped traceback, exit status 1) as an instance of the local engine.

What differs, by design: output is written as it is printed (there is nothing to order it
against); the report's instance is this process (its peak RSS includes the runtime's ~12 MB);
and a crash that kills a process (a segfault, ``os._exit``) ends the run as it ended the
monolith, without a report. :func:`fits` says when it applies: the caller's own stdout and
stderr (nothing to capture), no retries (a fresh process per attempt is the local engine's); and
only a caller whose process ends with the run asks for it (``scadrt.run(in_process=True)``, as
``scadc run`` does), since the program changes the process it runs in.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scadrt.dag import Program
from scadrt.engines.core import merged_transports
from scadrt.engines.failures import error_failure
from scadrt.engines.interrupt import signals_unwind
from scadrt.engines.threads import limit_threads
from scadrt.profile import ProfileSample, rss
from scadrt.report import InstanceRun, RunFailed, RunResult, program_report
from scadrt.sourcemap import load_sourcemap

__all__ = ["fits", "run_inline"]


def fits(program: Program, *, retries: int, own_streams: bool) -> bool:
    """Whether :func:`run_inline` runs ``program`` as the local engine would (module docstring)."""
    compute = program.compute_elements()
    return (own_streams and retries == 0 and len(compute) == 1 and compute[0].parallelism == 1
            and not program.memory_elements())


def run_inline(program: Program, run_input: Any, on_event: Callable[[str, str, int], None] | None = None) -> RunResult:
    """Run the one compute element of ``program`` here; raise :class:`RunFailed` if it fails."""
    from scadrt.element import error_record, run_element

    (spec,) = program.compute_elements()
    event = on_event or (lambda what, element, index: None)
    t0, cpu0 = time.time(), os.times()
    event("started", spec.name, 0)
    # RSS at the start and the end only: a sampling thread (or timer signal) would be visible to
    # the program (threading.active_count(), a fork's warning, its own SIGALRM)
    first = (0.0, rss(os.getpid()))
    status, failure, result = "ok", None, None
    transfer: dict[str, dict[str, int]] = {}
    profile: tuple[ProfileSample, ...] = ()
    # What the runtime made is not the program's: its collections (and end_program's) skip it, as a
    # forked instance's skip what it inherited. That is a 5 ms collection at exit instead of 1.5 ms.
    # Never undone: only a caller whose process ends with the run runs a program here (fits()).
    gc.freeze()
    try:
        with signals_unwind():
            outcome = run_element(str(Path(spec.path).resolve()), spec.name, 0,
                                  {} if run_input is None else run_input, merged_transports(spec),
                                  before_main=lambda: limit_threads(spec.limits.cpu))  # its BLAS is loaded now
        result, transfer, profile = outcome.result, outcome.transfer, outcome.profile
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit too: an instance's is a failure, not the engine's exit
        status, failure = "failed", error_failure(spec.name, 0, error_record(exc), load_sourcemap(program.path))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    end, cpu1 = time.time(), os.times()
    instance = InstanceRun(spec.name, 0, 1, status, 0.0, end - t0, os.getpid(),
                           resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, cpu1.user - cpu0.user,
                           cpu1.system - cpu0.system, (first, (end - t0, rss(os.getpid()))), transfer,
                           profile=profile)
    event(status, spec.name, 0)
    report = program_report(program, status="ok" if failure is None else "failed", wall=end - t0, order=(spec.name,),
                            instances=[instance], memory=(), failure="" if failure is None else failure.format())
    if failure is not None:
        raise RunFailed(failure, report)
    return RunResult(report, {spec.name: [result]})
