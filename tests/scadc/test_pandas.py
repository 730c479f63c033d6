"""pandas programs as input (issue 11, item 3): the heavy rules on a real frame, and the pandas
example under the policies and a profile, beyond the equivalence tests every example gets in
test_split.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scadc.analysis import analyze

pytestmark = pytest.mark.usefixtures("no_leftovers")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "monolithic" / "tpcds_pandas.py"


def run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, cwd=cwd, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"{argv} exited {done.returncode}:\n{done.stderr.decode()}")
    return done


def test_the_example_prints_no_warnings() -> None:
    # pandas 3 warns about inplace= (Pandas4Warning); the example filters exactly that, so stderr is
    # empty and the split program, whose elements are not __main__, cannot differ from it there
    done = run(EXAMPLE)
    assert done.stderr == b""
    assert done.stdout.count(b"\n") > 40


def test_the_example_frame_is_heavy_without_a_profile_at_its_real_size() -> None:
    """Rule 9 through a helper (rule 8): the static size of store_sales is the size pandas reports."""
    decision = analyze(str(EXAMPLE)).heavy["store_sales"]
    first_line = run(EXAMPLE).stdout.decode().splitlines()[0]
    measured = int(re.fullmatch(r"store_sales: \d+ rows, (\d+) bytes", first_line).group(1))  # type: ignore[union-attr]
    assert decision.heavy and decision.size == measured
    heavy = analyze(str(EXAMPLE)).heavy
    assert {n for n in ("sales", "november", "by_store", "losses") if heavy[n].heavy} == {"sales", "november",
                                                                                          "by_store", "losses"}
    assert not any(heavy[n].heavy for n in ("brands", "top", "categories", "states"))  # aggregations


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The example's profile (slow: ~10 s, measuring the frames after every unit) and what it printed."""
    profile = tmp_path_factory.mktemp("pandas") / "profile.json"
    original = run("-m", "scadc", "profile", EXAMPLE.relative_to(ROOT), "-o", profile).stdout
    assert json.loads(profile.read_text())["units"]
    assert original == run(EXAMPLE.relative_to(ROOT)).stdout  # profiled, it prints what it prints
    return profile, original


@pytest.mark.parametrize("policy", ["resource", "every"])
def test_the_example_split_with_a_profile_prints_what_it_prints(policy: str, profiled: tuple[Path, bytes],
                                                                 tmp_path: Path) -> None:
    profile, original = profiled
    prog = tmp_path / "prog"
    run("-m", "scadc", "split", EXAMPLE.relative_to(ROOT), "-o", prog, "--policy", policy, "--profile", profile)
    if policy == "every":  # the frames go through memory elements (resource: the cost model may keep it whole)
        assert len(list(prog.glob("mem_*.o.yaml"))) >= 1
    split = run("-m", "scadc", "run", prog, "--quiet")
    assert split.stdout == original
    assert split.stderr == b""  # no pandas warning in an element either


def test_module_level_pandas_options_reach_every_element(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text('import numpy as np\nimport pandas as pd\n\npd.set_option("display.float_format", "{:.1f}".format)\n'
                   '\n\ndef main():\n    df = pd.DataFrame({"a": np.linspace(0, 1, 5)})\n'
                   '    df["b"] = df["a"] * 3.14159\n    print(df)\n\n\nif __name__ == "__main__":\n    main()\n')
    original = run(app, cwd=tmp_path).stdout
    run("-m", "scadc", "split", app, "-o", tmp_path / "prog", "--policy", "single", cwd=tmp_path)
    assert run("-m", "scadc", "run", tmp_path / "prog", "--quiet", cwd=tmp_path).stdout == original


GROUPBY_PROGRAM = """\
import numpy as np
import pandas as pd

N = 300_000


def main():
    rng = np.random.default_rng(3)
    sales = pd.DataFrame({"store": rng.integers(1, 9, size=N), "net": np.round(rng.normal(size=N), 3)})
    by_store = sales.groupby("store")
    running = by_store["net"].cumsum()
    window = sales["net"].copy().rolling(5)  # a copy: the window holds nothing of sales (A10)
    smooth = window.mean()
    totals = by_store["net"].sum()
    print(totals.round(3).to_string())
    print(f"{running.iloc[-1]:.3f} {smooth.iloc[-1]:.3f}")


if __name__ == "__main__":
    main()
"""


def test_groupby_and_window_objects_cross_cuts_in_memory_elements(tmp_path: Path) -> None:
    """Rule 6 makes a GroupBy and a Rolling heavy (they hold their frame): they must survive a cut."""
    app = tmp_path / "app.py"
    app.write_text(GROUPBY_PROGRAM)
    heavy = analyze(str(app)).heavy
    assert heavy["by_store"].heavy and heavy["window"].heavy and heavy["running"].heavy and heavy["smooth"].heavy
    assert not heavy["totals"].heavy  # an aggregation: one row per store
    original = run(app, cwd=tmp_path).stdout
    run("-m", "scadc", "split", app, "-o", tmp_path / "prog", "--policy", "every", cwd=tmp_path)
    assert {"mem_by_store.o.yaml", "mem_window.o.yaml"} <= {p.name for p in (tmp_path / "prog").iterdir()}
    assert run("-m", "scadc", "run", tmp_path / "prog", "--quiet", cwd=tmp_path).stdout == original
