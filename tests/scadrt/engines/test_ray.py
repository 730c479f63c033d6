"""The Ray engine beyond the conformance suite: examples, a private cluster, placement on several
nodes, errors. Every cluster here is real and on 127.0.0.1: the session's (``ray_cluster``), a
private one that ``scadc run --engine ray`` starts itself, and a three-node
``ray.cluster_utils.Cluster`` on this machine."""

from __future__ import annotations

import io
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import psutil
import pytest

import scadrt
from scadrt.engines.ray_cluster import connect
from scadrt.errors import UserError
from scadrt.report import RunFailed, RunReport
from tests import ray_cluster as ray_cluster_connection
from tests.leftovers import nothing_left_behind
from tests.programs import scadc, write
from tests.ray_cluster import Cluster, use_test_environment

pytestmark = pytest.mark.xdist_group("ray")

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "golden" / "monolithic"
MONOLITHIC = ROOT / "examples" / "monolithic"
MAIN = "def main(params, action):\n"
#: examples whose split programs run on Ray in `make test` (all of them under `make fuzz`): a pandas
#: program, one with siblings and one whose memory elements are read row by row
ON_RAY = ("channel_report", "kmeans", "pandas_report")


@cache
def original_output(example: str) -> bytes:
    return subprocess.run([sys.executable, MONOLITHIC / f"{example}.py"], capture_output=True, cwd=ROOT,
                          timeout=300, check=True).stdout


@pytest.mark.parametrize("example", [
    pytest.param(p.name, marks=[] if p.name in ON_RAY else [pytest.mark.slow]) for p in sorted(GOLDEN.iterdir())])
def test_every_split_example_prints_on_ray_what_the_original_prints(example: str, ray_cluster: Cluster) -> None:
    out = io.BytesIO()
    with nothing_left_behind():
        report = scadrt.run(GOLDEN / example, engine="ray", address=ray_cluster.address, stdout=out)
    ray_cluster_connection.connect(ray_cluster.address)  # the next runs go through this connection
    assert out.getvalue() == original_output(example)
    assert all(i.node for i in report.instances) and all(m.node for m in report.memory)


def test_a_private_cluster_listens_on_loopback_only_and_leaves_nothing(tmp_path: Path) -> None:
    # no --address: the run starts its own cluster and stops it; while it runs, every socket of every
    # process below `scadc run` listens on 127.0.0.1 only; after it, none of them is left, and no
    # token file was written in the user's home
    home, started, release = tmp_path / "home", tmp_path / "started", tmp_path / "release"
    home.mkdir()
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\nimport os, time\n" + MAIN +
                  "    t = action.get_transport('m', 'rdma')\n    t.reg(1)\n    t.buf[0] = 7\n    t.write(1, 0)\n"
                  f"    open({str(started)!r}, 'w').close()\n"
                  f"    while not os.path.exists({str(release)!r}):\n        time.sleep(0.05)\n"
                  "    print('a done')\n    return {}\n",
    })
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(home)}
    with nothing_left_behind():
        proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "--engine", "ray", "-q"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
        try:
            below, listening = _watch_until(started, proc)
        finally:
            release.touch()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out == b"a done\n"
        assert listening and all(_loopback(address) for address in listening), listening
        alive = [p for p in below if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert alive == []
    assert not (home / ".ray").exists()


def test_a_private_cluster_keeps_its_logs_when_a_process_of_the_run_crashed(tmp_path: Path) -> None:
    # the reason a Ray worker or actor died is only in the cluster's logs, which went with its
    # session directory; a crash (or a lost memory element) now keeps them, privately, and says where
    prog = write(tmp_path / "p", {"a.o.py": "#@ type: compute\nimport os, signal\n" + MAIN +
                                  "    os.kill(os.getpid(), signal.SIGKILL)\n"})
    short = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))  # Ray's socket paths must stay under 108 bytes
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"TMPDIR": str(short)}
        done = subprocess.run([sys.executable, "-m", "scadc", "run", str(prog), "--engine", "ray", "-q"],
                              capture_output=True, text=True, cwd=ROOT, env=env, timeout=180, check=False)
        assert done.returncode == 1, done.stderr
        assert "crash" in done.stderr, done.stderr
        kept = [Path(line.rsplit(" ", 1)[1]) for line in done.stderr.splitlines()
                if line.startswith("scadrt: the private Ray cluster's logs are kept in ")]
        assert len(kept) == 1 and kept[0].parent == short, done.stderr
        assert kept[0].stat().st_mode & 0o777 == 0o700
        logs = {f.name for f in kept[0].rglob("*") if f.is_file()}
        assert "raylet.out" in logs and any(name.startswith("python-core-worker-") for name in logs), sorted(logs)
        assert not any(f.is_socket() for f in kept[0].rglob("*"))
        assert sorted(short.iterdir()) == kept  # the session itself is gone
    finally:
        shutil.rmtree(short, ignore_errors=True)


def _watch_until(mark: Path, proc: subprocess.Popen[bytes]) -> tuple[set[int], set[str]]:
    """The processes below ``proc`` and what they listen on (``ss -ltnp``), sampled until ``mark``
    exists (the run's element has reached its memory element and waits)."""
    below: set[int] = set()
    listening: set[str] = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            below |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            break
        ss = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
        for line in ss.splitlines():
            if {int(pid) for pid in re.findall(r"pid=(\d+)", line)} & below:
                listening.add(line.split()[3])
        if mark.exists():
            return below, listening
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    _, err = proc.communicate()
    raise AssertionError(f"the run's element never reached its memory element (exit status {proc.returncode}):\n"
                         f"{err.decode(errors='replace')}")


def _loopback(address: str) -> bool:
    """Whether a listening address from ``ss`` is on loopback (gRPC binds ``[::ffff:127.0.0.1]``, the
    IPv4 loopback address on an IPv6 socket; ``0.0.0.0``, ``*`` or ``[::]`` are every interface)."""
    host = address.rpartition(":")[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_an_element_no_node_can_hold_is_refused_before_anything_runs(tmp_path: Path, ray_cluster: Cluster) -> None:
    prog = write(tmp_path / "p", {
        "a.o.py": "#@ type: compute\n#@ dependents: [b]\n" + MAIN + "    print('a ran')\n    return {}\n",
        "b.o.py": "#@ type: compute\n#@ limits: {cpu: 64}\n" + MAIN + "    return {}\n",
    })
    out = io.BytesIO()
    ray_cluster_connection.connect(ray_cluster.address)
    with pytest.raises(UserError, match=r"element 'b' asks for 64 CPU and 128 MiB \(its limits\), more than any "
                                        r"node of the Ray cluster has \(the largest node has 4 CPU"):
        scadrt.run(prog, engine="ray", stdout=out)
    assert out.getvalue() == b""  # refused before a ran, instead of waiting for ever for b
    with pytest.raises(UserError, match=r"connected to the Ray cluster at .* already; run there"):
        scadrt.run(prog, engine="ray", address="127.0.0.1:1")  # a process has one connection


def test_a_memory_element_whose_actor_dies_stops_the_run_and_is_named(tmp_path: Path,
                                                                       ray_cluster: Cluster) -> None:
    # the element kills the process of its memory element's actor (a node losing it) and waits:
    # the engine sees the actor die, stops the run and names the memory element, not the element
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\nimport os, signal, time\nimport psutil\n" + MAIN +
                  "    t = action.get_transport('m', 'rdma')\n    t.reg(1)\n    t.write(1, 0)\n"
                  "    for p in psutil.process_iter(['cmdline']):\n"
                  "        if 'MemoryHost' in ' '.join(p.info['cmdline'] or []):\n"
                  "            os.kill(p.pid, signal.SIGKILL)\n"
                  "    time.sleep(30)\n    return {}\n",
    })
    ray_cluster_connection.connect(ray_cluster.address)
    start = time.monotonic()
    with nothing_left_behind(), pytest.raises(RunFailed) as failed:
        scadrt.run(prog, engine="ray", stdout=io.BytesIO())
    assert time.monotonic() - start < 20  # at once, not when the element gives up
    failure = failed.value.failure
    assert (failure.element, failure.kind, failure.memory) == ("m", "MemoryLost", "m")
    assert failure.message.startswith("memory element 'm' died: its actor died (")


def test_options_that_do_not_go_with_the_engine_are_user_errors(tmp_path: Path) -> None:
    chain = ROOT / "examples" / "elements" / "chain"
    refused = scadc("run", chain, "--engine", "ray", "--address", "127.0.0.1:1")
    assert refused.returncode == 2
    assert "cannot connect to the Ray cluster at 127.0.0.1:1: Connection refused" in refused.stderr
    assert "Traceback" not in refused.stderr
    local = scadc("run", chain, "--address", "127.0.0.1:1")
    assert local.returncode == 2 and "--address names a Ray cluster: use it with --engine ray" in local.stderr
    transport = scadc("run", chain, "--engine", "ray", "--transport", "local")
    assert transport.returncode == 2 and "--transport local is not one of auto, shm, tcp" in transport.stderr


def test_the_clusters_own_messages_go_to_stderr_while_a_run_uses_it(ray_cluster: Cluster,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Ray's driver prints the raylet's messages ("A worker died or was killed while executing a
    # task", seen once at a run's teardown) to sys.stdout, where the program's output goes
    ray_cluster_connection.connect(ray_cluster.address)
    import ray._private.worker as ray_worker

    message = {"lines": ["a worker died"], "pid": "raylet", "is_err": False}
    with connect():
        ray_worker.print_to_stdstream(dict(message), ignore_prefix=False)
    during = capsys.readouterr()
    assert "a worker died" not in during.out and "a worker died" in during.err
    ray_worker.print_to_stdstream({**message, "lines": ["later"]}, ignore_prefix=False)
    assert "later" in capsys.readouterr().out  # Ray's own behaviour again outside a run


def test_an_address_where_something_else_listens_is_refused_at_once() -> None:
    # ray.init retried such an address for minutes; a server that is not a GCS answers the HTTP/2
    # preface with something else than a SETTINGS frame
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.getsockname()[1]}"
    try:
        started = time.monotonic()
        refused = scadc("run", ROOT / "examples" / "elements" / "chain", "--engine", "ray", "--address", address)
    finally:
        server.close()
    assert refused.returncode == 2 and time.monotonic() - started < 30
    assert f"{address} does not answer as a Ray cluster's GCS" in refused.stderr and "Traceback" not in refused.stderr


def test_a_run_on_an_existing_cluster_does_not_force_its_driver_onto_loopback() -> None:
    # with --address the driver must be reachable from the cluster's other nodes, so importing ray
    # for the engine leaves Ray's own choice of address alone (only the private cluster is loopback)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    probe = ("import os\nfrom scadrt.engines.ray_cluster import import_ray\nimport_ray()\n"
             "from ray._private import ray_constants\n"
             "print(os.environ.get('RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'), ray_constants.ENABLE_RAY_CLUSTER,"
             " os.environ.get('RAY_USAGE_STATS_ENABLED'))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "True", "0"]


# ---------------------------------------------------------------------------------- several nodes

GiB = 2**30


@pytest.fixture(scope="session")
def three_nodes() -> Iterator[tuple[str, dict[str, str]]]:
    """A three-node cluster on this machine (``ray.cluster_utils.Cluster``): a small head (no room
    for a region) and two workers of 2 CPU and 2 GiB, each with a custom resource naming it.
    Yields its address and node name → node id. Session-scoped: the xdist group may interleave
    this module's tests with others', and a module fixture would start it again each time."""
    use_test_environment()
    import ray
    from ray.cluster_utils import Cluster as RayCluster

    ray_cluster_connection.disconnect()  # from the session's cluster, if this process was connected

    small = {"object_store_memory": 80 * 2**20, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    cluster = RayCluster(initialize_head=True, head_node_args={**small, "num_cpus": 1, "memory": GiB // 4,
                                                              "resources": {"head": 1}})
    for name in ("left", "right"):
        cluster.add_node(**small, num_cpus=2, memory=2 * GiB, resources={name: 1})
    try:
        cluster.wait_for_nodes()
        ray_cluster_connection.connect(cluster.address)
        ids = {name: node["NodeID"] for node in ray.nodes() if node["Alive"]
               for name in ("head", "left", "right") if name in node["Resources"]}
        assert len(ids) == 3
        yield cluster.address, ids
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def nodes(three_nodes: tuple[str, dict[str, str]]) -> dict[str, str]:
    """The three-node cluster, this process connected to it as its driver; node name → node id."""
    address, ids = three_nodes
    ray_cluster_connection.connect(address)
    return ids


def run_here(prog: Path, **options: Any) -> tuple[str, RunReport]:
    out = io.BytesIO()
    report = scadrt.run(prog, engine="ray", stdout=out, **options)  # the cluster this process is connected to
    return out.getvalue().decode(), report


def test_a_memory_element_and_its_corunning_elements_share_a_node(tmp_path: Path, nodes: dict[str, str]) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [w, r]\nlimits: {mem: 1 GiB}\n",
        "w.o.py": "#@ type: compute\n#@ dependents: [r]\n" + MAIN +
                  "    t = action.get_transport('m', 'rdma')\n    t.reg(8)\n    t.buf[:8] = b'together'\n"
                  "    t.write(8, 0)\n    return {}\n",
        "r.o.py": "#@ type: compute\n" + MAIN +
                  "    t = action.get_transport('m', 'rdma')\n    t.reg(8)\n    t.read(8, 0)\n"
                  "    print(bytes(t.buf[:8]).decode())\n    return {}\n",
    })
    out, report = run_here(prog)
    assert out == "together\n"
    (memory,) = report.memory
    assert memory.node in (nodes["left"], nodes["right"])  # the head has no room for 1 GiB
    assert {i.node for i in report.instances} == {memory.node}
    assert all(set(i.transfer) == {"shm"} for i in report.instances)  # on one node: the segment, no tcp


def test_memory_elements_that_do_not_fit_one_node_are_spread_and_reached_over_tcp(
        tmp_path: Path, nodes: dict[str, str]) -> None:
    # two regions of 1.5 GiB, one user of both: no node holds 3 GiB, so they go to two nodes, and the
    # user reaches the one that is not on its node over tcp
    region = "type: memory\ncorunning: [c]\nlimits: {mem: 1.5 GiB}\n"
    prog = write(tmp_path / "p", {
        "a.o.yaml": region, "b.o.yaml": region,
        "c.o.py": "#@ type: compute\n" + MAIN +
                  "    got = []\n    for name, value in (('a', 1), ('b', 2)):\n"
                  "        t = action.get_transport(name, 'rdma')\n        t.reg(1)\n        t.buf[0] = value\n"
                  "        t.write(1, 0)\n        t.buf[0] = 0\n        t.read(1, 0)\n        got.append(t.buf[0])\n"
                  "    print(got)\n    return {}\n",
    })
    out, report = run_here(prog)
    assert out == "[1, 2]\n"
    placed = {m.element: m.node for m in report.memory}
    assert {placed["a"], placed["b"]} == {nodes["left"], nodes["right"]}
    (user,) = report.instances
    assert set(user.transfer) == {"shm", "tcp"}
