"""Sources Python runs are read and parsed as Python does, by split, analyze and profile alike.

A source file is decoded as ``tokenize.open`` decodes it (a UTF-8 BOM, a ``coding:`` line); deep
expressions (hundreds or thousands of terms) are parsed on a large stack; nesting CPython
itself rejects, or deeper than scadc handles, is exit 2 with the reason, never a traceback or a
crash. Everything runs through the real command line in a child process (a crash must not take
pytest with it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, cwd=cwd, timeout=300,
                          check=False)


def scadc(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return run("-m", "scadc", *argv, cwd=cwd)


def assert_split_runs_like_python(app: Path, tmp_path: Path, *split_args: str) -> bytes:
    """Split ``app``, run the elements; they print what ``python app`` prints. Returns that."""
    original = run(app)
    assert original.returncode == 0, original.stderr.decode()
    prog = tmp_path / "prog"
    done = scadc("split", app, "-o", prog, *split_args)
    assert done.returncode == 0, done.stderr.decode()
    split = scadc("run", prog, "--quiet")
    assert split.returncode == 0, split.stderr.decode()
    assert split.stdout == original.stdout
    return original.stdout


def assert_analyze_and_profile_work(app: Path, tmp_path: Path) -> None:
    analyzed = scadc("analyze", app)
    assert analyzed.returncode == 0 and b"Traceback" not in analyzed.stderr, analyzed.stderr.decode()
    profiled = scadc("profile", app, "-o", tmp_path / "app.profile.json")
    assert profiled.returncode == 0, profiled.stderr.decode()
    assert profiled.stdout == run(app).stdout  # the program ran as under python


def deep_main(expression: str) -> str:
    return (f"import numpy as np\n\n\ndef main():\n    data = np.ones(1_000_000)\n    x = {expression}\n"
            f"    print(x, data.sum())\n\n\nif __name__ == '__main__':\n    main()\n")


def test_a_500_term_expression_splits_runs_and_profiles(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(deep_main(" + ".join(["1"] * 500)))
    assert assert_split_runs_like_python(app, tmp_path, "--policy", "every") == b"500 1000000.0\n"
    assert_analyze_and_profile_work(app, tmp_path)


def test_a_500_term_script_statement_splits_and_runs(tmp_path: Path) -> None:
    app = tmp_path / "script.py"
    app.write_text("import numpy as np\n\ndata = np.ones(1_000_000)\nx = " + " + ".join(["1"] * 500)
                   + "\nprint(x, data.sum())\n")
    assert_split_runs_like_python(app, tmp_path, "--policy", "every")


def test_thousands_of_or_terms_split_and_run(tmp_path: Path) -> None:
    # CPython keeps `a or b or ...` flat, libcst nests it: 3000 terms are 3000 levels for the parser
    app = tmp_path / "app.py"
    app.write_text(deep_main(" or ".join(["0"] * 2999 + ["7"])))
    assert assert_split_runs_like_python(app, tmp_path) == b"7 1000000.0\n"


@pytest.mark.parametrize(("name", "expression", "why"), [
    ("plus100k", " + ".join(["1"] * 100_000), "too deeply nested for Python"),
    ("plus3000", " + ".join(["1"] * 3000), "too deeply nested for Python"),  # python app.py fails too
    ("minus100k", "-" * 100_000 + "1", "too deeply nested for Python"),
    ("or30k", " or ".join(["0"] * 30_000), "nested more than 10000 levels deep"),  # Python runs this one
])
def test_pathological_nesting_is_a_clean_error(tmp_path: Path, name: str, expression: str, why: str) -> None:
    app = tmp_path / f"{name}.py"
    app.write_text(deep_main(expression))
    for argv in (["split", app, "-o", tmp_path / "prog"], ["analyze", app],
                 ["profile", app, "-o", tmp_path / "p.json"]):
        done = scadc(*argv)
        err = done.stderr.decode()
        assert done.returncode == 2, (argv, done.returncode, err[-2000:])
        assert err.startswith(f"scadc: error: {app}") and why in err, err[:500]
        assert "Traceback" not in err and len(err) < 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == [app.name]


LATIN = """# -*- coding: latin-1 -*-
import numpy as np


def main():
    name = "café"  # a latin-1 byte in the file
    data = np.ones(1_000_000)
    print(name, data.sum())


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("encoding", ["latin-1 cookie", "utf-8 bom"])
def test_sources_are_decoded_as_python_decodes_them(tmp_path: Path, encoding: str) -> None:
    app = tmp_path / "app.py"
    if encoding == "latin-1 cookie":
        app.write_bytes(LATIN.encode("latin-1"))
    else:
        app.write_bytes(b"\xef\xbb\xbf" + LATIN.split("\n", 1)[1].encode("utf-8"))
    out = assert_split_runs_like_python(app, tmp_path, "--policy", "every")
    assert out == "café 1000000.0\n".encode()
    assert_analyze_and_profile_work(app, tmp_path)


@pytest.mark.parametrize(("data", "why"), [
    (b"# coding: no-such-codec\nprint(1)\n", "unknown encoding: no-such-codec"),
    (b"\xef\xbb\xbf# coding: latin-1\nprint(1)\n", "encoding problem"),
    (b"# coding: ascii\nprint('caf\xc3\xa9')\n", "not ascii: byte 0xc3 cannot be decoded"),
])
def test_bad_declared_encodings_are_clean_errors(tmp_path: Path, data: bytes, why: str) -> None:
    app = tmp_path / "app.py"
    app.write_bytes(data)
    assert run(app).returncode != 0  # Python refuses these too
    for argv in (["split", app, "-o", tmp_path / "prog"], ["analyze", app], ["profile", app]):
        done = scadc(*argv)
        err = done.stderr.decode()
        assert done.returncode == 2 and err.startswith(f"scadc: error: {app}") and why in err, (argv, err)
        assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py"]


def _has_deep_stack(pid: int) -> bool:
    """The process has mapped a thread stack of 512 MiB: its deep_call has started."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        low, high = (int(x, 16) for x in line.split()[0].split("-"))
        if high - low >= 512 * 2**20:
            return True
    return False


def test_ctrl_c_during_a_deep_split_leaves_nothing_behind(tmp_path: Path) -> None:
    import signal
    import time

    app = tmp_path / "app.py"
    app.write_text(deep_main(" or ".join(["0"] * 8000 + ["7"])))  # seconds of libcst work
    prog = tmp_path / "prog"
    child = subprocess.Popen([sys.executable, "-m", "scadc", "split", str(app), "-o", str(prog)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while child.poll() is None and not _has_deep_stack(child.pid):
            time.sleep(0.02)
        time.sleep(0.5)  # well into the analysis; when exactly does not matter, the outcome is clean anyway
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=300)
    finally:
        child.kill()
        child.wait()
    if child.returncode == 0:  # it finished first: then the directory is complete
        assert (prog / "split.json").is_file()
    else:
        assert child.returncode == 130 and err == b"scadc: interrupted\n", (child.returncode, err[-3000:])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["app.py"]  # no staging directory either
