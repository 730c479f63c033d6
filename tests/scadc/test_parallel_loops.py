"""Parallel loops: which loops qualify (rules P1-P6), and that running them in parallel changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scadc.analysis import analyze
from scadc.partition.build import build_plan
from scadc.partition.loops import parallel_loop
from scadc.partition.plan import ParallelLoop
from scadc.partition.policies import make_policy

pytestmark = pytest.mark.usefixtures("no_leftovers")

PROGRAM = """\
import numpy as np

N = 4


def main():
    data = np.arange(12.0)
    out = [0.5]
{before}    for i in {iterable}:
{body}
    print(out)


if __name__ == "__main__":
    main()
"""


def verdict(tmp_path: Path, body: str, *, iterable: str = "range(N)", before: str = "") -> ParallelLoop | str | None:
    path = tmp_path / "app.py"
    path.write_text(PROGRAM.format(body=textwrap.indent(textwrap.dedent(body), " " * 8), iterable=iterable,
                                   before=textwrap.indent(textwrap.dedent(before), " " * 4)))
    analysis = analyze(str(path))
    loop = next(i for i, u in enumerate(analysis.units) if u.shape.loop is not None)
    return parallel_loop(analysis, loop)


@pytest.mark.parametrize(("body", "iterable", "before", "expected"), [
    ("out.append(float(data[i::N].sum()))", "range(N)", "", "parallel"),
    ("part = data[i::N] * 2\nout.append(part)", "range(1, 2 * N, 2)", "", "parallel"),
    ("out.append(i)", "range(len(data))", "", "(P1) the loop is not over a range() of constants"),
    ("out.append(i)", "range(1)", "", "(P1) 1 iterations"),
    ("out.append(i)\nif i > 2:\n    break", "range(N)", "", "(P2) the loop has a break"),
    ("out.append(np.random.random())", "range(N)", "", "(P3) it touches numpy.random"),
    ("data[i] = 0\nout.append(i)", "range(N)", "", "(P4) it changes 'data', which is not only appended to"),
    ("out.append(len(out))", "range(N)", "", "(P4) it uses the accumulator 'out' other than by .append()"),
    ("out.append(i)", "range(N)", "alias = out\n", "(P4) it changes 'alias', which is not only appended to"),
    ("total = total + i\nout.append(total)", "range(N)", "total = 0\n", "(P5) 'total' flows from one iteration"),
    ("last = i\nout.append(i)", "range(N)", "", "parallel"),
])
def test_which_loops_are_parallel(tmp_path: Path, body: str, iterable: str, before: str, expected: str) -> None:
    found = verdict(tmp_path, body, iterable=iterable, before=before)
    if expected == "parallel":
        assert isinstance(found, ParallelLoop) and found.accumulators == ("out",), found
    else:
        assert isinstance(found, str) and found.startswith(expected), found


def test_a_name_bound_in_the_loop_and_used_after_it_keeps_it_sequential(tmp_path: Path) -> None:
    path = tmp_path / "app.py"
    path.write_text("def main():\n    out = []\n    for i in range(3):\n        out.append(i)\n    print(out, i)\n\n"
                    "\nif __name__ == '__main__':\n    main()\n")
    analysis = analyze(str(path))
    assert parallel_loop(analysis, 1) == "(P6) 'i', bound in the loop, is used after it"


LOOP = """\
import numpy as np

PARTS = 4


def work(block, k):
    return float((block * k).sum())


def main():
    data = np.arange(1_000_000, dtype=np.float64)
    results = [-1.0]
    blocks = []
    for k in range(PARTS):
        block = data[k::PARTS]
        value = work(block, k + 1)
        results.append(value)
        blocks.append(block[:3] + k)
        print(f"part {k}: {value:.1f}")
    print(results)
    print([b.tolist() for b in blocks])


if __name__ == "__main__":
    main()
"""


def run(cwd: Path, *argv: str | Path, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, cwd=cwd, timeout=300, check=False)
    if ok:
        assert done.returncode == 0, done.stderr.decode()
    return done


@pytest.mark.parametrize("policy", ["resource", "every"])
def test_a_parallel_loop_prints_and_builds_what_the_sequential_loop_does(tmp_path: Path, policy: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(LOOP)
    plan = build_plan(analyze(str(app)), make_policy(policy))
    loop = next(c for c in plan.computes if c.loop is not None)
    assert loop.parallelism == 4 and loop.loop is not None and loop.loop.accumulators == ("blocks", "results")
    run(tmp_path, "-m", "scadc", "split", app, "-o", tmp_path / "prog", "--policy", policy)
    assert "#@ parallelism: 4\n" in (tmp_path / "prog" / f"{loop.name}.o.py").read_text()
    report = tmp_path / "run.json"
    split = run(tmp_path, "-m", "scadc", "run", tmp_path / "prog", "--quiet", "--report", report)
    assert split.stdout == run(tmp_path, app).stdout
    instances = [i for i in json.loads(report.read_text())["instances"] if i["element"] == loop.name]
    assert sorted(i["index"] for i in instances) == [0, 1, 2, 3]


def test_no_parallel_keeps_every_loop_sequential(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(LOOP)
    plan = build_plan(analyze(str(app)), make_policy("resource"), parallel=False)
    assert all(c.parallelism == 1 for c in plan.computes)
    assert plan.loops == ((3, "sequential: parallel loops are off (--no-parallel, or the single policy)"),)


def test_a_failing_iteration_stops_where_the_sequential_loop_would(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(LOOP.replace("        value = work(block, k + 1)\n",
                                               "        value = work(block, k + 1)\n"
                                               "        if k == 2:\n"
                                               "            raise ValueError(f'part {k} is bad')\n"))
    run(tmp_path, "-m", "scadc", "split", app, "-o", tmp_path / "prog")
    split = run(tmp_path, "-m", "scadc", "run", tmp_path / "prog", "--quiet", ok=False)
    original = run(tmp_path, app, ok=False)
    assert split.returncode == 1 and original.returncode == 1
    assert split.stdout == original.stdout
    assert original.stdout.startswith(b"part 0: ") and original.stdout.count(b"part ") == 2
    assert b"ValueError: part 2 is bad" in split.stderr and "app.py" in split.stderr.decode()
