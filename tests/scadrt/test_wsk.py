"""``scadc wsk put|post|get|delete`` against a test double of OpenWhisk's REST API.

OpenWhisk itself cannot run here (it needs Java and Docker), so :class:`FakeOpenWhisk` is a small
HTTP server on 127.0.0.1, in this test process, that checks each request against the documented
API (``/api/v1/namespaces/_/actions/{name}`` with ``overwrite=true`` for PUT, invocation answering
``{"activationId"}``, activations answering 404 until recorded, ``/activations/{id}/logs``, Basic
authentication) and answers as OpenWhisk does. ``scadc wsk`` runs as a real subprocess.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scadrt.errors import UserError
from scadrt.openwhisk.client import resolve_config

ROOT = Path(__file__).resolve().parents[2]
AUTH = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:secretkey"
API = "/api/v1/namespaces/_"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: bytes


class FakeOpenWhisk(ThreadingHTTPServer):
    """The double: see the module docstring. ``polls`` 404s come before an activation is recorded."""

    daemon_threads = True

    def __init__(self, polls: int = 1) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.actions: dict[str, Any] = {}
        self.activations: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.initial_polls = polls
        #: seconds each activation poll waits before it answers (a stalled controller)
        self.stall = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenWhisk

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(Seen(self.command, url.path, parse_qs(url.query), self.headers.get("Content-Type"),
                                     body))
        if self.headers.get("Authorization") != "Basic " + base64.b64encode(AUTH.encode()).decode():
            return self.reply(401, {"error": "The supplied authentication is invalid", "code": 1})
        parts = url.path.removeprefix(API + "/").split("/")
        if not url.path.startswith(API + "/") or parts[0] not in ("actions", "activations") or len(parts) < 2:
            return self.reply(404, {"error": "The requested resource does not exist.", "code": 2})
        if parts[0] == "actions" and len(parts) == 2:
            return self.action(parts[1], body, parse_qs(url.query))
        if parts[0] == "activations" and self.command == "GET" and len(parts) in (2, 3):
            return self.activation(parts[1], logs=len(parts) == 3 and parts[2] == "logs")
        return self.reply(404, {"error": "The requested resource does not exist.", "code": 3})

    def action(self, name: str, body: bytes, query: dict[str, list[str]]) -> None:
        actions = self.server.actions
        if self.command == "PUT":
            if self.headers.get("Content-Type") != "application/json":
                return self.reply(400, {"error": "The request content was malformed"})
            document = json.loads(body)
            assert "functions" in document, "a Scad application"
            if name in actions and query.get("overwrite") != ["true"]:
                return self.reply(409, {"error": "resource already exists"})
            actions[name] = document
            return self.reply(200, {"name": name, "namespace": "guest", "version": "0.0.1"})
        if name not in actions:
            return self.reply(404, {"error": "The requested resource does not exist.", "code": 4})
        if self.command == "POST":
            aid = f"a{len(self.server.activations):031d}"
            params = json.loads(body) if body else {}
            # OpenWhisk's record of an action that returned {"error": …}: status "application error"
            response = ({"status": "application error", "success": False, "result": {"error": params["fail"]}}
                        if "fail" in params else {"status": "success", "success": True, "result": {"got": params}})
            self.server.activations[aid] = {"activationId": aid, "name": name, "namespace": "guest",
                                            "response": response,
                                            "logs": [f"2026-12-02T00:00:00Z stdout: hello {params}"]}
            self.server.polls[aid] = self.server.initial_polls
            return self.reply(202, {"activationId": aid})
        if self.command == "DELETE":
            return self.reply(200, {"name": name, **{"deleted": True}} if actions.pop(name) else {})
        return self.reply(405, {"error": "The requested method is not allowed."})

    def activation(self, aid: str, *, logs: bool) -> None:
        time.sleep(self.server.stall)
        record = self.server.activations.get(aid)
        if record is None or (not logs and self.server.polls[aid] > 0):
            if record is not None:
                self.server.polls[aid] -= 1
            return self.reply(404, {"error": "The requested resource does not exist.", "code": 5})
        return self.reply(200, {"logs": record["logs"]} if logs else record)

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


@pytest.fixture
def whisk() -> Iterator[FakeOpenWhisk]:
    server = FakeOpenWhisk()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty home directory: no ~/.wskprops unless a test writes one."""
    path = tmp_path / "home"
    path.mkdir()
    return path


def wsk(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scadc", "wsk", *args], capture_output=True, text=True, cwd=ROOT,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin", **(env or {})}, timeout=60, check=False)


@pytest.fixture
def app_json(tmp_path: Path) -> Path:
    out = tmp_path / "app.json"
    subprocess.run([sys.executable, "-m", "scadc", "gen", str(ROOT / "examples/elements/fanout"), "-o", str(out)],
                   check=True, cwd=ROOT)
    return out


def test_put_post_get_delete(whisk: FakeOpenWhisk, home: Path, app_json: Path) -> None:
    opts = ["--host", whisk.url, "--auth", AUTH]
    put = wsk(home, "put", str(app_json), *opts)
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout) == {"name": "fanout", "namespace": "guest", "version": "0.0.1"}
    (seen,) = whisk.seen
    assert (seen.method, seen.path, seen.query, seen.content_type) == (
        "PUT", f"{API}/actions/fanout", {"overwrite": ["true"]}, "application/json")
    assert seen.body == app_json.read_bytes()

    post = wsk(home, "post", "fanout", "-p", "n=5", *opts)
    assert post.returncode == 0, post.stderr
    record = json.loads(post.stdout)
    assert record["response"]["result"] == {"got": {"n": 5}}
    invoke, first_poll, second_poll = whisk.seen[1:]
    assert (invoke.method, invoke.path, json.loads(invoke.body)) == ("POST", f"{API}/actions/fanout", {"n": 5})
    aid = record["activationId"]
    assert [first_poll.path, second_poll.path] == [f"{API}/activations/{aid}"] * 2  # 404, then the record
    assert f"activation {aid}" in post.stderr

    got = wsk(home, "get", aid, *opts)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout) == {"activation": record, "logs": {"logs": record["logs"]}}
    assert whisk.seen[-1].path == f"{API}/activations/{aid}/logs"

    nowait = wsk(home, "post", "fanout", "-n", *opts)
    assert nowait.returncode == 0 and set(json.loads(nowait.stdout)) == {"activationId"}
    assert len(whisk.seen) == 7  # put, post + 2 polls, get + logs, the non-blocking post: no poll

    assert wsk(home, "delete", "fanout", *opts).returncode == 0
    assert whisk.seen[-1].method == "DELETE" and "fanout" not in whisk.actions
    again = wsk(home, "delete", "fanout", *opts)
    assert again.returncode == 1 and again.stderr.count("\n") == 1 and "answered 404" in again.stderr


def test_credentials_from_wskprops_and_refused_ones(whisk: FakeOpenWhisk, home: Path, app_json: Path) -> None:
    (home / ".wskprops").write_text(f"APIHOST={whisk.url}\nAUTH={AUTH}\nNAMESPACE=guest\n")
    assert wsk(home, "put", str(app_json)).returncode == 0
    wrong = wsk(home, "put", str(app_json), env={"WSK_AUTH": "someone:else"})
    assert wrong.returncode == 1 and "answered 401" in wrong.stderr and "Traceback" not in wrong.stderr
    (home / ".wskprops").unlink()
    missing = wsk(home, "get", "x")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "--host" in missing.stderr
    unreachable = wsk(home, "get", "x", "--host", "http://127.0.0.1:1", "--auth", AUTH)
    assert unreachable.returncode == 1 and "cannot reach OpenWhisk" in unreachable.stderr


def test_the_host_and_credentials_rules(tmp_path: Path) -> None:
    props = tmp_path / "wskprops"
    props.write_text("# comment\napihost = 10.0.0.5:443\nAUTH=u:k\n")
    config = resolve_config(None, None, wskprops=props)
    assert (config.host, config.auth, config.insecure) == ("https://10.0.0.5:443", "u:k", False)
    with pytest.raises(UserError, match="UUID:KEY"):
        resolve_config("h", "nocolon", wskprops=props)
    with pytest.raises(UserError, match="http"):
        resolve_config("ftp://h", "u:k", wskprops=props)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a self-signed certificate")
def test_tls_is_verified_unless_insecure(whisk: FakeOpenWhisk, home: Path, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    whisk.socket = context.wrap_socket(whisk.socket, server_side=True)
    host = f"https://127.0.0.1:{whisk.server_address[1]}"
    verified = wsk(home, "get", "x", "--host", host, "--auth", AUTH)
    assert verified.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in verified.stderr
    assert "--insecure" in verified.stderr and "SSL_CERT_FILE" in verified.stderr  # the ways forward
    trusted = wsk(home, "get", "x", "--host", host, "--auth", AUTH, env={"SSL_CERT_FILE": str(cert)})
    assert trusted.returncode == 1 and "answered 404" in trusted.stderr  # the first way forward works
    insecure = wsk(home, "get", "x", "--host", host, "--auth", AUTH, "--insecure")
    assert insecure.returncode == 1 and "answered 404" in insecure.stderr  # it got through to the API


def test_post_gives_up_after_its_timeout(whisk: FakeOpenWhisk, home: Path, app_json: Path) -> None:
    whisk.initial_polls = 100  # the activation is never recorded in time
    opts = ["--host", whisk.url, "--auth", AUTH]
    assert wsk(home, "put", str(app_json), *opts).returncode == 0
    started = time.monotonic()
    post = wsk(home, "post", "fanout", "-t", "1.5", *opts)
    assert post.returncode == 1 and "has no record after 1.5 s" in post.stderr and "scadc wsk get" in post.stderr
    polls = [s for s in whisk.seen if "/activations/" in s.path]
    assert len(polls) == 3  # at 0 s, 1 s, and 1.5 s: the second sleep (2 s) is cut to what is left
    assert time.monotonic() - started < 30


def test_post_gives_up_after_its_timeout_when_the_controller_stalls(whisk: FakeOpenWhisk, home: Path,
                                                                   app_json: Path) -> None:
    opts = ["--host", whisk.url, "--auth", AUTH]
    assert wsk(home, "put", str(app_json), *opts).returncode == 0
    whisk.stall = 8.0  # each poll would hold the client for 8 s (its request timeout is 60 s)
    started = time.monotonic()
    post = wsk(home, "post", "fanout", "-t", "1", *opts)
    assert post.returncode == 1 and "has no record after 1 s" in post.stderr, post.stderr
    assert time.monotonic() - started < 5


def test_post_of_a_failing_activation_exits_1(whisk: FakeOpenWhisk, home: Path, app_json: Path) -> None:
    opts = ["--host", whisk.url, "--auth", AUTH]
    assert wsk(home, "put", str(app_json), *opts).returncode == 0
    post = wsk(home, "post", "fanout", "-p", "fail=boom", *opts)
    assert post.returncode == 1, post.stderr
    record = json.loads(post.stdout)  # the record is still printed, for scripts that read it
    assert record["response"] == {"status": "application error", "success": False, "result": {"error": "boom"}}
    assert f"activation {record['activationId']} failed (application error): boom" in post.stderr
