"""Issue 10 against the element-directory loader (`scadc dag`, `gen`, and what `run` loads).

Whatever a user writes into an element directory, the loader answers with a Program or a
ProgramError (each problem with its file and line and a short message), in bounded time and
memory; the command line turns that into `scadc: error: …` and exit status 2, never a traceback.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from scadrt.dag import DEFAULT_MAX_PARALLELISM, load_program
from scadrt.errors import ProgramError
from tests.programs import scadc, write

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
MAIN = "def main(params, action):\n    return {}\n"


def compute(header: str, code: str = MAIN) -> str:
    return "".join(f"#@ {line}\n" for line in header.strip("\n").splitlines()) + code


def problems(root: Path, **kwargs: int) -> list[tuple[str, int, str]]:
    with pytest.raises(ProgramError) as info:
        load_program(root, **kwargs)
    return [(Path(p.file).name, p.line, p.message) for p in info.value.problems]


# --------------------------------------------------------------------------- parallelism


def test_parallelism_is_bounded_by_a_documented_default(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"a.o.py": compute("type: compute\nparallelism: 99999999999999999999")})
    [(name, line, message)] = problems(root)
    assert (name, line) == ("a.o.py", 2)
    assert str(DEFAULT_MAX_PARALLELISM) in message and "--max-parallelism" in message
    assert len(message) < 300


def test_parallelism_at_the_bound_loads_and_the_bound_can_be_raised_or_lowered(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"a.o.py": compute(f"type: compute\nparallelism: {DEFAULT_MAX_PARALLELISM}")})
    assert load_program(root).elements["a"].parallelism == DEFAULT_MAX_PARALLELISM
    [(_, line, message)] = problems(root, max_parallelism=DEFAULT_MAX_PARALLELISM - 1)
    assert line == 2 and "--max-parallelism" in message
    more = write(tmp_path / "q", {"m.o.yaml": f"type: memory\nparallelism: {DEFAULT_MAX_PARALLELISM + 1}\n"})
    assert problems(more)
    assert load_program(more, max_parallelism=DEFAULT_MAX_PARALLELISM + 1).elements["m"].parallelism == (
        DEFAULT_MAX_PARALLELISM + 1)


@pytest.mark.parametrize("command", ["dag", "gen"])
def test_dag_and_gen_refuse_huge_parallelism_and_take_max_parallelism(tmp_path: Path, command: str) -> None:
    root = write(tmp_path / "p", {"a.o.py": compute("type: compute\nparallelism: 99999999999999999999")})
    huge = scadc(command, root)
    assert huge.returncode == 2 and "Traceback" not in huge.stderr, huge.stderr
    assert "a.o.py:2" in huge.stderr and "--max-parallelism" in huge.stderr
    five = write(tmp_path / "q", {"a.o.py": compute("type: compute\nparallelism: 5")})
    low = scadc(command, five, "--max-parallelism", "4")
    assert low.returncode == 2 and "--max-parallelism" in low.stderr, low.stderr
    assert scadc(command, five, "--max-parallelism", "5").returncode == 0


@pytest.mark.parametrize("bad", ["0", "-3", "x"])
def test_max_parallelism_option_must_be_a_positive_whole_number(tmp_path: Path, bad: str) -> None:
    root = write(tmp_path / "p", {"a.o.py": compute("type: compute")})
    result = scadc("dag", root, "--max-parallelism", bad)
    assert result.returncode == 2 and "--max-parallelism" in result.stderr and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- YAML that expands or nests

def scadc_bounded(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The CLI with at most 2 GiB of address space: a loader that blows up fails instead of swapping."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    return subprocess.run([sys.executable, "-m", "scadc", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False, preexec_fn=limit)


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit status 2, no traceback, a short message, and each needle in it."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.stderr.startswith("scadc: error: "), result.stderr[-2000:]
    assert len(result.stderr) < 20_000, len(result.stderr)
    for needle in needles:
        assert needle in result.stderr, result.stderr[-2000:]


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))


@pytest.mark.parametrize("where", ["yaml", "header"])
def test_billion_laughs_is_refused_at_the_first_alias(tmp_path: Path, where: str) -> None:
    # 12 lines, 9**9 leaves once expanded; the first alias is on the file's fourth line
    body = "withMerged:\n" + "".join(f"  {line}\n" for line in LAUGHS.splitlines())
    if where == "yaml":
        files: dict[str, str | bytes] = {"m.o.yaml": f"type: memory\n{body}"}
        shown = "m.o.yaml"
    else:
        files = {"a.o.py": compute(f"type: compute\n{body}")}
        shown = "a.o.py"
    line = 4
    write(tmp_path, files)
    result = scadc_bounded("dag", tmp_path, "-f", "json")
    assert_clean_error(result, f"{shown}:{line}", "alias")
    assert result.stderr.count("\n") == 2  # the count line and the one problem


def test_a_lone_anchor_is_harmless(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.o.yaml": "type: memory\nlimits: &l {mem: 1 MiB}\n"})
    assert load_program(root).elements["m"].limits.mem == 2**20


@pytest.mark.parametrize(("text", "line"), [
    ("type: memory\nwithMerged: " + "[" * 20000 + "]" * 20000 + "\n", 2),
    ("type: memory\nwithMerged: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", 2),
    ("type: memory\nwithMerged:\n" + "".join(" " * i + "- \n" for i in range(0, 200, 2)), 34),  # 33rd level
])
def test_deep_nesting_is_a_problem_not_a_recursion_error(tmp_path: Path, text: str, line: int) -> None:
    write(tmp_path, {"m.o.yaml": text})
    assert_clean_error(scadc_bounded("dag", tmp_path), f"m.o.yaml:{line}:", "nested")


def test_nesting_a_little_deep_still_loads(tmp_path: Path) -> None:
    root = write(tmp_path, {"m.o.yaml": "type: memory\nwithMerged: [" + "[" * 20 + "]" * 20 + "]\n"})
    assert load_program(root).elements["m"].with_merged


def test_deeply_nested_python_code_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, {"a.o.py": compute("type: compute", MAIN + "x = " + "-" * 100_000 + "1\n")})
    assert_clean_error(scadc_bounded("dag", tmp_path), "a.o.py", "too complex")


# --------------------------------------------------------------------------- numbers

@pytest.mark.parametrize(("text", "needle"), [
    ("parallelism: " + "9" * 5000, "number"),
    ("limits: {cpu: " + "9" * 400 + "}", "number"),
    ("limits: {cpu: 1e300}", "limits.cpu"),
    ("limits: {cpu: .inf}", "limits.cpu"),
    ("limits: {cpu: .nan}", "limits.cpu"),
    ("withMerged: [" + "9" * 5000 + "]", "number"),
    ("limits: {mem: " + "9" * 400 + "}", "number"),
    ("limits: {mem: '" + "9" * 400 + " GB'}", "limits.mem"),
    ("limits: {mem: '" + "9" * 400 + ".5 GB'}", "limits.mem"),
    ("limits: {storage: 9999999 TiB}", "limits.storage"),
])
def test_huge_and_non_finite_numbers_are_problems(tmp_path: Path, text: str, needle: str) -> None:
    write(tmp_path, {"m.o.yaml": f"type: memory\n{text}\n"})
    assert_clean_error(scadc_bounded("dag", tmp_path), "m.o.yaml:2", needle)


@pytest.mark.parametrize("value", ["2001-12-14", "!!binary aGVsbG8=", "{2001-12-14: 1}", ".nan", "-.inf"])
@pytest.mark.parametrize("command", ["dag", "gen"])
def test_with_merged_holds_json_data_only(tmp_path: Path, value: str, command: str) -> None:
    write(tmp_path, {"m.o.yaml": f"type: memory\nwithMerged:\n  - name: x\n    value: {value}\n"})
    assert_clean_error(scadc_bounded(command, tmp_path, "-f" if command == "dag" else "-o",
                                     "json" if command == "dag" else tmp_path / "out.json"),
                       "m.o.yaml:4", "withMerged")


# --------------------------------------------------------------------------- long values, many problems

@pytest.mark.parametrize(("header", "line"), [
    ("parents: [" + "b" * 60_000 + "]", 2),
    ("x" * 60_000 + ": 1", 2),
    ("corunning:\n  m: {trans: " + "t" * 60_000 + "}", 3),
    ("corunning:\n  m: {type: " + "t" * 60_000 + "}", 3),
    ("type: " + "c" * 60_000, 1),
    ("limits: {mem: '" + "1" * 60_000 + " XB'}", 2),
    ("parallelism: '" + "9" * 60_000 + "'", 2),
    ("parents: !" + "t" * 60_000 + " x", 2),
])
def test_every_quoted_value_is_cut_short(tmp_path: Path, header: str, line: int) -> None:
    text = header if header.startswith("type:") else f"type: compute\n{header}"
    root = write(tmp_path, {"a.o.py": compute(text), "m.o.yaml": "type: memory\n"})
    found = problems(root)
    assert found and all(len(message) < 400 for _, _, message in found), [len(m) for _, _, m in found]
    assert ("a.o.py", line) in {(name, at) for name, at, _ in found}


def test_the_list_of_problems_is_capped(tmp_path: Path) -> None:
    write(tmp_path, {f"e{i}.o.yaml": "type: memory\n" + "".join(f"k{j}: 1\n" for j in range(100))
                     for i in range(20)})
    result = scadc_bounded("dag", tmp_path)
    assert_clean_error(result, "more problems")
    assert result.stderr.count("\n") < 250
    assert "invalid program: 2000 problems" in result.stderr  # all found, not the 101 lines listed


# --------------------------------------------------------------------------- files

def test_a_huge_element_file_is_not_read_whole(tmp_path: Path) -> None:
    with (tmp_path / "m.o.yaml").open("wb") as f:  # sparse: costs no disk
        f.write(b"type: memory\n")
        f.truncate(4 * 2**30)
    with (tmp_path / "a.o.py").open("wb") as f:
        f.write(compute("type: compute").encode())
        f.truncate(4 * 2**30)
    assert_clean_error(scadc_bounded("dag", tmp_path), "m.o.yaml: ", "a.o.py: ", "larger than")


def test_a_header_of_megabytes_is_refused(tmp_path: Path) -> None:
    header = "type: compute\n" + "".join(f"k{i}: {i}\n" for i in range(30_000))
    write(tmp_path, {"a.o.py": compute(header)})
    assert_clean_error(scadc_bounded("dag", tmp_path), "a.o.py", "header", "larger than")


def test_fifo_and_symlink_loop_are_problems_and_do_not_block(tmp_path: Path) -> None:
    write(tmp_path, {"a.o.py": compute("type: compute")})
    os.mkfifo(tmp_path / "x.o.py")
    (tmp_path / "l.o.yaml").symlink_to("l.o.yaml")
    (tmp_path / "d.o.py").mkdir()
    (tmp_path / "gone.o.py").symlink_to("nowhere")
    found = {(name, message.split(" (")[0]) for name, _, message in problems(tmp_path)}
    assert {name for name, _ in found} == {"x.o.py", "l.o.yaml", "d.o.py", "gone.o.py"}, found
    assert_clean_error(scadc_bounded("dag", tmp_path), "x.o.py", "not a regular file")


def test_a_symlink_to_an_element_file_loads(tmp_path: Path) -> None:
    write(tmp_path / "src", {"a.py": compute("type: compute")})
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.o.py").symlink_to(tmp_path / "src" / "a.py")
    assert list(load_program(tmp_path / "p").elements) == ["a"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    write(tmp_path, {"a.o.py": compute("type: compute")})
    (tmp_path / "a.o.py").chmod(0)
    assert [(name, line) for name, line, _ in problems(tmp_path)] == [("a.o.py", 0)]


def test_non_utf8_bytes_are_a_problem(tmp_path: Path) -> None:
    write(tmp_path, {"a.o.py": b"#@ type: compute\n\xff\xfe" + MAIN.encode(), "m.o.yaml": b"type: \xc3memory\n"})
    assert {name for name, _, message in problems(tmp_path) if "UTF-8" in message} == {"a.o.py", "m.o.yaml"}


# --------------------------------------------------------------------------- transport names

@pytest.mark.parametrize("trans", ["../../etc/x", "m@1", "a b", "m;tcp", "''", "t" * 300, "[m]", "1.5"])
def test_trans_must_be_a_transport_name(tmp_path: Path, trans: str) -> None:
    root = write(tmp_path, {"a.o.py": compute(f"type: compute\ncorunning:\n  m:\n    trans: {trans}"),
                            "m.o.yaml": "type: memory\n"})
    [(name, line, message)] = problems(root)
    assert (name, line) == ("a.o.py", 4) and "trans" in message and len(message) < 400


def test_a_plain_trans_name_loads(tmp_path: Path) -> None:
    root = write(tmp_path, {"a.o.py": compute("type: compute\ncorunning:\n  m: {trans: my_mem-2}"),
                            "m.o.yaml": "type: memory\nparallelism: 2\n"})
    assert load_program(root).elements["a"].corunning[0].trans == "my_mem-2"
