"""The local engine over real processes, shared memory and real memory servers on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from scadrt.dag import load_program
from scadrt.engines.local import LocalEngine
from scadrt.engines.memory import TcpMemory, memory_backend
from scadrt.engines.worker import Ready, read_frame
from scadrt.report import RunFailed

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


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_fanout_example(transport: str) -> None:
    out, _, result = run(EXAMPLES / "fanout", transport, {"n": 3000})
    assert not isinstance(result, RunFailed), result
    total = sum(float(i * i) for i in range(3000))
    assert out.decode() == (
        "produce: wrote 3000 values (24000 bytes)\n"
        "square[0]: squared values 0..999\n"
        "square[1]: squared values 1000..1999\n"
        "square[2]: squared values 2000..2999\n"
        f"collect: 3 parts, sum of squares = {total:.0f}, parts agree: True\n"
    )
    report = result.report  # type: ignore[attr-defined]
    assert [(m.element, m.transport, m.size) for m in report.memory] == [("mem", transport, 64 * 2**20)]
    assert sorted((i.element, i.index, i.status) for i in report.instances) == [
        ("collect", 0, "ok"), ("produce", 0, "ok"), ("square", 0, "ok"), ("square", 1, "ok"), ("square", 2, "ok"),
    ]
    produce = next(i for i in report.instances if i.element == "produce")
    assert produce.transfer[transport]["written"] == 24000
    assert all(i.peak_rss > 10 * 2**20 and i.pid > 0 for i in report.instances)  # numpy is loaded in each


def test_chain_example_and_results() -> None:
    out, _, result = run(EXAMPLES / "chain", run_input={"n": 4})
    assert out == b"first: made 4 numbers\nsecond: squared 4 numbers\nthird: sum of squares = 30\n"
    assert result.results == {"third": [{"total": 30}]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_failing_example_stops_the_run(transport: str) -> None:
    out, _, result = run(EXAMPLES / "failing", transport)
    assert isinstance(result, RunFailed)
    assert out == b"first: ok\nsecond: checking the value\n"  # third never ran
    failure = result.failure
    assert (failure.element, failure.index, failure.kind) == ("second", 0, "ValueError")
    assert failure.message == "expected 0, got 42"
    assert 'second.o.py", line 9, in check' in failure.traceback
    assert "worker.py" not in failure.traceback  # the engine's own frames are not the user's business
    assert result.report.status == "failed"


def write(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_output_follows_program_order_not_timing(tmp_path: Path) -> None:
    # 'a' is slow and 'b' fast; both are roots, so they run at once, but a's output comes first.
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\nimport time\n" + MAIN +
                  "    time.sleep(1.5 - 1.0 * action.par_index)\n    print('a', action.par_index)\n    return {}\n",
        "b.o.py": "#@ type: compute\nimport sys\n" + MAIN + "    print('b')\n    print('b-err', file=sys.stderr)\n"
                  "    return {}\n",
    })
    out, err, result = run(prog, max_workers=3)
    assert not isinstance(result, RunFailed)
    assert out == b"a 0\na 1\nb\n" and err == b"b-err\n"
    report = result.report  # type: ignore[attr-defined]
    b = next(i for i in report.instances if i.element == "b")
    a0 = next(i for i in report.instances if (i.element, i.index) == ("a", 0))
    assert b.end < a0.end  # b really finished first


def test_a_failing_sibling_stops_the_run_where_program_order_would(tmp_path: Path) -> None:
    # 'b' fails at once while 'a' (before it in program order) is still working: a sequential run
    # would have printed all of a's output and then failed in b. 'c' may have started before b
    # failed, but nothing it printed is written.
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\nimport time\n" + MAIN + "    time.sleep(1.0)\n    print('a done')\n"
                  "    return {}\n",
        "b.o.py": "#@ type: compute\n" + MAIN + "    print('b starts')\n    raise ValueError('b fails')\n",
        "c.o.py": "#@ type: compute\n" + MAIN + "    print('c ran')\n    return {}\n",
    })
    out, _, result = run(prog, max_workers=2)
    assert isinstance(result, RunFailed)
    assert (result.failure.element, result.failure.kind) == ("b", "ValueError")
    assert out == b"a done\nb starts\n"
    statuses = {i.element: i.status for i in result.report.instances}
    assert statuses["a"] == "ok" and statuses["b"] == "failed"


@pytest.mark.parametrize(("raised", "hinted"), [
    ("class Full(RegionFullError):\n    pass\n", True),  # the allocator's error, or a subclass of it
    ("class RegionFullError(Exception):\n    pass\nFull = RegionFullError\n", False),  # only the same name
])
def test_a_generated_program_that_fills_a_region_is_told_to_profile(tmp_path: Path, raised: str,
                                                                    hinted: bool) -> None:
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\nfrom scadrt.errors import RegionFullError\n" + raised + MAIN
                  + "    raise Full('no gap of 8 B')\n",
        "sourcemap.json": json.dumps({"source": "app.py", "elements": {}}),  # what makes it generated
    })
    _, _, result = run(prog)
    assert isinstance(result, RunFailed) and "no gap of 8 B" in result.failure.message
    assert ("scadc profile app.py -o app.profile.json" in result.failure.message) is hinted


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


def test_crash_is_reported_like_an_exception(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\nimport os, signal\n" + MAIN + "    os.kill(os.getpid(), signal.SIGKILL)\n",
    })
    _, _, result = run(prog)
    assert isinstance(result, RunFailed)
    assert result.failure.kind == "crash" and "SIGKILL" in result.failure.message
    assert result.report.instances[0].status == "crashed"


def test_retries_rerun_from_the_parents_results(tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ dependents: [b]\n" + MAIN + "    return {'x': 7}\n",
        "b.o.py": "#@ type: compute\n" + MAIN +
                  f"    with open({str(marker)!r}, 'a') as f:\n        f.write('.')\n"
                  f"    if len(open({str(marker)!r}).read()) < 3:\n        raise RuntimeError('flaky')\n"
                  "    print('b got', params['a'][0]['x'])\n    return {}\n",
    })
    _, _, failed = run(prog, retries=1)
    assert isinstance(failed, RunFailed) and failed.failure.message == "flaky"
    marker.unlink()
    out, _, result = run(prog, retries=2)
    assert out == b"b got 7\n"
    assert [(i.element, i.attempt, i.status) for i in result.report.instances] == [  # type: ignore[attr-defined]
        ("a", 0, "ok"), ("b", 0, "failed"), ("b", 1, "failed"), ("b", 2, "ok"),
    ]


def test_non_json_result_is_an_error(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {"a.o.py": "#@ type: compute\n" + MAIN + "    return {'x': object()}\n"})
    _, _, result = run(prog)
    assert isinstance(result, RunFailed) and "not JSON-serialisable" in result.failure.message


def test_parallel_memory_instances_are_addressed_by_index(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nparallelism: 2\nlimits: {mem: 1 MB}\ncorunning: [w, r]\n",
        "w.o.py": "#@ type: compute\n#@ parallelism: 2\n#@ dependents: [r]\n" + MAIN +
                  "    t = action.get_transport(f'm@{action.par_index}', 'rdma')\n    t.reg(1)\n"
                  "    t.buf[0] = 10 + action.par_index\n    t.write(1, 0)\n    return {}\n",
        "r.o.py": "#@ type: compute\n" + MAIN +
                  "    got = []\n    for i in range(2):\n        t = action.get_transport(f'm@{i}', 'rdma')\n"
                  "        t.reg(1)\n        t.read(1, 0)\n        got.append(t.buf[0])\n    print(got)\n"
                  "    return {}\n",
    })
    out, _, result = run(prog)
    assert out == b"[10, 11]\n", result
    assert sorted(m.instance for m in result.report.memory) == ["m@0", "m@1"]  # type: ignore[attr-defined]


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


def scadc(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scadc", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False, **kwargs)


def test_cli_run_result_report_and_exit_codes(tmp_path: Path) -> None:
    done = scadc("run", EXAMPLES / "chain", "--param", "n=3", "--quiet", "--result-json", tmp_path / "r.json",
                 "--report", tmp_path / "run.json", "--html", tmp_path / "run.html")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "first: made 3 numbers\nsecond: squared 3 numbers\nthird: sum of squares = 14\n"
    assert done.stderr == ""
    assert json.loads((tmp_path / "r.json").read_text()) == {"total": 14}
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["status"] == "ok" and report["order"] == ["first", "second", "third"]
    assert report["totals"]["gib_seconds"] > 0
    assert [(i["element"], i["status"]) for i in report["instances"]] == [("first", "ok"), ("second", "ok"),
                                                                          ("third", "ok")]
    page = (tmp_path / "run.html").read_text()
    assert 'id="timeline"' in page and "third[0]" in page

    failed = scadc("run", EXAMPLES / "failing", "--transport", "tcp")
    assert failed.returncode == 1
    assert failed.stdout == "first: ok\nsecond: checking the value\n"
    assert "element 'second' instance 0 failed" in failed.stderr
    assert "ValueError: expected 0, got 42" in failed.stderr
    assert "scadc: " in failed.stderr and "started" in failed.stderr  # plain progress lines when not a TTY

    bad = scadc("run", EXAMPLES / "chain", "--param", "oops")
    assert bad.returncode == 2 and "--param expects key=value" in bad.stderr


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_interrupt_leaves_nothing_behind(tmp_path: Path, sig: signal.Signals, status: int, transport: str) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\nimport time\n" + MAIN +
                  f"    open({str(marks)!r} + f'/{{action.par_index}}', 'w').close()\n    time.sleep(60)\n"
                  "    return {}\n",
    })
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-t", transport],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 30
    while len(list(marks.iterdir())) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    pids = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    assert len(pids) >= 4  # 2 workers + 2 instances (+ a memory server for tcp)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert b"Traceback" not in err
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert alive == []


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
    assert missing.returncode == 2 and "square@0.json is missing" in missing.stderr
    bad_index = scadc("run-element", fanout / "collect.o.py", "-i", "3")
    assert bad_index.returncode == 2 and "instances 0..0" in bad_index.stderr


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
                     "    print(len(engine.children()), flush=True)\n    return {}\n",
    })
    with LocalEngine(stdout=(out := io.BytesIO()), stderr=io.BytesIO(), max_workers=2) as engine:
        result = engine.run(load_program(prog))
        assert engine._pool.started == 2
    assert not isinstance(result, RunFailed)
    assert out.getvalue() == b"2\n"  # below the engine: slow's worker and the run's watcher


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_a_memory_element_is_released_before_an_unrelated_element_finishes(tmp_path: Path, transport: str) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nlimits: {mem: 1 MB}\ncorunning: [a]\n",
        "a.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
        "b.o.py": "#@ type: compute\nimport time\n" + MAIN + "    time.sleep(1.5)\n    return {}\n",
    })
    _, _, result = run(prog, transport, max_workers=2)
    report = result.report  # type: ignore[attr-defined]
    (memory,) = report.memory
    a, b = (next(i for i in report.instances if i.element == name) for name in ("a", "b"))
    assert memory.end < b.end - 0.5 and memory.end >= a.start  # freed when its only user was done


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
    assert b.start > a.end - 0.05  # b still comes after a


def test_numpy_global_generator_is_fresh_in_every_instance(tmp_path: Path) -> None:
    # Workers import numpy.random before they fork instances (warm_up); unseeded draws must still
    # differ from instance to instance and from run to run, as in separate interpreters.
    draw = "import numpy as np\n" + MAIN + "    print(np.random.randint(2**62), np.random.normal())\n    return {}\n"
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\n#@ dependents: [b]\n" + draw,
        "b.o.py": "#@ type: compute\n" + draw,
    })
    draws = []
    for _ in range(2):
        out, _, result = run(prog, max_workers=1)
        assert not isinstance(result, RunFailed), result
        draws += out.decode().split("\n")[:-1]
    assert len(draws) == 6 and len({d.split()[0] for d in draws}) == 6 and len({d.split()[1] for d in draws}) == 6


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
    assert psutil.Process().children(recursive=True) == []


def test_a_program_that_runs_instances_side_by_side_gets_no_worker_before_the_engine() -> None:
    # fanout's three squares run at once: its workers are all forked warm from the engine, which
    # then imports numpy once for them all
    code = ("import io, sys, scadrt\n"
            f"scadrt.run({str(EXAMPLES / 'fanout')!r}, params={{'n': 30}}, stdout=io.BytesIO())\n"
            "print('numpy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
