"""Starting a memory server as a child process, and the handle to it.

The server itself and its options are in :mod:`scadrt.transports.memory_server`; this module
only runs ``python -m scadrt.transports.memory_server`` and waits for its one line
``listening on tcp://HOST:PORT``. The local engine's tcp memory backend
(:mod:`scadrt.engines.memory`), tests and benches use it. It imports neither zmq nor numpy:
the server runs in the child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Protocol, Self

from scadrt.errors import TransportError, clip
from scadrt.readiness import readable

__all__ = ["ChildProcess", "ServerProcess", "launch_memory_server", "server_options", "spawn_memory_server"]


class ChildProcess(Protocol):
    """What :class:`ServerProcess` needs of its process: a :class:`subprocess.Popen`, or a forked
    child with the same methods (:mod:`scadrt.engines.server_fork`)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def returncode(self) -> int | Any: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


@dataclass
class ServerProcess:
    """A memory server running as a child process (see :func:`spawn_memory_server`).

    A server from :func:`launch_memory_server` stops when this object's ``process.stdin`` closes:
    at :meth:`stop`, when the object is garbage-collected, and when this process dies.
    """

    process: ChildProcess
    #: the endpoint clients connect to, with the real port
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> IO[bytes]:
        """The pipe the server's "listening on" line comes through (to select() on several)."""
        assert self.process.stdout is not None  # launch_memory_server always makes the pipe
        return self.process.stdout

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait for the "listening on" line and learn the url; TransportError (and the server
        stopped) if it exits or stays silent for ``timeout`` seconds."""
        ready = readable([self.output], timeout)
        line = self.output.readline().decode().strip() if ready else ""
        if not line.startswith("listening on "):
            status = self.stop(timeout=1.0)
            raise TransportError(f"memory server did not start (exit status {status}, said {clip(line)!r})")
        self.url = line.removeprefix("listening on ")

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, wait up to ``timeout`` s (then SIGKILL); return the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        return self.process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def spawn_memory_server(size: int | str, *, listen: str = "tcp://127.0.0.1:0", token: str | None = None,
                        max_request: int | None = None, rdma: str | None = None, no_stream: bool = False,
                        log_level: str = "warning", ready_timeout: float = 20.0,
                        extra_args: Sequence[str] = (), stderr: IO[bytes] | int | None = None) -> ServerProcess:
    """Start ``python -m scadrt.transports.memory_server`` and wait for its "listening on" line.

    The token travels in the environment (``SCAD_TOKEN``), not on the command line, where other
    users could read it in the process list. Raise :class:`TransportError` if the server exits or
    stays silent for ``ready_timeout`` seconds.
    """
    server = launch_memory_server(size, listen=listen, token=token, max_request=max_request, rdma=rdma,
                                  no_stream=no_stream, log_level=log_level, extra_args=extra_args, stderr=stderr)
    server.wait_ready(ready_timeout)
    return server


def server_options(size: int | str, *, listen: str = "tcp://127.0.0.1:0", max_request: int | None = None,
                   rdma: str | None = None, no_stream: bool = False, log_level: str = "warning",
                   extra_args: Sequence[str] = ()) -> list[str]:
    """The server's options for a child of this process: it stops at the end of its stdin and,
    when this is the main thread (see :func:`launch_memory_server`), when this process dies."""
    options = ["--listen", listen, "--size", str(size), "--log-level", log_level, "--exit-with-stdin"]
    if threading.current_thread() is threading.main_thread():
        options += ["--exit-with-parent", str(os.getpid())]
    if max_request is not None:
        options += ["--max-request", str(max_request)]
    if rdma is not None:  # a device name, or "auto"
        options += ["--rdma", rdma]
    if no_stream:
        options.append("--no-stream")
    return options + list(extra_args)


def launch_memory_server(size: int | str, *, listen: str = "tcp://127.0.0.1:0", token: str | None = None,
                         max_request: int | None = None, rdma: str | None = None, no_stream: bool = False,
                         log_level: str = "warning", extra_args: Sequence[str] = (),
                         stderr: IO[bytes] | int | None = None) -> ServerProcess:
    """Start a memory server without waiting for it (:meth:`ServerProcess.wait_ready` does), so
    that several can start at once; see :func:`spawn_memory_server`.

    The server dies with this process (rule 6 of :mod:`scadrt.transports.memory_server`): its
    stdin is a pipe whose write end only this process holds (close-on-exec, so programs this
    process runs do not inherit it; processes it *forks* do, and keep the server alive until they
    exit or close it), and, when called from the main thread, it also gets SIGTERM from the
    kernel when this process dies.
    ``extra_args`` are more server options (e.g. ``["--idle-timeout", "5"]``).
    """
    argv = [sys.executable, "-m", "scadrt.transports.memory_server",
            *server_options(size, listen=listen, max_request=max_request, rdma=rdma, no_stream=no_stream,
                            log_level=log_level, extra_args=extra_args)]
    env = dict(os.environ)
    env.pop("SCAD_TOKEN", None)
    if token is not None:
        env["SCAD_TOKEN"] = token
    # subprocess makes the parent's end of each pipe close-on-exec
    return ServerProcess(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                          env=env), url="")
