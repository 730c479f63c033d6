"""Issue 10 against `scadc run` / `scadc run-element` and the local engine: tokens, argv, output
paths, parallelism, and lifetime (nothing a run starts outlives it, even a SIGKILL of `scadc run`;
a memory element that fails to start or dies is named as the cause).

Every test runs the real command line (or the real memory backend) with real memory servers on
127.0.0.1; an "attacker" here is a client of this uid that does not hold the run's token.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import zmq

from scadrt.dag import load_program
from scadrt.engines.local import LocalEngine
from scadrt.engines.memory import TcpMemory, memory_backend
from scadrt.engines.server_fork import PROCESS_NAME
from scadrt.errors import AccessDeniedError
from scadrt.transports.launcher import spawn_memory_server
from scadrt.transports.protocol import HEADER_SIZE, Header, Op, Status, pack_request
from scadrt.transports.shm import SharedRegion
from scadrt.transports.tcp import TcpTransport
from tests.leftovers import shm_segments
from tests.programs import scadc, write

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "elements"
MAIN = "def main(params, action):\n"


def wait_for(path: Path, proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def paused_run(tmp_path: Path, before: str, after: str) -> tuple[Path, Path]:
    """A program of a 1 MB memory element 'm' and an element 'a' (its transport to m is ``mem``)
    that runs ``before``, writes ``note`` to marks/note, waits for marks/go, then runs ``after``.
    Returns the program and marks/."""
    marks = tmp_path / "marks"
    marks.mkdir()
    mark = f"{str(marks)!r} + '/note'"
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\nimport os, time\n" + MAIN + "    mem = action.get_transport('m')\n" + before +
                  f"    with open({mark} + '.tmp', 'w') as f:\n        f.write(note)\n"
                  f"    os.rename({mark} + '.tmp', {mark})\n"
                  f"    while not os.path.exists({str(marks)!r} + '/go'):\n        time.sleep(0.02)\n"
                  + after + "    return {}\n",
    })
    return prog, marks


def is_memory_server(process: psutil.Process) -> bool:
    """Launched (``python -m scadrt.transports.memory_server``) or forked by the engine (its name)."""
    return process.name() == PROCESS_NAME or "scadrt.transports.memory_server" in " ".join(process.cmdline())


def memory_servers(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if is_memory_server(p)]


def zmq_reply(url: str, frames: list[bytes]) -> tuple[int, int]:
    """Send one request over zmq; return the reply's (status, length)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 10_000)
        sock.connect(url)
        sock.send_multipart(frames)
        reply = sock.recv_multipart()
    finally:
        sock.close(linger=0)
    _, _, status, length = Header.decode_reply(reply[0])
    return status, length


def stream_reply(port: int, request: bytes) -> int:
    """Send one request over the stream channel (a plain TCP connection); return the reply's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        head = b""
        while len(head) < HEADER_SIZE:
            chunk = conn.recv(HEADER_SIZE - len(head))
            assert chunk, "the stream channel closed without a reply"
            head += chunk
    return Header.decode_reply(head)[2]


# -- item 2: a tcp run's memory servers serve only the run's own clients ------------------------------


def test_a_tcp_run_refuses_clients_without_its_token(tmp_path: Path) -> None:
    # the note: the url and the token the engine handed this instance (its only copy outside the server)
    prog, marks = paused_run(tmp_path, "    mem.reg(8)\n    mem.buf[:8] = b'original'\n    mem.write(8, 0)\n"
                                       "    note = mem.url + ' ' + mem._token.decode()\n",
                             "    mem.buf[:8] = b'--------'\n    mem.read(8, 0)\n"
                             "    print(bytes(mem.buf[:8]).decode())\n")
    report, page = tmp_path / "run.json", tmp_path / "run.html"
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-t", "tcp", "-q",
                             "--report", str(report), "--html", str(page)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        wait_for(marks / "note", proc)
        url, token = (marks / "note").read_text().split()
        (server,) = memory_servers(proc.pid)
        assert len(token) >= 32
        argv = [" ".join(p.cmdline()) for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]]
        assert not any(token in a for a in argv)

        for guess in (None, "guess"):
            with pytest.raises(AccessDeniedError):
                TcpTransport(url, token=guess, connect_timeout=5).close()
        write_request = pack_request(Op.WRITE, 7, 0, 8, b"")
        assert zmq_reply(url, [write_request, b"attacker"])[0] == Status.UNAUTHORIZED
        assert zmq_reply(url, [pack_request(Op.READ, 8, 0, 8, b"")])[0] == Status.UNAUTHORIZED
        zmq_port = int(url.rpartition(":")[2])
        (stream_port,) = {c.laddr.port for c in server.net_connections("tcp")
                          if c.status == psutil.CONN_LISTEN and c.laddr.port != zmq_port}
        assert stream_reply(stream_port, write_request + b"attacker") == Status.UNAUTHORIZED
        assert stream_reply(stream_port, pack_request(Op.READ, 9, 0, 8, b"")) == Status.UNAUTHORIZED
    finally:
        (marks / "go").touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == b"original\n"  # nothing the attacker sent was written
    for path in (report, page):
        assert token not in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    (memory,) = json.loads(report.read_text())["memory"]
    assert memory["address"].startswith("tcp;url,tcp://127.0.0.1:") and memory["address"].endswith(";token,<redacted>;")


def test_every_tcp_memory_server_gets_its_own_token(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nparallelism: 2\nlimits: {mem: 1 MB}\ncorunning: [c]\n",
        "c.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
    })
    program = load_program(prog)
    backend = TcpMemory()
    try:
        started = backend.start([program.elements["m"]])
        pairs = [(d.partition(";url,")[2].partition(";")[0], d.partition(";token,")[2].rstrip(";"))
                 for d in started["m"].values()]
        assert len({token for _, token in pairs}) == 2
        (url_0, token_0), (url_1, token_1) = pairs
        for url, own, other in ((url_0, token_0, token_1), (url_1, token_1, token_0)):
            TcpTransport(url, token=own, connect_timeout=5).close()
            with pytest.raises(AccessDeniedError):
                TcpTransport(url, token=other, connect_timeout=5).close()
    finally:
        backend.close()


# -- item 3: tokens never on a command line -------------------------------------------------------------


def test_run_element_takes_its_token_from_a_file_or_the_environment_never_from_argv(tmp_path: Path) -> None:
    secret = "s3cret-token-of-this-test"
    fanout, results = EXAMPLES / "fanout", tmp_path / "results"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    with spawn_memory_server("64MiB", token=secret) as server:
        port = server.url.rpartition(":")[2]

        in_argv = scadc("run-element", fanout / "produce.o.py", "-m", f"mem:{port}:tcp:token,{secret}", "-d", results)
        assert in_argv.returncode == 2, in_argv.stderr
        assert "SCAD_TOKEN" in in_argv.stderr and "--token-file" in in_argv.stderr
        assert secret not in in_argv.stderr and "Traceback" not in in_argv.stderr

        token_file.chmod(0o644)
        loose = scadc("run-element", fanout / "produce.o.py", "-m", f"mem:{port}", "--token-file", token_file,
                      "-d", results)
        assert loose.returncode == 2 and "chmod 600" in loose.stderr, loose.stderr
        assert not results.exists()

        token_file.chmod(0o600)
        produced = scadc("run-element", fanout / "produce.o.py", "-m", f"mem:{port}", "--token-file", token_file,
                         "-p", "n=30", "-d", results)
        assert produced.returncode == 0, produced.stderr
        env = {**os.environ, "SCAD_TOKEN": secret}
        for i in range(3):
            squared = scadc("run-element", fanout / "square.o.py", "-m", f"mem:{port}", "-i", str(i), "-d", results,
                            env=env)
            assert squared.returncode == 0, squared.stderr
        without = scadc("run-element", fanout / "collect.o.py", "-m", f"mem:{port}", "-d", results,
                        env={k: v for k, v in os.environ.items() if k != "SCAD_TOKEN"})
        assert without.returncode == 1 and "AccessDeniedError" in without.stderr
        collected = scadc("run-element", fanout / "collect.o.py", "-m", f"mem:{port}", "--token-file", token_file,
                          "-d", results)
        assert collected.stdout == "collect: 3 parts, sum of squares = 8555, parts agree: True\n", collected.stderr
    # run data stays with its owner
    assert stat.S_IMODE(results.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in results.iterdir())


# -- item 7: parallelism is bounded, memory servers start a few at a time ---------------------------------


def test_tcp_memory_starts_a_bounded_number_of_servers_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A forked server listens within a few milliseconds, often between two samples; each one here
    # waits 0.2 s first (the fork runs this process's patched module), so every start is seen.
    from scadrt.transports import memory_server

    serve = memory_server.main

    def slow_main(*args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return serve(*args, **kwargs)

    monkeypatch.setattr(memory_server, "main", slow_main)
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nparallelism: 6\nlimits: {mem: 1 MB}\ncorunning: [c]\n",
        "c.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
    })
    program = load_program(prog)
    most, done = [0], threading.Event()

    def sample() -> None:  # a server counts as starting from its exec until it listens
        me = psutil.Process()
        while not done.is_set():
            starting = 0
            for child in me.children():
                try:
                    if is_memory_server(child) and not any(
                            c.status == psutil.CONN_LISTEN for c in child.net_connections("tcp")):
                        starting += 1
                except psutil.Error:
                    pass
            most[0] = max(most[0], starting)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    backend = TcpMemory(max_starting=2)
    sampler.start()
    try:
        started = backend.start([program.elements["m"]])
    finally:
        done.set()
        sampler.join()
        backend.close()
    assert len(set(started["m"].values())) == 6
    assert 1 <= most[0] <= 2


def test_run_bounds_parallelism_and_takes_max_parallelism(tmp_path: Path) -> None:
    huge = write(tmp_path / "huge", {"a.o.py": "#@ type: compute\n#@ parallelism: 99999999999999999999\n" + MAIN +
                                     "    return {}\n"})
    done = scadc("run", huge, "-q")
    assert done.returncode == 2 and "parallelism" in done.stderr and "Traceback" not in done.stderr, done.stderr
    many = write(tmp_path / "many", {"a.o.py": "#@ type: compute\n#@ parallelism: 5\n" + MAIN + "    return {}\n"})
    small = scadc("run", many, "-q", "--max-parallelism", "4")
    assert small.returncode == 2 and "--max-parallelism" in small.stderr, small.stderr
    assert scadc("run", many, "-q", "--max-parallelism", "5").returncode == 0
    element = scadc("run-element", many / "a.o.py", "--max-parallelism", "4", "-d", tmp_path / "r")
    assert element.returncode == 2 and "--max-parallelism" in element.stderr, element.stderr


# -- item 13: output paths are checked before the run, and a finished run's report is never lost ----------


@pytest.mark.parametrize("option", ["--report", "--html", "--result-json"])
def test_unwritable_output_paths_fail_before_the_run(tmp_path: Path, option: str) -> None:
    ran = tmp_path / "ran"
    prog = write(tmp_path / "p", {"a.o.py": "#@ type: compute\n" + MAIN + f"    open({str(ran)!r}, 'w').close()\n"
                                  "    return {}\n"})
    for target in (tmp_path / "missing" / "out", tmp_path):
        done = scadc("run", prog, "-q", option, target)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"scadc: error: {option} ") and "Traceback" not in done.stderr
        assert not ran.exists()
    if os.geteuid() != 0:  # root writes into a read-only directory anyway
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        done = scadc("run", prog, "-q", option, locked / "out")
        assert done.returncode == 2 and not ran.exists(), done.stderr


def test_a_finished_runs_report_is_never_lost(tmp_path: Path) -> None:
    spare = tmp_path / "tmp"
    spare.mkdir()
    done = scadc("run", EXAMPLES / "chain", "-q", "--param", "n=3", "--report", "/dev/full",
                 "--result-json", "/dev/stdout", env={**os.environ, "TMPDIR": str(spare)})
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("first: made 3 numbers\n") and json.loads(done.stdout.split("\n", 3)[3]) == {
        "total": 14}
    (kept,) = spare.iterdir()
    assert done.stderr == f"scadc: cannot write --report '/dev/full' (No space left on device); it is in {kept}\n"
    assert json.loads(kept.read_text())["status"] == "ok"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


# -- item 10, 11, 15: lifetime ---------------------------------------------------------------------------


def alive(pids: set[int]) -> set[int]:
    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    return {pid for pid in pids if running(pid)}


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_sigkill_of_scadc_run_leaves_no_process_segment_or_temp_dir(tmp_path: Path, transport: str) -> None:
    marks, spare = tmp_path / "marks", tmp_path / "tmp"
    marks.mkdir()
    spare.mkdir()
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nparallelism: 2\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\n#@ parallelism: 2\nimport time\n" + MAIN +
                  "    mem = action.get_transport(f'm@{action.par_index}')\n    mem.reg(1)\n    mem.read(1, 0)\n"
                  f"    open({str(marks)!r} + f'/{{action.par_index}}', 'w').close()\n    time.sleep(60)\n"
                  "    return {}\n",
    })
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-t", transport, "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                            env={**os.environ, "TMPDIR": str(spare)})
    try:
        deadline = time.monotonic() + 60
        while len(list(marks.iterdir())) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        tree = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        segments = {s for s in shm_segments() if s.startswith(f"scad-{proc.pid}-")}
        assert len(tree) >= 4 + (2 if transport == "tcp" else 0)  # workers, instances (, servers)
        assert len(segments) == (2 if transport == "shm" else 0)
        assert list(spare.iterdir())  # the run's temporary directory
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and (alive(tree) or segments & shm_segments() or list(spare.iterdir())):
        time.sleep(0.05)
    left = alive(tree)
    for pid in left:  # so that a failure here leaves nothing running either
        psutil.Process(pid).kill()
    assert left == set()
    assert segments & shm_segments() == set()
    assert list(spare.iterdir()) == []


def test_a_watcher_removes_nothing_after_a_clean_run(tmp_path: Path) -> None:
    """The watcher cleans only what its own run left: a run that ends normally changes nothing else."""
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\n" + MAIN +
                  "    mem = action.get_transport('m')\n    mem.reg(1)\n    mem.read(1, 0)\n    return {}\n",
    })
    program = load_program(prog)
    with SharedRegion(4096) as mine, LocalEngine(memory=memory_backend("shm", program)) as engine:
        engine.run(program)
        engine.run(program)
        assert mine.name in shm_segments()


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_a_memory_element_that_cannot_start_is_named(tmp_path: Path, transport: str) -> None:
    prog = write(tmp_path / "p", {
        "first.o.py": "#@ type: compute\n#@ dependents: [second]\n" + MAIN + "    print('first')\n    return {}\n",
        "m.o.yaml": "type: memory\ncorunning: [second]\nlimits: {mem: 999999 TB}\n",
        "second.o.py": "#@ type: compute\n" + MAIN + "    print('second')\n    return {}\n",
    })
    done = scadc("run", prog, "-q", "-t", transport, "--report", tmp_path / "run.json")
    assert done.returncode == 1, done.stderr
    assert done.stdout == "first\n"
    assert "scadc: memory element 'm' could not start: " in done.stderr
    assert "KeyError" not in done.stderr
    if transport == "shm":
        assert "Traceback" not in done.stderr and "999999 TiB" in done.stderr, done.stderr
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["status"] == "failed" and report["failure"].startswith("m[0]: ")


def test_a_memory_element_beyond_the_open_file_limit_is_named(tmp_path: Path) -> None:
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\nparallelism: 300\ncorunning: [a]\nlimits: {mem: 4 KB}\n",
        "a.o.py": "#@ type: compute\n" + MAIN + "    return {}\n",
    })

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    done = subprocess.run([sys.executable, "-m", "scadc", "run", str(prog), "-q", "--max-parallelism", "300"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, preexec_fn=few_files, check=False)
    assert done.returncode == 1, done.stderr
    assert "scadc: memory element 'm' could not start: instance m@" in done.stderr
    assert "Too many open files" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_memory_server_that_dies_mid_run_is_named(tmp_path: Path) -> None:
    prog, marks = paused_run(tmp_path, "    mem.reg(8)\n    mem.write(8, 0)\n    print('a: wrote')\n    note = ''\n",
                             "    mem.read(8, 0)\n")
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-t", "tcp", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        wait_for(marks / "note", proc)
        (server,) = memory_servers(proc.pid)
        server.kill()
    finally:
        (marks / "go").touch()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert out == ""  # 'a' did not finish: like any instance an abort stops, its output is dropped
    assert "scadc: memory element 'm' died: its memory server was killed by SIGKILL" in err
    assert "ConnectionLostError" not in err and "Traceback" not in err, err


def test_a_removed_segment_is_named_when_an_instance_cannot_attach(tmp_path: Path) -> None:
    go = tmp_path / "go"
    prog = write(tmp_path / "p", {
        "m.o.yaml": "type: memory\ncorunning: [a]\nlimits: {mem: 1 MB}\n",
        "a.o.py": "#@ type: compute\nimport os, time\n" + MAIN +
                  f"    while not os.path.exists({str(go)!r}):\n        time.sleep(0.02)\n"
                  "    action.get_transport('m')\n    return {}\n",
    })
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (mine := {s for s in shm_segments() if s.startswith(f"scad-{proc.pid}-")}):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        (segment,) = mine
        os.unlink(f"/dev/shm/{segment}")
    finally:
        go.touch()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert f"scadc: memory element 'm' died: its shared-memory segment /dev/shm/{segment} was removed" in err
    assert "Traceback" not in err, err
