"""The action runtime: one Scad element served as an OpenWhisk action (``scadc serve-action``).

It speaks OpenWhisk's action interface (the ``/init`` and ``/run`` routes of a runtime
container, as the invoker drives them) plus Scad's extensions (reference-notes §3.4, §4.5):

1. ``POST /init`` ``{"value": {"name", "main", "code", "binary", "env"}}`` loads the element,
   once: a second ``/init`` is refused (403). ``code`` is a compute element's ``.o.py`` text (with
   or without its ``#@`` header: ``scadc gen`` strips it), a memory element's ``.o.yaml`` text, or
   the memory program ``scadc gen`` writes for a memory element (its region size then comes from
   the run's server transport, ``size,N;``). With ``binary: true`` it is a base64 zip holding the
   element file, and beside it any helper modules and the ``sourcemap.json`` of ``scadc split``.
   ``env`` is exported before the code is checked; ``main`` names the entry function.
2. ``POST /run`` ``{"value", "activation_id", "transports": [durl…], …}``: ``value`` is the
   element's ``params``; every other key ``K`` is exported as ``__OW_<K>`` for the activation
   (``par``, i.e. ``__OW_PAR``, is the parallel instance index). Each durl ``NAME;IMPL;K,V;…``
   makes a transport: ``rdma_tcp`` a tcp client, ``rdma_shared`` shm, ``rdma_local`` local,
   ``rdma_uverbs`` rdma, and ``rdma_tcp_server``/``rdma_uverbs_server`` a region this action
   serves (scadrt's memory server) for the life of the activation. A memory element's region
   has the size of its ``limits.mem``. The reply is the element's result (200), or
   ``{"error": …}`` (502) when it raised, its traceback on stderr (mapped to the original program
   when a source map came with it); the runtime keeps serving either way. With ``"profile":
   URL``, what the element's ``action.profile(n)`` calls recorded is POSTed to URL at the end,
   in the form Scad's monitor plugin posted (:func:`_post_profile`).
3. ``PUT /action/<aid>/transport/<name>`` ``{"durl": "url,tcp://HOST:PORT;"}`` completes a client
   transport the run created without an address: the element's ``get_transport`` waits for it (at
   most ``transport_timeout`` seconds, or until the run's ``deadline``). Keys already given are
   kept; a different value for one is refused (409). A PUT for an activation not started yet is
   kept and applied when it starts (202), as Scad's launcher stashes early commands.
4. ``GET /action/<aid>/messages`` answers ``{"ok": true, "messages": {name: "url,tcp://HOST:PORT;"}}``
   for every region the activation serves: what the invoker PUTs to the compute elements.
5. A memory element's activation serves until ``DELETE /action/<aid>``, the run's ``deadline``
   (milliseconds since the epoch, as OpenWhisk sends it) or the runtime's stop; then its run
   answers 200 with what it served.
6. After every activation, ``XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX`` is written as the last line of
   stdout and of stderr, before the reply (request logging is off: it would land after it).
7. One activation at a time: a ``/run`` while one runs is refused (409, "busy").
8. Every reply is JSON; a malformed request gets a 4xx ``{"error": …}``, never a traceback page.
   Bodies are limited to :data:`MAX_BODY` bytes.

Each activation runs the element afresh (a new module, as every instance of ``scadc run`` does):
module-level state does not carry from one activation to the next.
"""

from __future__ import annotations

import ast
import base64
import binascii
import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from scadrt.errors import ConnectionLostError, ProgramError, TransportConfigError, UserError, clip
from scadrt.transports import Descriptor, canonical_kind, open_descriptor, parse_descriptor, redact_tokens

if TYPE_CHECKING:
    from scadrt.action import TransportSource
    from scadrt.profile import ProfileSample
    from scadrt.sourcemap import SourceMap
    from scadrt.transports.base import Transport
    from scadrt.transports.memory_server import MemoryServer

__all__ = ["DEFAULT_LISTEN", "MARKER", "MAX_BODY", "ActionRuntime", "HttpError", "LoadedElement",
           "parse_listen_address", "serve"]

#: OpenWhisk's end-of-activation log marker (rule 6)
MARKER = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
DEFAULT_LISTEN = "127.0.0.1:8080"
#: the largest request body accepted (OpenWhisk's own limit on action code is 48 MB)
MAX_BODY = 128 << 20
#: the most bytes a zipped element may unpack to, and the most files it may hold
_MAX_UNZIPPED = 512 << 20
_MAX_MEMBERS = 10_000
#: transports PUT for activations not started yet: at most this many activations are remembered
_MAX_STASHED = 256
#: how long a stopping runtime waits for the running activation to end (its servers stopped, its
#: marker written) before it writes the marker itself and exits
_STOP_GRACE = 5.0
_SERVER_IMPLS = {"rdma_tcp_server": False, "tcp_server": False, "rdma_uverbs_server": True, "uverbs_server": True}
#: a client transport is complete (can be opened) once it has one of these keys (rule 3)
_ADDRESS_KEYS = {"tcp": ("url",), "rdma": ("url",), "shm": ("segment", "shm_id"), "local": ("size",)}
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_ROUTE = re.compile(r"^/action/(?P<aid>[^/]+)(?:/(?P<what>transport|messages)(?:/(?P<name>[^/]+))?)?$")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_-]")


class HttpError(Exception):
    """A request the runtime refuses: the reply is ``status`` with ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _bad(message: str) -> HttpError:
    return HttpError(HTTPStatus.BAD_REQUEST, message)


@dataclass(frozen=True)
class LoadedElement:
    """What ``/init`` loaded."""

    #: the element's name (the file's stem)
    name: str
    kind: str
    #: the element file, in the runtime's private directory
    path: str
    #: the function ``/run`` calls
    entry: str
    #: a memory element's region size; None: taken from the run's server transport
    region_size: int | None
    sourcemap: SourceMap | None


class _Activation:
    """One ``/run`` in progress: its transports, the regions it serves, and whether it should end."""

    def __init__(self, aid: str, deadline: float | None) -> None:
        self.aid, self.deadline = aid, deadline
        self.cv = threading.Condition()
        #: client transports: name → (implementation, config so far)
        self.clients: dict[str, tuple[str, dict[str, str]]] = {}
        #: name → the address of a region served (rule 4)
        self.messages: dict[str, str] = {}
        self.ended = False

    def configure(self, name: str, pairs: tuple[tuple[str, str], ...]) -> None:
        with self.cv:
            if name not in self.clients:
                known = ", ".join(sorted(self.clients)) or "none"
                raise HttpError(HTTPStatus.NOT_FOUND, f"activation {self.aid} has no client transport {name!r} "
                                                      f"(it has: {known})")
            config = self.clients[name][1]
            for key, value in pairs:
                if key in config and config[key] != value:
                    raise HttpError(HTTPStatus.CONFLICT, f"transport {name!r} of activation {self.aid} already has "
                                                         f"{key} {redact_tokens(config[key])!r}")
            for key, value in pairs:
                config.setdefault(key, value)
            self.cv.notify_all()

    def end(self) -> None:
        with self.cv:
            self.ended = True
            self.cv.notify_all()

    def wait_for(self, name: str, timeout: float) -> Descriptor:
        """The descriptor of client transport ``name`` once complete (rule 3)."""
        impl, config = self.clients[name]
        keys = _ADDRESS_KEYS[canonical_kind(impl)]
        limit = time.monotonic() + self._remaining(timeout)
        with self.cv:
            while not any(k in config for k in keys):
                left = limit - time.monotonic()
                if left <= 0 or self.ended:
                    raise ConnectionLostError(
                        f"transport {name!r} got no {keys[0]} within {timeout:g} s: the invoker completes it with "
                        f"PUT /action/{self.aid}/transport/{name} {{\"durl\": \"{keys[0]},…;\"}}")
                self.cv.wait(left)
            return Descriptor(name, impl, tuple(config.items()))

    def wait_end(self) -> None:
        with self.cv:
            while not self.ended:
                left = None if self.deadline is None else self.deadline - time.time()
                if left is not None and left <= 0:
                    return
                self.cv.wait(left)

    def _remaining(self, timeout: float) -> float:
        if self.deadline is None:
            return timeout
        return max(0.0, min(timeout, self.deadline - time.time()))


class ActionRuntime:
    """The protocol of the module docstring, without HTTP: :meth:`handle` answers one request.

    ``workdir`` is a private directory the runtime owns (the element's files go there).
    """

    def __init__(self, workdir: Path, *, transport_timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.transport_timeout = transport_timeout
        self.element: LoadedElement | None = None
        self._init_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._lock = threading.Lock()  # guards the two maps below
        self._activations: dict[str, _Activation] = {}
        self._stash: OrderedDict[str, list[tuple[str, tuple[tuple[str, str], ...]]]] = OrderedDict()

    # -- routing ----------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Callable[[], dict[str, Any]]) -> tuple[int, dict[str, Any]]:
        """Answer ``method path``; ``body()`` reads and parses the request's JSON object."""
        if path in ("/init", "/run"):
            if method != "POST":
                raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes POST")
            return (HTTPStatus.OK, self.init(body())) if path == "/init" else self.run(body())
        match = _ROUTE.match(path)
        if match is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no route {clip(path)!r}: this runtime serves POST /init, "
                                                  "POST /run, PUT /action/<aid>/transport/<name>, "
                                                  "GET /action/<aid>/messages, DELETE /action/<aid>")
        aid, what, name = unquote(match["aid"]), match["what"], match["name"]
        if what == "transport" and name is not None and method == "PUT":
            return self.configure(aid, unquote(name), body())
        if what == "messages" and name is None and method == "GET":
            return HTTPStatus.OK, self.messages(aid)
        if what is None and method == "DELETE":
            return HTTPStatus.OK, self.release(aid)
        raise HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {clip(path)!r} is not served")

    # -- /init ------------------------------------------------------------------------------------

    def init(self, body: Mapping[str, Any]) -> dict[str, Any]:
        value = body.get("value")
        if not isinstance(value, dict):
            raise _bad('/init takes {"value": {"name", "main", "code", "binary", "env"}}')
        code, binary, entry = value.get("code"), value.get("binary", False), value.get("main") or "main"
        if not isinstance(code, str) or not code.strip():
            raise _bad("/init: 'code' must be the element's text (or, with binary, a base64 zip), not empty")
        if not isinstance(binary, bool):
            raise _bad("/init: 'binary' must be true or false")
        if not isinstance(entry, str) or not entry.isidentifier():
            raise _bad(f"/init: 'main' must name a Python function, not {clip(str(entry))!r}")
        env = value.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and _ENV_KEY.fullmatch(k) for k in env):
            raise _bad("/init: 'env' must map variable names to values")
        name = _element_name(value.get("name"))
        if not self._init_lock.acquire(blocking=False):
            raise HttpError(HTTPStatus.FORBIDDEN, "this action is being initialized; /init is accepted once")
        try:
            if self.element is not None:
                raise HttpError(HTTPStatus.FORBIDDEN, f"this action is already initialized (element "
                                                      f"{self.element.name!r}); /init is accepted once")
            os.environ.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in env.items()})
            directory = self.workdir / "element"
            if directory.exists():  # a failed /init before: start again
                shutil.rmtree(directory)
            directory.mkdir(mode=0o700)
            path = _unzip(code, directory, name) if binary else _write_text(code, directory, name)
            self.element = _load(path, entry)
        finally:
            self._init_lock.release()
        return {"ok": True, "element": self.element.name, "kind": self.element.kind}

    # -- /run -------------------------------------------------------------------------------------

    def run(self, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        element = self.element
        if element is None:
            raise HttpError(HTTPStatus.FORBIDDEN, "this action is not initialized: POST /init first")
        aid, deadline, index, env, descriptors = _parse_run(body)
        if not self._run_lock.acquire(blocking=False):
            running = next(iter(self._activations), "?")
            raise HttpError(HTTPStatus.CONFLICT, f"busy: activation {running} is running, and this runtime runs one "
                                                 "activation at a time")
        activation = _Activation(aid, deadline)
        servers: list[tuple[MemoryServer, threading.Thread, Any]] = []
        saved = {key: os.environ.get(key) for key in [*env, "__OW_PAR"]}
        try:
            for descriptor in descriptors:
                if descriptor.impl not in _SERVER_IMPLS:
                    activation.clients[descriptor.name] = (descriptor.impl, dict(descriptor.config))
            with self._lock:
                if aid in self._activations:
                    raise HttpError(HTTPStatus.CONFLICT, f"activation {aid} is already running")
                self._activations[aid] = activation
                stashed = self._stash.pop(aid, [])
            for name, pairs in stashed:
                with contextlib.suppress(HttpError):  # a stashed PUT for a transport this run lacks
                    activation.configure(name, pairs)
            os.environ.update(env)
            try:
                for descriptor in descriptors:
                    if descriptor.impl in _SERVER_IMPLS:
                        servers.append(_start_server(descriptor, element, activation))
                if element.kind == "memory":
                    if not servers:
                        raise TransportConfigError(f"memory element {element.name!r} was given no server transport "
                                                   "(e.g. memory;rdma_tcp_server;url,tcp://*:2333;)")
                    activation.wait_end()
                    return HTTPStatus.OK, {"memory": element.name, "served": dict(activation.messages)}
                return HTTPStatus.OK, self._run_compute(element, activation, index, body.get("value", {}),
                                                        body.get("profile"))
            except Exception as exc:
                return HTTPStatus.BAD_GATEWAY, self._failed(element, exc)
        finally:
            for server, thread, rdma in servers:
                server.stop()
                thread.join()
                server.close()
                if rdma is not None:
                    rdma.close()
            with self._lock:
                self._activations.pop(aid, None)
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old
            _end_of_activation()
            self._run_lock.release()

    def _run_compute(self, element: LoadedElement, activation: _Activation, index: int, params: Any,
                     profile_url: str | None = None) -> dict[str, Any]:
        from scadrt.element import PROGRAM_MODULE, run_element

        def opener(name: str) -> Callable[[], Transport]:
            return lambda: open_descriptor(activation.wait_for(name, self.transport_timeout))

        transports: dict[str, TransportSource] = {name: opener(name) for name in activation.clients}
        directory = str(Path(element.path).parent)
        try:
            outcome = run_element(element.path, element.name, index, params, transports, entry=element.entry)
            if profile_url:
                _post_profile(profile_url, activation.aid, element.name, outcome.profile)
            return outcome.result
        finally:
            # what loading the element added, so that activations do not pile it up in a warm runtime
            while directory in sys.path:
                sys.path.remove(directory)
            sys.modules.pop(PROGRAM_MODULE, None)

    def _failed(self, element: LoadedElement, exc: Exception) -> dict[str, Any]:
        from scadrt.element import format_element_error

        shown = format_element_error(exc)
        if element.sourcemap is not None:
            shown = element.sourcemap.rewrite(shown)
        print(f"scadc serve-action: element {element.name!r} failed:\n{shown.rstrip()}", file=sys.stderr)
        message = str(exc)
        return {"error": f"{type(exc).__name__}: {message}" if message else type(exc).__name__}

    # -- Scad's extensions --------------------------------------------------------------------------

    def configure(self, aid: str, name: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        fragment = body.get("durl")
        if not isinstance(fragment, str) or not fragment:
            raise _bad('PUT …/transport/<name> takes {"durl": "KEY,VALUE;…"}, e.g. {"durl": "url,tcp://10.0.0.5:2333;"}')
        try:
            pairs = parse_descriptor(f"{name};impl;{fragment}").config
        except TransportConfigError as exc:
            raise _bad(f"transport {clip(name)!r}: {exc}") from None
        with self._lock:
            activation = self._activations.get(aid)
            if activation is None:
                if aid not in self._stash and len(self._stash) >= _MAX_STASHED:
                    self._stash.popitem(last=False)
                self._stash.setdefault(aid, []).append((name, pairs))
                return HTTPStatus.ACCEPTED, {"ok": True, "stashed": True}
        activation.configure(name, pairs)
        return HTTPStatus.OK, {"ok": True}

    def messages(self, aid: str) -> dict[str, Any]:
        return {"ok": True, "messages": dict(self._activation(aid).messages)}

    def release(self, aid: str) -> dict[str, Any]:
        self._activation(aid).end()
        return {"ok": True}

    def _activation(self, aid: str) -> _Activation:
        with self._lock:
            activation = self._activations.get(aid)
        if activation is None:
            raise HttpError(HTTPStatus.NOT_FOUND, f"no activation {clip(aid)!r} is running")
        return activation

    def stop(self) -> None:
        """End every activation that waits (memory elements, transports without an address)."""
        with self._lock:
            running = list(self._activations.values())
        for activation in running:
            activation.end()

    def finish(self, grace: float) -> None:
        """Stop, and let the running activation end (rule 6) before the process exits.

        The handler threads are daemons: without this wait the process could exit while an
        ended activation still stops its memory servers, before its marker is written. An
        element still running after ``grace`` seconds gets its marker written here instead.
        The run lock is kept: no activation starts while the process exits.
        """
        self.stop()
        if not self._run_lock.acquire(timeout=grace):
            _end_of_activation()


# -- /init helpers -----------------------------------------------------------------------------------


def _element_name(given: object) -> str:
    """The element's name from the action's (``ns/app/element`` → ``element``), made a valid one."""
    last = str(given).rstrip("/").rpartition("/")[2] if isinstance(given, str) and given.strip("/") else "action"
    return _NOT_NAME.sub("_", last)[:200]


def _write_text(code: str, directory: Path, name: str) -> Path:
    from scadrt.export import MEMORY_ELEMENT_CODE

    if code.strip() == MEMORY_ELEMENT_CODE.strip():
        path = directory / f"{name}.o.serve"  # no element file: the region is sized by the run
    elif _is_memory_yaml(code):
        path = directory / f"{name}.o.yaml"
    else:
        path = directory / f"{name}.o.py"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(code)
    return path


def _is_memory_yaml(code: str) -> bool:
    import yaml

    if len(code) > 64 << 10:
        return False
    try:
        data = yaml.safe_load(code)
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and data.get("type") == "memory"


def _unzip(code: str, directory: Path, name: str) -> Path:
    try:
        data = base64.b64decode(code, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("/init: 'code' is not base64 (binary is true: code must be a base64 zip)") from None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise _bad("/init: 'code' is not a zip archive (binary is true)") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > _MAX_MEMBERS or sum(m.file_size for m in members) > _MAX_UNZIPPED:
            raise _bad(f"/init: the zip holds more than {_MAX_MEMBERS} files or {_MAX_UNZIPPED >> 20} MiB")
        elements = []
        for member in members:
            parts = Path(member.filename).parts
            if member.filename.startswith("/") or ".." in parts or not parts:
                raise _bad(f"/init: the zip member {clip(member.filename)!r} points outside the archive")
            if re.fullmatch(r"[A-Za-z0-9_-]+\.o\.(py|yaml)", parts[-1]):
                elements.append(member.filename)
        if not elements:
            raise _bad("/init: the zip holds no element file (<name>.o.py or <name>.o.yaml)")
        if len(elements) > 1:
            named = [e for e in elements if Path(e).name.partition(".")[0] == name]
            if len(named) != 1:
                raise _bad(f"/init: the zip holds several element files ({', '.join(sorted(elements)[:5])}) and none "
                           f"is named after the action ({name!r})")
            elements = named
        for member in members:
            target = directory / member.filename
            try:
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError:  # a name given twice, or a file where a directory should be
                raise _bad(f"/init: the zip member {clip(member.filename)!r} collides with another") from None
            with archive.open(member) as source, open(fd, "wb") as out:
                shutil.copyfileobj(source, out)
    return directory / elements[0]


def _load(path: Path, entry: str) -> LoadedElement:
    from scadrt.dag import read_element
    from scadrt.sourcemap import load_sourcemap

    name = path.name.partition(".")[0]
    if path.name.endswith(".o.serve"):
        return LoadedElement(name, "memory", str(path), entry, None, None)
    if path.name.endswith(".o.yaml"):
        try:
            spec = read_element(path)
        except ProgramError as exc:
            raise HttpError(HTTPStatus.BAD_GATEWAY, str(exc).replace(str(path.parent) + os.sep, "")) from None
        if spec.kind != "memory":
            raise HttpError(HTTPStatus.BAD_GATEWAY, f"{path.name}: expected 'type: memory'")
        return LoadedElement(name, "memory", str(path), entry, spec.limits.mem, None)
    source = path.read_text(encoding="utf-8")
    try:
        module = ast.parse(source, filename=path.name)
    except SyntaxError as exc:
        raise HttpError(HTTPStatus.BAD_GATEWAY, f"{path.name}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (MemoryError, RecursionError):
        raise HttpError(HTTPStatus.BAD_GATEWAY, f"{path.name}: the code is too complex to parse") from None
    if entry not in _module_names(module):
        raise HttpError(HTTPStatus.BAD_GATEWAY, f"{path.name}: the code defines no function {entry!r} at module level")
    return LoadedElement(name, "compute", str(path), entry, None, load_sourcemap(path.parent))


def _module_names(module: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).partition(".")[0] for a in node.names)
    return names


# -- /run helpers ------------------------------------------------------------------------------------


def _post_profile(url: str, aid: str, name: str, samples: tuple[ProfileSample, ...]) -> None:
    """What Scad's monitor plugin POSTed at the end of an activation when ``/run`` named a
    ``profile`` URL (reference-notes §4.4): a form ``object=<aid>&name=<name>&point_<n>=<ms>,<cpu
    fraction>,<resident pages>[,<transport>,<tx bytes>,<rx bytes>…]``. The times are milliseconds
    since the activation's action was made (Scad's were since boot). A collector that cannot be
    reached costs the activation nothing but a line on stderr."""
    import urllib.request
    from urllib.parse import urlencode

    page = os.sysconf("SC_PAGE_SIZE")
    fields = [("object", aid), ("name", name)]
    for s in samples:
        moved = [f"{transport},{written},{read}" for transport, read, written in s.transfer]
        fields.append((f"point_{s.point}", ",".join([f"{s.time * 1000:.0f}", f"{s.cpu:.4f}", str(s.rss // page),
                                                     *moved])))
    request = urllib.request.Request(url, data=urlencode(fields).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10):
            pass
    except OSError as exc:  # URLError and HTTPError are OSErrors
        print(f"scadc serve-action: could not post the profile samples to {redact_tokens(url)}: {exc}",
              file=sys.stderr)


def _parse_run(body: Mapping[str, Any]) -> tuple[str, float | None, int, dict[str, str], list[Descriptor]]:
    """Activation id, deadline (epoch seconds), parallel index, environment and descriptors of a run."""
    aid = body.get("activation_id") or secrets.token_hex(16)
    if not isinstance(aid, str) or len(aid) > 256 or "/" in aid:
        raise _bad("/run: 'activation_id' must be a string without '/'")
    env: dict[str, str] = {}
    for key, value in body.items():
        if key in ("value", "transports"):
            continue
        if not _ENV_KEY.fullmatch(key):
            raise _bad(f"/run: key {clip(key)!r} cannot become an environment variable (__OW_<KEY>)")
        env[f"__OW_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    env["__OW_ACTIVATION_ID"] = aid  # one made up here too
    deadline = None
    if body.get("deadline") is not None:
        try:
            deadline = float(body["deadline"]) / 1000
        except (TypeError, ValueError):
            raise _bad("/run: 'deadline' must be milliseconds since the epoch") from None
    try:
        index = int(body.get("par", 0))
    except (TypeError, ValueError):
        index = -1
    if index < 0:
        raise _bad("/run: 'par' (the parallel instance index) must be a whole number ≥ 0")
    profile = body.get("profile")
    if profile is not None and not (isinstance(profile, str) and urlsplit(profile).scheme in ("http", "https")):
        raise _bad("/run: 'profile' is the URL (http:// or https://) the profile samples are posted to")
    transports = body.get("transports") or []
    if not isinstance(transports, list) or not all(isinstance(t, str) for t in transports):
        raise _bad("/run: 'transports' must be a list of durls (NAME;IMPL;KEY,VALUE;…)")
    descriptors: list[Descriptor] = []
    for text in transports:
        try:
            descriptor = parse_descriptor(text)
            if descriptor.impl not in _SERVER_IMPLS:
                if descriptor.impl == "rdma_uverbs_proxy":
                    raise TransportConfigError(f"{descriptor.name!r}: rdma_uverbs_proxy is not supported; scadrt's "
                                               "rdma transport (rdma_uverbs) exchanges its peer info over url")
                canonical_kind(descriptor.impl)
        except TransportConfigError as exc:
            raise _bad(f"/run: {exc}") from None
        if any(d.name == descriptor.name for d in descriptors):
            raise _bad(f"/run: two transports are named {descriptor.name!r}")
        descriptors.append(descriptor)
    return aid, deadline, index, env, descriptors


def _advertised(endpoint: str) -> str:
    """``url,…;`` for a bound endpoint; a wildcard host becomes this host's address."""
    from scadrt.transports.address import parse_listen

    host, port = parse_listen(endpoint)
    if host in ("*", "0.0.0.0", "::"):
        try:
            host = socket.gethostbyname(socket.gethostname())
        except OSError:
            host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"url,tcp://{shown}:{port};"


def _start_server(descriptor: Descriptor, element: LoadedElement,
                  activation: _Activation) -> tuple[MemoryServer, threading.Thread, Any]:
    """Serve a region for a server transport (rule 2); its address becomes a message (rule 4)."""
    from scadrt.sizes import parse_size
    from scadrt.transports.memory_server import MemoryServer, ServerConfig

    config = dict(descriptor.config)
    if "url" not in config:
        raise TransportConfigError(f"server transport {descriptor.name!r} needs url,tcp://HOST:PORT")
    size = element.region_size if element.kind == "memory" else None
    if "size" in config:
        try:
            given = parse_size(config["size"])
        except ValueError as exc:
            raise TransportConfigError(f"server transport {descriptor.name!r}: {exc}") from None
        if size is not None and given != size:
            raise TransportConfigError(f"server transport {descriptor.name!r}: size {given} B, but memory element "
                                       f"{element.name!r} has limits.mem {size} B")
        size = given
    if size is None:
        raise TransportConfigError(f"server transport {descriptor.name!r} needs size,<bytes>")
    token = config.get("token") or os.environ.get("SCAD_TOKEN") or None
    rdma = None
    if _SERVER_IMPLS[descriptor.impl]:
        from scadrt.transports.rdma import RdmaServerEndpoint

        rdma = RdmaServerEndpoint(size, device=config.get("device"))
    try:
        server = MemoryServer(ServerConfig(size=size, listen=config["url"], token=token),
                              region=rdma.region if rdma else None, rdma_accept=rdma.accept if rdma else None)
        endpoint = server.bind()
    except BaseException:
        if rdma is not None:
            rdma.close()
        raise
    thread = threading.Thread(target=server.serve_forever, name=f"scad-serve-{descriptor.name}", daemon=True)
    thread.start()
    activation.messages[descriptor.name] = _advertised(endpoint)
    return server, thread, rdma


def _end_of_activation() -> None:
    """Flush what the element wrote, then the marker, last on both streams (rule 6)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
            stream.write(MARKER + "\n")
            stream.flush()


# -- HTTP ----------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an element still running at shutdown does not hold the process
    runtime: ActionRuntime


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request line logged after an activation's marker would break its log framing (rule 6)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (a malformed request line, headers too long): JSON, not an HTML page
        self.close_connection = True
        self._reply(code, {"error": message or HTTPStatus(code).phrase})

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._read = False
        try:
            status, reply = self.server.runtime.handle(self.command, urlsplit(self.path).path, self._body)
        except HttpError as exc:
            status, reply = exc.status, {"error": exc.message}
        except Exception as exc:  # a bug of ours: say so, keep serving
            traceback.print_exc()
            status, reply = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        if not self._read and self.headers.get("Content-Length", "0") != "0":
            # a body left unread would be taken for the next request on this connection
            self.close_connection = True
        self._reply(status, reply)

    def _body(self) -> dict[str, Any]:
        self._read = True
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise HttpError(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length (a JSON object body)")
        try:
            size = int(length)
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY:
            self.close_connection = True
            raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if size > MAX_BODY else HTTPStatus.BAD_REQUEST,
                            f"Content-Length {clip(length)} is not a size of at most {MAX_BODY} bytes")
        data = self.rfile.read(size)
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):
            raise _bad("the body is not JSON") from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        return body

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        with contextlib.suppress(OSError):  # the client left: nothing to tell it
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)


def parse_listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) → (host, port); UserError otherwise.

    >>> parse_listen_address("127.0.0.1:8080"), parse_listen_address("[::1]:0")
    (('127.0.0.1', 8080), ('::1', 0))
    """
    match = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})", text)
    if match is None or int(match["port"]) > 65535:
        raise UserError(f"--listen {clip(text)!r} is not HOST:PORT with a port up to 65535 (e.g. 127.0.0.1:8080)")
    return match["v6"] or match["host"], int(match["port"])


@contextlib.contextmanager
def _private_workdir() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="scad-action-"))  # mode 0700
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def serve(listen: str = DEFAULT_LISTEN, *, transport_timeout: float = 60.0,
          ready: Callable[[str], None] | None = None) -> int:
    """Serve the action runtime at ``listen`` until SIGTERM or SIGINT; return the exit status (0).

    ``ready(url)`` is called once the socket listens (the CLI prints ``listening on URL``).
    """
    host, port = parse_listen_address(listen)
    with _private_workdir() as workdir:
        try:
            httpd = (_Server6 if ":" in host else _Server)((host, port), _Handler)
        except OSError as exc:
            raise UserError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        runtime = ActionRuntime(workdir, transport_timeout=transport_timeout)
        httpd.runtime = runtime

        def on_signal(signum: int, frame: FrameType | None) -> None:
            runtime.stop()
            # shutdown() waits for serve_forever to return: not from the thread running it
            threading.Thread(target=httpd.shutdown, daemon=True).start()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            bound_host, bound_port = httpd.server_address[:2]
            text = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
            if ready is not None:
                ready(f"http://{f'[{text}]' if ':' in text else text}:{bound_port}")
            httpd.serve_forever(poll_interval=0.1)
        finally:
            runtime.finish(_STOP_GRACE)
            httpd.server_close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0

