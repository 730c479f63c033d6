"""One real Ray cluster for a test session, on 127.0.0.1 (as Ray's own tests share one).

It runs in a process of its own (started by :func:`start`): the engine under test connects to it
and disconnects after every run, as ``scadc run --engine ray --address`` does, and a test process
that stayed connected could not also try a private cluster or a multi-node one. The cluster stops
when the process's stdin closes, so it does not outlive the session even if pytest is killed.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.leftovers import SESSION_PROCESSES

#: the environment every Ray process of the tests gets: loopback only, no usage stats, a session token
TOKEN = secrets.token_hex(32)
ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
       "RAY_AUTH_TOKEN": TOKEN}

_SERVE = """
import logging, os, sys, tempfile, shutil
import ray
session = tempfile.mkdtemp(prefix="scad-test-ray-")
os.environ["SCADRT_TASK_DIR"] = os.path.join(session, "tasks")  # the workers' task directories, for the tests to see
ray.init(num_cpus=int(sys.argv[1]), include_dashboard=False, _node_ip_address="127.0.0.1",
         _temp_dir=session, log_to_driver=False, logging_level=logging.ERROR)
print(ray.get_runtime_context().gcs_address, flush=True)
print(os.environ["SCADRT_TASK_DIR"], flush=True)
sys.stdin.read()
ray.shutdown()
shutil.rmtree(session, ignore_errors=True)
"""


@dataclass
class Cluster:
    process: subprocess.Popen[str]
    address: str
    #: where the cluster's tasks make their directories (scadrt.engines.task_dirs)
    task_dir: Path

    def task_dirs(self) -> list[Path]:
        """The task directories there now: none once a run has ended, however it ended."""
        return sorted(self.task_dir.glob("scadrt-task-*"))

    def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.stdout.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def use_test_environment() -> None:
    """Put :data:`ENV` in this process's environment (before ray is imported: it reads the auth mode then)."""
    os.environ.update(ENV)


def start(num_cpus: int = 4) -> Cluster:
    use_test_environment()
    process = subprocess.Popen([sys.executable, "-c", _SERVE, str(num_cpus)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    address = process.stdout.readline().strip()
    task_dir = process.stdout.readline().strip()
    if not address or not task_dir:
        process.kill()
        raise RuntimeError(f"the test Ray cluster did not start (exit status {process.wait()})")
    SESSION_PROCESSES.add(process.pid)
    return Cluster(process, address, Path(task_dir))


def connect(address: str) -> None:
    """Have this process connected to the cluster at ``address`` (staying so between runs saves a
    connection per run; another cluster's connection is closed first)."""
    use_test_environment()
    import ray

    if ray.is_initialized():
        if ray.get_runtime_context().gcs_address == address:
            return
        disconnect()
    ray.init(address=address, log_to_driver=False, logging_level="ERROR")


def disconnect() -> None:
    """Close this process's connection, after freeing what it still refers to (a ref of a cluster
    the driver has left, freed later, aborts the process)."""
    import gc

    import ray

    gc.collect()
    ray.shutdown()
