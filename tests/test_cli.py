"""The scadc command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "elements"


def scadc(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scadc", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=False, timeout=60)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    (tmp_path / "a.o.py").write_text("#@ type: compute\n#@ parents: [ghost]\ndef main(params, action):\n  pass\n")
    return tmp_path


def test_user_error_exits_2_without_traceback(broken: Path) -> None:
    done = scadc("dag", broken)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert f"{broken / 'a.o.py'}:2: unknown element 'ghost' in 'parents'" in done.stderr


def test_debug_shows_the_traceback(broken: Path) -> None:
    done = scadc("gen", broken, "--debug")
    assert done.returncode == 2
    assert "Traceback" in done.stderr and "ProgramError" in done.stderr


def test_missing_directory_is_a_user_error(tmp_path: Path) -> None:
    done = scadc("gen", tmp_path / "nope")
    assert done.returncode == 2 and "program directory does not exist" in done.stderr


def test_help_lists_commands_and_version() -> None:
    done = scadc("--help")
    assert done.returncode == 0 and "dag" in done.stdout and "gen" in done.stdout
    assert scadc("dag", "--help").stdout.count("--format") >= 1
    assert scadc("--version").stdout.startswith("scadc ")


def test_gen_is_byte_identical_on_rerun(tmp_path: Path) -> None:
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    assert scadc("gen", EXAMPLES / "fanout", "-o", first).returncode == 0
    assert scadc("gen", EXAMPLES / "fanout", "-o", second).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    assert scadc("gen", EXAMPLES / "fanout").stdout == first.read_text()


def test_gen_writes_the_openwhisk_shape(tmp_path: Path) -> None:
    out = tmp_path / "app.json"
    assert scadc("gen", EXAMPLES / "fanout", "-o", out).returncode == 0
    app = json.loads(out.read_text())
    assert app["publish"] is True
    (function,) = app["functions"]
    assert function["name"] == "fanout" and function["publish"] is True
    objects = {o["name"]: o for o in function["objects"]}
    assert [o["name"] for o in function["objects"]] == sorted(objects)
    square = objects["square"]
    assert square["exec"] == {"kind": "python:3", "code": square["exec"]["code"], "main": "main", "binary": False}
    assert "#@ " not in square["exec"]["code"] and "def main(params, action):" in square["exec"]["code"]
    assert square["limits"]["resources"] == {"cpu": 1.0, "mem": "128 MB", "storage": "512 MB"}
    assert square["porusParams"] == {
        "runtimeType": "compute", "parallelism": 3, "withMerged": [],
        "relationships": {"corunning": ["mem"], "dependents": ["collect"], "parents": ["produce"]},
    }
    assert objects["mem"]["porusParams"]["runtimeType"] == "memory"
    assert objects["mem"]["limits"]["resources"]["mem"] == "64 MB"
    assert "parallelism" not in objects["produce"]["porusParams"]


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    done = scadc("gen", EXAMPLES / "chain", "-o", tmp_path / "missing-dir" / "app.json")
    assert done.returncode == 2 and "cannot write" in done.stderr
    assert not (tmp_path / "missing-dir").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
@pytest.mark.parametrize("fmt, magic", [("svg", b"<svg"), ("png", b"\x89PNG")])
def test_dag_renders_with_graphviz(tmp_path: Path, fmt: str, magic: bytes) -> None:
    out = tmp_path / f"fanout.{fmt}"
    done = scadc("dag", EXAMPLES / "fanout", "-o", out)  # format inferred from the extension
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    assert magic in data[:400]
    if fmt == "svg":
        text = data.decode()
        assert "square ×3" in text and "stroke-dasharray" in text  # the dashed corunning edges


def test_dag_without_graphviz_says_how_to_install(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no `dot` anywhere on PATH
    done = scadc("dag", EXAMPLES / "chain", "--format", "svg", "-o", tmp_path / "x.svg", env=env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "apt-get install graphviz" in done.stderr and "--format dot" in done.stderr
    for fmt in ("dot", "json"):  # these never need graphviz
        assert scadc("dag", EXAMPLES / "chain", "--format", fmt, env=env).returncode == 0


def test_dag_json_lists_elements_and_edges() -> None:
    graph = json.loads(scadc("dag", EXAMPLES / "chain", "--format", "json").stdout)
    assert [e["name"] for e in graph["elements"]] == ["first", "second", "third"]
    assert graph["edges"] == [
        {"from": "first", "to": "second", "kind": "dependent"},
        {"from": "second", "to": "third", "kind": "dependent"},
    ]
