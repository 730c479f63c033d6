"""The local engine's warm workers: a fork server that runs each element instance in a fresh child.

The engine imports what every element needs (:func:`warm_up`) and forks a few workers from
itself (:func:`start_worker`, :func:`fork_worker`, which calls :func:`serve` with two pipe fds),
so a worker starts warm without a Python start-up; each then waits for tasks. The first worker
of ``scadc run`` is forked before anything is imported for it and warms up by itself, while the
engine loads the program (:func:`scadrt.runner.run`); a *spawner* (``start_worker(spawner=True)``)
also forks further workers on the engine's request (:func:`spawn_worker`: the engine passes it the
new worker's pipe ends over a Unix socket), so that the engine never imports numpy (14 MB of its
RSS for the whole run) to fork warm workers itself. Those workers are the spawner's children: it
reaps them, and they die with it. Every task runs in a child forked from the
warm worker, so each instance has its own address space (its peak RSS is its own, and nothing
leaks into the next instance), while a fork costs a millisecond or two. The child runs the
instance through :mod:`scadrt.element` (the element ABI: loading, params, result, error). A
child reports its outcome before it exits; the worker passes it on, forks the child for the next
task and takes that task while the finished child is still exiting, so one worker serves a chain
of elements and a child's exit is not on the engine's critical path. The worker reaps a child
with ``wait4`` once its pidfd says it is gone, which gives its exact peak RSS and CPU time.

Frames on both pipes are a 4-byte big-endian length and a pickle (engine and worker are the
same program; nothing else writes to these pipes). The child writes its result or its error as
JSON into files named by the task, and its stdout/stderr go to capture files, so neither can
be confused with the worker's frames.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import gc
import importlib
import json
import os
import pickle
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from scadrt.element import end_program, error_record, run_element
from scadrt.engines.threads import limit_threads
from scadrt.profile import samples_to_json
from scadrt.readiness import readable

__all__ = [
    "Exited", "Finished", "Forked", "Ready", "Started", "Task", "detach_inherited_fds", "die_with_parent",
    "discard_worker", "fork_frozen", "fork_worker", "read_frame", "serve", "spawn_worker", "start_worker", "warm_up",
    "write_frame",
]

_LENGTH = struct.Struct(">I")
#: a spawner's answer to a request: the new worker's pid (0: it could not fork one)
_PID = struct.Struct(">q")
#: how long the engine waits for a spawner's answer (a fork: milliseconds)
_SPAWN_TIMEOUT = 5.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Task:
    """One attempt at one instance, as sent to a worker."""

    task_id: int
    element: str
    index: int
    parallelism: int
    #: the element's file; the program directory goes first on sys.path
    path: str
    params: Any
    #: memory element (instance) name → transport descriptor
    transports: dict[str, str]
    stdout_path: str
    stderr_path: str
    result_path: str
    error_path: str
    #: the element's limits.cpu: how many threads its numeric libraries may use
    cpu: float = 1.0


@dataclass(frozen=True)
class Ready:
    """The worker has imported everything and waits for tasks."""

    pid: int


@dataclass(frozen=True)
class Started:
    task_id: int
    #: the child process running the instance
    pid: int
    #: wall-clock time (time.time()) just before the fork
    start: float


@dataclass(frozen=True)
class Finished:
    """The instance has written its result (``ok``) or its error; its process is still exiting."""

    task_id: int
    ok: bool


@dataclass(frozen=True)
class Exited:
    task_id: int
    pid: int
    #: as returned by wait4 (decode with os.WIFEXITED and friends)
    status: int
    #: wall-clock time (time.time()) when wait4 returned
    end: float
    #: bytes (the kernel's ru_maxrss of the child)
    peak_rss: int
    cpu_user: float
    cpu_system: float


def write_frame(out: BinaryIO, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_LENGTH.pack(len(data)) + data)
    out.flush()


def _read_exactly(inp: BinaryIO, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = inp.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(inp: BinaryIO) -> Any:
    """The next frame, or None at end of file.

    The engine waits with ``poll``/``epoll``, so its pipes must be unbuffered (``buffering=0``): a
    buffered reader could swallow the next frame, and poll would not wake up for it.
    """
    head = _read_exactly(inp, _LENGTH.size)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    data = _read_exactly(inp, length)
    return None if data is None else pickle.loads(data)


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent (pid ``parent``) exits, so nothing is
    orphaned. A parent that died between the fork and this call is not noticed by the kernel;
    the parent pid has changed then, and the process exits at once."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the engine's teardown still kills us by PID
        pass
    if os.getppid() != parent:
        os._exit(1)


def detach_inherited_fds(keep: set[int]) -> None:
    """Point every fd of this (freshly forked) process but ``keep`` at /dev/null.

    A forked process must not hold the parent's pipes open: a memory server stops when its stdin
    pipe from the engine closes, and the run's watcher acts when its pipe does, so a copy of
    either end kept here would keep them waiting. The engine's file objects come along with the
    fork, and one collected here would close its fd number, by then perhaps reused for one of
    ours; so nothing inherited is collected (the caller froze the gc before forking) and every
    fd is pointed at /dev/null rather than closed, which keeps its number taken.
    """
    devnull = os.open(os.devnull, os.O_RDONLY)
    for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
        if fd not in keep and fd != devnull:
            with contextlib.suppress(OSError):
                os.dup2(devnull, fd)


def fork_frozen(close_on_failure: tuple[int, ...] = ()) -> int:
    """``os.fork()`` with the gc frozen across it (see :func:`detach_inherited_fds`): the parent
    thaws it, the child keeps it frozen; if the fork fails, ``close_on_failure`` are closed."""
    gc.freeze()
    try:
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        for fd in close_on_failure:
            os.close(fd)
        raise
    if pid:
        gc.unfreeze()
    return pid


def run_instance(task: Task) -> int:
    """Run one element instance in this process (a fresh fork); return the exit status."""
    atexit._clear()  # the worker's exit handlers (inherited by the fork) are not the program's
    try:
        limit_threads(task.cpu)
        outcome = run_element(task.path, task.element, task.index, task.params, task.transports)
        Path(task.result_path).write_text(json.dumps({"result": outcome.result, "transfer": outcome.transfer,
                                                       "profile": samples_to_json(outcome.profile)}))
        return 0
    except BaseException as exc:
        Path(task.error_path).write_text(json.dumps(error_record(exc)))
        return 1
    finally:
        end_program()  # the process ends with os._exit: what the interpreter's exit would do for the program
        sys.stdout.flush()
        sys.stderr.flush()


def _standby(task_fd: int, done_fd: int, inherited: tuple[int, ...], worker: int) -> None:
    """Body of a pre-forked child: wait for one task, run it, say how it went, exit."""
    code = 1
    try:
        die_with_parent(worker)
        for fd in inherited:  # the worker's pipes to the engine are not ours to hold open
            os.close(fd)
        with os.fdopen(task_fd, "rb") as tasks:
            task = read_frame(tasks)
        if task is None:  # the worker is shutting down
            code = 0
            return
        for fd, path in ((1, task.stdout_path), (2, task.stderr_path)):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        code = run_instance(task)
        # Report before exiting: tearing down a forked address space takes milliseconds here.
        os.write(done_fd, b"0" if code == 0 else b"1")
    finally:
        os._exit(code)


@dataclass(frozen=True)
class _Child:
    pid: int
    task_w: int
    done_r: int


def _fork_standby(inherited: tuple[int, ...]) -> _Child:
    task_r, task_w = os.pipe()
    done_r, done_w = os.pipe()
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(task_w)
        os.close(done_r)
        _standby(task_r, done_w, inherited, worker)
    os.close(task_r)
    os.close(done_w)
    return _Child(pid, task_w, done_r)


def warm_up(client_modules: tuple[str, ...] = ()) -> None:
    """Import what every element needs (:func:`_warm_up`) and ``client_modules`` (what instances
    import to reach the run's memory elements), so that processes forked afterwards start warm."""
    _warm_up()
    for module in client_modules:
        importlib.import_module(module)


@functools.cache  # once per process: a fork inherits the imports and the hook
def _warm_up() -> None:
    """Import what every element needs.

    That includes ``numpy.random``, which numpy loads only when first used: generated elements
    use it whenever the program touches a global generator (capture_rng/restore_rng), and each
    instance importing it again cost 15-25 ms. Imported here, its global generator would be one
    state copied into every instance; so every process forked from here on reseeds it from the
    OS (:func:`_reseed_numpy`), as a fresh import would have (the standard library's ``random``
    does the same at a fork on its own).
    """
    import numpy.random  # noqa: F401

    import scadrt.action  # what scadrt.element.run_element imports when it first runs
    import scadrt.remote.values  # what generated elements import
    import scadrt.transports  # noqa: F401

    os.register_at_fork(after_in_child=_reseed_numpy)


def _reseed_numpy() -> None:
    import numpy.random  # imported already (warm_up): this only looks it up

    numpy.random.seed()


@dataclass(frozen=True)
class Forked:
    """A worker just forked: its pid and this process's ends of its pipes (fds)."""

    pid: int
    #: the write end of the pipe it reads tasks from
    tasks: int
    #: the read end of the pipe it writes events to
    events: int
    #: a spawner's: this process's end of the socket that asks it for workers (-1: not a spawner)
    spawn: int = -1
    #: forked by a spawner (:func:`spawn_worker`), not by this process: not ours to wait for
    spawned: bool = False


def start_worker(client_modules: tuple[str, ...] = (), *, warm: bool = True, spawner: bool = False) -> Forked:
    """Fork a worker with its two pipes. ``warm``: import what it needs here first (once: every
    later fork inherits it); otherwise the worker imports it itself while this process goes on,
    as the first worker of ``scadc run`` does, forked before the program loads
    (:func:`scadrt.runner.run`) so that its numpy import overlaps the loading. ``spawner``: it
    also forks workers when asked (:func:`spawn_worker`)."""
    task_r, task_w = os.pipe()
    event_r, event_w = os.pipe()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if spawner else (None, None)
    try:
        if warm:
            warm_up(client_modules)
        pid = fork_worker(task_r, event_w, client_modules, spawn_fd=theirs.fileno() if theirs else None)
    except BaseException:
        os.close(task_w)
        os.close(event_r)
        if ours is not None:
            ours.close()
        raise
    finally:
        os.close(task_r)
        os.close(event_w)
        if theirs is not None:
            theirs.close()
    return Forked(pid, task_w, event_r, ours.detach() if ours is not None else -1)


def spawn_worker(spawn: int) -> Forked:
    """Ask the spawner at the other end of socket ``spawn`` (:attr:`Forked.spawn`; it must be ready:
    its answer comes from its task loop) for a worker; OSError when it does not answer one."""
    task_r, task_w = os.pipe()
    event_r, event_w = os.pipe()
    sock = socket.socket(fileno=os.dup(spawn))
    try:
        sock.settimeout(_SPAWN_TIMEOUT)
        socket.send_fds(sock, [b"w"], [task_r, event_w])
        answer = sock.recv(_PID.size)
        if len(answer) != _PID.size or (pid := _PID.unpack(answer)[0]) <= 0:
            raise OSError("the spawner did not fork a worker")
    except BaseException:
        os.close(task_w)
        os.close(event_r)
        raise
    finally:
        sock.close()
        os.close(task_r)
        os.close(event_w)
    return Forked(pid, task_w, event_r, spawned=True)


def discard_worker(worker: Forked) -> None:
    """Kill and reap a worker that was never used (its standby child dies with it)."""
    os.close(worker.tasks)
    os.close(worker.events)
    if worker.spawn >= 0:
        os.close(worker.spawn)
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker.pid, signal.SIGKILL)
    os.waitpid(worker.pid, 0)


def fork_worker(task_fd: int, event_fd: int, client_modules: tuple[str, ...] = (), *,
                spawn_fd: int | None = None) -> int:
    """Fork a worker that serves tasks from ``task_fd``; return its pid (in the caller).

    Forking the engine, which has imported what workers need (:func:`warm_up`), costs a few
    milliseconds; starting a fresh interpreter that imports numpy costs a few hundred, times
    the pool size, on the cores the first element needs. The child keeps only its two pipes
    and stdout/stderr (every other fd reads /dev/null: :func:`detach_inherited_fds`), gets
    fresh stream objects (another thread of the engine may have held their locks at the fork)
    and default signal handlers, and never returns.
    """
    engine = os.getpid()
    pid = fork_frozen()
    if pid:
        return pid
    code = 1
    try:
        die_with_parent(engine)
        detach_inherited_fds({1, 2, task_fd, event_fd} | ({spawn_fd} if spawn_fd is not None else set()))
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - lives as long as the process
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        serve(task_fd, event_fd, engine, client_modules, spawn_fd=spawn_fd)
        code = 0
    except BaseException:  # the engine sees the pipe close, and reports the worker's death
        traceback.print_exc()
    finally:
        os._exit(code)


def serve(task_fd: int, event_fd: int, engine: int | None = None, client_modules: tuple[str, ...] = (), *,
          spawn_fd: int | None = None) -> None:
    """The worker's loop (``engine``: the parent's pid). A child reports its outcome before it
    exits; the worker says so at once, then forks the next standby child and takes the next task
    while the finished child is still exiting (it is reaped when its pidfd says it is gone), so the
    exit does not delay the engine, and one worker serves a chain of elements. With ``spawn_fd``
    it forks a worker for each request there (:func:`spawn_worker`), and returns only once they
    are gone (they die with it)."""
    die_with_parent(os.getppid() if engine is None else engine)
    # Ctrl-C reaches the whole process group; the engine decides what happens to us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up(client_modules)  # every fork of this worker inherits it already imported
    limit_threads(1)  # what most elements ask for: their instances then change nothing

    # with the exiting children's and spawned workers' pidfds: not a standby child's to hold
    inherited = (task_fd, event_fd) if spawn_fd is None else (task_fd, event_fd, spawn_fd)
    #: pidfd → (task id, pid) of children that finished (or went silent) and are exiting
    exiting: dict[int, tuple[int, int]] = {}
    #: pidfd → pid of the workers forked for the engine
    spawned: dict[int, int] = {}
    running: tuple[int, _Child] | None = None
    # unbuffered: poll() must see every frame still in the pipe (see read_frame)
    with os.fdopen(task_fd, "rb", buffering=0) as tasks, os.fdopen(event_fd, "wb") as events:
        child = _fork_standby(inherited)
        write_frame(events, Ready(os.getpid()))
        open_tasks = True
        while open_tasks or running is not None or exiting or spawned:
            # a new task only when no child runs: the engine sends one only then
            waiting = [*exiting, *spawned, running[1].done_r if running is not None else task_fd]
            if not open_tasks and running is None:
                waiting.remove(task_fd)
            if spawn_fd is not None:
                waiting.append(spawn_fd)
            for fd in readable(waiting, None):
                if fd == spawn_fd:
                    if not _spawn(spawn_fd, spawned, client_modules):  # the engine wants no more
                        os.close(spawn_fd)
                        inherited = (task_fd, event_fd)
                        spawn_fd = None
                elif fd in spawned:
                    os.waitpid(spawned.pop(fd), 0)
                    os.close(fd)
                elif fd in exiting:
                    task_id, pid = exiting.pop(fd)
                    _, status, usage = os.wait4(pid, 0)
                    os.close(fd)
                    write_frame(events, Exited(task_id, pid, status, time.time(),
                                               usage.ru_maxrss * 1024, usage.ru_utime, usage.ru_stime))
                elif fd == task_fd:
                    if (task := read_frame(tasks)) is None:
                        open_tasks = False
                        continue
                    start = time.time()
                    with os.fdopen(child.task_w, "wb") as to_child:
                        write_frame(to_child, task)
                    write_frame(events, Started(task.task_id, child.pid, start))
                    running = (task.task_id, child)
                else:  # the running child's word (b"" when it died without one)
                    assert running is not None
                    task_id, done = running
                    outcome = os.read(done.done_r, 1)
                    os.close(done.done_r)
                    exiting[os.pidfd_open(done.pid)] = (task_id, done.pid)
                    running = None
                    if outcome:  # first: the engine schedules what comes next while we fork
                        write_frame(events, Finished(task_id, outcome == b"0"))
                    child = _fork_standby((*inherited, *exiting, *spawned))
        os.close(child.task_w)  # the standby child reads EOF and exits
        os.close(child.done_r)
        os.waitpid(child.pid, 0)


def _spawn(spawn_fd: int, spawned: dict[int, int], client_modules: tuple[str, ...]) -> bool:
    """Serve one request on ``spawn_fd`` (:func:`spawn_worker`): fork a worker on the pipe ends it
    carries, record it in ``spawned`` (its pidfd → pid) and answer its pid (0 if it could not be
    forked). False when the engine closed its end."""
    sock = socket.socket(fileno=os.dup(spawn_fd))
    try:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1, 2)
        except OSError:
            return False
        if not message:
            return False
        pid = 0
        try:
            if len(fds) == 2:
                pid = fork_worker(fds[0], fds[1], client_modules)
                spawned[os.pidfd_open(pid)] = pid
        except OSError:
            traceback.print_exc()
        finally:
            for fd in fds:
                os.close(fd)
        with contextlib.suppress(OSError):
            sock.send(_PID.pack(pid))
        return True
    finally:
        sock.close()
