"""The Ray cluster a run uses: a private one started for the run, or one that already exists.

Rules:

1. ``ray`` is imported only here and only when a run asks for the Ray engine; without it the
   error says how to install it (``pip install 'scadc[ray]'``).
2. **No address**: a private single-node cluster is started for the run and stopped after it,
   Ctrl-C and failures included. Everything it listens on is 127.0.0.1 (Ray rewrites
   ``--node-ip-address`` to the routable address and binds all interfaces unless
   ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``), usage stats are off, its session directory is a
   private temporary directory removed afterwards (a run that fails with a crash or a lost memory
   element keeps the cluster's logs in another one, and says where), and its auth token is a fresh random one
   passed in the environment (Ray would otherwise write ``~/.ray/auth_token``, readable by
   every user).
5. If this process is connected to Ray already (``ray.init`` by the caller, a test's cluster),
   the run uses that connection and leaves it as it was; an address naming another cluster is
   a user error (a process has one connection).
3. **An address** (``auto`` or ``HOST:PORT``): connect to that cluster and disconnect after the
   run; the cluster keeps running. Its auth token is the user's (``RAY_AUTH_TOKEN`` or
   ``~/.ray/auth_token``), as for any Ray driver.
4. Ray's errors at the boundary (cannot connect, a cluster that does not start) become
   :class:`~scadrt.errors.UserError` with the address and what went wrong. A ``HOST:PORT`` is
   checked first, in a moment: nothing listening, or a server that does not answer the HTTP/2
   preface as a gRPC server does (``ray.init`` retries either for minutes).
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import socket
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from scadrt.engines.task_dirs import TASK_DIR_ENV
from scadrt.errors import UserError
from scadrt.report import RunFailed

__all__ = ["LOOPBACK_ENV", "Node", "connect", "import_ray", "nodes"]

#: what keeps a Ray cluster on this machine on 127.0.0.1, and quiet (rule 2)
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}

INSTALL_HINT = "the Ray engine needs ray: pip install 'scadc[ray]'"


def import_ray() -> ModuleType:
    """``ray``, or a UserError saying how to install it (rule 1)."""
    # Only the quiet half of LOOPBACK_ENV: the loopback half would also bind the driver of a run on
    # an existing cluster (--address) to 127.0.0.1, where that cluster's other nodes cannot reach it;
    # the private cluster gets it from _private_environment.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise UserError(f"{INSTALL_HINT} ({exc})") from exc
    return ray


@dataclass(frozen=True)
class Node:
    """An alive node of the cluster and what it has in all (not what is free now)."""

    node_id: str
    address: str
    resources: dict[str, float]

    def fits(self, demand: dict[str, float]) -> bool:
        return all(self.resources.get(key, 0.0) >= value for key, value in demand.items() if value > 0)


def nodes(ray: ModuleType) -> list[Node]:
    return [Node(n["NodeID"], n.get("NodeManagerAddress", ""), dict(n.get("Resources", {})))
            for n in ray.nodes() if n.get("Alive")]


@contextmanager
def connect(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Be connected to a Ray cluster for the block (rules 2-4); yields the ``ray`` module."""
    imported = sys.modules.get("ray")
    if imported is not None and imported.is_initialized():  # the caller's connection: used, left as it is
        current = imported.get_runtime_context().gcs_address
        if address not in (None, "auto", current):
            raise UserError(f"this process is connected to the Ray cluster at {current} already; run there "
                            f"(no address) or call ray.shutdown() first to run at {address}")
        with _cluster_messages_to_stderr():
            yield imported
        return
    yield from _connected(address, num_cpus)


def _connected(address: str | None, num_cpus: int | None) -> Iterator[ModuleType]:
    if address is not None:
        _check_reachable(address)
        ray = import_ray()
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
        with _cluster_messages_to_stderr():  # until after the shutdown, which can report a worker's end
            try:
                yield ray
            finally:
                ray.shutdown()
        return
    session = tempfile.mkdtemp(prefix="scadrt-ray-")  # mode 0700: the cluster's sockets, logs and task directories
    keep = False
    try:
        with _private_environment({TASK_DIR_ENV: os.path.join(session, "tasks")}):
            ray = import_ray()  # after the environment: the driver reads its auth mode at import
            try:
                ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                         _node_ip_address="127.0.0.1", _temp_dir=session, log_to_driver=False,
                         logging_level=logging.ERROR)
            except (ConnectionError, RuntimeError, ValueError, OSError) as exc:
                raise UserError(f"cannot start a private Ray cluster: {exc}") from exc
            with _cluster_messages_to_stderr():
                try:
                    yield ray
                except RunFailed as failed:
                    keep = failed.failure.kind == "crash" or bool(failed.failure.memory)
                    raise
                finally:
                    ray.shutdown()
    finally:
        if keep:
            _keep_logs(session)
        shutil.rmtree(session, ignore_errors=True)


def _keep_logs(session: str) -> None:
    """Copy the private cluster's logs (regular files only: its sockets go with it) to a private
    directory that outlives the run, and say where: a process that crashed, or a memory element's
    actor that died, left its reason there and nowhere else."""
    try:
        kept = tempfile.mkdtemp(prefix="scadrt-ray-logs-")  # mode 0700, as the session's
        for root, _, files in os.walk(session):
            if os.sep + "logs" + os.sep not in root + os.sep:
                continue
            target = os.path.join(kept, os.path.relpath(root, session))
            os.makedirs(target, mode=0o700, exist_ok=True)
            for name in files:
                path = os.path.join(root, name)
                if stat.S_ISREG(os.lstat(path).st_mode):
                    shutil.copyfile(path, os.path.join(target, name))
    except OSError as exc:
        print(f"scadrt: the private Ray cluster's logs could not be kept: {exc}", file=sys.stderr)
        return
    print(f"scadrt: the private Ray cluster's logs are kept in {kept}", file=sys.stderr)


@contextmanager
def _cluster_messages_to_stderr() -> Iterator[None]:
    """While a run uses Ray, the cluster's own messages (a driver thread prints the raylet's,
    such as "A worker died or was killed while executing a task", to sys.stdout) go to stderr:
    stdout carries only what the program's elements print. Ray's internals, so a Ray without the
    hook is left as it is."""
    worker = sys.modules.get("ray._private.worker")
    original = getattr(worker, "print_to_stdstream", None)
    if worker is None or original is None:
        yield
        return

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    setattr(worker, "print_to_stdstream", to_stderr)  # noqa: B010 - not in Ray's stubs
    try:
        yield
    finally:
        setattr(worker, "print_to_stdstream", original)  # noqa: B010


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a HOST:PORT where nothing listens: ``ray.init`` retries such an address for many
    minutes before it gives up."""
    if address == "auto" or "://" in address:  # auto: Ray looks the address up itself, and says so at once
        return
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        raise UserError(f"--address {address!r}: expected auto or HOST:PORT (the head node's GCS address)")
    hint = "is a Ray head node running there? `ray status` on it prints its address"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as conn:
            if os.environ.get("RAY_USE_TLS", "0") in ("0", ""):
                answer = _http2_answer(conn)
    except OSError as exc:
        raise UserError(f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc} ({hint})") from exc
    else:
        if os.environ.get("RAY_USE_TLS", "0") in ("0", "") and not _is_settings_frame(answer):
            raise UserError(f"{address} does not answer as a Ray cluster's GCS (a gRPC server) does ({hint})")


#: what an HTTP/2 client sends first; a gRPC server answers with its SETTINGS frame
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: a SETTINGS frame with no settings (length 0, type 0x4, no flags, stream 0), which must follow it
_EMPTY_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _http2_answer(conn: socket.socket) -> bytes:
    """The first 9 bytes (an HTTP/2 frame header) the server sends after the client preface:
    a server that is not a GCS may keep a ray.init retrying for minutes, where this takes a moment."""
    conn.sendall(_HTTP2_PREFACE + _EMPTY_SETTINGS)
    data = b""
    while len(data) < 9:
        chunk = conn.recv(9 - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _is_settings_frame(header: bytes) -> bool:
    """An HTTP/2 frame header of type SETTINGS (0x4) on stream 0."""
    return len(header) == 9 and header[3] == 0x4 and int.from_bytes(header[5:9], "big") & 0x7FFFFFFF == 0


@functools.cache
def _process_token() -> str:
    """The private clusters' token: one per process, because a Ray driver keeps the first token it
    used (a second private cluster with a new one refuses the driver)."""
    return secrets.token_hex(32)


@contextmanager
def _private_environment(extra: dict[str, str]) -> Iterator[None]:
    """Rule 2's environment (and ``extra``) while the private cluster lives (its processes inherit
    it), then the caller's again."""
    wanted: dict[str, Any] = {**LOOPBACK_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _process_token(), **extra}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
