"""The local engine over real processes, shared memory and real memory servers on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from scadrt.dag import load_program
from scadrt.engines.local import LocalEngine
from scadrt.engines.memory import TcpMemory, memory_backend
from scadrt.engines.worker import Ready, read_frame
from scadrt.report import RunFailed
from tests.leftovers import live_children
from tests.programs import scadc, write

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "elements"
MAIN = "def main(params, action):\n"


def run(program_dir: Path, transport: str = "shm", run_input: dict[str, object] | None = None,
        **options: object) -> tuple[bytes, bytes, object]:
    program = load_program(program_dir)
    out, err = io.BytesIO(), io.BytesIO()
    with LocalEngine(memory=memory_backend(transport, program), stdout=out, stderr=err, **options) as engine:  # type: ignore[arg-type]
        try:
            result: object = engine.run(program, run_input or {})
        except RunFailed as failed:
            result = failed
    return out.getvalue(), err.getvalue(), result


#: argv: a file to wait for, a segment-name prefix. Once the file appears, waits 0.5 s and removes
#: the segments: a memory element that dies just after its user saw the connection go.
_LATE_REMOVER = """
import os, sys, time
mark, prefix = sys.argv[1:]
deadline = time.monotonic() + 60
while not os.path.exists(mark) and time.monotonic() < deadline:
    time.sleep(0.01)
time.sleep(0.5)
for name in os.listdir('/dev/shm'):
    if name.startswith(prefix):
        try:
            os.unlink('/dev/shm/' + name)
        except FileNotFoundError:  # the engine stopped it first
            pass
"""


@pytest.mark.parametrize(("raised", "waited"), [
    ("from scadrt.errors import ConnectionLostError as Lost\n", True),
    ("from scadrt.errors import ConnectionLostError\nclass Lost(ConnectionLostError):\n    pass\n", True),
    ("class ConnectionLostError(Exception):\n    pass\nLost = ConnectionLostError\n", False),  # the name only
], ids=["the-transport-error", "a-subclass", "a-same-named-class"])
def test_a_lost_connection_waits_for_its_memory_element_to_be_seen_dead(tmp_path: Path, raised: str,
                                                                         waited: bool) -> None:
    # The transport's ConnectionLostError (or a subclass) makes the engine wait a moment for the
    # memory element to be seen dead, then blame the memory element; any other error does not wait.
    mark = tmp_path / "raised"
    remover = subprocess.Popen([sys.executable, "-c", _LATE_REMOVER, str(mark), f"scad-{os.getpid()}-"])
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\nfrom pathlib import Path\n" + raised + MAIN
                  + f"    Path({str(mark)!r}).touch()\n    raise Lost('gone')\n",
    })
    try:
        _, _, result = run(prog)
    finally:
        mark.touch()  # the remover ends even if the element never ran
        remover.wait(timeout=60)
    assert isinstance(result, RunFailed)
    if waited:
        assert (result.failure.element, result.failure.kind) == ("m", "MemoryLost")
        assert "was removed (while 'a' instance 0 was using it)" in result.failure.message
    else:
        assert (result.failure.element, result.failure.kind, result.failure.message) == (
            "a", "ConnectionLostError", "gone")


def test_a_forked_worker_keeps_no_engine_fd_but_keeps_its_number_taken() -> None:
    # A worker is a fork of the engine. The engine's file objects come along; one finalized in
    # the worker would close its fd *number*, by then perhaps reused for a pipe of the worker's.
    # So every inherited fd must stay taken, pointed at /dev/null, and none may stay open on
    # what it was (a pipe end held by a worker would hide EOF from its reader).
    engine_fds = {int(fd) for fd in os.listdir("/proc/self/fd")}
    with LocalEngine() as engine:
        engine.start_pool(1)
        worker = engine._pool.workers[0]
        pid = worker.proc.pid
        assert isinstance(read_frame(worker.events), Ready)  # it has set itself up
        fds = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    inherited = {fd: target for fd, target in fds.items() if fd in engine_fds and fd > 2}
    assert inherited and all(target == "/dev/null" for target in inherited.values()), inherited


def test_numeric_libraries_get_the_threads_of_limits_cpu(tmp_path: Path) -> None:
    # several instances at once must not each run a BLAS thread per core (they spin and fight)
    report = "    from scadrt.engines.threads import thread_counts\n    print(sorted(set(thread_counts().values())))\n"
    prog = write(tmp_path / "p", {
        "one.o.py": "#@ type: compute\n#@ limits: {cpu: 1}\nimport numpy\n" + MAIN + report + "    return {}\n",
        "two.o.py": "#@ type: compute\n#@ limits: {cpu: 1.5}\nimport numpy\n" + MAIN + report + "    return {}\n",
    })
    out, _, result = run(prog)
    assert not isinstance(result, RunFailed)
    assert out == b"[1]\n[2]\n"


def test_tcp_memory_starts_servers_together_and_reaps_them_at_close(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "a.o.yaml": "type: memory\nlimits: {mem: 1 MB}\ncorunning: [c]\n",
        "b.o.yaml": "type: memory\nparallelism: 2\nlimits: {mem: 1 MB}\ncorunning: [c]\n",
        "c.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
    })
    program = load_program(prog)
    backend = memory_backend("tcp", program)
    assert isinstance(backend, TcpMemory)
    try:
        started = backend.start([program.elements["a"], program.elements["b"]])
        assert sorted(started) == ["a", "b"] and sorted(started["b"]) == ["b@0", "b@1"]
        urls = {d for descriptors in started.values() for d in descriptors.values()}
        assert len(urls) == 3 and all(d.startswith("tcp;url,tcp://127.0.0.1:") for d in urls)
        pids = [server.pid for servers in backend.servers.values() for server in servers]
        assert len(backend.stop("b")) == 2 and len(backend.servers) == 1  # told to stop; not waited for
    finally:
        backend.close()
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)


def test_run_element_against_a_memory_server_started_by_hand(tmp_path: Path) -> None:
    from scadrt.transports.launcher import spawn_memory_server

    fanout = EXAMPLES / "fanout"
    results = tmp_path / "results"
    with spawn_memory_server("64MiB") as server:
        port = server.url.rpartition(":")[2]
        steps = [("produce", 0, ["-p", "n=30"]), *(("square", i, []) for i in range(3)), ("collect", 0, [])]
        outputs = []
        for element, index, extra in steps:
            done = scadc("run-element", fanout / f"{element}.o.py", "-m", f"mem:{port}", "-i", str(index),
                         "-d", results, *extra)
            assert done.returncode == 0, done.stderr
            outputs.append(done.stdout)
    assert outputs[-1] == "collect: 3 parts, sum of squares = 8555, parts agree: True\n"
    assert sorted(p.name for p in results.iterdir()) == [
        "collect.json", "produce.json", "square@0.json", "square@1.json", "square@2.json",
    ]
    assert json.loads((results / "square@1.json").read_text())["start"] == 10

    missing = scadc("run-element", fanout / "collect.o.py", "-m", "mem:1", "-d", tmp_path / "empty")
    assert missing.returncode == 2 and "no result of parent 'square': neither" in missing.stderr
    assert "square@0.json exists" in missing.stderr
    bad_index = scadc("run-element", fanout / "collect.o.py", "-i", "3")
    assert bad_index.returncode == 2 and "instances 0..0" in bad_index.stderr


def test_run_element_reads_only_its_own_file(tmp_path: Path) -> None:
    # like rundisagg: siblings the loader would refuse (a cycle, an unknown parent, a broken YAML
    # file) do not stop one element from running; its parent's results come from -d, as many
    # instances as are there, in index order
    prog = write(tmp_path / "p", {
        "b.o.py": "#@ type: compute\n#@ parents: [a]\n" + MAIN +
                  "    print([r['i'] for r in params['a']])\n    return {'n': len(params['a'])}\n",
        "c.o.py": "#@ type: compute\n#@ parents: [nowhere, c]\n" + MAIN + "    return {}\n",
        "m.o.yaml": "type: memory\ncorunning: [\n",
    })
    results = write(tmp_path / "r", {f"a@{i}.json": json.dumps({"i": i}) for i in (1, 0, 2)})
    done = scadc("run-element", prog / "b.o.py", "-d", results)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[0, 1, 2]\n"
    assert json.loads((results / "b.json").read_text()) == {"n": 3}
    memory = scadc("run-element", write(tmp_path / "q", {"m.o.yaml": "type: memory\n"}) / "m.o.yaml")
    assert memory.returncode == 2 and "expected a compute element file" in memory.stderr
    broken = scadc("run-element", prog / "c.o.py", "-d", results)
    assert broken.returncode == 2 and "no result of parent 'nowhere'" in broken.stderr


def test_a_chain_runs_on_one_worker(tmp_path: Path) -> None:
    # the worker takes the next element as soon as the last one has finished, while its process exits
    program = load_program(EXAMPLES / "chain")
    with LocalEngine(stdout=io.BytesIO(), stderr=io.BytesIO(), max_workers=4) as engine:
        result = engine.run(program, {"n": 4})
        assert engine._pool.started == 1
        assert engine._pool.workers == []  # nothing remaining could use it: it exited
    assert len({i.pid for i in result.report.instances}) == 3  # each instance still has its own process


def test_a_worker_nothing_can_use_exits_while_the_run_goes_on(tmp_path: Path) -> None:
    # 'quick' and 'slow' run at once; once 'quick' is done only 'slow' remains: one worker is enough
    prog = write(tmp_path / "p", {
        "quick.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
        "slow.o.py": "#@ type: compute\nimport os, time\nimport psutil\n" + MAIN +
                     "    time.sleep(1.5)\n    engine = psutil.Process(os.getppid()).parent()\n"
                     "    print(*sorted(c.pid for c in engine.children()), flush=True)\n    return {}\n",
    })
    before = {c.pid for c in psutil.Process().children()}  # the session's Ray cluster, if this process runs it
    with LocalEngine(stdout=(out := io.BytesIO()), stderr=io.BytesIO(), max_workers=2) as engine:
        result = engine.run(load_program(prog))
        assert engine._pool.started == 2
    assert not isinstance(result, RunFailed)
    # below the engine: slow's worker and the run's watcher
    assert len({int(pid) for pid in out.getvalue().split()} - before) == 2


def test_tcp_memory_servers_launch_while_the_elements_before_their_users_run(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nlimits: {mem: 1 MB}\ncorunning: [b]\n",
        "a.o.py": "#@ type: compute\n#@ dependents: [b]\nimport time\n" + MAIN + "    time.sleep(1.0)\n    return {}\n",
        "b.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
    })
    _, _, result = run(prog, "tcp")
    report = result.report  # type: ignore[attr-defined]
    (memory,) = report.memory
    a, b = (next(i for i in report.instances if i.element == name) for name in ("a", "b"))
    assert memory.start < a.end - 0.5  # launched when a was submitted, not when b was
    # b still comes after a: after a finished, though a's process may still be exiting (its end is
    # the exit, which on a loaded machine came 50 ms after b started), so the bound is a's sleep
    assert b.start > a.start + 1.0


def test_a_forked_memory_server_stops_when_its_own_stdin_closes(tmp_path: Path) -> None:
    # Servers are forked from the engine: the second must not hold the first's stdin pipe open
    # (it would keep the first alive after the engine is gone), nor be a fresh interpreter.
    prog = write(tmp_path / "p", {
        "a.o.yaml": "type: memory\nparallelism: 2\nlimits: {mem: 1 MB}\ncorunning: [c]\n",
        "c.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
    })
    program = load_program(prog)
    backend = memory_backend("tcp", program)
    assert isinstance(backend, TcpMemory)
    try:
        backend.start([program.elements["a"]])
        first, second = (served.server for served in backend.servers["a"])
        assert psutil.Process(second.pid).name() == "scad-memory"
        assert psutil.Process(second.pid).cmdline() == psutil.Process().cmdline()  # a fork, no exec
        assert first.process.stdin is not None
        first.process.stdin.close()
        assert first.process.wait(timeout=5) == 0
        assert second.process.poll() is None
    finally:
        backend.close()


def test_scadc_run_imports_numpy_in_its_worker_not_in_the_engine() -> None:
    # The first worker is forked before the program loads and imports numpy itself; a chain needs
    # no other worker, so the engine's process never imports it.
    code = ("import io, sys, scadrt\n"
            "out = io.BytesIO()\n"
            f"scadrt.run({str(EXAMPLES / 'chain')!r}, params={{'n': 4}}, stdout=out)\n"
            "print(out.getvalue().decode().splitlines()[-1], 'numpy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "third: sum of squares = 30 False\n"


def test_a_run_refused_after_its_first_worker_started_leaves_no_worker() -> None:
    import scadrt
    from scadrt.errors import UserError

    # a chain gets its worker before the engine is imported; the transport is refused after that
    with pytest.raises(UserError, match="local transport"):
        scadrt.run(EXAMPLES / "chain", params={"n": 4}, transport="local")
    assert live_children() == set()  # but the session's Ray cluster, if this process runs it


def test_workers_of_instances_side_by_side_are_forked_by_the_first_worker(tmp_path: Path) -> None:
    """Three instances at once want a second worker. The engine used to import numpy (14 MB of it
    for the whole run) to fork it; now the first worker, forked before the engine was imported,
    forks it on request, so the engine never imports numpy and the program needs one import."""
    prog = tmp_path / "prog"
    write(prog, {"wide.o.py": "#@ type: compute\n#@ parallelism: 3\nimport os, time\nimport numpy\n" + MAIN
                 + "    time.sleep(0.3)\n"
                 + "    worker = os.getppid()\n"
                 + "    parent = int(open(f'/proc/{worker}/stat').read().rsplit(')', 1)[1].split()[1])\n"
                 + "    print(worker, parent)\n    return {}\n"})
    code = ("import io, os, sys, scadrt\n"
            "out = io.BytesIO()\n"
            f"scadrt.run({str(prog)!r}, stdout=out)\n"
            "print(os.getpid(), 'numpy' in sys.modules)\n"
            "sys.stdout.write(out.getvalue().decode())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    head, *lines = done.stdout.splitlines()
    engine, imported = head.split()
    assert imported == "False"
    parents = dict(tuple(map(int, line.split())) for line in lines)  # worker -> its parent
    assert len(parents) == min(3, os.cpu_count() or 1)  # a worker per instance running at once
    (first,) = [w for w, parent in parents.items() if parent == int(engine)]
    assert set(parents.values()) == {int(engine), first}


KILL_THE_SPAWNER = """\
#@ type: compute
#@ parallelism: 3
import glob, os, signal, time


def parent_of(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])


def main(params, action):
    if os.path.exists(KILLED):  # a retry, or an instance that started after the kill
        print("ok")
        return {}
    try:
        os.close(os.open(KILLER, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # beside the killer: say so, and wait to be killed with the spawner
        open(f"{KILLER}.{os.getpid()}", "w").close()
        time.sleep(30)
        return {}
    deadline = time.monotonic() + 30
    while not glob.glob(f"{KILLER}.*") and time.monotonic() < deadline:  # another instance is running
        time.sleep(0.01)
    worker = os.getppid()
    open(KILLED, "w").close()
    os.kill(worker if parent_of(worker) == ENGINE else parent_of(worker), signal.SIGKILL)
    time.sleep(30)
"""


def test_a_spawner_that_dies_leaves_the_engine_forking_workers_itself(tmp_path: Path) -> None:
    """An instance SIGKILLs the first worker (the spawner) while the others run: the workers it
    forked die with it, their instances crash, and the retries run on workers the engine forks
    itself; nothing is left behind."""
    import scadrt

    source = (KILL_THE_SPAWNER.replace("KILLED", repr(str(tmp_path / "killed")))
              .replace("KILLER", repr(str(tmp_path / "killer"))).replace("ENGINE", str(os.getpid())))
    write(tmp_path / "prog", {"wide.o.py": source})
    out = io.BytesIO()
    report = scadrt.run(tmp_path / "prog", retries=1, stdout=out)
    assert out.getvalue() == b"ok\n" * 3
    assert sorted(i.status for i in report.instances if i.attempt == 0).count("crashed") >= 2
    assert {i.status for i in report.instances} == {"ok", "crashed"}
    assert live_children() == set()


def test_the_watcher_is_a_small_interpreter_that_removes_what_it_was_told(tmp_path: Path) -> None:
    # a fork of the engine held the engine's ~22 MB for every run; the watcher now execs
    # `python -I -S cleanup.py FD`, which imports the standard library only
    from scadrt.engines import cleanup
    from scadrt.engines.watcher import Watcher
    from scadrt.transports.shm import SharedRegion

    watcher = Watcher()
    region = SharedRegion(4096)
    kept = SharedRegion(4096)
    try:
        (tmp_path / "run" / "sub").mkdir(parents=True)
        watcher.segment(region.name)
        watcher.directory(str(tmp_path / "run"))
        watcher.segment("../../etc/passwd")  # not a segment name: skipped, never a path
        deadline = time.monotonic() + 10
        while "cleanup.py" not in " ".join(psutil.Process(watcher.pid).cmdline()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert psutil.Process(watcher.pid).cmdline()[1:4] == ["-I", "-S", cleanup.__file__]
        assert psutil.Process(watcher.pid).memory_info().rss < 16 * 2**20
        assert os.path.exists(f"/dev/shm/{region.name}")  # nothing happens before EOF
        watcher.close()
        assert not os.path.exists(f"/dev/shm/{region.name}") and not (tmp_path / "run").exists()
        assert os.path.exists(f"/dev/shm/{kept.name}") and not psutil.pid_exists(watcher.pid)
    finally:
        watcher.close()
        region.close()
        kept.close()
        kept.unlink()


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_runs_in_one_process_leave_no_descriptor_behind(transport: str) -> None:
    """Every scadrt.run leaked the pool's epoll descriptor: after some 1,000 runs in one process
    (make fuzz) select() refused the next descriptor ("filedescriptor out of range")."""
    import scadrt

    scadrt.run(EXAMPLES / "fanout", transport=transport, stdout=io.BytesIO(), stderr=io.BytesIO())
    before = _descriptors()
    for _ in range(3):
        scadrt.run(EXAMPLES / "fanout", transport=transport, stdout=io.BytesIO(), stderr=io.BytesIO())
    assert _descriptors() == before


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_a_process_holding_a_thousand_descriptors_still_runs_programs(transport: str) -> None:
    """With every descriptor below 1024 taken, the engine's and the workers' pipes are numbered
    1024 and up, which select() refuses: the engine raised ValueError, a worker exited with status 1."""
    import resource

    import scadrt

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the descriptor limit ({hard}) is too low")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    held: list[int] = []
    try:
        while (fd := os.open(os.devnull, os.O_RDONLY)) < 1024:
            held.append(fd)
        held.append(fd)
        out = io.BytesIO()
        scadrt.run(EXAMPLES / "fanout", transport=transport, stdout=out, stderr=io.BytesIO())
        assert out.getvalue()
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
