"""The Ray engine: run a program on a Ray cluster, with the local engine's semantics.

It carries out the :class:`~scadrt.engines.core.Scheduler`'s commands (the same state machine as
the local engine: dependency order, retries, the first failure in program order) with

* **memory elements as Ray actors** (:class:`MemoryHost`): each instance owns its region, in a
  shared-memory segment of its node where the node allows one, and serves it with scadrt's memory
  server on the node's address (a fresh token per instance). Data moves through scadrt's
  transports, never Ray's object store: a compute instance on the memory instance's node maps
  the segment (shm), one elsewhere reaches the server over tcp (``--transport tcp``: always tcp);
* **compute instances as Ray tasks** asking for the element's ``limits`` (``num_cpus``, ``memory``),
  each running the instance in a fresh interpreter (:mod:`scadrt.engines.instance`) and returning
  its result, its captured output and its numbers; small results travel as task results;
* **placement**: the memory elements of one corunning group (memory elements and the compute
  elements that corun with them, joined transitively) get one STRICT_PACK placement group when one
  node can hold them all, and the group's compute instances ask for that node (soft node
  affinity: on a node that cannot take them they run elsewhere, over tcp). Compute instances
  reserve nothing in the group: a reservation held while an element outside the group waits for
  the same CPUs could never be released. Elements no node could ever hold are refused before
  anything starts, instead of waiting forever;
* the local engine's output sequencer and failure reports (:mod:`scadrt.engines.output`,
  :mod:`scadrt.engines.failures`), so the bytes printed and the failure reported are the same.

Everything the run starts (tasks, actors, placement groups, segments, its temporary directory,
a private cluster) is gone when :meth:`RayEngine.run` returns or raises, Ctrl-C and SIGTERM
included: a running task is cancelled and removes its directory itself; one that has to be killed
leaves it to the next task on its node (:mod:`scadrt.engines.task_dirs`; a private cluster's go with
the cluster). The run report records the node of every instance.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
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
from scadrt.engines.memory import MemoryStartError
from scadrt.engines.output import OutputSequencer
from scadrt.engines.ray_cluster import connect, nodes
from scadrt.engines.task_dirs import new_task_dir
from scadrt.engines.worker import Task
from scadrt.errors import InternalError, UserError
from scadrt.profile import samples_from_json
from scadrt.report import InstanceRun, MemoryRun, RunFailed, RunReport, RunResult, program_report
from scadrt.sizes import format_size
from scadrt.sourcemap import load_sourcemap
from scadrt.transports.shm import new_segment_name, unlink_segment

__all__ = ["MemoryHost", "RayEngine"]

#: how long a memory instance may take from its actor's creation to serving
READY_TIMEOUT = 60.0
#: how long a memory instance gets to stop before its actor is killed
STOP_TIMEOUT = 5.0
_WAIT = 0.05
#: how long an instance that lost its connection waits for its memory actor to be seen dead
_LOST_GRACE = 1.0
#: how long a cancelled task gets to stop its instance before its worker is killed
CANCEL_GRACE = 2.0
#: the driver's variables an instance does not get: they describe the driver's machine or its Ray
_NOT_PASSED = frozenset({"PATH", "HOME", "PWD", "OLDPWD", "SHELL", "USER", "LOGNAME", "TMPDIR", "VIRTUAL_ENV",
                         "PYTHONPATH", "PYTHONHOME", "CUDA_VISIBLE_DEVICES"})
RAY_TRANSPORTS = ("auto", "shm", "tcp")


class MemoryHost:
    """One memory element instance on a Ray node (the body of its actor): a region, in the shared-
    memory segment ``segment`` when the node allows one, served over tcp with ``token``."""

    def __init__(self, size: int, token: str, segment: str) -> None:
        import ray

        from scadrt.transports.memory_server import MemoryServer, ServerConfig
        from scadrt.transports.shm import SharedRegion

        self.shared: SharedRegion | None = None
        if segment:
            try:
                self.shared = SharedRegion(size, name=segment)
            except OSError:  # a small /dev/shm (a container's 64 MB): served over tcp only
                self.shared = None
        host = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
        self.server = MemoryServer(ServerConfig(size=size, listen=f"tcp://{host}:0", token=token),
                                   region=self.shared.buf if self.shared is not None else None)
        self.url = self.server.bind()
        self.node = ray.get_runtime_context().get_node_id()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, name="scad-memory", daemon=True)
        self.thread.start()

    def info(self) -> dict[str, Any]:
        return {"node": self.node, "url": self.url, "segment": self.shared.name if self.shared else "",
                "pid": os.getpid()}

    def watch(self) -> None:
        """Returns when the region is stopped; the engine holds this call open, so an actor that
        dies shows as an error of its result at once."""
        self.stopped.wait()

    def stop(self) -> int:
        """Stop serving and free the region; return the bytes it had resident (0: unknown)."""
        used = 0
        if self.shared is not None:
            try:
                used = os.stat(f"/dev/shm/{self.shared.name}").st_blocks * 512
            except OSError:
                used = 0
        self.server.stop()
        self.thread.join(2.0)
        self.server.close()
        if self.shared is not None:
            self.shared.close()
        self.stopped.set()
        return used


def run_task(task: Task, memories: dict[str, dict[str, str]], mode: str, *, cwd: str, env: dict[str, str],
             program: list[Any]) -> dict[str, Any]:
    """The body of a compute instance's Ray task: reach each memory instance by shm when it is on
    this node (and ``mode`` allows), else by tcp; run the instance in a fresh interpreter."""
    import json

    import ray

    from scadrt.engines.instance import run_subprocess

    node = ray.get_runtime_context().get_node_id()
    transports = dict(task.transports)  # the merged memory elements' (withMerged)
    for key, memory in memories.items():
        if mode != "tcp" and memory["segment"] and memory["node"] == node:
            transports[key] = f"{key};shm;segment,{memory['segment']};"
        else:
            transports[key] = f"{key};tcp;url,{memory['url']};token,{memory['token']};"
    tmp = new_task_dir()
    try:
        path = task.path
        if not os.path.exists(path):  # no shared file system: the program's files came along
            files: dict[str, bytes] = ray.get(program[0])
            for relative, data in files.items():
                target = Path(tmp, "program", relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            path = str(Path(tmp, "program", Path(task.path).name))
        here = replace(task, path=path, transports=transports, stdout_path=f"{tmp}/out", stderr_path=f"{tmp}/err",
                       result_path=f"{tmp}/result.json", error_path=f"{tmp}/error.json")
        exited = run_subprocess(here, cwd=cwd if os.path.isdir(cwd) else None, env={**os.environ, **env})
        outcome: dict[str, Any] = {
            "node": node, "pid": exited.pid, "status": exited.status, "start": exited.start, "end": exited.end,
            "peak_rss": exited.peak_rss, "cpu_user": exited.cpu_user, "cpu_system": exited.cpu_system,
            "samples": exited.samples, "result": None, "error": None,
            "stdout": Path(here.stdout_path).read_bytes(), "stderr": Path(here.stderr_path).read_bytes(),
        }
        for key, name in (("result", here.result_path), ("error", here.error_path)):
            if os.path.exists(name):
                outcome[key] = json.loads(Path(name).read_text())
        return outcome
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class RayEngine:
    """Runs programs on a Ray cluster: a private one for each run (``address`` None), or the one at
    ``address`` (``auto`` or ``HOST:PORT``), or the one this process is connected to already."""

    def __init__(self, *, address: str | None = None, transport: str = "auto", max_workers: int | None = None,
                 retries: int = 0, stdout: BinaryIO | None = None, stderr: BinaryIO | None = None,
                 on_event: Callable[[str, str, int], None] | None = None) -> None:
        if transport not in RAY_TRANSPORTS:
            raise UserError(f"the Ray engine reaches memory elements over shm (on their node) or tcp; "
                            f"--transport {transport} is not one of {', '.join(RAY_TRANSPORTS)}")
        if max_workers is not None and max_workers < 1:
            raise UserError("max_workers must be at least 1")
        self.address, self.transport, self.max_workers, self.retries = address, transport, max_workers, retries
        self.stdout = stdout or sys.stdout.buffer
        self.stderr = stderr or sys.stderr.buffer
        self.on_event = on_event or (lambda event, element, index: None)

    def run(self, program: Program, run_input: Any = None) -> RunResult:
        """Run ``program``; raise :class:`RunFailed` when an element fails for good."""
        # SIGTERM's handler after connecting: a Ray driver installs its own (which only logs and exits 1)
        with connect(self.address) as ray, signals_unwind():
            tmp = tempfile.mkdtemp(prefix="scadrt-run-")
            try:
                run = _Run(ray, program, {} if run_input is None else run_input, Path(tmp), engine=self)
                return run.execute()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)


class _Aborted(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.format())
        self.failure = failure


@dataclass(eq=False)
class _Memory:
    """A started memory element: its actors (one per instance) and where they serve."""

    spec: ElementSpec
    actors: list[Any]
    infos: list[dict[str, Any]]
    tokens: list[str]


@dataclass(frozen=True)
class _Pending:
    submit: Submit
    submitted: float


class _Run:
    """One run on the cluster; lives only inside :meth:`RayEngine.run`."""

    def __init__(self, ray: ModuleType, program: Program, run_input: Any, tmp: Path, *, engine: RayEngine) -> None:
        self.ray, self.program, self.tmp, self.engine = ray, program, tmp, engine
        self.scheduler = Scheduler(program, run_input, retries=engine.retries)
        self.sourcemap = load_sourcemap(program.path)
        order = [(name, i) for name in self.scheduler.order for i in range(program.elements[name].parallelism)]
        self.output = OutputSequencer(order, engine.stdout, engine.stderr)
        self.host_class, self.task_function = _remote_functions(ray)
        self.queue: deque[Submit] = deque()
        self.pending: dict[Any, _Pending] = {}
        self.memories: dict[str, _Memory] = {}
        #: watch() call → (memory element, instance), for every live memory instance
        self.watches: dict[Any, tuple[str, str]] = {}
        self.memory_runs: dict[str, list[MemoryRun]] = {}
        self.segments: list[str] = []
        self.groups = _corunning_groups(program)
        #: element → the index of its corunning group in ``groups``
        self.group_of = {name: i for i, members in enumerate(self.groups) for name in members}
        self.placement: dict[int, Any] = {}
        self.instances: list[InstanceRun] = []
        self.failed_output: dict[tuple[str, int], tuple[str, str]] = {}
        self.finished: Finish | None = None
        self.torn_down = False
        self.t0 = time.time()
        self.cwd = os.getcwd()
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_PASSED and not k.startswith("RAY_")}
        self.files: list[Any] = []

    def now(self) -> float:
        return time.time() - self.t0

    def execute(self) -> RunResult:
        ok = False
        try:
            self.check_feasible()
            self.files = [self.ray.put(_program_files(self.program))]
            self.apply(self.scheduler.start())
            while self.finished is None:
                self.dispatch()
                self.wait()
            ok = True
        except _Aborted as aborted:
            self.teardown()
            failure = aborted.failure
            raise RunFailed(failure, self.report("failed", failure.format())) from None
        finally:
            if not ok:
                self.teardown()
        self.teardown()
        return RunResult(self.report("ok"), self.finished.results)

    # ------------------------------------------------------------------ placement

    def check_feasible(self) -> None:
        """Refuse an element that no node of the cluster could ever take (Ray would wait for ever)."""
        alive = nodes(self.ray)
        for spec in self.program.elements.values():
            demand = _demand(spec)
            if not any(node.fits(demand) for node in alive):
                largest = max(alive, key=lambda n: (n.resources.get("CPU", 0), n.resources.get("memory", 0)),
                              default=None)
                has = "no node" if largest is None else (
                    f"the largest node has {largest.resources.get('CPU', 0):g} CPU and "
                    f"{format_size(int(largest.resources.get('memory', 0)))}")
                raise UserError(f"element {spec.name!r} asks for {_describe(demand)} (its limits), more than any "
                                f"node of the Ray cluster has ({has})")

    def placement_group(self, group: int) -> Any:
        """The group's placement group (made at its first memory element's start), or None when no
        node can hold the group's memory elements together: they are spread then."""
        if group in self.placement:
            return self.placement[group]
        members = [self.program.elements[m] for m in sorted(self.groups[group]) if self.program.elements[m].kind ==
                   "memory"]
        bundles = [_demand(spec) for spec in members for _ in range(spec.parallelism)]
        total = {"memory": sum(b["memory"] for b in bundles)}
        pg = None
        if any(node.fits(total) for node in nodes(self.ray)):
            from ray.util.placement_group import placement_group, remove_placement_group

            pg = placement_group(bundles, strategy="STRICT_PACK")
            ready, _ = self.ray.wait([pg.ready()], timeout=READY_TIMEOUT)
            if not ready:  # the node that could hold them is busy for now: spread instead of waiting
                remove_placement_group(pg)
                pg = None
        self.placement[group] = pg
        return pg

    def bundle_index(self, spec: ElementSpec, instance: int) -> int:
        group = self.group_of[spec.name]
        index = 0
        for name in sorted(self.groups[group]):
            other = self.program.elements[name]
            if other.kind != "memory":
                continue
            if name == spec.name:
                return index + instance
            index += other.parallelism
        raise InternalError(f"{spec.name} is not in its own corunning group")

    # ------------------------------------------------------------------ commands

    def apply(self, commands: list[Command]) -> None:
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
            elif isinstance(command, Finish):
                self.finished = command
            elif isinstance(command, Abort):
                key = (command.failure.element, command.failure.index)
                if key in self.failed_output:
                    self.output.failed(key, *self.failed_output[key])
                raise _Aborted(command.failure)

    def start_memories(self, specs: list[ElementSpec]) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        start = self.now()
        launched: list[_Memory] = []
        try:
            for spec in specs:
                pg = self.placement_group(self.group_of[spec.name])
                memory = _Memory(spec, [], [], [])
                self.memories[spec.name] = memory
                launched.append(memory)
                for i in range(spec.parallelism):
                    segment = new_segment_name() if self.engine.transport != "tcp" else ""
                    if segment:
                        self.segments.append(segment)
                    token = secrets.token_urlsafe(32)
                    options: dict[str, Any] = {"num_cpus": 0, "memory": spec.limits.mem, "max_concurrency": 4,
                                               "max_restarts": 0}
                    if pg is not None:
                        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                            pg, placement_group_bundle_index=self.bundle_index(spec, i))
                    memory.actors.append(self.host_class.options(**options).remote(spec.limits.mem, token, segment))
                    memory.tokens.append(token)
            for memory in launched:
                instances = memory.spec.instance_names()
                for instance, actor in zip(instances, memory.actors, strict=True):
                    try:
                        memory.infos.append(self.ray.get(actor.info.remote(), timeout=READY_TIMEOUT))
                    except self.ray.exceptions.GetTimeoutError as exc:
                        raise MemoryStartError(memory.spec.name, instance, f"its actor did not start within "
                                               f"{READY_TIMEOUT:g} s") from exc
                    except self.ray.exceptions.RayError as exc:
                        raise MemoryStartError(memory.spec.name, instance, _ray_reason(exc)) from exc
                for instance, actor in zip(instances, memory.actors, strict=True):
                    self.watches[actor.watch.remote()] = (memory.spec.name, instance)
        except MemoryStartError as exc:
            self.apply(self.scheduler.abort(Failure(exc.element, instance_index(exc.instance), "MemoryStartError",
                                                    str(exc), memory=exc.instance)))
            return
        for memory in launched:
            spec = memory.spec
            self.memory_runs[spec.name] = [
                MemoryRun(spec.name, instance, "shm" if info["segment"] else "tcp", spec.limits.mem, start, start,
                          _served_at(info), node=info["node"])
                for instance, info in zip(spec.instance_names(), memory.infos, strict=True)
            ]

    def stop_memory(self, name: str) -> None:
        memory = self.memories.pop(name, None)
        if memory is None:
            return
        self.watches = {ref: held for ref, held in self.watches.items() if held[0] != name}
        used = []
        for actor in memory.actors:
            try:
                used.append(int(self.ray.get(actor.stop.remote(), timeout=STOP_TIMEOUT)))
            except self.ray.exceptions.RayError:
                used.append(0)
            self.ray.kill(actor)
        end = self.now()
        runs = self.memory_runs.get(name, [])
        used += [0] * (len(runs) - len(used))
        self.memory_runs[name] = [replace(m, end=end, used=u) for m, u in zip(runs, used, strict=False)]
        group = self.group_of[name]
        if self.placement.get(group) is not None and not any(m in self.memories for m in self.groups[group]):
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self.placement[group])
            self.placement[group] = None

    def memories_for(self, spec: ElementSpec) -> dict[str, dict[str, str]]:
        """Transport name the element's code asks for → where that memory instance serves."""
        found = {}
        for link in spec.corunning:
            memory = self.memories.get(link.peer)
            if memory is None:
                continue  # compute-compute corunning: nothing to connect
            for instance, info, token in zip(memory.spec.instance_names(), memory.infos, memory.tokens, strict=True):
                key = link.trans + instance[len(link.peer):]  # the name the code asks for, plus '' or '@i'
                found[key] = {"node": info["node"], "url": info["url"], "segment": info["segment"], "token": token}
        return found

    def dispatch(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if self.scheduler.failing is not None:
            self.queue = deque(s for s in self.queue if self.scheduler.still_needed(s.element, s.index))
        cap = self.engine.max_workers
        while self.queue and (cap is None or len(self.pending) < cap):
            submit = self.queue.popleft()
            spec = self.program.elements[submit.element]
            task = Task(task_id=0, element=submit.element, index=submit.index, parallelism=spec.parallelism,
                        path=str(Path(spec.path).resolve()), params=submit.params,
                        transports=merged_transports(spec),
                        stdout_path="", stderr_path="", result_path="", error_path="", cpu=spec.limits.cpu)
            memories = self.memories_for(spec)
            options: dict[str, Any] = {"num_cpus": spec.limits.cpu, "memory": spec.limits.mem, "max_retries": 0,
                                       "name": f"{submit.element}[{submit.index}]"}
            if memories:  # where its memory is (its own instance's, for a parallel memory element)
                near = [m for key, m in sorted(memories.items()) if instance_index(key) == submit.index] or \
                    [m for _, m in sorted(memories.items())]
                options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(near[0]["node"], soft=True)
            ref = self.task_function.options(**options).remote(task, memories, self.engine.transport, cwd=self.cwd,
                                                               env=self.env, program=self.files)
            self.pending[ref] = _Pending(submit, self.now())
            self.engine.on_event("started", submit.element, submit.index)

    # ------------------------------------------------------------------ events

    def wait(self) -> None:
        refs = [*self.pending, *self.watches]
        if not refs:
            raise InternalError("the run waits, but nothing runs")
        ready, rest = self.ray.wait(refs, num_returns=1, timeout=_WAIT)
        if ready and rest:
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        for ref in sorted(ready, key=lambda r: r in self.watches):  # results first: they may stop a memory
            if ref in self.watches:
                self.memory_died(ref, *self.watches.pop(ref))
            elif ref in self.pending:
                self.task_ended(ref)

    def memory_died(self, watch: Any, name: str, instance: str, user: tuple[str, int] | None = None) -> None:
        if name not in self.memories:
            return
        try:
            self.ray.get(watch)
            what = "its actor stopped"
        except self.ray.exceptions.RayError as exc:
            what = f"its actor died ({_ray_reason(exc)})"
        self.apply(self.scheduler.abort(memory_lost_failure([(name, instance, what)], user)))

    def task_ended(self, ref: Any) -> None:
        pending = self.pending.pop(ref)
        submit = pending.submit
        key = (submit.element, submit.index)
        stem = self.tmp / f"{submit.element}@{submit.index}.{submit.attempt}"
        out_path, err_path = f"{stem}.out", f"{stem}.err"
        try:
            outcome = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # its worker or node died, or it was cancelled
            self.instances.append(InstanceRun(submit.element, submit.index, submit.attempt, "crashed",
                                              pending.submitted, self.now(), 0, 0, 0.0, 0.0))
            if self.scheduler.aborted:
                return
            self.engine.on_event("crashed", submit.element, submit.index)
            crash = Failure(submit.element, submit.index, "crash", f"its Ray task failed: {_ray_reason(exc)}")
            self.lost_memory_of(submit, connection_lost=False)
            self.failed_output[key] = (out_path, err_path)
            self.apply(self.scheduler.instance_failed(crash, submit.params))
            return
        Path(out_path).write_bytes(outcome["stdout"])
        Path(err_path).write_bytes(outcome["stderr"])
        ok = outcome["result"] is not None and os.WIFEXITED(outcome["status"]) and \
            os.waitstatus_to_exitcode(outcome["status"]) == 0
        failure: Failure | None = None
        connection_lost = False
        if not ok:
            failure, connection_lost = instance_failure(submit.element, submit.index, outcome["status"],
                                                        outcome["error"], self.sourcemap)
        status = "ok" if failure is None else "crashed" if failure.kind == "crash" else "failed"
        payload = outcome["result"] or {}
        self.instances.append(InstanceRun(
            submit.element, submit.index, submit.attempt, status, outcome["start"] - self.t0, outcome["end"] - self.t0,
            outcome["pid"], outcome["peak_rss"], outcome["cpu_user"], outcome["cpu_system"],
            tuple((t - self.t0, rss) for t, rss in outcome["samples"]), payload.get("transfer", {}),
            node=outcome["node"], profile=samples_from_json(payload.get("profile"))))
        if self.scheduler.aborted:
            return
        self.engine.on_event(status, submit.element, submit.index)
        if failure is None:
            self.output.finished(key, out_path, err_path)
            self.apply(self.scheduler.instance_done(submit.element, submit.index, payload["result"]))
            return
        self.lost_memory_of(submit, connection_lost)
        self.failed_output[key] = (out_path, err_path)
        self.apply(self.scheduler.instance_failed(failure, submit.params))

    def lost_memory_of(self, submit: Submit, connection_lost: bool) -> None:
        """Stop the run if a memory element of the failed instance died: that is the failure (no
        retry brings it back). A killed actor closes its sockets before Ray reports it dead, so a
        lost connection waits a moment."""
        peers = {link.peer for link in self.program.elements[submit.element].corunning}
        watches = [w for w, (name, _) in self.watches.items() if name in peers]
        if not watches:
            return
        dead, _ = self.ray.wait(watches, num_returns=1, timeout=_LOST_GRACE if connection_lost else 0)
        if dead:
            watch = dead[0]
            self.memory_died(watch, *self.watches.pop(watch), (submit.element, submit.index))

    # ------------------------------------------------------------------ end

    def cancel(self, refs: list[Any]) -> None:
        """Stop these running tasks: each is asked first (it kills its instance and removes its
        directory, see :func:`run_task`), and killed with its worker if it has not ended within
        :data:`CANCEL_GRACE` (a kill leaves the directory to the node's next task)."""
        if not refs:
            return
        for ref in refs:
            with suppress(Exception):  # finished already, or its worker is gone: nothing to cancel
                self.ray.cancel(ref)
        stuck = refs
        with suppress(Exception):
            _, stuck = self.ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE)
        for ref in stuck:
            with suppress(Exception):
                self.ray.cancel(ref, force=True)

    def teardown(self) -> None:
        if self.torn_down:
            return
        self.torn_down = True
        self.cancel(list(self.pending))
        self.pending.clear()
        try:
            for name in sorted(self.memories):
                self.stop_memory(name)
        finally:
            from ray.util.placement_group import remove_placement_group

            for group, pg in self.placement.items():
                if pg is not None:
                    remove_placement_group(pg)
                    self.placement[group] = None
            for segment in self.segments:  # an actor killed before it could free its segment, on this node
                unlink_segment(segment)
            # no Ray object of the run outlives it (a RunFailed's traceback keeps this object alive, and
            # refs of a cluster the process has disconnected from must not be freed later)
            self.files, self.placement = [], {}
            self.watches.clear()

    def report(self, status: str, failure: str = "") -> RunReport:
        return program_report(self.program, status=status, wall=self.now(), order=self.scheduler.order,
                              instances=self.instances,
                              memory=(m for runs in self.memory_runs.values() for m in runs), failure=failure)


def _demand(spec: ElementSpec) -> dict[str, float]:
    """What one instance of ``spec`` asks Ray for (a memory element: its region, no CPU)."""
    if spec.kind == "memory":
        return {"memory": float(spec.limits.mem)}
    return {"CPU": spec.limits.cpu, "memory": float(spec.limits.mem)}


def _describe(demand: dict[str, float]) -> str:
    parts = [f"{demand['CPU']:g} CPU"] if "CPU" in demand else []
    return " and ".join([*parts, format_size(int(demand["memory"]))])


def _served_at(info: dict[str, Any]) -> str:
    """A memory instance's address for the report: its server, and its segment when it has one."""
    return f"{info['url']} (segment {info['segment']})" if info["segment"] else info["url"]


def _ray_reason(exc: BaseException) -> str:
    """A Ray error in one line (they carry pages of context)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _corunning_groups(program: Program) -> list[frozenset[str]]:
    """The connected components of the corunning relation, in a deterministic order."""
    import networkx as nx

    graph: nx.Graph[str] = nx.Graph()
    for spec in program.elements.values():
        graph.add_node(spec.name)
        for peer in spec.corunning_names:
            graph.add_edge(spec.name, peer)
    return sorted((frozenset(c) for c in nx.connected_components(graph)), key=sorted)


def _program_files(program: Program, limit: int = 64 * 2**20) -> dict[str, bytes]:
    """The program directory's files (elements, modules beside them, the sourcemap), for nodes that
    do not share its file system; files beyond ``limit`` bytes in all are left out."""
    root = Path(program.path)
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            size = path.stat().st_size
            if total + size > limit:
                continue
            files[str(path.relative_to(root))] = path.read_bytes()
            total += size
    return files


_REMOTE: dict[int, tuple[Any, Any]] = {}


def _remote_functions(ray: ModuleType) -> tuple[Any, Any]:
    """The memory actor class and the task function, made remote once per process."""
    if id(ray) not in _REMOTE:
        _REMOTE[id(ray)] = (ray.remote(MemoryHost), ray.remote(run_task))
    return _REMOTE[id(ray)]
