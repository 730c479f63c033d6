"""The element DAG: value edges, order edges, siblings that run at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import networkx as nx
import pytest

from scadc.analysis import analyze
from scadc.partition.build import build_plan
from scadc.partition.plan import PartitionPlan
from scadc.partition.policies import make_policy
from tests.programs import example_analysis

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "monolithic"

# Two independent heavy branches: a/sa and b/sb share nothing until the print.
BRANCHES = """\
import time

import numpy as np


def slow_sum(values):
    time.sleep(0.5)
    return float(values.sum())


def main():
    a = np.arange(1_000_000, dtype=np.float64)
    b = np.ones(1_000_000)
    sa = slow_sum(a)
    sb = slow_sum(b)
    print(sa, sb)


if __name__ == "__main__":
    main()
"""

# Files written and read back in different statements: the elements that touch them stay in order.
FILES = """\
import numpy as np


def main():
    data = np.arange(1_000_000)
    with open("scad-io-test.txt", "w") as f:
        f.write("first\\n")
    doubled = data * 2
    with open("scad-io-test.txt", "a") as f:
        f.write("second\\n")
    with open("scad-io-test.txt") as f:
        text = f.read()
    print(text, doubled.sum())


if __name__ == "__main__":
    main()
"""

# `x` is rebound on one path only: the element that may rebind it must also load the old value.
MAYBE_REBOUND = """\
import numpy as np


def main():
    x = np.zeros(10)
    big = len(x) > 100
    if big:
        x = np.ones(10)
    print(x.sum())


if __name__ == "__main__":
    main()
"""


def write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(source))
    return path


def plan_of(path: Path, policy: str = "every", inline: bool = True) -> PartitionPlan:
    analysis = example_analysis(path, inline=inline) if path.is_relative_to(EXAMPLES) else analyze(str(path),
                                                                                                    inline=inline)
    plan = build_plan(analysis, make_policy(policy))
    assert plan.validate() == []
    return plan


def run(tmp_path: Path, *argv: str | Path) -> bytes:
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, cwd=tmp_path, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def split_and_run(tmp_path: Path, app: Path, policy: str, *run_args: str, inline: bool = True) -> bytes:
    prog = tmp_path / f"prog-{policy}"
    run(tmp_path, "-m", "scadc", "split", app, "-o", prog, "--policy", policy, "--inline" if inline else "--no-inline")
    return run(tmp_path, "-m", "scadc", "run", prog, "--quiet", *run_args)


def element_of(plan: PartitionPlan, line: int) -> str:
    return next(c.name for c in plan.computes if c.lines[0] <= line <= c.lines[1])


def test_independent_branches_become_siblings_and_run_at_the_same_time(tmp_path: Path) -> None:
    app = write(tmp_path, BRANCHES)
    # slow_sum stays a call: each branch is one statement, found by its line
    plan = plan_of(app, "resource", inline=False)
    graph = plan.graph()
    a, b = element_of(plan, 12), element_of(plan, 13)  # `a = ...`, `b = ...`
    sa, sb = element_of(plan, 14), element_of(plan, 15)
    assert len({a, b, sa, sb}) == 4, plan.format()
    assert not nx.has_path(graph, a, b) and not nx.has_path(graph, sa, sb) and not nx.has_path(graph, a, sb)
    assert nx.has_path(graph, a, sa) and nx.has_path(graph, b, sb)

    report = tmp_path / "run.json"
    out = split_and_run(tmp_path, app, "resource", "--max-workers", "2", "--report", str(report), inline=False)
    assert out == run(tmp_path, app)
    spans = {i["element"]: (i["start"], i["end"]) for i in json.loads(report.read_text())["instances"]}
    (start_a, end_a), (start_b, end_b) = spans[sa], spans[sb]
    assert start_a < end_b and start_b < end_a, spans  # the two sleeping sums overlapped


def test_elements_that_touch_files_run_in_program_order(tmp_path: Path) -> None:
    app = write(tmp_path, FILES)
    plan = plan_of(app)
    graph = plan.graph()
    touching = [element_of(plan, line) for line in (6, 9, 11)]
    assert nx.has_path(graph, touching[0], touching[1]) and nx.has_path(graph, touching[1], touching[2])
    assert any(e.reason == "both may touch files, processes or sockets" for e in plan.edges)
    # without the order edges, validation notices that the file's users could run in any order
    unordered = replace(plan, edges=tuple(e for e in plan.edges if e.values))
    assert any("['@io'] but are not ordered" in p for p in unordered.validate())
    assert split_and_run(tmp_path, app, "every") == run(tmp_path, app) == b"first\nsecond\n 999999000000\n"


def test_a_value_rebound_on_one_path_keeps_its_old_value_on_the_other(tmp_path: Path) -> None:
    app = write(tmp_path, MAYBE_REBOUND)
    plan = plan_of(app)
    rebinding = next(c for c in plan.computes if c.lines[0] == 7)
    assert [r.name for r in rebinding.unpack] == ["big", "x"]
    assert split_and_run(tmp_path, app, "every") == run(tmp_path, app) == b"0.0\n"


def test_every_edge_is_needed(tmp_path: Path) -> None:
    """Value edges deliver something; an order edge is there only when no other path orders its ends."""
    programs = [*sorted(EXAMPLES.glob("*.py")), write(tmp_path, FILES)]
    order_edges = 0
    for program in programs:
        plan = plan_of(program)
        graph = plan.graph()
        for edge in plan.edges:
            if edge.values:
                continue
            order_edges += 1
            graph.remove_edge(edge.source, edge.target)
            assert not nx.has_path(graph, edge.source, edge.target), f"{program.name}: {edge.format()}"
            graph.add_edge(edge.source, edge.target)
    assert order_edges >= 3  # readers of a memory element before its next writer; the file users of FILES


RNG_AND_A_LOCAL_NAMED_RNG = """\
import numpy as np


def main():
    np.random.seed(3)
    rng = list(np.random.random(2))
    b = np.random.random(4) + rng[0]
    print(b.sum())


if __name__ == "__main__":
    main()
"""


def test_the_rng_state_and_a_local_named_rng_are_two_values(tmp_path: Path) -> None:
    """Issue 11: the hidden RNG state travelled as "rng", so a local of that name and the state
    were one value to the plan: validate() took either for the other."""
    (tmp_path / "app.py").write_text(RNG_AND_A_LOCAL_NAMED_RNG)
    plan = build_plan(analyze(str(tmp_path / "app.py")), make_policy("every"))
    assert plan.validate() == []
    both = [e for e in plan.edges if e.rng and "rng" in e.values]
    assert both, [e.format() for e in plan.edges]
    # an edge that delivers only the local named rng does not deliver the state
    edge = both[0]
    assert "values [<rng state>, rng]" in edge.format()
    broken = replace(plan, edges=tuple(replace(e, rng=False) if e is edge else e for e in plan.edges))
    assert any("restores the RNG state" in p for p in broken.validate())
