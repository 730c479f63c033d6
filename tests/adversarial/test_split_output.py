"""Where `scadc split -o DIR` and `scadc profile -o FILE` may write, and what --force may replace.

--force replaces only a directory an earlier `scadc split` wrote (its split.json carries the
format tag and it holds nothing else split did not write); never the input, a directory holding
it, the current directory or an ancestor, a file or a symbolic link. Every refusal is exit 2
with the reason, and leaves every byte where it was. Writing problems (missing parent,
read-only directory, /proc) are exit 2 `cannot write …`, not a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scadc.cli

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]

APP = """import numpy as np


def main():
    data = np.ones(1_000_000)
    total = float(data.sum())
    print("total", total)


if __name__ == "__main__":
    main()
"""


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, symlink targets, directories."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            out[key] = "dir"
        else:
            out[key] = path.read_bytes()
    return out


def scadc_command(command: str, *argv: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of ``scadc COMMAND ARGV…``, which never prints a traceback."""
    capsys.readouterr()
    code = scadc.cli.main([command, *map(str, argv)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def split(*argv: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    return scadc_command("split", *argv, capsys=capsys)


def profile(*argv: str | Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    return scadc_command("profile", *argv, capsys=capsys)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "app.py"
    path.parent.mkdir()
    path.write_text(APP)
    (path.parent / "notes.txt").write_text("my notes\n")
    return path


def test_split_json_carries_the_format_tag(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert split(app, "-o", tmp_path / "prog", capsys=capsys)[0] == 0
    assert json.loads((tmp_path / "prog" / "split.json").read_text())["format"] == "scadc-split/1"


def test_force_replaces_a_previous_split(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog"
    assert split(app, "-o", prog, "--policy", "single", capsys=capsys)[0] == 0
    assert split(app, "-o", prog, "--policy", "every", "--force", capsys=capsys)[0] == 0
    assert json.loads((prog / "split.json").read_text())["policy"] == "every"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prog", "src"]  # no staging or old copy left


@pytest.mark.parametrize("where", ["the input's directory", "an ancestor of the input"])
def test_force_never_removes_a_directory_holding_the_input(
        app: Path, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = app.parent if where == "the input's directory" else tmp_path
    before = snapshot(tmp_path)
    code, err = split(app, "-o", target, "--force", capsys=capsys)
    assert code == 2 and "contains the input program" in err
    assert snapshot(tmp_path) == before


def test_force_never_replaces_the_input_itself(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(tmp_path)
    code, err = split(app, "-o", app, "--force", capsys=capsys)
    assert code == 2 and "is the input program" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("target", [".", "..", "{cwd}"])
def test_force_never_removes_the_current_directory_or_its_ancestors(
        app: Path, tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cwd = tmp_path / "work" / "here"
    cwd.mkdir(parents=True)
    (cwd / "data.csv").write_text("1,2,3\n")
    monkeypatch.chdir(cwd)
    before = snapshot(tmp_path)
    code, err = split(app, "-o", target.format(cwd=cwd), "--force", capsys=capsys)
    assert code == 2 and "current directory" in err
    assert snapshot(tmp_path) == before


def test_force_refuses_a_directory_split_did_not_write(
        app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me\n")
    (notes / "split.json").write_text('{"mine": true}\n')  # a split.json, but not ours
    before = snapshot(tmp_path)
    code, err = split(app, "-o", notes, "--force", capsys=capsys)
    assert code == 2 and "not written by scadc split" in err
    assert snapshot(tmp_path) == before
    empty = tmp_path / "empty"
    empty.mkdir()
    assert split(app, "-o", empty, "--force", capsys=capsys)[0] == 2
    assert empty.is_dir() and not any(empty.iterdir())


def test_force_refuses_a_split_directory_holding_other_files(
        app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog"
    assert split(app, "-o", prog, capsys=capsys)[0] == 0
    (prog / "dag.svg").write_text("<svg/>\n")
    (prog / "data").mkdir()
    before = snapshot(tmp_path)
    code, err = split(app, "-o", prog, "--force", capsys=capsys)
    assert code == 2 and "dag.svg" in err and "scadc split did not write" in err
    assert snapshot(tmp_path) == before


def test_force_refuses_an_older_split_without_the_tag(
        app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog"
    assert split(app, "-o", prog, capsys=capsys)[0] == 0
    report = json.loads((prog / "split.json").read_text())
    del report["format"]
    (prog / "split.json").write_text(json.dumps(report))
    before = snapshot(tmp_path)
    code, err = split(app, "-o", prog, "--force", capsys=capsys)
    assert code == 2 and "older scadc split" in err and "remove it by hand" in err
    assert snapshot(tmp_path) == before


def test_force_refuses_files_and_symbolic_links(app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog"
    assert split(app, "-o", prog, capsys=capsys)[0] == 0
    (tmp_path / "file.txt").write_text("a file\n")
    (tmp_path / "link").symlink_to(prog)  # even to a split directory: the link is not it
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = snapshot(tmp_path)
    for target, reason in [("file.txt", "not a directory"), ("link", "symbolic link"),
                           ("dangling", "symbolic link")]:
        for force in (["--force"], []):
            code, err = split(app, "-o", tmp_path / target, *force, capsys=capsys)
            assert code == 2 and reason in err, (target, force, err)
    assert snapshot(tmp_path) == before


def test_a_failed_split_leaves_the_previous_one_untouched(
        app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prog = tmp_path / "prog"
    assert split(app, "-o", prog, capsys=capsys)[0] == 0
    bad = tmp_path / "bad.py"
    bad.write_text("def main():\n    global g\n    g = 1\n\nif __name__ == '__main__':\n    main()\n")
    before = snapshot(tmp_path)
    code, err = split(bad, "-o", prog, "--force", capsys=capsys)
    assert code == 2 and "global" in err
    assert snapshot(tmp_path) == before


def test_split_makes_missing_parents_but_not_through_a_file(app: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = split(app, "-o", tmp_path / "missing" / "deeper" / "prog", capsys=capsys)
    assert code == 0 and (tmp_path / "missing" / "deeper" / "prog" / "split.json").is_file()
    (tmp_path / "plain").write_text("x\n")
    code, err = split(app, "-o", tmp_path / "plain" / "sub" / "prog", capsys=capsys)
    assert code == 2 and "is not a directory" in err
    assert (tmp_path / "plain").read_text() == "x\n"
    code, err = split(app, "-o", tmp_path / "plain" / "prog", capsys=capsys)
    assert code == 2 and "is not a directory" in err


def test_split_into_proc_is_a_clean_error(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = split(app, "-o", "/proc/scadc-test-x", capsys=capsys)
    assert code == 2 and "scadc: error: cannot write /proc/scadc-test-x" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o500 directory anyway")
def test_split_into_a_read_only_directory_is_a_clean_error(
        app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, err = split(app, "-o", locked / "prog", capsys=capsys)
    finally:
        locked.chmod(0o700)
    assert code == 2 and f"scadc: error: cannot write {locked / 'prog'}" in err
    assert not any(locked.iterdir())


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="a read-only bind mount needs root and unshare")
def test_split_into_a_read_only_mount_is_a_clean_error(app: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    assert split(app, "-o", ro / "prog", capsys=capsys)[0] == 0  # an earlier split, then the mount goes read-only
    before = snapshot(tmp_path)
    for out, force in [(ro / "new", ""), (ro / "prog", "--force")]:
        script = (f'mount --bind -o ro "{ro}" "{ro}" || exit 77\n'
                  f'exec "{sys.executable}" -m scadc split "{app}" -o "{out}" {force}')
        done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, cwd=ROOT, timeout=300,
                              check=False)
        if done.returncode == 77:
            pytest.skip("bind mounts are not allowed here")
        err = done.stderr.decode()
        assert done.returncode == 2 and err.startswith(f"scadc: error: cannot write {out}: "), err
        assert "Read-only file system" in err and "Traceback" not in err
    assert snapshot(tmp_path) == before


def test_split_refusal_through_the_real_command_line(app: Path) -> None:
    before = snapshot(app.parent)
    done = subprocess.run([sys.executable, "-m", "scadc", "split", str(app), "-o", str(app.parent), "--force"],
                          capture_output=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 2
    assert done.stderr.decode().startswith(f"scadc: error: {app.parent}: contains the input program")
    assert snapshot(app.parent) == before


def test_profile_never_overwrites_the_program_or_other_files(
        app: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(tmp_path)
    code, err = profile(app, "-o", app, capsys=capsys)
    assert code == 2 and "is the input program" in err
    code, err = profile(app, "-o", app.parent / "notes.txt", capsys=capsys)
    assert code == 2 and "not a scadc profile" in err
    code, err = profile(app, "-o", app.parent, capsys=capsys)
    assert code == 2 and "is a directory" in err
    assert snapshot(tmp_path) == before
    out = tmp_path / "app.profile.json"
    assert profile(app, "-o", out, capsys=capsys)[0] == 0
    assert profile(app, "-o", out, capsys=capsys)[0] == 0  # a profile it wrote may be replaced
    assert json.loads(out.read_text())["format"] == "scadc-profile/1"


def test_profile_output_problems_are_clean_errors(app: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, err = profile(app, "-o", tmp_path / "missing" / "p.json", capsys=capsys)
    assert code == 2 and "does not exist" in err
    code, err = profile(app, "-o", "/proc/scadc-test-x.json", capsys=capsys)
    assert code == 2 and "scadc: error: cannot write /proc/scadc-test-x.json" in err


def test_symbolic_link_loops_are_clean_errors(app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    Path("loop").symlink_to("loop")
    Path("a").symlink_to("b")
    Path("b").symlink_to("a")
    for program, out in [("loop", "prog"), ("a", "prog"), (app, "loop/prog"), (app, "loop")]:
        code, err = split(program, "-o", out, capsys=capsys)
        assert code == 2 and err.startswith("scadc: error: "), (program, out, err)
    for program, out in [("loop", "p.json"), (app, "a/p.json"), (app, "loop")]:
        code, err = profile(program, "-o", out, capsys=capsys)
        assert code == 2 and err.startswith("scadc: error: "), (program, out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "loop", "src"]
