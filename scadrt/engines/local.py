"""The local engine: run a program on this machine, each instance in its own process.

It carries out the :class:`~scadrt.engines.core.Scheduler`'s commands with

* a pool of warm workers (:mod:`scadrt.engines.worker`) that fork one child per instance. A
  worker is a process with numpy loaded, so the pool holds only what the scheduler says can use
  one (:meth:`~scadrt.engines.core.Scheduler.wanted_workers`: what runs now and what becomes
  ready next, never more than can still run at once); it grows a step ahead of the submissions
  and a worker nothing remaining can use exits at once, so a chain runs on one worker and the
  pool is empty when the run ends. Workers come from the pool's spawner when it has one (the
  first worker of ``scadc run``: :func:`~scadrt.engines.worker.spawn_worker`), which retires
  last, else are forked from the engine, warm;
* a memory backend that starts memory elements (shared-memory segments or memory servers; a
  server is launched when the element before its first user is submitted, rule 6 of
  :mod:`scadrt.engines.memory`), and frees each when its last user is done;
* an output sequencer that writes each instance's captured stdout/stderr in program order,
  so the bytes printed do not depend on timing or concurrency.

Everything it starts (workers, their children, memory servers, segments, the run's temporary
directory) is gone when :meth:`LocalEngine.run` returns or raises, Ctrl-C and SIGTERM included,
and within moments of a SIGKILL of the engine: workers and instances die with their parent
(``PR_SET_PDEATHSIG``), memory servers when their stdin pipe from the engine closes, and the
run's watcher (:mod:`scadrt.engines.watcher`) removes the segments and the temporary directory.

A memory element that cannot start, or that goes away while the run needs it (a server that
exits, a segment someone removes), stops the run at once; the failure names that memory element
and what happened to it, not the error it caused in a compute element.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from scadrt.dag import ElementSpec, Program
from scadrt.element import instance_index
from scadrt.engines.core import (
    Abort,
    Command,
    Failure,
    Finish,
    Scheduler,
    StartMemory,
    StopMemory,
    Submit,
    merged_transports,
)
from scadrt.engines.failures import instance_failure, memory_lost_failure
from scadrt.engines.interrupt import signals_unwind
from scadrt.engines.memory import MemoryBackend, MemoryStartError, SegmentGuard
from scadrt.engines.output import OutputSequencer
from scadrt.engines.watcher import Watcher
from scadrt.engines.worker import (
    Exited,
    Finished,
    Forked,
    Ready,
    Started,
    Task,
    read_frame,
    spawn_worker,
    start_worker,
    write_frame,
)
from scadrt.errors import InternalError
from scadrt.profile import ProfileSample, rss, samples_from_json
from scadrt.readiness import readable
from scadrt.report import InstanceRun, MemoryRun, RunFailed, RunReport, RunResult, program_report
from scadrt.sourcemap import load_sourcemap

__all__ = ["LocalEngine", "RunResult"]

_SAMPLE_INTERVAL = 0.05
#: how long an instance that lost its connection waits for its memory server to be seen dead
_LOST_GRACE = 1.0


class _Aborted(Exception):
    """Raised inside a run when the scheduler aborts; becomes RunFailed once everything is down."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.format())
        self.failure = failure


class _Process:
    """A worker process, by pid: a child of the engine (forked: no Popen to wait on), or one a
    spawner forked (``spawned``: its parent reaps it; it is watched through a pidfd)."""

    def __init__(self, pid: int, *, spawned: bool = False) -> None:
        self.pid = pid
        self.status: int | None = None
        self.gone = False
        self.pidfd: int | None = None
        if spawned:
            try:
                self.pidfd = os.pidfd_open(pid)
            except ProcessLookupError:  # gone already, and reaped by its spawner
                self.gone = True

    def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code (negative: killed by that signal; None for a spawned worker, whose status
        only its spawner sees); TimeoutError if it runs on."""
        if self.pidfd is not None:
            if not readable([self.pidfd], timeout):
                raise TimeoutError(f"process {self.pid} is still running")
            os.close(self.pidfd)
            self.pidfd, self.gone = None, True
        if self.gone:
            return None
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG if deadline is not None else 0)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            elif deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"process {self.pid} is still running")
            elif deadline is not None:
                time.sleep(0.005)
        return self.status

    def kill(self) -> None:
        if self.pidfd is not None:
            with suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        elif self.status is None and not self.gone:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


@dataclass(eq=False)
class _Attempt:
    """A task sent to a worker, until the worker reports its process exited."""

    task: Task
    child: int = 0
    started: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    #: bytes moved per transport kind, once the instance has finished successfully
    transfer: dict[str, dict[str, int]] | None = None
    #: what its action.profile(n) calls recorded, once it has finished successfully
    profile: tuple[ProfileSample, ...] = ()
    #: the instance has finished; its process may still be exiting
    finished: bool = False


@dataclass(eq=False)
class _Worker:
    proc: _Process
    tasks: BinaryIO
    events: BinaryIO
    ready: bool = False
    #: task id → attempt, in the order sent: at most one not finished (the worker takes the next
    #: task as soon as the last one has finished, while its process is still exiting)
    attempts: dict[int, _Attempt] = field(default_factory=dict)
    #: told to exit (its task pipe is closed): it reports what is exiting, then its pipe ends
    retiring: bool = False
    #: a spawner's socket that asks it for workers (None: not a spawner, or no longer asked)
    spawn: int | None = None
    #: the spawner that forked it (it dies with that one)
    parent: _Worker | None = None

    @property
    def busy(self) -> bool:
        return any(not a.finished for a in self.attempts.values())

    @property
    def idle(self) -> bool:
        return self.ready and not self.retiring and not self.busy


def _error_record(path: Path) -> dict[str, Any] | None:
    try:
        error: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return error


class _Pool:
    """The warm workers of an engine, and the selector over their event pipes (a run resizes it
    to what it can use, and leaves it empty)."""

    def __init__(self, client_modules: tuple[str, ...] = ()) -> None:
        #: imported before the first fork, with warm_up: what instances import to reach memory elements
        self.client_modules = client_modules
        self.workers: list[_Worker] = []
        self._selector = selectors.DefaultSelector()
        #: how many workers it has started (tests: a chain needs one)
        self.started = 0

    def start_worker(self) -> _Worker | None:
        """A new worker: from a ready spawner if the pool has one (this process then never imports
        numpy), else forked from here, warm; None while the spawner is still warming up (the
        caller asks again: :meth:`grow` runs at every turn of the run's loop)."""
        spawner = next((w for w in self.workers if w.spawn is not None and not w.retiring), None)
        if spawner is not None and spawner.spawn is not None:
            if not spawner.ready:
                return None
            try:
                return self.adopt(spawn_worker(spawner.spawn), parent=spawner)
            except OSError:  # it cannot fork (or died): the engine forks workers from now on
                self._stop_spawning(spawner)
        return self.adopt(start_worker(self.client_modules))

    def adopt(self, forked: Forked, parent: _Worker | None = None) -> _Worker:
        """Take ``forked`` into the pool (it may still be warming up)."""
        worker = _Worker(_Process(forked.pid, spawned=forked.spawned), os.fdopen(forked.tasks, "wb"),
                         os.fdopen(forked.events, "rb", buffering=0),
                         spawn=forked.spawn if forked.spawn >= 0 else None, parent=parent)
        self._selector.register(worker.events, selectors.EVENT_READ, worker)
        self.workers.append(worker)
        self.started += 1
        return worker

    def _stop_spawning(self, worker: _Worker) -> None:
        if worker.spawn is not None:
            with suppress(OSError):
                os.close(worker.spawn)
            worker.spawn = None

    def grow(self, size: int) -> None:
        """Start workers up to ``size`` not retiring (they warm up concurrently, while other work goes on)."""
        while sum(not w.retiring for w in self.workers) < size:
            if self.start_worker() is None:
                return

    def shrink(self, size: int) -> None:
        """Retire idle workers until at most ``size`` are left that are not retiring: a worker
        nothing remaining can use exits now, and its memory stops counting. A spawner goes last:
        the workers it forked die with it."""
        for worker in reversed(self.workers):
            if sum(not w.retiring for w in self.workers) <= size:
                return
            if worker.idle and not any(w.parent is worker for w in self.workers):
                self._retire(worker)

    def _retire(self, worker: _Worker) -> None:
        worker.retiring = True
        self._stop_spawning(worker)
        with suppress(OSError):
            worker.tasks.close()

    def release(self) -> None:
        """Close the selector: the pool is not used again (:meth:`close` first)."""
        self._selector.close()

    def readable(self, timeout: float) -> list[_Worker]:
        """The workers with an event (or end of file) to read, after waiting at most ``timeout`` s."""
        return [key.data for key, _ in self._selector.select(timeout=timeout)]

    def remove(self, worker: _Worker) -> int | None:
        """Reap ``worker``, whose event pipe reached end of file; return its exit code (None: a
        spawned worker's, which its spawner reaps)."""
        self._selector.unregister(worker.events)
        self.workers.remove(worker)
        worker.events.close()
        self._stop_spawning(worker)
        with suppress(OSError):
            worker.tasks.close()
        return worker.proc.wait()

    def close(self) -> None:
        """Stop every worker and the child it runs."""
        for worker in self.workers:
            for attempt in worker.attempts.values():
                if attempt.child:
                    with suppress(ProcessLookupError):
                        os.kill(attempt.child, signal.SIGKILL)
            self._stop_spawning(worker)
            with suppress(OSError):
                worker.tasks.close()
        deadline = time.monotonic() + 2.0
        # the spawned ones first: a spawner waits for them before it exits
        for worker in sorted(self.workers, key=lambda w: w.parent is None):
            try:
                worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                worker.proc.kill()
                worker.proc.wait()
            with suppress(KeyError, ValueError):
                self._selector.unregister(worker.events)
            worker.events.close()
        self.workers.clear()


class LocalEngine:
    """Runs programs on this machine; one engine may run several programs in turn."""

    def __init__(self, *, memory: MemoryBackend | None = None, max_workers: int | None = None,
                 retries: int = 0, stdout: BinaryIO | None = None, stderr: BinaryIO | None = None,
                 on_event: Callable[[str, str, int], None] | None = None, workers: Iterable[Forked] = ()) -> None:
        """``workers``: workers started already (:func:`~scadrt.engines.worker.start_worker`), now the engine's."""
        self.memory = memory
        self.max_workers = max_workers or os.cpu_count() or 1
        self.retries = retries
        self.stdout = stdout or sys.stdout.buffer
        self.stderr = stderr or sys.stderr.buffer
        self.on_event = on_event or (lambda event, element, index: None)
        self._pool = _Pool(memory.client_modules if memory is not None else ())
        for forked in workers:
            self._pool.adopt(forked)

    def start_pool(self, size: int) -> None:
        """Start workers up to ``size`` (they warm up concurrently, while other work goes on)."""
        self._pool.grow(size)

    def close(self) -> None:
        """Stop every worker and child this engine started, and release the pool's selector (an
        epoll descriptor: left open, every ``scadrt.run`` in a process leaked one)."""
        self._pool.close()
        self._pool.release()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ run

    def run(self, program: Program, run_input: Any = None) -> RunResult:
        """Run ``program``; raise :class:`RunFailed` when an element fails for good."""
        watcher = Watcher()  # before SIGTERM unwinds: a SIGTERM until then kills us, and it sees EOF
        try:
            with signals_unwind():
                tmp = tempfile.mkdtemp(prefix="scadrt-run-")
                watcher.directory(tmp)
                try:
                    run = _Run(program, {} if run_input is None else run_input, Path(tmp), pool=self._pool,
                               memory=self.memory, max_workers=self.max_workers, retries=self.retries,
                               stdout=self.stdout, stderr=self.stderr, on_event=self.on_event, watcher=watcher)
                    return run.execute()
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        finally:
            watcher.close()


class _Run:
    """The state of one run; lives only inside :meth:`LocalEngine.run`, which hands it the engine's
    pool and settings. A failed run closes the pool (its children must not outlive the run)."""

    def __init__(self, program: Program, run_input: Any, tmp: Path, *, pool: _Pool, memory: MemoryBackend | None,
                 max_workers: int, retries: int, stdout: BinaryIO, stderr: BinaryIO,
                 on_event: Callable[[str, str, int], None], watcher: SegmentGuard | None = None) -> None:
        self.program, self.tmp, self.watcher = program, tmp, watcher
        self.pool, self.memory, self.max_workers, self.on_event = pool, memory, max_workers, on_event
        self.scheduler = Scheduler(program, run_input, retries=retries)
        self.sourcemap = load_sourcemap(program.path)
        order = [(name, i) for name in self.scheduler.order for i in range(program.elements[name].parallelism)]
        self.output = OutputSequencer(order, stdout, stderr)
        self.queue: deque[Submit] = deque()
        self.descriptors: dict[str, dict[str, str]] = {}
        self.memory_runs: dict[str, list[MemoryRun]] = {}
        self.live_memory: set[str] = set()
        self.torn_down = False
        self.instances: list[InstanceRun] = []
        self.params: dict[int, Submit] = {}
        #: captured output of instances that failed for good: written when the run stops
        self.failed_output: dict[tuple[str, int], tuple[str, str]] = {}
        self.t0 = time.time()
        self.next_id = 0
        self.finished: Finish | None = None
        self.memory_checked = 0.0
        #: the workers the scheduler wanted when last asked (None: ask again)
        self.wanted: int | None = None

    def now(self) -> float:
        return time.time() - self.t0

    def execute(self) -> RunResult:
        ok = False
        try:
            if self.memory is not None:  # memory servers take a while: they start while the workers do
                self.memory.prepare(self.upcoming_memory(self.scheduler.ready))
            # The roots' workers; the scheduler says how many are wanted from then on (resize).
            self.pool.grow(min(self.max_workers, sum(self.program.elements[e].parallelism
                                                     for e in self.scheduler.ready)))
            # Memory elements start with the first submission; a cold pool would leave them idle.
            while self.pool.workers and not any(w.ready for w in self.pool.workers):
                self.wait_events()
            self.apply(self.scheduler.start())
            while self.finished is None:
                self.resize()
                self.dispatch()
                self.wait_events()
                self.check_memory()
            while self.pool.workers:  # the last processes' exit reports, then the workers' ends
                self.resize()  # no worker is wanted any more: each retires once it is ready and idle
                self.wait_events()
            ok = True
        except _Aborted as aborted:
            # instances that finished just before the abort are exiting: their numbers belong in the report
            deadline = time.monotonic() + 2.0
            while any(a.finished for w in self.pool.workers for a in w.attempts.values()) and \
                    time.monotonic() < deadline:
                self.wait_events()
            self.teardown(ok=False)  # first, so the report has every memory element's end
            failure = aborted.failure
            raise RunFailed(failure, self.report("failed", failure.format())) from None
        finally:
            if not ok:
                self.teardown(ok=False)
        self.teardown(ok=True)
        return RunResult(self.report("ok"), self.finished.results)

    # ------------------------------------------------------------------ commands

    def apply(self, commands: list[Command]) -> None:
        self.wanted = None  # the scheduler's state changed: resize() asks it again
        # memory elements the commands start are started together, before anything else they say
        starting = [self.program.elements[c.name] for c in commands if isinstance(c, StartMemory)]
        if starting:
            self.start_memories(starting)
        for command in commands:
            if isinstance(command, StartMemory):
                continue
            if isinstance(command, StopMemory):
                self.stop_memory(command.name)
            elif isinstance(command, Submit):
                self.queue.append(command)
                if self.memory is not None and command.index == 0 and command.attempt == 0:
                    # what its dependents will use starts launching now, so that it is ready for them
                    self.memory.prepare(self.upcoming_memory(self.program.elements[command.element].dependents))
            elif isinstance(command, Finish):
                self.finished = command
            elif isinstance(command, Abort):
                key = (command.failure.element, command.failure.index)
                if key in self.failed_output:  # a memory element's failure has no output of its own
                    self.output.failed(key, *self.failed_output[key])
                raise _Aborted(command.failure)


    def upcoming_memory(self, elements: Iterable[str]) -> list[ElementSpec]:
        """The memory elements ``elements`` corun with that have not started."""
        specs = self.program.elements
        return [specs[peer] for peer in sorted({p for e in elements for p in specs[e].corunning_names})
                if self.scheduler.memory.get(peer) == "pending"]

    def resize(self) -> None:
        """Workers for what the scheduler says can use them now (:meth:`Scheduler.wanted_workers`,
        asked again only after commands changed its state); after a failure, whatever runs keeps
        its worker."""
        if self.wanted is None:
            self.wanted = self.scheduler.wanted_workers(self.max_workers)
        self.pool.grow(self.wanted)
        self.pool.shrink(self.wanted)

    def start_memories(self, specs: list[ElementSpec]) -> None:
        if self.memory is None:
            raise InternalError("a memory element started, but the engine has no memory backend")
        start = self.now()
        try:
            started = self.memory.start(specs, self.watcher)
        except MemoryStartError as exc:  # what did start is freed at teardown (memory.close)
            self.apply(self.scheduler.abort(Failure(exc.element, instance_index(exc.instance), "MemoryStartError",
                                                    str(exc), memory=exc.instance)))
            return
        for spec in specs:
            self.live_memory.add(spec.name)
            self.descriptors[spec.name] = started[spec.name]
            launched = self.memory.launched(spec.name)  # it has existed since then (prepare)
            begin = start if launched is None else min(start, launched - self.t0)
            self.memory_runs[spec.name] = [
                MemoryRun(spec.name, instance, self.memory.kind, spec.limits.mem, begin, begin, descriptor)
                for instance, descriptor in started[spec.name].items()
            ]

    def check_memory(self) -> None:
        """Stop the run as soon as a memory element it still needs went away (rule in the docstring)."""
        memory = self.memory
        if memory is None or not memory.poll_lost or not self.live_memory or \
                self.now() - self.memory_checked < _SAMPLE_INTERVAL:
            return
        self.memory_checked = self.now()
        lost = [m for m in memory.lost() if m[0] in self.live_memory]
        if lost:
            self.apply(self.scheduler.abort(memory_lost_failure(lost)))

    def lost_memory_of(self, element: str, connection_lost: bool) -> list[tuple[str, str, str]]:
        """The memory elements of ``element`` that went away: a failed instance's cause. A server
        killed closes its sockets before it can be reaped, so a lost connection (the instance
        raised a :class:`~scadrt.errors.ConnectionLostError`) waits a moment."""
        memory = self.memory
        peers = {link.peer for link in self.program.elements[element].corunning} & self.live_memory
        if memory is None or not peers:
            return []
        deadline = time.monotonic() + (_LOST_GRACE if connection_lost else 0.0)
        while True:
            lost = [m for m in memory.lost() if m[0] in peers]
            if lost or time.monotonic() >= deadline:
                return lost
            time.sleep(0.01)

    def stop_memory(self, name: str) -> None:
        self.live_memory.discard(name)
        if name not in self.memory_runs:
            return
        used = self.memory.stop(name) if self.memory is not None else []
        end = self.now()
        runs = self.memory_runs[name]
        used += [0] * (len(runs) - len(used))
        self.memory_runs[name] = [
            MemoryRun(m.element, m.instance, m.transport, m.size, m.start, end, m.address, u)
            for m, u in zip(runs, used, strict=True)
        ]

    def transports_for(self, spec: ElementSpec) -> dict[str, str]:
        transports = merged_transports(spec)
        for link in spec.corunning:
            if link.peer not in self.descriptors:
                continue  # compute-compute corunning: nothing to connect
            for instance, tail in self.descriptors[link.peer].items():
                key = link.trans + instance[len(link.peer):]  # the name the code asks for, plus '' or '@i'
                transports[key] = f"{key};{tail}"
        return transports

    def dispatch(self) -> None:
        if self.scheduler.failing is not None:
            self.queue = deque(s for s in self.queue if self.scheduler.still_needed(s.element, s.index))
        workers = self.pool.workers
        running = sum(w.busy for w in workers)
        for worker in workers:
            if not self.queue or running >= self.max_workers:
                return
            if not worker.idle:
                continue
            running += 1
            submit = self.queue.popleft()
            spec = self.program.elements[submit.element]
            self.next_id += 1
            stem = self.tmp / f"{submit.element}@{submit.index}.{submit.attempt}"
            task = Task(
                task_id=self.next_id, element=submit.element, index=submit.index, parallelism=spec.parallelism,
                path=str(Path(spec.path).resolve()), params=submit.params, transports=self.transports_for(spec),
                stdout_path=f"{stem}.out", stderr_path=f"{stem}.err", result_path=f"{stem}.result.json",
                error_path=f"{stem}.error.json", cpu=spec.limits.cpu,
            )
            try:
                write_frame(worker.tasks, task)
            except OSError:
                # it died since it last reported (its end of file is read with the events, and the
                # pool grows again): the task never reached it, so another worker takes it
                worker.retiring = True
                running -= 1
                self.queue.appendleft(submit)
                continue
            self.params[task.task_id] = submit
            worker.attempts[task.task_id] = _Attempt(task)

    # ------------------------------------------------------------------ events

    def wait_events(self) -> None:
        for worker in self.pool.readable(_SAMPLE_INTERVAL):
            frame = read_frame(worker.events)
            if frame is None:
                self.worker_died(worker)
            else:
                self.on_frame(worker, frame)
        now = self.now()
        for worker in self.pool.workers:
            for attempt in worker.attempts.values():
                if attempt.child and not attempt.finished:
                    attempt.samples.append((now, rss(attempt.child)))

    def on_frame(self, worker: _Worker, frame: Ready | Started | Finished | Exited) -> None:
        if isinstance(frame, Ready):
            worker.ready = True
            return
        attempt = worker.attempts.get(frame.task_id)
        if attempt is None:
            raise InternalError(f"worker {worker.proc.pid} reported {frame}, but runs {list(worker.attempts)}")
        task = attempt.task
        if isinstance(frame, Started):
            attempt.child, attempt.started = frame.pid, frame.start - self.t0
            self.on_event("started", task.element, task.index)
        elif isinstance(frame, Finished):
            attempt.finished = True
            if frame.ok:  # the fast path: go on while the child's process is still exiting
                self.instance_succeeded(attempt)
        else:
            del worker.attempts[frame.task_id]
            self.instance_exited(task, frame, attempt)

    def instance_succeeded(self, attempt: _Attempt) -> None:
        task = attempt.task
        payload = json.loads(Path(task.result_path).read_text())
        attempt.transfer = payload["transfer"]  # first: the commands below may stop the run
        attempt.profile = samples_from_json(payload.get("profile"))
        if self.scheduler.aborted:  # it finished while the run was stopping: only recorded, for the report
            return
        self.on_event("ok", task.element, task.index)
        self.output.finished((task.element, task.index), task.stdout_path, task.stderr_path)
        self.apply(self.scheduler.instance_done(task.element, task.index, payload["result"]))

    def instance_exited(self, task: Task, exited: Exited, attempt: _Attempt) -> None:
        """Record the instance; if it did not finish successfully, it failed or crashed (rule: failures
        are handled here, after the exit, so the report has the failed instance's numbers)."""
        submit = self.params.pop(task.task_id)
        transfer = attempt.transfer
        failure, connection_lost = (None, False) if transfer is not None else instance_failure(
            task.element, task.index, exited.status, _error_record(Path(task.error_path)), self.sourcemap)
        outcome = "ok" if failure is None else "crashed" if failure.kind == "crash" else "failed"
        self.instances.append(InstanceRun(
            task.element, task.index, submit.attempt, outcome, attempt.started, exited.end - self.t0, exited.pid,
            exited.peak_rss, exited.cpu_user, exited.cpu_system, tuple(attempt.samples), transfer or {},
            profile=attempt.profile,
        ))
        if failure is None or self.scheduler.aborted:  # after the abort: only recorded, for the report
            return
        self.on_event(outcome, task.element, task.index)
        if lost := self.lost_memory_of(task.element, connection_lost):  # no retry brings it back
            self.apply(self.scheduler.abort(memory_lost_failure(lost, (task.element, task.index))))
        self.failed_output[(task.element, task.index)] = (task.stdout_path, task.stderr_path)
        self.apply(self.scheduler.instance_failed(failure, submit.params))

    def worker_died(self, worker: _Worker) -> None:
        """A worker's event pipe ended: a retired one is done; otherwise each task it had not
        reported exited is recorded, and one not successfully finished crashed with it (the
        pool grows again at the next :meth:`resize`)."""
        code = self.pool.remove(worker)
        status = "" if code is None else f" (exit status {code})"
        if not worker.ready:
            raise InternalError(f"a worker exited{status} before it was ready")
        for attempt in worker.attempts.values():
            task = attempt.task
            submit = self.params.pop(task.task_id)
            ok = attempt.transfer is not None  # the scheduler has its result already
            self.instances.append(InstanceRun(task.element, task.index, submit.attempt, "ok" if ok else "crashed",
                                              attempt.started, self.now(), attempt.child, 0, 0.0, 0.0,
                                              tuple(attempt.samples), attempt.transfer or {},
                                              profile=attempt.profile))
            if ok or self.scheduler.aborted:
                continue
            failure = Failure(task.element, task.index, "crash", f"its worker process died{status}")
            if lost := self.lost_memory_of(task.element, connection_lost=False):
                self.apply(self.scheduler.abort(memory_lost_failure(lost, (task.element, task.index))))
            self.failed_output[(task.element, task.index)] = (task.stdout_path, task.stderr_path)
            self.apply(self.scheduler.instance_failed(failure, submit.params))

    # ------------------------------------------------------------------ end

    def teardown(self, ok: bool) -> None:
        if self.torn_down:
            return
        self.torn_down = True
        try:
            if not ok:
                # Children of a failed run must not outlive it; the next run starts workers again.
                self.pool.close()
        finally:
            for name in sorted(self.live_memory):
                self.stop_memory(name)
            if self.memory is not None:
                self.memory.close()

    def report(self, status: str, failure: str = "") -> RunReport:
        return program_report(self.program, status=status, wall=self.now(), order=self.scheduler.order,
                              instances=self.instances,
                              memory=(m for runs in self.memory_runs.values() for m in runs), failure=failure)
