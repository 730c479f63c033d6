"""scadc split end to end: the split program prints exactly what the original prints."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from scadc.analysis import analyze
from scadc.partition.build import allowed_cuts, build_plan
from scadc.partition.plan import ElementEdge, Received
from scadc.partition.policies import make_policy
from tests.programs import example_analysis

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "monolithic").glob("*.py"))
GOLDEN = ROOT / "golden" / "monolithic"


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, cwd=ROOT, timeout=300, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"{argv} exited {done.returncode}:\n{done.stderr.decode()}")
    return done


@cache
def original_output(example: Path) -> bytes:
    return run(example).stdout


#: examples also run over tcp in `make test` (every one is under `make fuzz`): the ones whose plans
#: put the most through memory elements; the transports' own behaviour is tests/scadrt/transports'
OVER_TCP = ("channel_report", "kmeans", "pandas_report", "tpcds_pandas")


@pytest.mark.parametrize(("example", "transport"), [
    pytest.param(e, t, marks=[pytest.mark.slow] if t == "tcp" and e.stem not in OVER_TCP else [])
    for e in EXAMPLES for t in ("shm", "tcp")], ids=lambda v: v if isinstance(v, str) else v.stem)
def test_split_program_prints_what_the_original_prints(example: Path, transport: str) -> None:
    # the example's split as `scadc split` writes it today: test_split_golden pins that to the file
    prog = GOLDEN / example.stem
    split = run("-m", "scadc", "run", prog, "--transport", transport, "--quiet")
    assert split.stdout == original_output(example)
    assert split.stdout  # every example prints its results


#: examples whose every-cut split runs only under `make fuzz`: test_a_profiled_split_prints_what_the_
#: original_prints (and test_pandas, for tpcds_pandas) split them with every allowed cut too, under
#: their profile
EVERY_CUT_ELSEWHERE = ("channel_report", "logreg_cv", "tpcds_pandas")


@pytest.mark.parametrize("example", [
    pytest.param(e, marks=[pytest.mark.slow] if e.stem in EVERY_CUT_ELSEWHERE else []) for e in EXAMPLES],
    ids=lambda p: p.stem)
def test_every_allowed_cut_preserves_the_output(example: Path, tmp_path: Path) -> None:
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", example.relative_to(ROOT), "-o", prog, "--policy", "every")
    assert len(list(prog.glob("*.o.py"))) > 2
    assert run("-m", "scadc", "run", prog, "--quiet").stdout == original_output(example)


@cache
def profiled(example: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="scadc-profile-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # cached for the session: removed at its end
    out = folder / f"{example.stem}.profile.json"
    assert run("-m", "scadc", "profile", example.relative_to(ROOT), "-o", out).stdout == original_output(example)
    return out


#: one example per thing a profile can change in a plan: mutations and helpers, hidden RNG state,
#: a parallel loop, siblings (tpcds_pandas has its own in test_pandas; `resource` with a profile is
#: covered there and in test_profile_observed)
PROFILED = [e for e in EXAMPLES if e.stem in ("mutate_helpers", "global_rng", "logreg_cv", "channel_report")]


@pytest.mark.parametrize(("policy", "transport"), [("every", "tcp")])
@pytest.mark.parametrize("example", PROFILED, ids=lambda p: p.stem)
def test_a_profiled_split_prints_what_the_original_prints(example: Path, policy: str, transport: str,
                                                           tmp_path: Path) -> None:
    """Issue 11: equivalent under --profile too (measured sizes and observed mutations change the plan)."""
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", example.relative_to(ROOT), "-o", prog, "--policy", policy,
        "--profile", profiled(example))
    assert run("-m", "scadc", "run", prog, "--transport", transport, "--quiet").stdout == original_output(example)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_plans_are_valid(example: Path) -> None:
    analysis = example_analysis(example)
    allowed = allowed_cuts(analysis)
    for policy in ("resource", "every", "single"):
        plan = build_plan(analysis, make_policy(policy))
        assert plan.validate() == [], policy
        cuts = [c.units[0] for c in plan.computes[1:]]
        assert all(allowed[i] == "" for i in cuts), policy  # only allowed cuts are taken
        if policy == "single":
            assert len(plan.computes) == 1 and plan.memories == ()


def test_validate_reports_a_broken_plan() -> None:
    analysis = analyze(str(ROOT / "examples" / "monolithic" / "global_rng.py"))
    plan = build_plan(analysis, make_policy("every"))
    first, second, *rest = plan.computes
    ghost = replace(second, unpack=(*second.unpack, Received("ghost", first.name)))
    broken = replace(plan, computes=(first, ghost, *rest), unit_count=plan.unit_count + 1)
    problems = broken.validate()
    assert any("units are not each in exactly one element" in p for p in problems)
    assert f"{second.name} loads 'ghost' from {first.name}, which does not send it" in problems
    assert f"{second.name} loads 'ghost', but no edge from {first.name} delivers it" in problems
    backwards = replace(plan, edges=(*plan.edges, ElementEdge(second.name, first.name, (), "test")))
    assert backwards.validate() == [f"edge {second.name} -> {first.name}: order: test does not go forward "
                                    "in program order"]


def test_split_writes_all_or_nothing(tmp_path: Path) -> None:
    example = ROOT / "examples" / "monolithic" / "script.py"
    prog = tmp_path / "prog"
    prog.mkdir()
    (prog / "keep.txt").write_text("mine")
    refused = run("-m", "scadc", "split", example, "-o", prog, check=False)
    assert refused.returncode == 2 and b"--force" in refused.stderr
    kept = run("-m", "scadc", "split", example, "-o", prog, "--force", check=False)  # not a split's directory
    assert kept.returncode == 2 and b"not written by scadc split" in kept.stderr
    assert sorted(p.name for p in prog.iterdir()) == ["keep.txt"]

    (prog / "keep.txt").unlink()
    prog.rmdir()
    assert run("-m", "scadc", "split", example, "-o", prog, "--policy", "single").returncode == 0
    before = {p.name: p.read_bytes() for p in prog.iterdir()}
    bad = tmp_path / "bad.py"
    bad.write_text("def main():\n    global g\n    g = 1\n\nif __name__ == '__main__':\n    main()\n")
    failed = run("-m", "scadc", "split", bad, "-o", prog, "--force", check=False)
    assert failed.returncode == 2 and b"global" in failed.stderr and b"Traceback" not in failed.stderr
    assert {p.name: p.read_bytes() for p in prog.iterdir()} == before  # the old directory is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py", "prog"]  # no staging left behind

    assert run("-m", "scadc", "split", example, "-o", prog, "--force").returncode == 0  # an earlier split's
    report = json.loads((prog / "split.json").read_text())
    assert report["policy"] == "resource" and report["computes"] and report["format"] == "scadc-split/1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py", "prog"]


FAILING = '''import numpy as np


def check(values):
    if values.sum() > 10:
        raise ValueError(f"sum too large: {values.sum():.1f}")


def main():
    data = np.ones(1_000_000)
    print("made", data.size)
    small = data[:20].copy()
    del data
    check(small)
    print("never printed")


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("inline", ["--inline", "--no-inline"])
def test_a_failing_split_program_names_the_original_lines(tmp_path: Path, inline: str) -> None:
    app = tmp_path / "app.py"
    app.write_text(FAILING)
    original = run(app, check=False)
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every", inline)
    split = run("-m", "scadc", "run", prog, "--quiet", check=False)
    assert split.returncode == 1 and original.returncode == 1
    assert split.stdout == original.stdout == b"made 1000000\n"
    err = split.stderr.decode()
    # inlined, check(small) is no call: its frame is gone, the helper's line and name remain
    assert (f'File "{app}", line 14, in main (step' in err) == (inline == "--no-inline")  # check(small)
    assert f'File "{app}", line 6, in check (step' in err  # the helper's raise
    assert err.rstrip().endswith("ValueError: sum too large: 20.0")


def test_a_memory_element_too_small_for_its_value_suggests_a_profile(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import numpy as np\n\n\ndef main():\n    big = np.ones(1_000_000)\n    n = 3\n"
                   "    print(big.sum() + n)\n\n\nif __name__ == '__main__':\n    main()\n")
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    memory = prog / "mem_big.o.yaml"  # as if the estimate had been far too low
    memory.write_text(memory.read_text().replace("limits: {mem: 256 MiB}", "limits: {mem: 1 MiB}"))
    split = run("-m", "scadc", "run", prog, "--quiet", check=False)
    assert split.returncode == 1
    err = split.stderr.decode()
    assert "RegionFullError" in err and f"scadc profile {app} -o app.profile.json" in err


SIZED = ("import os\n\nimport numpy as np\n\n\ndef main():\n    n = int(os.environ.get('APP_N', '1000000'))\n"
         "    big = np.ones(n)\n    k = 3\n    print(big.sum() + k)\n\n\nif __name__ == '__main__':\n    main()\n")


def _limits(path: Path) -> int:
    from scadrt.sizes import parse_size

    line = next(line for line in path.read_text().splitlines() if "limits:" in line)
    return parse_size(line.split("mem: ")[1].rstrip("}"))


def test_a_profiled_split_sizes_regions_and_limits_from_the_measured_sizes(tmp_path: Path) -> None:
    """Issue 13: the region holds the stored block (8 MB of float64, the heap's 1088 B, × 1.125),
    not measured × 1.5 / 16 MiB; a compute limit follows the profiled RSS, not the static 256 MiB floor."""
    app = tmp_path / "app.py"
    app.write_text(SIZED)
    profile = tmp_path / "app.profile.json"
    run("-m", "scadc", "profile", app, "-o", profile)
    stored = {name: size for unit in json.loads(profile.read_text())["units"].values()
              for name, size in unit["stored_bytes"].items()}
    assert stored == {"big": 8_000_000}
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every", "--profile", profile)
    memory = prog / "mem_big.o.yaml"
    assert _limits(memory) == 9 * 2**20 and "stored 8000000 B + the heap's 1088 B" in memory.read_text()
    limits = [_limits(p) for p in sorted(prog.glob("step*.o.py"))]
    assert all(128 * 2**20 <= limit < 256 * 2**20 for limit in limits)  # baseline + 8 MB, not the 256 MiB floor
    assert run("-m", "scadc", "run", prog, "--quiet").stdout == b"1000003.0\n"
    # a run on a larger input than the profiled one: the region is too small, and the run says so
    env = {**os.environ, "APP_N": "4000000"}
    split = subprocess.run([sys.executable, "-m", "scadc", "run", str(prog), "--quiet"], capture_output=True,
                           env=env, cwd=ROOT, timeout=120, check=False)
    assert split.returncode == 1
    err = split.stderr.decode()
    assert "RegionFullError" in err and "cannot allocate 31250 KiB (32000000 B)" in err
    assert "give the memory element more memory" in err
    assert f"scadc profile {app} -o app.profile.json" in err


def test_a_region_holds_old_and_new_versions_only_when_the_old_one_is_not_freed_first() -> None:
    from scadc.partition.build import _stored_region

    mib = 2**20
    # an element that received the version frees it before storing its own (values.pack with previous)
    assert _stored_region([(False, 3 * mib), (True, 5 * mib)])[0] == 6 * mib  # (1088 B + 5 MiB) × 1.125
    # one that did not receive it stores beside it: both blocks are live at once
    region, reason = _stored_region([(False, 3 * mib), (False, 5 * mib)])
    assert region == 10 * mib and "2 stored versions, at most 8388608 B live" in reason
    assert _stored_region([(False, 100)])[0] == mib  # at least 1 MiB


def test_split_cli_default_heavy_bytes_is_the_analysis_default() -> None:
    from scadc.analysis import DEFAULT_HEAVY_BYTES
    from scadc.cli import build_parser
    from scadrt.sizes import parse_size

    args = build_parser().parse_args(["split", "app.py", "-o", "prog"])
    assert parse_size(args.heavy_bytes) == DEFAULT_HEAVY_BYTES


def test_min_element_ms_merges_short_elements_using_the_profile() -> None:
    example = str(ROOT / "examples" / "monolithic" / "tpcds_q1.py")
    plain = analyze(example)
    # a synthetic profile: every unit took 10 ms, so 35 ms needs at least four units per element
    profile = {"units": {u.span.key: {"wall_s": 0.010} for u in plain.units}}
    analysis = analyze(example, profile=profile)
    unmerged = build_plan(analysis, make_policy("resource"))
    merged = build_plan(analysis, make_policy("resource", min_element_ms=35))
    assert len(merged.computes) < len(unmerged.computes)
    assert all(len(c.units) >= 4 for c in merged.computes)
    assert merged.validate() == []
    assert any("(R3)" in why for _, why in merged.decisions)


def test_a_bare_return_in_main_splits_and_runs(tmp_path: Path) -> None:
    """A bare ``return`` crashed codegen (libcst wants a space after ``return`` once it has a value)."""
    app = tmp_path / "app.py"
    app.write_text("def main():\n    print('a')\n    if len('x') == 1:\n        return\n    print('b')\n\n"
                   "if __name__ == '__main__':\n    main()\n")
    split = subprocess.run([sys.executable, "-m", "scadc", "split", str(app), "-o", str(tmp_path / "prog"),
                            "--policy", "every"], check=False, capture_output=True, text=True)
    assert split.returncode == 0, split.stderr
    run = subprocess.run([sys.executable, "-m", "scadc", "run", str(tmp_path / "prog"), "-q"],
                         check=False, capture_output=True, text=True)
    assert (run.returncode, run.stdout) == (0, "a\n"), run.stderr


def test_a_list_holding_a_lambda_stays_in_one_element(tmp_path: Path) -> None:
    """A list that a lambda (or a generator) is appended to cannot be pickled: with the list live
    at every cut, policy ``every`` sent it across one and the run failed ("Can't pickle local
    object"), found by the release fuzzer (tests/scadc/test_split_fuzz.py)."""
    app = tmp_path / "app.py"
    app.write_text("import numpy as np\n\n\ndef main():\n    later = []\n    a = np.arange(10.0)\n"
                   "    later.append(lambda: float(a[1]))\n    table = {'g': [(v for v in range(2))]}\n"
                   "    b = a * 2\n    print(b.sum())\n    print([f() for f in later], list(table['g'][0]))\n\n\n"
                   "if __name__ == '__main__':\n    main()\n")
    analysis = analyze(str(app))
    assert {"later", "table"} <= set(analysis.not_transferable)
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    split = run("-m", "scadc", "run", prog, "--quiet", check=False)
    assert split.returncode == 0, split.stderr.decode()
    assert split.stdout == run(app).stdout == b"90.0\n[1.0] [0, 1]\n"


def test_locals_a_pandas_expression_string_names_cross_the_cut(tmp_path: Path) -> None:
    """``df.query("a > @limit")`` and ``df.eval(...)`` read ``limit`` from the caller's frame: the
    analysis saw no read, so policy every left ``limit`` behind and the split raised
    UndefinedVariableError where the original printed."""
    app = tmp_path / "app.py"
    app.write_text("import numpy as np\nimport pandas as pd\n\n\ndef main():\n"
                   "    df = pd.DataFrame({'a': np.arange(10)})\n    limit = 5\n    scale = 3\n    print('x')\n"
                   "    print(df.query('a > @limit')['a'].sum(), df.eval('a * @limit').sum(),\n"
                   "          pd.eval('df.a * scale').sum())\n\n\n"
                   "if __name__ == '__main__':\n    main()\n")
    analysis = analyze(str(app))
    assert {"limit", "scale"} <= analysis.units[-1].uses
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    split = run("-m", "scadc", "run", prog, "--quiet", check=False)
    assert split.returncode == 0, split.stderr.decode()
    assert split.stdout == run(app).stdout == b"x\n30 225 135\n"


def test_locals_an_eval_string_names_cross_the_cut(tmp_path: Path) -> None:
    """``eval("a + b")`` reads ``a`` and ``b`` from the frame: with no read seen they stayed in an
    earlier element (policy every) and the split raised NameError where the original printed."""
    app = tmp_path / "app.py"
    app.write_text("def main():\n    a = 1\n    b = 2\n    print('x')\n    print(eval('a + b'))\n\n\n"
                   "if __name__ == '__main__':\n    main()\n")
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    split = run("-m", "scadc", "run", prog, "--quiet", check=False)
    assert (split.returncode, split.stdout) == (0, b"x\n3\n"), split.stderr.decode()
