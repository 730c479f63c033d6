"""The engine conformance suite: every engine runs these programs with the same results, the same
bytes on stdout and stderr, the same failures and the same report, over real processes, shared
memory and memory servers on 127.0.0.1 (local), and a real Ray cluster on 127.0.0.1 (ray: the
session's cluster, ``tests/ray_cluster.py``), the way the transports share ``conformance.py``."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

import scadrt
from scadrt.report import RunFailed, RunResult
from tests import ray_cluster
from tests.leftovers import nothing_left_behind
from tests.programs import scadc, write

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "elements"
MAIN = "def main(params, action):\n"


@dataclass
class Engine:
    """One engine under test: how to run a program on it, in this process and with ``scadc run``."""

    name: str
    address: str | None = None

    def idle(self, timeout: float = 15.0) -> bool:
        """Whether the cluster gets all its resources back within ``timeout`` s (nothing of a run holds any)."""
        import ray

        assert self.address is not None
        ray_cluster.connect(self.address)
        deadline = time.monotonic() + timeout
        while (free := _held(ray.available_resources())) != (total := _held(ray.cluster_resources())):
            if time.monotonic() > deadline:
                print("free", free, "of", total)
                return False
            time.sleep(0.1)
        return True

    @property
    def cli(self) -> list[str]:
        return [] if self.name == "local" else ["--engine", "ray", "--address", str(self.address)]

    def run(self, program_dir: Path, transport: str = "shm", run_input: dict[str, object] | None = None,
            **options: Any) -> tuple[bytes, bytes, RunResult | RunFailed]:
        """What the run printed, and how it ended (``.report`` either way)."""
        out, err = io.BytesIO(), io.BytesIO()
        results: dict[str, list[Any]] = {}
        if self.address is not None:  # connected once: the run uses this process's connection
            ray_cluster.connect(self.address)
        try:
            report = scadrt.run(program_dir, params=run_input or {}, transport=transport, stdout=out, stderr=err,
                                on_results=results.update, engine=self.name, **options)
        except RunFailed as failed:
            return out.getvalue(), err.getvalue(), failed
        return out.getvalue(), err.getvalue(), RunResult(report, results)


def _held(resources: dict[str, float]) -> dict[str, float]:
    """What tasks, actors and placement groups hold (the object store also holds this process's own
    objects, such as a failed run's program files a traceback still refers to)."""
    return {k: v for k, v in resources.items() if k != "object_store_memory"}


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.xdist_group("ray"))])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each engine in turn; nothing a run starts outlives the test (but the Ray cluster itself)."""
    if request.param == "local":
        with nothing_left_behind():
            yield Engine("local")
        return
    cluster = request.getfixturevalue("ray_cluster")
    with nothing_left_behind():
        yield Engine("ray", cluster.address)
    assert cluster.task_dirs() == []  # a cancelled task, too, removes its directory


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_fanout_example(engine: Engine, transport: str) -> None:
    out, _, result = engine.run(EXAMPLES / "fanout", transport, {"n": 3000})
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


def test_chain_example_and_results(engine: Engine) -> None:
    out, _, result = engine.run(EXAMPLES / "chain", run_input={"n": 4})
    assert out == b"first: made 4 numbers\nsecond: squared 4 numbers\nthird: sum of squares = 30\n"
    assert result.results == {"third": [{"total": 30}]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_failing_example_stops_the_run(engine: Engine, transport: str) -> None:
    out, _, result = engine.run(EXAMPLES / "failing", transport)
    assert isinstance(result, RunFailed)
    assert out == b"first: ok\nsecond: checking the value\n"  # third never ran
    failure = result.failure
    assert (failure.element, failure.index, failure.kind) == ("second", 0, "ValueError")
    assert failure.message == "expected 0, got 42"
    assert 'second.o.py", line 9, in check' in failure.traceback
    assert "worker.py" not in failure.traceback  # the engine's own frames are not the user's business
    assert result.report.status == "failed"


def test_output_follows_program_order_not_timing(engine: Engine, tmp_path: Path) -> None:
    # 'a' is slow and 'b' fast; both are roots, so they run at once, but a's output comes first.
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\nimport time\n" + MAIN +
                  "    time.sleep(1.5 - 1.0 * action.par_index)\n    print('a', action.par_index)\n    return {}\n",
        "b.o.py": "#@ type: compute\nimport sys\n" + MAIN + "    print('b')\n    print('b-err', file=sys.stderr)\n"
                  "    return {}\n",
    })
    out, err, result = engine.run(prog, max_workers=3)
    assert not isinstance(result, RunFailed)
    assert out == b"a 0\na 1\nb\n" and err == b"b-err\n"
    report = result.report  # type: ignore[attr-defined]
    b = next(i for i in report.instances if i.element == "b")
    a0 = next(i for i in report.instances if (i.element, i.index) == ("a", 0))
    assert b.end < a0.end  # b really finished first


def test_a_failing_sibling_stops_the_run_where_program_order_would(engine: Engine, tmp_path: Path) -> None:
    # 'b' fails at once while 'a' (before it in program order) is still working: a sequential run
    # would have printed all of a's output and then failed in b. 'c' may have started before b
    # failed, but nothing it printed is written.
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\nimport time\n" + MAIN + "    time.sleep(1.0)\n    print('a done')\n"
                  "    return {}\n",
        "b.o.py": "#@ type: compute\n" + MAIN + "    print('b starts')\n    raise ValueError('b fails')\n",
        "c.o.py": "#@ type: compute\n" + MAIN + "    print('c ran')\n    return {}\n",
    })
    out, _, result = engine.run(prog, max_workers=2)
    assert isinstance(result, RunFailed)
    assert (result.failure.element, result.failure.kind) == ("b", "ValueError")
    assert out == b"a done\nb starts\n"
    statuses = {i.element: i.status for i in result.report.instances}
    assert statuses["a"] == "ok" and statuses["b"] == "failed"


@pytest.mark.parametrize(("raised", "hinted"), [
    ("class Full(RegionFullError):\n    pass\n", True),  # the allocator's error, or a subclass of it
    ("class RegionFullError(Exception):\n    pass\nFull = RegionFullError\n", False),  # only the same name
])
def test_a_generated_program_that_fills_a_region_is_told_to_profile(engine: Engine, tmp_path: Path, raised: str,
                                                                    hinted: bool) -> None:
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\nfrom scadrt.errors import RegionFullError\n" + raised + MAIN
                  + "    raise Full('no gap of 8 B')\n",
        "sourcemap.json": json.dumps({"source": "app.py", "elements": {}}),  # what makes it generated
    })
    _, _, result = engine.run(prog)
    assert isinstance(result, RunFailed) and "no gap of 8 B" in result.failure.message
    assert ("scadc profile app.py -o app.profile.json" in result.failure.message) is hinted


def test_crash_is_reported_like_an_exception(engine: Engine, tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\nimport os, signal\n" + MAIN + "    os.kill(os.getpid(), signal.SIGKILL)\n",
    })
    _, _, result = engine.run(prog)
    assert isinstance(result, RunFailed)
    assert result.failure.kind == "crash" and "SIGKILL" in result.failure.message
    assert result.report.instances[0].status == "crashed"


def test_retries_rerun_from_the_parents_results(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "attempts"
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ dependents: [b]\n" + MAIN + "    return {'x': 7}\n",
        "b.o.py": "#@ type: compute\n" + MAIN +
                  f"    with open({str(marker)!r}, 'a') as f:\n        f.write('.')\n"
                  f"    if len(open({str(marker)!r}).read()) < 3:\n        raise RuntimeError('flaky')\n"
                  "    print('b got', params['a'][0]['x'])\n    return {}\n",
    })
    _, _, failed = engine.run(prog, retries=1)
    assert isinstance(failed, RunFailed) and failed.failure.message == "flaky"
    marker.unlink()
    out, _, result = engine.run(prog, retries=2)
    assert out == b"b got 7\n"
    assert [(i.element, i.attempt, i.status) for i in result.report.instances] == [  # type: ignore[attr-defined]
        ("a", 0, "ok"), ("b", 0, "failed"), ("b", 1, "failed"), ("b", 2, "ok"),
    ]


def test_non_json_result_is_an_error(engine: Engine, tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {"a.o.py": "#@ type: compute\n" + MAIN + "    return {'x': object()}\n"})
    _, _, result = engine.run(prog)
    assert isinstance(result, RunFailed) and "not JSON-serialisable" in result.failure.message


def test_parallel_memory_instances_are_addressed_by_index(engine: Engine, tmp_path: Path) -> None:
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
    out, _, result = engine.run(prog)
    assert out == b"[10, 11]\n", result
    assert sorted(m.instance for m in result.report.memory) == ["m@0", "m@1"]  # type: ignore[attr-defined]


def test_cli_run_result_report_and_exit_codes(engine: Engine, tmp_path: Path) -> None:
    done = scadc("run", EXAMPLES / "chain", *engine.cli, "--param", "n=3", "--quiet", "--result-json",
                 tmp_path / "r.json", "--report", tmp_path / "run.json", "--html", tmp_path / "run.html")
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

    failed = scadc("run", EXAMPLES / "failing", *engine.cli, "--transport", "tcp")
    assert failed.returncode == 1
    assert failed.stdout == "first: ok\nsecond: checking the value\n"
    assert "element 'second' instance 0 failed" in failed.stderr
    assert "ValueError: expected 0, got 42" in failed.stderr
    assert "scadc: " in failed.stderr and "started" in failed.stderr  # plain progress lines when not a TTY

    bad = scadc("run", EXAMPLES / "chain", *engine.cli, "--param", "oops")
    assert bad.returncode == 2 and "--param expects key=value" in bad.stderr


def _interrupts() -> list[Any]:
    """Each signal with each transport on the local engine; each signal and each transport once on Ray
    in `make test` (the other two under `make fuzz`)."""
    ray = [pytest.mark.xdist_group("ray")]
    cases = [(signal.SIGINT, 130, "shm"), (signal.SIGTERM, 143, "tcp"), (signal.SIGTERM, 143, "shm"),
             (signal.SIGINT, 130, "tcp")]
    return [pytest.param("local", *case) for case in cases] + [
        pytest.param("ray", *case, marks=ray if i < 2 else [*ray, pytest.mark.slow]) for i, case in enumerate(cases)]


@pytest.mark.parametrize(("engine", "sig", "status", "transport"), _interrupts(), indirect=["engine"])
def test_interrupt_leaves_nothing_behind(engine: Engine, tmp_path: Path, sig: signal.Signals, status: int,
                                         transport: str) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\nimport os, time\n" + MAIN +
                  f"    mark = {str(marks)!r} + f'/{{action.par_index}}'\n"
                  "    with open(mark + '.tmp', 'w') as out:\n        out.write(str(os.getpid()))\n"
                  "    os.rename(mark + '.tmp', mark)\n"
                  "    time.sleep(60)\n    return {}\n",
    })
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-t", transport, *engine.cli],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    deadline = time.monotonic() + 60
    while len(list(marks.glob("[01]"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    instances = {int(mark.read_text()) for mark in marks.glob("[01]")}
    assert len(instances) == 2
    below = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    if engine.name == "local":
        assert len(below) >= 4 and instances <= below  # 2 workers + 2 instances (+ a memory server for tcp)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert b"Traceback" not in err
    deadline = time.monotonic() + 10  # a Ray worker killed by the cancel takes its instance with it
    while (alive := [p for p in below | instances if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive == []
    if engine.name == "ray":
        assert engine.idle()  # no task, actor or placement group of the run holds anything


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_a_memory_element_is_released_before_an_unrelated_element_finishes(engine: Engine, tmp_path: Path,
                                                                           transport: str) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nlimits: {mem: 1 MB}\ncorunning: [a]\n",
        "a.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
        "b.o.py": "#@ type: compute\nimport time\n" + MAIN + "    time.sleep(1.5)\n    return {}\n",
    })
    _, _, result = engine.run(prog, transport, max_workers=2)
    report = result.report  # type: ignore[attr-defined]
    (memory,) = report.memory
    a, b = (next(i for i in report.instances if i.element == name) for name in ("a", "b"))
    assert memory.end < b.end - 0.5 and memory.end >= a.start  # freed when its only user was done


def test_numpy_global_generator_is_fresh_in_every_instance(engine: Engine, tmp_path: Path) -> None:
    # Workers import numpy.random before they fork instances (warm_up); unseeded draws must still
    # differ from instance to instance and from run to run, as in separate interpreters.
    draw = "import numpy as np\n" + MAIN + "    print(np.random.randint(2**62), np.random.normal())\n    return {}\n"
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\n#@ dependents: [b]\n" + draw,
        "b.o.py": "#@ type: compute\n" + draw,
    })
    draws = []
    for _ in range(2):
        out, _, result = engine.run(prog, max_workers=1)
        assert not isinstance(result, RunFailed), result
        draws += out.decode().split("\n")[:-1]
    assert len(draws) == 6 and len({d.split()[0] for d in draws}) == 6 and len({d.split()[1] for d in draws}) == 6


# ------------------------------------------------------------ merged memory, profile samples

def test_a_merged_memory_element_is_a_local_transport_and_profile_samples_reach_the_report(
        tmp_path: Path, engine: Engine) -> None:
    # Scad's policy_test/merge4: withMerged memory reached as transport 'mem1', action.profile
    merged = ["type: compute", "withMerged:", "  -", "    action:", "      namespace: whisk.system",
              '      name: "mem1"', "    resources:", "      mem: 8M", "      cpu: 0.5", "    elem: Memory",
              "limits:", "  mem: 256M"]
    prog = write(tmp_path / "merge", {
        "compute1.o.py": "".join(f"#@ {line}\n" for line in merged) + '''
from disagg import *
import numpy as np

def main(args, action):
    action.profile(0)
    trans = action.get_transport('mem1', 'rdma')
    assert isinstance(trans, LibdTransportRDMA)
    trans.reg(1024 * 1024)
    for i in range(8):
        np.asarray(trans.buf)[:] = i
        trans.write(1024 * 1024, addr=i * 1024 * 1024, offset=0)
    action.profile(1.0)
    trans.read(1024 * 1024, 7 * 1024 * 1024)
    action.profile(2)
    print(trans.kind, trans.size, int(np.asarray(trans.buf)[0]))
    return {}
''',
    })
    out, _, result = engine.run(prog, "auto")
    assert not isinstance(result, RunFailed), result
    assert out.decode() == f"local {8 * 2**20} 7\n"
    report = result.report
    (instance,) = report.instances
    points = [(s.point, s.transfer) for s in instance.profile]
    mib = 2**20
    assert points == [(0, ()), (1, (("mem1", 0, 8 * mib),)), (2, (("mem1", mib, 8 * mib),))]
    assert all(s.rss > 8 * mib for s in instance.profile[1:])  # the merged region lives in the instance
    times = [s.time for s in instance.profile]
    assert times == sorted(times)
    data = json.loads(report.to_json())
    assert [p["point"] for p in data["instances"][0]["profile"]] == [0, 1, 2]
