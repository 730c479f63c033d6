"""Issue 10 against the element-directory loader (`scadc dag`, `gen`, and what `run` loads).

Whatever a user writes into an element directory, the loader answers with a Program or a
ProgramError (each problem with its file and line and a short message), in bounded time and
memory; the command line turns that into `scadc: error: …` and exit status 2, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scadrt.dag import DEFAULT_MAX_PARALLELISM, load_program
from scadrt.errors import ProgramError

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
MAIN = "def main(params, action):\n    return {}\n"


def compute(header: str, code: str = MAIN) -> str:
    return "".join(f"#@ {line}\n" for line in header.strip("\n").splitlines()) + code


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def scadc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scadc", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)


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
