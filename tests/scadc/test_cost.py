"""The cost model (scadc/partition/cost.py) and ``scadc split --from-report`` (scadc/feedback.py)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scadc.analysis import analyze
from scadc.partition.build import build_plan
from scadc.partition.cost import (
    CostModel,
    Measured,
    PlanCost,
    UnitTable,
    best_plans,
    cheapest,
    plan_cost,
    preferred,
    processes,
)
from scadc.partition.policies import ResourcePolicy, make_policy

ROOT = Path(__file__).resolve().parents[2]
KMEANS = ROOT / "examples" / "monolithic" / "kmeans.py"
KMEANS_PROFILE = Path(__file__).parent / "data" / "kmeans.profile.json"
TPCDS_PANDAS = ROOT / "examples" / "monolithic" / "tpcds_pandas.py"
#: `scadc profile` of tpcds_pandas at SCALE 1 (December 2026)
TPCDS_PANDAS_PROFILE = Path(__file__).parent / "data" / "tpcds_pandas.profile.json"
MODEL = CostModel()
NAMES = ("a", "b", "c", "d")
MB = 10**6


def scadc(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scadc", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)


# region the search: the DP against every subset of the allowed cuts

@st.composite
def tables(draw: st.DrawFn) -> tuple[UnitTable, list[int], list[int], int, float, dict[int, int]]:
    n = draw(st.integers(1, 7))
    names = st.frozensets(st.sampled_from(NAMES))
    sizes = st.fixed_dictionaries({}, optional={name: st.integers(0, 40 * MB) for name in NAMES})
    live = [frozenset[str](), *(draw(names) for _ in range(n - 1)), frozenset[str]()]
    rss = list(itertools.accumulate(draw(st.lists(st.integers(0, 30 * MB), min_size=n + 1, max_size=n + 1))))
    defs = [draw(names) for _ in range(n)]
    table = UnitTable(
        count=n, wall=tuple(draw(st.floats(0.0, 2.0)) for _ in range(n)),
        rise=tuple(draw(st.integers(0, 50 * MB)) for _ in range(n)),
        sizes=tuple(draw(sizes) for _ in range(n)), stored=tuple(draw(sizes) for _ in range(n)),
        touched=tuple(draw(names) for _ in range(n)), changed=tuple(d | draw(names) for d in defs),
        defs=tuple(defs), live=tuple(live), floor=draw(st.integers(27 * MB, 80 * MB)),
        start_rss=tuple(rss[:n]), end_rss=tuple(rss[1:]),
        scale=tuple(draw(st.sampled_from([1.0, 1.0, 0.5, 1.7])) for _ in range(n)),
        cpu=tuple(draw(st.floats(0.0, 5.0)) for _ in range(n)))
    allowed = sorted(draw(st.frozensets(st.integers(1, max(1, n - 1)))) - {n})
    with_forced: bool = draw(st.booleans())
    forced = sorted(draw(st.frozensets(st.sampled_from(allowed)))) if allowed and with_forced else []
    parallel = draw(st.dictionaries(st.integers(0, n - 1), st.integers(2, 9), max_size=2))
    return table, allowed, forced, draw(st.integers(1, n)), draw(st.sampled_from([0.0, 0.0, 0.5, 1.5])), parallel


def brute_force(table: UnitTable, allowed: list[int], forced: list[int], max_elements: int,
                min_s: float, *, parallel: dict[int, int]) -> dict[int, float]:
    """The least cost of each element count over every subset of ``allowed`` holding ``forced``
    and the cuts around the ``parallel`` loop units."""
    n, best = table.count, dict[int, float]()
    forced = sorted(set(forced) | {i for u in parallel for i in (u, u + 1) if 0 < i < n})
    allowed = sorted(set(allowed) | set(forced))
    limit = max(max_elements, len(forced) + 1)
    for r in range(len(allowed) + 1):
        for cuts in itertools.combinations(allowed, r):
            if not set(forced) <= set(cuts) or len(cuts) + 1 > limit:
                continue
            edges = [0, *cuts, n]
            if min_s > 0 and any(sum(table.wall[a:b]) < min_s and (a, b) != (0, n)
                                 and not ((a == 0 or a in forced) and (b == n or b in forced))
                                 for a, b in itertools.pairwise(edges)):
                continue
            cost = plan_cost(MODEL, table, cuts, parallel).gb_s
            best[len(cuts) + 1] = min(cost, best.get(len(cuts) + 1, float("inf")))
    return best


@settings(max_examples=150, deadline=None)
@given(tables())
def test_the_search_finds_the_cheapest_plan_of_every_element_count(case: tuple[Any, ...]) -> None:
    table, allowed, forced, max_elements, min_s, parallel = case
    plans = best_plans(MODEL, table, allowed, forced=forced, max_elements=max_elements, min_element_s=min_s,
                       parallel=parallel)
    expected = brute_force(table, allowed, forced, max_elements, min_s, parallel=parallel)
    assert sorted(plans) == sorted(expected)
    around = {i for u in parallel for i in (u, u + 1) if 0 < i < table.count}
    for k, plan in plans.items():
        assert plan.gb_s == pytest.approx(expected[k], rel=1e-9, abs=1e-12)
        assert set(forced) | around <= set(plan.cuts) <= set(allowed) | around
        assert {s.start: s.instances for s in plan.segments if s.instances > 1} == parallel
        # the costs the search summed (a row of segments at a time) are those of the plan on its own
        assert plan_cost(MODEL, table, plan.cuts, parallel).gb_s == pytest.approx(plan.gb_s, rel=1e-9, abs=1e-12)
    if plans:
        assert cheapest(plans).gb_s == pytest.approx(min(expected.values()), rel=1e-9, abs=1e-12)
        # more processes only for a saving beyond the margin: nothing within it runs fewer
        least = min(expected.values())
        chosen = preferred(plans.values(), 0.05)
        assert chosen.gb_s <= least * 1.05 + 1e-9
        assert not any(p.gb_s <= least * 1.05 - 1e-9 and processes(p) < processes(chosen) for p in plans.values())


def test_a_split_that_saves_less_than_the_margin_is_not_taken() -> None:
    one = plan_cost(MODEL, _two_units(), ())
    two = plan_cost(MODEL, _two_units(), (1,))
    assert two.gb_s < one.gb_s  # the split is cheaper in the model ...
    saving = one.gb_s / two.gb_s - 1  # of the cheaper plan's GB·s
    assert preferred([one, two], saving * 0.9) is two
    assert preferred([one, two], saving * 1.1) is one  # ... but by less than the margin: one process


def _two_units() -> UnitTable:
    """Two phases that share nothing: the first peaks at 200 MB for 1 s and leaves nothing, the second
    holds 20 MB for 1 s: a cut saves 0.17 of 0.59 GB·s."""
    return UnitTable(count=2, wall=(1.0, 1.0), rise=(200 * MB, 20 * MB), sizes=({}, {}), stored=({}, {}),
                     touched=(frozenset(), frozenset()), changed=(frozenset(), frozenset()),
                     defs=(frozenset(), frozenset()), live=(frozenset(), frozenset(), frozenset()), floor=30 * MB)


def test_a_plan_prints_deterministically() -> None:
    table = UnitTable(count=2, wall=(0.5, 1.0), rise=(10 * MB, 0), sizes=({"a": 8 * MB}, {"a": 8 * MB}),
                      stored=({"a": 8 * MB}, {}), touched=(frozenset(), frozenset("a")),
                      changed=(frozenset("a"), frozenset()), defs=(frozenset("a"), frozenset()),
                      live=(frozenset(), frozenset("a"), frozenset()), floor=30 * MB)
    plan = plan_cost(CostModel(element_start_s=0.05, store_rss_factor=1.0), table, (1,))  # whatever the defaults
    assert isinstance(plan, PlanCost)
    # by hand: step01 runs 0.05 + 0.5 + 0.008 s (storing 8 MB) at 30 + 8 + 8 MB (a, and its stored pages);
    # step02 0.05 + 1.0 + 0.004 s (loading a) at 30 + 8 MB; a is in memory 0.008 + 1.054 s, 9 MB (× 1.125)
    assert plan.format() == ("2 elements, cuts [1]: 0.1559 GB·s (elements 0.0657, memory 0.0096, wall 0.0806); "
                             "1.612 s, largest 46.0 MB")
    assert MODEL.format().startswith("cost model: element_floor_bytes=27000000, profiler_overhead_bytes=37000000,")

def test_locals_that_share_memory_cost_no_more_than_the_monolith_held() -> None:
    # a and b each measure 300 MB in memory (a frame's string column counts its few shared strings
    # once per row) while the monolith's RSS grew 100 MB per unit: an element running both holds
    # what the monolith held, 200 MB (it was 600 MB, which made a split of such a program look cheap)
    table = UnitTable(count=2, wall=(1.0, 1.0), rise=(0, 0), sizes=({"a": 300 * MB}, {"a": 300 * MB, "b": 300 * MB}),
                      stored=({}, {}), touched=(frozenset(), frozenset("a")),
                      changed=(frozenset("a"), frozenset("b")), defs=(frozenset("a"), frozenset("b")),
                      live=(frozenset(), frozenset("a"), frozenset()), floor=30 * MB,
                      start_rss=(100 * MB, 200 * MB), end_rss=(200 * MB, 300 * MB))
    assert plan_cost(MODEL, table, ()).segments[0].peak == 30 * MB + 200 * MB


def test_tpcds_pandas_as_one_element_peaks_where_its_profile_did() -> None:
    """Its merged frames' in-memory sizes add up to 310 MB while the profiled monolith's RSS grew
    133 MB: the model put the program as one element at 401 MB (its run peaked at 205 MB) and
    chose a split that measured 1.3-1.5x the monolith's GB·s."""
    profile = json.loads(TPCDS_PANDAS_PROFILE.read_text())
    analysis = analyze(str(TPCDS_PANDAS), profile=profile)
    table = UnitTable.of(analysis, MODEL)
    assert table is not None
    rows = profile["units"].values()
    profiled_peak = max(max(r["rss_bytes"], r["start_rss_bytes"] + r["peak_rise_bytes"]) for r in rows)
    monolith = profiled_peak - MODEL.profiler_overhead_bytes
    assert plan_cost(MODEL, table, ()).segments[0].peak <= 1.05 * monolith
    plan = build_plan(analysis, make_policy("resource"))
    assert len(plan.computes) == 1, plan.costs


def test_a_parallel_loop_costs_its_instances() -> None:
    """(C4) by hand: unit 1 is a loop of 4 iterations that ran 2.0 s keeping 2 cores busy (4.0 s of
    CPU): at one thread 2.0 × (1 + 0.4) = 2.8 s, 0.7 s per instance; each instance starts (0.05 s),
    loads a (8 MB at 2 GB/s: 0.004 s), holds 30 + 8 MB. Two cores: two rounds of 0.754 s."""
    table = UnitTable(count=3, wall=(0.5, 2.0, 0.1), rise=(0, 0, 0), sizes=({"a": 8 * MB}, {"a": 8 * MB}, {}),
                      stored=({"a": 8 * MB}, {}, {}), touched=(frozenset(), frozenset("a"), frozenset()),
                      changed=(frozenset("a"), frozenset(), frozenset()),
                      defs=(frozenset("a"), frozenset(), frozenset()),
                      live=(frozenset(), frozenset("a"), frozenset(), frozenset()), floor=30 * MB,
                      cpu=(0.5, 4.0, 0.1))
    model = CostModel(element_start_s=0.05, cores=2)
    seg = plan_cost(model, table, (1, 2), {1: 4}).segments[1]
    assert (seg.instances, seg.peak, seg.time) == (4, 38 * MB, pytest.approx(2 * 0.754))
    # 4 instances × 38 MB × 0.754 s, and the second warm worker (a floor) while the element runs
    assert seg.element_gb_s == pytest.approx((4 * 38 * 0.754 + 30 * 1.508) / 1000)
    assert seg.memory_gb_s == pytest.approx(1.125 * 8 * 1.508 / 1000)  # a, in its memory element
    assert seg.wall_gb_s == pytest.approx(0.05 * 1.508)
    assert plan_cost(model, table, (1, 2), {1: 4}).format().endswith("; in parallel: unit 1 ×4")
    # one core: four rounds of 0.554 s (no core to have kept busy but one: 0.5 s each), no second
    # worker; sequential: the profiled 2.0 s at its 2 threads
    one = plan_cost(replace(model, cores=1), table, (1, 2), {1: 4}).segments[1]
    assert (one.time, one.element_gb_s) == (pytest.approx(4 * 0.554), pytest.approx(4 * 38 * 0.554 / 1000))
    assert plan_cost(model, table, (1, 2)).segments[1].time == pytest.approx(0.05 + 2.0 + 0.004)

# endregion


# region real programs, profiled

@cache
def profiled(source: Path, inline: bool = True) -> dict[str, Any]:
    from scadc.profile import profile_program

    profile, status = profile_program(str(source), inline=inline)
    assert status == 0
    return profile


def test_a_program_that_does_not_pay_to_split_stays_one_element(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("def main():\n    xs = list(range(1000))\n    total = sum(xs)\n    print(total)\n"
                   "    print(len(xs))\n\n\nmain()\n")
    analysis = analyze(str(app), profile=profiled(app))
    assert build_plan(analysis, make_policy("every")).computes[1:]  # cuts are allowed
    plan = build_plan(analysis, make_policy("resource"))
    assert len(plan.computes) == 1
    assert plan.costs[1].startswith("chosen: 1 element, cuts []")
    assert all("not cut (cost)" in why for _, why in plan.decisions)


def test_kmeans_stays_whole_once_its_element_releases_the_raw_points() -> None:
    """The rules cut kmeans only at 13 and 27 (12.8 MB die at boundaries 7/8, 14.4 MB stay): the
    loop (unit 12) ran beside `points` and make_points' peak. (The figures are those of kmeans with
    its helpers kept as calls; tests/scadc/data/kmeans.profile.json, `scadc profile
    examples/monolithic/kmeans.py --no-inline`; retake it when kmeans.py changes.)

    While elements held every local to their end, the model cut between make_points and the loop,
    4 % cheaper than one element. An element now drops `points` once it is standardised, and the
    model credits it: one element is the cheapest plan even without the 5 % margin, and it costs
    less than the same element that held its dead locals."""
    analysis = analyze(str(KMEANS), profile=json.loads(KMEANS_PROFILE.read_text()), inline=False)
    plan = build_plan(analysis, ResourcePolicy(model=replace(MODEL, min_saving=0.0)))
    (whole,) = plan.computes
    assert ("points",) in dict(whole.releases).values()
    assert plan.validate() == []
    table = UnitTable.of(analysis, MODEL)
    assert table is not None
    holding = replace(table, dead=())
    assert plan_cost(MODEL, table, ()).gb_s < 0.95 * plan_cost(MODEL, holding, ()).gb_s
    two = best_plans(MODEL, holding, range(1, table.count), max_elements=2)[2]
    assert two.gb_s < plan_cost(MODEL, holding, ()).gb_s  # what cut it before
    assert plan_cost(MODEL, table, ()).gb_s < best_plans(MODEL, table, range(1, table.count), max_elements=2)[2].gb_s


FOLDS = """\
import numpy as np


def main():
    data = np.arange(2_000_000, dtype=np.float64)
    scores = []
    for k in range(4):
        scores.append(float((data * (k + 1)).sum()))
    print(scores)


main()
"""


@cache
def _measured_folds() -> str:
    """FOLDS's profile (JSON), taken once: in its own process, as one taken in pytest's would start
    at pytest's RSS, and the model's floor with it."""
    with tempfile.TemporaryDirectory() as tmp:
        app, path = Path(tmp) / "app.py", Path(tmp) / "measured.json"
        app.write_text(FOLDS)
        assert scadc("profile", app, "-o", path).returncode == 0
        return path.read_text()


def _loop_profile(tmp_path: Path, *, loop_s: float, busy: float = 1.0) -> tuple[Path, dict[str, Any]]:
    """FOLDS and its real profile, with the loop's time (and CPU time, ``busy`` × it) set by hand: what
    the choice between a parallel and a sequential loop weighs. Its RSS is shifted to start at 64 MB, so
    the floor is the model's least (27 MB): the choice weighs the wall time parallel instances save
    against the floor each warm worker holds, and a floor measured a few MB higher elsewhere tipped it
    (CI: the parallel plan lost its 5% margin)."""
    app = tmp_path / "app.py"
    app.write_text(FOLDS)
    profile = json.loads(_measured_folds())
    rows = sorted(profile["units"].values(), key=lambda row: row["index"])
    shift = 64_000_000 - rows[0]["start_rss_bytes"]
    for unit in rows:
        unit["start_rss_bytes"] += shift
        unit["rss_bytes"] += shift
    for unit in rows:
        if unit["index"] == 2:  # the for statement
            unit["wall_s"], unit["cpu_s"] = loop_s, busy * loop_s
    return app, profile


def test_a_parallel_loop_runs_in_parallel_only_where_that_is_cheaper(tmp_path: Path) -> None:
    app, profile = _loop_profile(tmp_path, loop_s=20.0)
    analysis = analyze(str(app), profile=profile)
    # on 4 cores, 4 instances of 5 s beat 20 s of one element beside the data
    wide = build_plan(analysis, ResourcePolicy(model=CostModel(cores=4)))
    (loop,) = [c for c in wide.computes if c.loop is not None]
    assert loop.parallelism == 4 and loop.units == (2,)
    assert next(line for line in wide.costs if line.startswith("chosen:")).endswith("in parallel: unit 2 ×4")
    # on one core they run one after another, each loading the data and starting a process: no gain
    narrow = build_plan(analysis, ResourcePolicy(model=CostModel(cores=1)))
    assert all(c.loop is None for c in narrow.computes)
    verdict = dict(narrow.loops)[2]
    assert verdict.startswith("sequential (cost): the chosen plan (") and "; in parallel: " in verdict
    compared = next(line for line in narrow.costs if line.startswith("with parallel loops [2]: "))
    assert compared.endswith("in parallel: unit 2 ×4")
    chosen = float(next(line for line in narrow.costs if line.startswith("chosen:")).split(": ")[2].split()[0])
    assert chosen < float(compared.split(": ")[2].split()[0])
    # the other policies do not weigh it: every runs it in parallel, single does not
    assert any(c.loop is not None for c in build_plan(analysis, make_policy("every")).computes)
    assert all(c.loop is None for c in build_plan(analysis, make_policy("single")).computes)


def test_split_weighs_parallel_loops_for_the_cores_it_is_told(tmp_path: Path) -> None:
    app, profile = _loop_profile(tmp_path, loop_s=20.0)
    path = tmp_path / "prof.json"
    path.write_text(json.dumps(profile))
    for cores, parallel in (("4", True), ("1", False)):
        done = scadc("split", app, "-o", tmp_path / cores, "--profile", path, "--cores", cores)
        assert done.returncode == 0, done.stderr
        assert any("#@ parallelism: 4" in f.read_text() for f in (tmp_path / cores).glob("*.o.py")) is parallel
    for argv, message in ((["--cores", "0"], "--cores must be at least 1"),
                          (["--cores", "2", "--policy", "every"], "apply to the 'resource' policy, not 'every'")):
        done = scadc("split", app, "-o", tmp_path / "bad", "--profile", path, *argv)
        assert (done.returncode, message in done.stderr) == (2, True), done.stderr
        assert not (tmp_path / "bad").exists()


def test_an_element_that_runs_alone_gets_the_cores_its_units_kept_busy(tmp_path: Path) -> None:
    """limits.cpu: 2 for an element whose units used 2 cores (BLAS threads) in the profile and that
    runs alone; 1 for a parallel element's instances and for what may run beside another element."""
    app, profile = _loop_profile(tmp_path, loop_s=20.0, busy=2.0)
    for unit in profile["units"].values():
        unit["cpu_s"] = 2.0 * unit["wall_s"]
    path = tmp_path / "prof.json"
    path.write_text(json.dumps(profile))
    assert scadc("split", app, "-o", tmp_path / "whole", "--profile", path, "--policy", "single").returncode == 0
    assert "#@ limits: {cpu: 2, " in (tmp_path / "whole" / "step01.o.py").read_text()
    assert scadc("split", app, "-o", tmp_path / "every", "--profile", path, "--policy", "every").returncode == 0
    elements = {f.stem.removesuffix(".o"): f.read_text() for f in sorted((tmp_path / "every").glob("*.o.py"))}
    cpu = {name: text.split("#@ limits: {cpu: ")[1].split(",")[0] for name, text in elements.items()}
    # step01 (data) and step02 (scores = []) may run side by side; step03 is the loop, step04 alone
    assert "#@ parents: [step01, step02]\n" in elements["step03"] and "#@ parallelism: 4\n" in elements["step03"]
    assert cpu == {"step01": "1", "step02": "1", "step03": "1", "step04": "2"}
    unprofiled = tmp_path / "static"
    assert scadc("split", app, "-o", unprofiled).returncode == 0
    assert all("#@ limits: {cpu: 1, " in f.read_text() for f in unprofiled.glob("*.o.py"))


def test_an_element_that_ran_on_more_than_one_core_for_part_of_its_time_gets_two(tmp_path: Path) -> None:
    """logreg_cv's profile kept 1.33 cores busy (2.31 s of CPU over 1.73 s: BLAS threads part of the
    time); rounded, its one element got one thread and ran 1.31× the monolith's wall. A core used
    for more than a tenth of the time is requested."""
    app, profile = _loop_profile(tmp_path, loop_s=20.0, busy=2.0)
    for unit in profile["units"].values():
        unit["cpu_s"] = 1.33 * unit["wall_s"]
    path = tmp_path / "prof.json"
    path.write_text(json.dumps(profile))
    assert scadc("split", app, "-o", tmp_path / "whole", "--profile", path, "--policy", "single").returncode == 0
    assert "#@ limits: {cpu: 2, " in (tmp_path / "whole" / "step01.o.py").read_text()
    for unit in profile["units"].values():
        unit["cpu_s"] = 1.05 * unit["wall_s"]  # the interpreter's own threads, a little BLAS: one
    path.write_text(json.dumps(profile))
    assert scadc("split", app, "-o", tmp_path / "one", "--profile", path, "--policy", "single").returncode == 0
    assert "#@ limits: {cpu: 1, " in (tmp_path / "one" / "step01.o.py").read_text()


def test_without_a_memory_profile_the_rules_decide() -> None:
    static = build_plan(analyze(str(KMEANS)), make_policy("resource"))
    assert static.costs == ()
    assert not any("(cost)" in why for _, why in static.decisions)
    assert any("heavy data" in why for _, why in static.decisions)  # R1's words

# endregion


# region --explain and --from-report, end to end

PHASES = """\
import numpy as np


def main():
    a = np.arange(2_000_000, dtype=np.float64)
    b = a * 2.0
    s = float(b.sum())
    print(s)
    c = np.ones(3_000_000) * s
    d = np.cumsum(c)
    print(float(d[-1]), float(a[3]))


if __name__ == "__main__":
    main()
"""


def test_explain_prints_the_costs_compared(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(PHASES)
    assert scadc("profile", app, "-o", tmp_path / "prof.json").returncode == 0
    outs = [scadc("split", app, "-o", tmp_path / f"p{i}", "--profile", tmp_path / "prof.json", "--explain")
            for i in (1, 2)]
    assert outs[0].returncode == 0, outs[0].stderr
    text = outs[0].stderr
    costs = text[text.index("costs compared:\n"):text.index("heavy objects:")].splitlines()
    assert costs[1].startswith("  cost model: element_floor_bytes=")
    assert costs[2].startswith("  chosen: ") and costs[3].startswith("  single element: 1 element, cuts []: ")
    assert costs[4].startswith("  best of 1: 1 element, cuts []: ")
    assert all(line.startswith(f"  best of {k}: {k} element") for k, line in enumerate(costs[4:], 1)
               if line.startswith("  best"))
    assert outs[0].stderr.replace("p1", "p2") == outs[1].stderr  # the same text every time


def test_from_report_resplits_with_what_the_run_measured(tmp_path: Path) -> None:
    app, prof, prog, report = tmp_path / "app.py", tmp_path / "prof.json", tmp_path / "prog", tmp_path / "run.json"
    app.write_text(PHASES)
    original = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, check=True).stdout
    assert scadc("profile", app, "-o", prof).returncode == 0
    assert scadc("split", app, "-o", prog, "--profile", prof).returncode == 0
    first = scadc("run", prog, "--quiet", "--report", report)
    assert (first.returncode, first.stdout) == (0, original), first.stderr
    again = scadc("split", app, "-o", prog, "--profile", prof, "--from-report", report, "--force", "--explain")
    assert again.returncode == 0, again.stderr
    assert "(corrected by a run's report)" in again.stderr
    second = scadc("run", prog, "--quiet")
    assert (second.returncode, second.stdout) == (0, original), second.stderr


def test_measured_elements_give_the_model_their_figures() -> None:
    # the recorded profile (29 units: no inlining): one taken in this process would start at pytest's
    # RSS, and the floor the model derives from it (the first unit's RSS) would exceed the 77 MB below
    analysis = analyze(str(KMEANS), profile=json.loads(KMEANS_PROFILE.read_text()), inline=False)
    table = UnitTable.of(analysis, MODEL)
    assert table is not None
    measured = (Measured(tuple(range(0, 7)), 77 * MB, 0.24), Measured(tuple(range(7, 29)), 97 * MB, 0.6))
    corrected = table.with_measured(MODEL, measured)
    for m, seg in zip(measured, plan_cost(MODEL, corrected, (7,)).segments, strict=True):
        assert seg.peak == pytest.approx(m.peak) and seg.time == pytest.approx(m.time)
    policy = ResourcePolicy(measured=measured)
    assert "(corrected by a run's report)" in build_plan(analysis, policy).costs[0]


def _report(tmp_path: Path, **changes: Any) -> Path:
    data: dict[str, Any] = {"program": "prog", "status": "ok", "instances": [
        {"element": "step01", "status": "ok", "start": 0.0, "end": 0.1, "peak_rss": 50 * MB}]}
    data.update(changes)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.mark.parametrize(("changes", "message"), [
    ({"status": "failed"}, "run.json: the run did not finish (status 'failed')"),
    ({"program": "other"}, "run.json: a report of element directory 'other', not of 'prog' (-o)"),
    ({"instances": [{"element": "step09", "status": "ok", "start": 0, "end": 1, "peak_rss": 1}]},
     "run.json: element 'step09' of the report is not in"),
    ({"instances": None}, "run.json: not a run report"),
])
def test_a_report_that_does_not_match_is_a_user_error(tmp_path: Path, changes: dict[str, Any],
                                                      message: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(PHASES)
    profile = tmp_path / "prof.json"
    profile.write_text(json.dumps(profiled_phases(tmp_path)))
    assert scadc("split", app, "-o", tmp_path / "prog", "--profile", profile).returncode == 0
    report = _report(tmp_path, **changes)
    done = scadc("split", app, "-o", tmp_path / "prog", "--profile", profile, "--from-report", report, "--force")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert message in done.stderr, done.stderr


def test_a_report_of_another_version_names_the_line(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(PHASES)
    profile = tmp_path / "prof.json"
    profile.write_text(json.dumps(profiled_phases(tmp_path)))
    assert scadc("split", app, "-o", tmp_path / "prog", "--profile", profile, "--policy", "every").returncode == 0
    split = json.loads((tmp_path / "prog" / "split.json").read_text())
    split["computes"][1]["lines"] = [1, 2]
    (tmp_path / "prog" / "split.json").write_text(json.dumps(split))
    report = _report(tmp_path)
    done = scadc("split", app, "-o", tmp_path / "prog", "--profile", profile, "--from-report", report, "--force")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "step02 of " in done.stderr and "ran lines [1, 2]" in done.stderr and "app.py:6:" in done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope\n}")
    done = scadc("split", app, "-o", tmp_path / "prog", "--profile", profile, "--from-report", bad, "--force")
    assert "bad.json:2:3: not a JSON run report" in done.stderr and "Traceback" not in done.stderr


def profiled_phases(tmp_path: Path) -> dict[str, Any]:
    app = tmp_path / "app.py"
    return profiled(app)

# endregion


def test_from_report_needs_a_profile_and_the_resource_policy(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(PHASES)
    assert scadc("split", app, "-o", tmp_path / "prog").returncode == 0
    report = _report(tmp_path)
    done = scadc("split", app, "-o", tmp_path / "prog", "--from-report", report, "--force")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--from-report: needs --profile too" in done.stderr, done.stderr
    done = scadc("split", app, "-o", tmp_path / "prog", "--from-report", report, "--force", "--policy", "every")
    assert "--from-report applies to the 'resource' policy, not 'every'" in done.stderr, done.stderr
