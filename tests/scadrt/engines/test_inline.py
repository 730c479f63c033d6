"""A program of one compute element runs in the ``scadc run`` process itself
(scadrt/engines/inline.py): what it prints, its failures and its report are what the local
engine gives the same program (run here with captured streams, which keeps it on the engine),
and no other process is started."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import scadrt
from scadrt.report import RunFailed
from tests.programs import ROOT, scadc, write

MAIN = "def main(params, action):\n"


def solo(root: Path, body: str) -> Path:
    return write(root, {"solo.o.py": "#@ type: compute\nimport os, sys, time\n" + MAIN + body})


def test_a_one_element_program_runs_in_the_run_command_itself(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    prog = solo(tmp_path / "p", f"    open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
                                "    import threading\n    print('out', params['n'], threading.active_count())\n"
                                "    print('err', file=sys.stderr)\n"
                                "    action.profile(3)\n    return {'n': params['n'] * 2}\n")
    report, result, html = tmp_path / "r.json", tmp_path / "result.json", tmp_path / "r.html"
    proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "--param", "n=4", "-q", "--report",
                             str(report), "--result-json", str(result), "--html", str(html)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert int(pid_file.read_text()) == proc.pid  # no process of its own
    engine_out, engine_err = io.BytesIO(), io.BytesIO()
    scadrt.run(prog, params={"n": 4}, stdout=engine_out, stderr=engine_err)  # the local engine
    assert (out, err) == (engine_out.getvalue().decode(), engine_err.getvalue().decode()) == ("out 4 1\n", "err\n")
    assert int(pid_file.read_text()) != proc.pid  # there, an instance process
    assert json.loads(result.read_text()) == {"n": 8}
    (instance,) = json.loads(report.read_text())["instances"]
    assert (instance["element"], instance["status"], instance["pid"]) == ("solo", "ok", proc.pid)
    assert [p["point"] for p in instance["profile"]] == [3] and instance["peak_rss"] > 10 * 2**20
    assert len(instance["rss_samples"]) == 2 and "solo" in html.read_text()


def test_its_failures_read_as_the_local_engines(tmp_path: Path) -> None:
    for body, last in (("    x = 1\n    raise ValueError(f'bad {x}')\n", "ValueError: bad 1"),
                       ("    sys.exit(3)\n", "SystemExit: 3")):
        prog = solo(tmp_path / last.split(":")[0], body)
        cli = scadc("run", prog, "-q", "--report", tmp_path / "r.json")
        try:
            scadrt.run(prog, stdout=io.BytesIO(), stderr=io.BytesIO())
        except RunFailed as failed:
            engine = failed.failure
        else:
            raise AssertionError("the local engine ran a failing element")
        assert cli.returncode == 1
        assert cli.stderr == f"scadc: element 'solo' instance 0 failed:\n{engine.traceback.rstrip()}\n"
        assert cli.stderr.rstrip().endswith(last) and f'{prog / "solo.o.py"}", line' in cli.stderr
        assert json.loads((tmp_path / "r.json").read_text())["status"] == "failed"


def test_sigterm_and_ctrl_c_stop_it_as_they_stop_a_run(tmp_path: Path) -> None:
    started = tmp_path / "started"
    prog = solo(tmp_path / "p", f"    open({str(started)!r}, 'w').close()\n    time.sleep(60)\n")
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        started.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-m", "scadc", "run", str(prog), "-q"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == status and "Traceback" not in err, err
