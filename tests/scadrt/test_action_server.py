"""``scadc serve-action`` driven over real HTTP on 127.0.0.1, the way OpenWhisk's invoker drives a
runtime container: ``/init`` once, ``/run`` with transports, ``PUT /action/<aid>/transport/<name>``
to wire a compute element to a memory element served by another action process."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from scadrt import load_program
from scadrt.element import element_params, instance_name
from scadrt.openwhisk.server import MARKER

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
FANOUT = ROOT / "examples" / "elements" / "fanout"

Reply = tuple[int, dict[str, Any]]


def request(method: str, url: str, body: object = None, *, raw: bytes | None = None, timeout: float = 60) -> Reply:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


class ActionProcess:
    """One ``scadc serve-action`` process; its stdout and stderr go to files."""

    def __init__(self, tmp: Path, *args: str) -> None:
        tmp.mkdir(mode=0o700)
        self.tmp = tmp
        self.workdir = tmp / "tmpdir"
        self.workdir.mkdir(mode=0o700)
        self.out_path, self.err_path = tmp / "stdout", tmp / "stderr"
        env = {**os.environ, "TMPDIR": str(self.workdir)}
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "scadc", "serve-action", "--listen", "127.0.0.1:0", *args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while "listening on " not in self.stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"serve-action did not start: {self.stderr()}")
            time.sleep(0.02)
        self.url = self.stderr().split("listening on ", 1)[1].split()[0]

    def stdout(self) -> str:
        return self.out_path.read_text()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def post(self, path: str, body: object = None, **kw: Any) -> Reply:
        return request("POST", self.url + path, body, **kw)

    def put(self, path: str, body: object) -> Reply:
        return request("PUT", self.url + path, body)

    def get(self, path: str) -> Reply:
        return request("GET", self.url + path)

    def delete(self, path: str) -> Reply:
        return request("DELETE", self.url + path)

    def init(self, name: str, code: str, **value: Any) -> Reply:
        return self.post("/init", {"value": {"name": name, "main": "main", "code": code, "binary": False, **value}})

    def activations(self, stream: str = "stdout") -> list[str]:
        """The log text of each finished activation (the marker line ends each)."""
        text = self.stdout() if stream == "stdout" else self.stderr()
        return text.split(MARKER + "\n")[:-1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., ActionProcess]]:
    """Start serve-action processes; every one is stopped (SIGTERM) at the end, and its private
    directory must be gone."""
    started: list[ActionProcess] = []

    def launch(*args: str) -> ActionProcess:
        action = ActionProcess(tmp_path / f"action{len(started)}", *args)
        started.append(action)
        return action

    yield launch
    for action in started:
        action.stop()
    for action in started:
        assert action.proc.returncode == 0, action.stderr()
        assert list(action.workdir.iterdir()) == [], "the runtime left files behind"


def in_thread(call: Callable[[], Reply]) -> Callable[[], Reply]:
    """Run ``call`` in a thread; the returned function joins it and gives its reply."""
    box: list[Reply] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()

    def join() -> Reply:
        thread.join(120)
        assert box, "the request did not finish"
        return box[0]

    return join


def served_address(memory: ActionProcess, aid: str, name: str) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, reply = memory.get(f"/action/{aid}/messages")
        if status == 200 and name in reply["messages"]:
            return str(reply["messages"][name])
        time.sleep(0.02)
    raise AssertionError("the memory action never said where it serves")


def zipped(files: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode()


COMPUTE = """\
import os

def main(params, action):
    if params.get("fail"):
        raise ValueError("asked to fail")
    print("ran with", sorted(params))
    return {"echo": params, "aid": os.environ["__OW_ACTIVATION_ID"], "ns": os.environ.get("__OW_NAMESPACE"),
            "flag": os.environ.get("SCAD_TEST_FLAG")}
"""


def element_codes(source: str) -> dict[str, str]:
    """The fanout example's code per element: its files, or the objects of ``scadc gen``'s JSON (what
    Scad's controller hands the runtime: compute code without the header, the memory program)."""
    if source == "files":
        return {path.name.partition(".")[0]: path.read_text() for path in FANOUT.glob("*.o.*")}
    done = subprocess.run([sys.executable, "-m", "scadc", "gen", str(FANOUT)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return {o["name"]: o["exec"]["code"] for o in json.loads(done.stdout)["functions"][0]["objects"]}


@pytest.mark.parametrize("source", ["files", "gen"])
def test_compute_and_memory_actions_in_two_processes(start: Callable[..., ActionProcess], source: str) -> None:
    """The fanout example as the invoker runs it: the memory element in one action process, its
    compute elements in others, each wired to it by PUT once its /run has started."""
    codes = element_codes(source)
    memory = start()
    assert memory.init("mem", codes["mem"]) == (200, {"ok": True, "element": "mem", "kind": "memory"})
    # the invoker's server durl carries the size of the action's memory limit
    serving = in_thread(lambda: memory.post("/run", {"value": {}, "activation_id": "m1", "transports": [
        f"mem;rdma_tcp_server;url,tcp://127.0.0.1:0;size,{64 << 20};"]}))
    address = served_address(memory, "m1", "mem")
    assert address.startswith("url,tcp://127.0.0.1:")

    program = load_program(FANOUT)
    results: dict[str, list[Any]] = {}
    for name in program.topological_order():
        spec = program.elements[name]
        action = start()
        assert action.init(name, codes[name])[0] == 200
        results[name] = []
        for index in range(spec.parallelism):
            aid = instance_name(name, index, spec.parallelism).replace("@", "-")
            body = {"value": element_params(spec.parents, {"n": 3000}, results), "activation_id": aid, "par": index,
                    "transports": ["mem;rdma_tcp;"]}
            done = in_thread(lambda action=action, body=body: action.post("/run", body))
            # the element now waits for its transport's address (or, if its /run is not there yet, the
            # runtime keeps the address for it)
            time.sleep(0.2)
            assert action.put(f"/action/{aid}/transport/mem", {"durl": address})[1]["ok"]
            status, result = done()
            assert status == 200, result
            results[name].append(result)
        logs = action.activations()
        assert len(logs) == spec.parallelism and all(log.strip() for log in logs)
    assert results["collect"] == [{"total": float(sum(i * i for i in range(3000)))}]
    assert "parts agree: True" in logs[0]

    assert memory.delete("/action/m1") == (200, {"ok": True})
    status, reply = serving()
    assert status == 200 and reply["memory"] == "mem" and reply["served"] == {"mem": address}
    assert memory.activations()  # the memory activation ended with its markers too
    assert memory.get("/action/m1/messages")[0] == 404


def test_reinit_is_refused_and_markers_end_each_activation(start: Callable[..., ActionProcess]) -> None:
    action = start()
    assert action.init("ns/app/echo", COMPUTE, env={"SCAD_TEST_FLAG": "on"})[0] == 200
    status, reply = action.init("echo", "def main(params, action):\n    return {}\n")
    assert status == 403 and "already initialized" in reply["error"]
    status, reply = action.post("/run", {"value": {"x": 1}, "activation_id": "a1", "namespace": "guest"})
    assert (status, reply) == (200, {"echo": {"x": 1}, "aid": "a1", "ns": "guest", "flag": "on"})
    assert action.stdout().endswith("ran with ['x']\n" + MARKER + "\n")
    assert action.stderr().endswith(MARKER + "\n")
    assert len(action.activations("stderr")) == 1


def test_profile_samples_are_posted_where_the_run_says_as_scads_monitor_did(
        start: Callable[..., ActionProcess]) -> None:
    got: list[dict[str, list[str]]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=collector.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        action = start()
        code = ("def main(params, action):\n    action.profile(0)\n    x = bytearray(8 << 20)\n"
                "    action.profile(1)\n    return {'n': len(x)}\n")
        assert action.init("guest/app/prof", code)[0] == 200
        url = f"http://127.0.0.1:{collector.server_address[1]}/"
        assert action.post("/run", {"activation_id": "p1", "profile": url}) == (200, {"n": 8 << 20})
        assert action.post("/run", {"profile": "file:///etc/passwd"})[0] == 400
    finally:
        collector.shutdown()
        collector.server_close()
    (form,) = got
    assert form["object"] == ["p1"] and form["name"] == ["prof"]
    first, second = (form[f"point_{n}"][0].split(",") for n in (0, 1))
    assert len(first) == len(second) == 3  # ms, cpu, resident pages (no transports)
    assert int(second[2]) - int(first[2]) >= (8 << 20) // os.sysconf("SC_PAGE_SIZE")


def test_main_names_the_entry_function(start: Callable[..., ActionProcess]) -> None:
    action = start()
    code = "def handler(params, action):\n    return {'by': 'handler', 'name': action.name}\n"
    assert action.init("guest/app/step", code, main="handler")[0] == 200
    assert action.post("/run", {}) == (200, {"by": "handler", "name": "step"})


def test_an_element_that_raises_gives_502_and_the_next_run_works(start: Callable[..., ActionProcess]) -> None:
    action = start()
    assert action.init("echo", COMPUTE)[0] == 200
    status, reply = action.post("/run", {"value": {"fail": True}, "activation_id": "bad"})
    assert (status, reply) == (502, {"error": "ValueError: asked to fail"})
    failed = action.activations("stderr")[-1]
    assert "Traceback" in failed and 'raise ValueError("asked to fail")' in failed and "server.py" not in failed
    assert action.post("/run", {"value": {"ok": 1}, "activation_id": "good"})[0] == 200
    assert len(action.activations("stdout")) == len(action.activations("stderr")) == 2


def test_a_payload_over_one_megabyte(start: Callable[..., ActionProcess]) -> None:
    action = start()
    assert action.init("echo", COMPUTE)[0] == 200
    blob = "x" * (3 << 20)
    status, reply = action.post("/run", {"value": {"blob": blob}, "activation_id": "big"})
    assert status == 200 and reply["echo"]["blob"] == blob


def test_a_second_concurrent_run_is_refused_busy(start: Callable[..., ActionProcess]) -> None:
    action = start()
    assert action.init("mem", "type: memory\nlimits: {mem: 1 MiB}\n")[0] == 200
    serving = in_thread(lambda: action.post("/run", {"activation_id": "m",
                                                     "transports": ["memory;rdma_tcp_server;url,tcp://127.0.0.1:0;"]}))
    served_address(action, "m", "memory")
    status, reply = action.post("/run", {"activation_id": "other"})
    assert status == 409 and "busy" in reply["error"]
    assert action.delete("/action/m") == (200, {"ok": True})
    assert serving()[0] == 200


def test_sigterm_ends_a_serving_memory_activation_and_cleans_up(start: Callable[..., ActionProcess]) -> None:
    action = start()
    assert action.init("mem", "type: memory\nlimits: {mem: 1 MiB}\n")[0] == 200
    replies: list[object] = []

    def serve() -> None:
        try:
            replies.append(action.post("/run", {"activation_id": "m", "transports": [
                "memory;rdma_tcp_server;url,tcp://127.0.0.1:0;"]}))
        except OSError as exc:  # the process may be gone before the reply is out
            replies.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    served_address(action, "m", "memory")
    started = time.monotonic()
    action.stop()
    assert action.proc.returncode == 0 and time.monotonic() - started < 5
    thread.join(10)
    assert replies
    if isinstance(replies[0], tuple):  # the reply made it out before the process ended
        assert replies[0][0] == 200
    assert list(action.workdir.iterdir()) == []
    assert action.stdout().endswith(MARKER + "\n")
    assert action.stderr().endswith(MARKER + "\n")


def test_sigterm_during_a_compute_element_still_ends_its_log_with_the_marker(
        start: Callable[..., ActionProcess]) -> None:
    """An element that does not return within the stop grace: the runtime writes its marker itself."""
    action = start()
    code = "import time\n\ndef main(params, action):\n    print('started', flush=True)\n    time.sleep(60)\n"
    assert action.init("slow", code)[0] == 200

    def run() -> None:
        with contextlib.suppress(OSError):  # the process ends before it replies
            action.post("/run", {"activation_id": "slow"})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while "started" not in action.stdout():
        assert time.monotonic() < deadline, action.stderr()
        time.sleep(0.02)
    started = time.monotonic()
    action.stop()
    assert action.proc.returncode == 0 and time.monotonic() - started < 12
    assert action.stdout() == "started\n" + MARKER + "\n"
    assert action.stderr().endswith(MARKER + "\n")
    thread.join(10)


def test_a_transport_never_completed_fails_the_activation(start: Callable[..., ActionProcess]) -> None:
    action = start("--transport-timeout", "0.5")
    code = "def main(params, action):\n    action.get_transport('mem', 'rdma')\n    return {}\n"
    assert action.init("c", code)[0] == 200
    status, reply = action.post("/run", {"activation_id": "lonely", "transports": ["mem;rdma_tcp;"]})
    assert status == 502 and "PUT /action/lonely/transport/mem" in reply["error"]


def run_as_actions(start: Callable[..., ActionProcess], prog: Path) -> str:
    """Run the element directory ``prog`` as the invoker would, one action process per element: a
    memory action per memory instance, serving until the end; each compute element (a zip with the
    source map beside it) in DAG order, its instances one after another, each given its parents'
    results as ``params`` and wired by PUT to the memory instances it coruns with. Returns the
    activations' stdout, in program order."""
    program = load_program(prog)
    sourcemap = (prog / "sourcemap.json").read_text()
    serving: dict[str, tuple[ActionProcess, Callable[[], Reply], str]] = {}
    for spec in program.memory_elements():
        for instance in spec.instance_names():
            memory = start()
            assert memory.init(spec.name, Path(spec.path).read_text())[0] == 200
            aid = "mem-" + instance.replace("@", "-")
            join = in_thread(lambda memory=memory, aid=aid, instance=instance: memory.post("/run", {
                "activation_id": aid, "transports": [f"{instance};rdma_tcp_server;url,tcp://127.0.0.1:0;"]}))
            serving[instance] = (memory, join, served_address(memory, aid, instance))
    results: dict[str, list[Any]] = {}
    printed = []
    for name in program.topological_order():
        spec = program.elements[name]
        action = start()
        code = zipped({f"{name}.o.py": Path(spec.path).read_text(), "sourcemap.json": sourcemap})
        assert action.init(name, code, binary=True) == (200, {"ok": True, "element": name, "kind": "compute"})
        wiring = {}  # the name the code asks for → the memory instance's address (as the engine names them)
        for link in spec.corunning:
            peer = program.elements[link.peer]
            if peer.kind == "memory":
                wiring.update({link.trans + i[len(peer.name):]: serving[i][2] for i in peer.instance_names()})
        results[name] = []
        for index in range(spec.parallelism):
            aid = instance_name(name, index, spec.parallelism).replace("@", "-")
            body = {"value": element_params(spec.parents, {}, results), "activation_id": aid, "par": index,
                    "transports": [f"{key};rdma_tcp;" for key in wiring]}
            done = in_thread(lambda action=action, body=body: action.post("/run", body))
            for key, address in wiring.items():
                assert action.put(f"/action/{aid}/transport/{key}", {"durl": address})[1]["ok"]
            status, result = done()
            assert status == 200, result
            results[name].append(result)
        printed += action.activations()
    for instance, (memory, join, _) in serving.items():
        assert memory.delete(f"/action/mem-{instance.replace('@', '-')}")[0] == 200
        assert join()[0] == 200
    return "".join(printed)


@pytest.mark.parametrize("example", ["channel_report", "monte_carlo"])
def test_split_program_runs_as_actions_like_scadc_run(start: Callable[..., ActionProcess], tmp_path: Path,
                                                      example: str) -> None:
    """A split program's elements run as actions (channel_report: four compute elements; monte_carlo:
    seven and a memory element, reached over tcp) give the output of ``scadc run``."""
    prog = tmp_path / "prog"
    subprocess.run([sys.executable, "-m", "scadc", "split", str(ROOT / f"examples/monolithic/{example}.py"),
                    "-o", str(prog)], capture_output=True, text=True, check=True, cwd=ROOT)
    expected = subprocess.run([sys.executable, "-m", "scadc", "run", str(prog)], capture_output=True, text=True,
                              check=True, cwd=ROOT).stdout
    assert expected.strip()
    assert run_as_actions(start, prog) == expected


@pytest.mark.parametrize(("method", "path", "raw", "status", "says"), [
    ("POST", "/init", b"{not json", 400, "not JSON"),
    ("POST", "/init", b"[1, 2]", 400, "JSON object"),
    ("POST", "/init", b'{"value": 3}', 400, "/init takes"),
    ("POST", "/init", b'{"value": {"code": ""}}', 400, "'code'"),
    ("POST", "/init", b'{"value": {"code": "!!", "binary": true}}', 400, "base64"),
    ("POST", "/init", b'{"value": {"code": "aGVsbG8=", "binary": true}}', 400, "zip"),
    ("POST", "/init", b'{"value": {"code": "def main(:", "binary": false}}', 502, "syntax error"),
    ("POST", "/init", b'{"value": {"code": "x = 1"}}', 502, "no function 'main'"),
    ("POST", "/init", json.dumps({"value": {"code": zipped({"a.txt": ""}), "binary": True}}).encode(), 400,
     "no element file"),
    ("POST", "/init", json.dumps({"value": {"code": zipped({"../a.o.py": ""}), "binary": True}}).encode(), 400,
     "outside the archive"),
    ("POST", "/run", b'{"value": {}}', 403, "not initialized"),
    ("GET", "/init", None, 405, "POST"),
    ("GET", "/nowhere", None, 404, "no route"),
    ("PUT", "/action/a/transport/mem", b'{"durl": "url"}', 400, "KEY,VALUE"),
    ("GET", "/action/a/messages", None, 404, "no activation"),
])
def test_malformed_requests_get_a_json_error(  # noqa: PLR0917 - the parametrized columns
        start: Callable[..., ActionProcess], method: str, path: str, raw: bytes | None, status: int, says: str) -> None:
    action = start()
    got, reply = request(method, action.url + path, raw=raw)
    assert got == status and says in reply["error"], reply
    # still serving, and (after a refused init) still initializable
    assert action.init("echo", COMPUTE)[0] == 200


def test_malformed_run_requests(start: Callable[..., ActionProcess]) -> None:
    action = start()
    assert action.init("echo", COMPUTE)[0] == 200
    for body, says in [({"transports": "mem;rdma_tcp;"}, "list of durls"), ({"transports": ["mem;tcp"]}, "';'"),
                       ({"transports": ["mem;carrier_pigeon;"]}, "unknown transport"),
                       ({"bad-key": 1}, "environment variable"), ({"par": -1}, "par")]:
        status, reply = action.post("/run", body)
        assert status == 400 and says in reply["error"], (body, reply)
    headerless = request("POST", action.url + "/run", raw=b"")
    assert headerless[0] == 400


def test_a_refused_request_does_not_spoil_the_connection(start: Callable[..., ActionProcess]) -> None:
    """HTTP/1.1 keep-alive: a body the runtime did not read must not be taken for the next request."""
    import http.client

    action = start()
    host, port = action.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", "/init", body=b'{"value": {}}', headers={"Content-Type": "application/json"})
        first = conn.getresponse()
        assert first.status == 405 and "error" in json.loads(first.read())
        conn.request("POST", "/init", body=json.dumps({"value": {"name": "echo", "code": COMPUTE}}))
        second = conn.getresponse()
        assert second.status == 200, second.read()
        second.read()
        conn.request("POST", "/run", body=b'{"value": {"a": 1}}')
        third = conn.getresponse()
        assert third.status == 200 and json.loads(third.read())["echo"] == {"a": 1}
    finally:
        conn.close()


def test_command_line_errors_are_one_line() -> None:
    def scadc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "scadc", *args], capture_output=True, text=True, cwd=ROOT,
                              timeout=60, check=False)

    bad = scadc("serve-action", "--listen", "localhost")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "HOST:PORT" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = scadc("serve-action", "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert busy.returncode == 2 and busy.stderr.count("\n") == 1 and "cannot listen" in busy.stderr
    helped = scadc("serve-action", "--help")
    assert helped.returncode == 0 and "/action/<aid>/transport/<name>" in helped.stdout


def test_a_put_before_the_run_is_kept_and_a_conflicting_one_refused(start: Callable[..., ActionProcess]) -> None:
    memory = start()
    assert memory.init("app/mem", (FANOUT / "mem.o.yaml").read_text())[0] == 200
    serving = in_thread(lambda: memory.post("/run", {"activation_id": "m",
                                                     "transports": ["mem;rdma_tcp_server;url,tcp://127.0.0.1:0;"]}))
    address = served_address(memory, "m", "mem")
    action = start()
    code = ("def main(params, action):\n    mem = action.get_transport('mem', 'rdma')\n    mem.reg(4)[:] = b'scad'\n"
            "    mem.write(4, 100)\n    mem.reg(4)[:] = b'....'\n    mem.read(4, 100)\n"
            "    return {'read': bytes(mem.buf).decode(), 'size': mem.size}\n")
    assert action.init("c", code)[0] == 200
    assert action.put("/action/early/transport/mem", {"durl": address}) == (202, {"ok": True, "stashed": True})
    assert action.post("/run", {"activation_id": "early", "transports": ["mem;rdma_tcp;"]}) == (
        200, {"read": "scad", "size": 64 * 1024**2})
    # "pre" is complete from the start (the element never opens it): a PUT may not change it
    slow = in_thread(lambda: action.post("/run", {"activation_id": "late", "transports": [
        "mem;rdma_tcp;", "pre;rdma_tcp;url,tcp://127.0.0.1:9;"]}))
    deadline = time.monotonic() + 20
    while action.get("/action/late/messages")[0] != 200:  # until the run has started
        assert time.monotonic() < deadline
        time.sleep(0.02)
    status, refused = action.put("/action/late/transport/pre", {"durl": "url,tcp://127.0.0.1:1;"})
    assert status == 409 and "already has url" in refused["error"]
    assert action.put("/action/late/transport/pre", {"durl": "url,tcp://127.0.0.1:9;"}) == (200, {"ok": True})
    status, refused = action.put("/action/late/transport/other", {"durl": address})
    assert status == 404 and "has no client transport 'other'" in refused["error"]
    assert action.put("/action/late/transport/mem", {"durl": address}) == (200, {"ok": True})
    assert slow() == (200, {"read": "scad", "size": 64 * 1024**2})
    assert memory.delete("/action/m")[0] == 200
    assert serving()[0] == 200


def test_local_transport_and_gen_memory_program(start: Callable[..., ActionProcess]) -> None:
    """rdma_local (a memory element merged into the compute's process), and the memory program that
    ``scadc gen`` writes for a memory element (sized by the invoker's server durl)."""
    from scadrt.export import MEMORY_ELEMENT_CODE

    action = start()
    code = ("def main(params, action):\n    m = action.get_transport('m', 'rdma')\n    m.reg(2)[:] = b'ok'\n"
            "    m.write(2, 10)\n    m.read(2, 10)\n"
            "    return {'kind': m.kind, 'size': m.size, 'got': bytes(m.buf).decode()}\n")
    assert action.init("c", code)[0] == 200
    assert action.post("/run", {"transports": ["m;rdma_local;size,4096;"]}) == (
        200, {"kind": "local", "size": 4096, "got": "ok"})
    from scadrt.transports.shm import SharedRegion

    with SharedRegion(8192) as region:  # rdma_shared: a segment on this host, made by its owner
        assert action.post("/run", {"transports": [f"m;rdma_shared;shm_id,{region.name};size,8192;"]}) == (
            200, {"kind": "shm", "size": 8192, "got": "ok"})
        assert bytes(region.buf[10:12]) == b"ok"
    memory = start()
    assert memory.init("m", MEMORY_ELEMENT_CODE)[1]["kind"] == "memory"
    status, reply = memory.post("/run", {"transports": ["memory;rdma_tcp_server;url,tcp://127.0.0.1:0;"]})
    assert status == 502 and "needs size" in reply["error"]
    status, reply = memory.post("/run", {"transports": ["memory;rdma_tcp_server;url,tcp://0.0.0.0:0;size,4096;"]})
    assert status == 502 and "without a token" in reply["error"]
    serving = in_thread(lambda: memory.post("/run", {
        "activation_id": "g", "deadline": int((time.time() + 3.0) * 1000),
        "transports": ["memory;rdma_tcp_server;url,tcp://127.0.0.1:0;size,4096;"]}))
    assert served_address(memory, "g", "memory")
    status, reply = serving()  # ends at its deadline
    assert status == 200 and list(reply["served"]) == ["memory"]


def test_tracebacks_are_mapped_to_the_original_program(start: Callable[..., ActionProcess]) -> None:
    action = start()
    element = "def main(params, action):\n    x = 1\n    raise RuntimeError('boom')\n"
    sourcemap = json.dumps({"source": "app.py", "elements": {"boom": [[1, 40, 3]]}})
    assert action.init("boom", zipped({"boom.o.py": element, "sourcemap.json": sourcemap}), binary=True)[0] == 200
    assert action.post("/run", {}) == (502, {"error": "RuntimeError: boom"})
    assert 'File "app.py", line 42, in main (boom.o.py:3)' in action.activations("stderr")[-1]
