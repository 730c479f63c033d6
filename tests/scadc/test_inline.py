"""Inlining the program's own helpers into main() (:mod:`scadc.analysis.inline`): what it refuses,
what the rewritten entry region is, and that split programs with inlined helpers print what the
original prints, fail at the helper's lines, and are profiled with the units split sees."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scadc.analysis import analyze
from scadc.analysis.inline import load_inlined
from scadc.analysis.program import load_program
from scadc.partition.build import build_plan
from scadc.partition.policies import make_policy
from scadc.profile import profile_program

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]


def program(tmp_path: Path, text: str) -> Path:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return app


def run(*argv: str | Path, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, cwd=ROOT, timeout=300, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"{argv} exited {done.returncode}:\n{done.stderr.decode()}")
    return done


def decisions(app: Path) -> dict[str, str]:
    """helper name -> 'inlined' or the reason it was kept (its first call)."""
    out: dict[str, str] = {}
    for d in load_inlined(str(app)).inlining:
        out.setdefault(d.helper, "inlined" if d.inlined else d.reason)
    return out


MAIN = """

def main():
    data = [1.0, 2.0, 3.0]
    out = helper(data)
    print(out)


if __name__ == "__main__":
    main()
"""

# region refusals: each helper must be kept as a call, for the reason given

REFUSED = {
    "decorated": ("import functools\n\n\n@functools.lru_cache\ndef helper(xs):\n    return 1\n", "decorated"),
    "generator": ("def helper(xs):\n    yield from xs\n", "generator"),
    "global": ("N = 0\n\n\ndef helper(xs):\n    global N\n    N = len(xs)\n    return N\n", "global"),
    "nested def": ("def helper(xs):\n    def inner():\n        return xs\n    return inner()\n", "function, class"),
    "lambda": ("def helper(xs):\n    f = lambda: xs\n    return f()\n", "lambda"),
    "class": ("def helper(xs):\n    class C:\n        pass\n    return C\n", "class"),
    "locals": ("def helper(xs):\n    return locals()\n", "locals"),
    "vars": ("def helper(xs):\n    return vars()\n", "vars"),
    "getframe": ("import sys\n\n\ndef helper(xs):\n    return sys._getframe().f_lineno\n", "_getframe"),
    "inspect": ("import inspect\n\n\ndef helper(xs):\n    return inspect.stack()\n", "inspect"),
    "recursion": ("def helper(xs):\n    return helper(xs[1:]) if xs else 0\n", "calls itself"),
    "self call": ("def helper(xs):\n    total = 0\n    if xs:\n        total = helper(xs[1:])\n    return total\n",
                  "calls itself"),
    "early return": ("def helper(xs):\n    if xs:\n        return 1\n    return 2\n", "returns other"),
    "star args": ("def helper(*xs):\n    return xs\n", "*args"),
    "kwargs": ("def helper(xs, **kw):\n    return xs\n", "**kwargs"),
    "default": ("def helper(xs, n=len([1])):\n    return xs\n", "not a literal"),
    "import": ("def helper(xs):\n    import math\n    return math.fsum(xs)\n", "imports"),
    "escaping genexp": ("def helper(xs):\n    g = (x for x in xs)\n    return list(g)\n", "generator expression"),
    "reads a main local": ("def helper(xs):\n    return out\n", "reads out"),
    "async": ("async def helper(xs):\n    return xs\n", "async"),
    "stacklevel": ("import warnings\n\n\ndef helper(xs):\n    warnings.warn('old', DeprecationWarning, stacklevel=2)\n"
                   "    return xs\n", "stacklevel"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_unsafe_helper_is_kept_as_a_call(case: str, tmp_path: Path) -> None:
    helper, reason = REFUSED[case]
    app = program(tmp_path, helper + MAIN)
    assert reason in decisions(app)["helper"]


def test_a_consumed_generator_expression_is_inlined(tmp_path: Path) -> None:
    app = program(tmp_path, "def helper(xs):\n    return sum(x * 2 for x in xs)\n" + MAIN)
    assert decisions(app) == {"helper": "inlined"}


CALLS = """
def helper(a, b, c=3):
    return a + b + c


def main():
    args = [1, 2]
    x = helper(*args)
    y = helper(1, d=2)
    z = helper(1)  # scad: local
    print(x, y, z)


if __name__ == "__main__":
    main()
"""


def test_calls_that_cannot_bind_are_kept(tmp_path: Path) -> None:
    app = program(tmp_path, CALLS)
    reasons = [d.reason for d in load_inlined(str(app)).inlining]
    assert reasons == ["the call passes *args or **kwargs", "the call passes d= that the helper does not take",
                       "the call carries a scad: pragma"]


def test_an_argument_that_assigns_is_kept(tmp_path: Path) -> None:
    app = program(tmp_path, "def helper(a, b):\n    return a + b\n\n\ndef main():\n    x = 1\n"
                            "    y = helper(x, (x := 5))\n    print(x, y)\n\n\nmain()\n")
    assert decisions(app) == {"helper": "an argument assigns with :="}


def test_no_inline_keeps_every_call(tmp_path: Path) -> None:
    app = program(tmp_path, "def helper(xs):\n    return len(xs)\n" + MAIN)
    kept = load_program(str(app))
    assert [u.summary for u in kept.units] == ["data = [1.0, 2.0, 3.0]", "out = helper(data)", "print(out)"]
    assert kept.inlining == () and kept.line_map == ()

# endregion

# region the rewritten entry region

RENAMED = """
def make(n, scale=2.0, *, shift=0):
    \"\"\"Names that main() uses too: each stays its own.\"\"\"
    data = [i * scale for i in range(n)]
    out = sum(data) + shift
    for i in range(n):
        last = i
    return out, data


def main():
    data = "main's own"
    out, table = make(noisy("n", 3), shift=noisy("shift", 1))
    print(data, out, table)


def noisy(what, value):
    print("evaluated", what)
    return value


if __name__ == "__main__":
    main()
"""


def test_locals_are_renamed_arguments_bound_once_in_order_and_released(tmp_path: Path) -> None:
    app = program(tmp_path, RENAMED)
    loaded = load_inlined(str(app))
    assert [u.summary for u in loaded.units] == [
        "data = \"main's own\"",
        '_inl1_n, _inl1_shift = noisy("n", 3), noisy("shift", 1)',
        "_inl1_data = [_inl1_i * (2.0) for _inl1_i in range(_inl1_n)]",  # consistently: harmless
        "_inl1_out = sum(_inl1_data) + _inl1_shift",
        "for _inl1_i in range(_inl1_n):",
        "out = _inl1_out; table = _inl1_data; _inl1_i = _inl1_last...",
        "print(data, out, table)",
    ]
    # each unit's span is the line it came from: the call's line for the bindings, the helper's lines
    assert [u.span.line for u in loaded.units] == [11, 12, 3, 4, 5, 7, 13]


MAYBE_DELETED = """
def helper(xs, flag):
    tmp = list(xs)
    if flag:
        del tmp
    return len(xs)


def main():
    x = [1, 2]
    n = helper(x, True)
    print(n)


if __name__ == "__main__":
    main()
"""


def test_a_local_the_helper_may_have_deleted_is_bound_before_it_is_released(tmp_path: Path) -> None:
    app = program(tmp_path, MAYBE_DELETED)
    units = [u.summary for u in load_inlined(str(app)).units]
    assert units[-2] == "n = len(x); _inl1_tmp = None; del _inl1_tmp"
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    assert run("-m", "scadc", "run", prog, "--quiet").stdout == run(app).stdout == b"2\n"


@pytest.mark.parametrize("transport", ["shm", "tcp"])
def test_inlined_helpers_print_what_the_original_prints(transport: str, tmp_path: Path) -> None:
    app = program(tmp_path, RENAMED)
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    # cuts between the helper's statements too (not where the alias analysis sees two names for one value)
    assert len(list(prog.glob("*.o.py"))) >= 4
    split = run("-m", "scadc", "run", prog, "--transport", transport, "--quiet")
    assert split.stdout == run(app).stdout == b"evaluated n\nevaluated shift\nmain's own 7.0 [0.0, 2.0, 4.0]\n"


FAILING = """
import numpy as np


def prepare(values, limit):
    total = float(values.sum())
    scaled = values / total
    if scaled.max() > limit:
        raise ValueError(f"too large: {scaled.max():.2f}")
    return scaled


def main():
    data = np.ones(10)
    data[0] = 20.0
    print("made", data.size)
    scaled = prepare(data, 0.5)
    print("never printed", scaled)


if __name__ == "__main__":
    main()
"""


def test_a_failing_inlined_helper_names_its_own_line(tmp_path: Path) -> None:
    app = program(tmp_path, FAILING)
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", app, "-o", prog, "--policy", "every")
    split, original = run("-m", "scadc", "run", prog, "--quiet", check=False), run(app, check=False)
    assert split.returncode == original.returncode == 1
    assert split.stdout == original.stdout == b"made 10\n"
    err = split.stderr.decode()
    assert f'File "{app}", line 8, in prepare (step' in err
    assert err.rstrip().endswith("ValueError: too large: 0.69")

# endregion

# region examples and profiles

EXAMPLES = {"kmeans": "make_points", "tpcds_pandas": "make_store_sales", "image_pipeline": "blur",
            "pandas_report": "make_lines"}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_an_example_is_cut_inside_its_former_helper(example: str) -> None:
    path = ROOT / "examples" / "monolithic" / f"{example}.py"
    analysis = analyze(str(path))
    decision = next(d for d in analysis.program.inlining if d.helper == EXAMPLES[example])
    assert decision.inlined
    # the units that came from the helper's lines, and a cut between two of them under --policy every
    helper = next(d for d in analysis.program.definitions if d.names == (EXAMPLES[example],))
    inside = [u.unit.index for u in analysis.units if helper.span.line <= u.unit.span.line <= helper.span.end_line]
    assert len(inside) >= 2
    plan = build_plan(analysis, make_policy("every"))
    owners = {i: c.name for c in plan.computes for i in c.units}
    assert len({owners[i] for i in inside}) >= 2
    # that such a split prints what the example prints is test_split's
    # test_every_allowed_cut_preserves_the_output (split inlines by default)


def test_the_profile_measures_the_units_split_sees(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    app = program(tmp_path, RENAMED)
    profile, status = profile_program(str(app))
    assert status == 0
    keys = {u.span.key: u.index for u in load_inlined(str(app)).units}
    assert {k: v["index"] for k, v in profile["units"].items()} == keys
    # inside the helper its locals are measured under their inlined names, released after its return
    by_index = {v["index"]: v for v in profile["units"].values()}
    assert set(by_index[3]["live_bytes"]) == {"data", "_inl1_n", "_inl1_shift", "_inl1_data", "_inl1_out"}
    assert set(by_index[6]["live_bytes"]) == {"data", "out", "table"}
    unrelated, _ = profile_program(str(app), inline=False)
    assert len(unrelated["units"]) == 3
    capfd.readouterr()


def test_a_split_with_the_profile_prints_what_the_original_prints(tmp_path: Path) -> None:
    path = ROOT / "examples" / "monolithic" / "kmeans.py"
    profile = tmp_path / "kmeans.profile.json"
    run("-m", "scadc", "profile", path, "-o", profile)
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", path, "-o", prog, "--profile", profile)
    assert run("-m", "scadc", "run", prog, "--quiet").stdout == run(path).stdout
    # a profile taken without inlining has other units: split refuses it
    run("-m", "scadc", "profile", path, "-o", profile, "--no-inline")
    refused = run("-m", "scadc", "split", path, "-o", tmp_path / "other", "--profile", profile, check=False)
    assert refused.returncode != 0 and b"the profile was taken without inlining" in refused.stderr

# endregion
