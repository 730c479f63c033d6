"""``scadc profile``: unit-boundary measurements, the program's output untouched, stable JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scadc.cli
from scadc.analysis import HeavyRule, analyze
from scadc.profile import deep_size, dumps, profile_program
from tests.scadc.datadriven import ROOT

EXAMPLES = sorted((ROOT / "examples" / "monolithic").glob("*.py"))

PROGRAM = """\
import numpy as np

def main():
    big = np.zeros((512, 512))  # 2 MiB
    small = [1, 2, 3]
    for i in range(3):
        big[i] = i
    print("sum", big.sum())
    del big
    print(len(small))

if __name__ == "__main__":
    main()
"""


def test_units_sizes_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.py"
    path.write_text(PROGRAM)
    profile, status = profile_program(str(path))
    assert status == 0
    assert capsys.readouterr().out == "sum 1536.0\n3\n"
    units = profile["units"]
    assert sorted(units, key=lambda k: units[k]["index"]) == ["4:4", "5:4", "6:4", "8:4", "9:4", "10:4"]
    assert units["4:4"]["live_bytes"] == {"big": 512 * 512 * 8}
    assert units["9:4"]["live_bytes"] == {"i": 28, "small": deep_size([1, 2, 3])}  # big is gone after del
    assert all(u["rss_bytes"] > 0 and u["wall_s"] >= 0 and u["cpu_s"] >= 0 for u in units.values())
    assert json.loads(dumps(profile)) == profile and dumps(profile).endswith("}\n")


def test_a_loop_is_one_unit_however_many_iterations(tmp_path: Path) -> None:
    path = tmp_path / "app.py"
    path.write_text(PROGRAM)
    profile, _ = profile_program(str(path))
    assert [u["index"] for u in profile["units"].values()].count(2) == 1


def test_script_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "script.py"
    path.write_text("import sys\nx = [0] * 1000\nprint('hi')\nsys.exit(3)\n")
    profile, status = profile_program(str(path))
    assert status == 3 and capsys.readouterr().out == "hi\n"
    assert profile["units"]["2:0"]["live_bytes"]["x"] == deep_size([0] * 1000)
    assert set(profile["units"]) == {"2:0", "3:0", "4:0"}


def test_a_failing_program_reports_status_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.py"
    path.write_text("def main():\n    x = 1\n    raise ValueError('boom')\n\nif __name__ == '__main__':\n    main()\n")
    _, status = profile_program(str(path))
    assert status == 1 and "ValueError: boom" in capsys.readouterr().err


def test_deep_size_is_bounded() -> None:
    arrays = [np.zeros(100) for _ in range(5000)]
    size = deep_size(arrays)
    assert 5000 * 800 <= size <= 5000 * 800 * 1.2
    assert deep_size({"a": np.zeros(10)}) > 80


def test_analysis_uses_the_measured_sizes(tmp_path: Path) -> None:
    path = tmp_path / "app.py"
    path.write_text(PROGRAM.replace("np.zeros((512, 512))", "np.zeros(n * n)").replace(
        "def main():\n", "def main():\n    n = int('512')\n"))
    profile, _ = profile_program(str(path))
    assert not analyze(str(path)).heavy["big"].heavy  # the size is not computable statically
    decided = analyze(str(path), profile=profile).heavy["big"]
    assert decided.heavy and decided.size == 512 * 512 * 8 and decided.reason.rule is HeavyRule.PROFILE


def test_profile_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.py"
    path.write_text(PROGRAM)
    profile, _ = profile_program(str(path))
    path.write_text("\n\n" + PROGRAM)
    with pytest.raises(Exception, match="does not match"):
        analyze(str(path), profile=profile)


#: under `make fuzz` only: examples whose profile takes far longer than their run (pandas_report: ~7 s of
#: CPU for a 0.6 s program, most of it fingerprinting its 360k-row str columns at each of 41 boundaries),
#: and ones `make test` profiles elsewhere too, checking the profiled run prints what the program
#: prints (test_split's PROFILED: channel_report, logreg_cv; test_pandas: tpcds_pandas)
SLOW_TO_PROFILE = ("pandas_report", "channel_report", "logreg_cv", "tpcds_pandas")


@pytest.mark.parametrize("example", [pytest.param(e, marks=pytest.mark.slow) if e.stem in SLOW_TO_PROFILE else e
                                     for e in EXAMPLES], ids=lambda p: p.stem)
def test_profile_runs_on_every_example(example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI writes the profile and the program prints exactly what it prints unprofiled."""
    out = tmp_path / "p.json"
    assert scadc.cli.main(["profile", str(example), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    plain = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, check=True).stdout
    assert printed == plain
    profile = json.loads(out.read_text())
    analysis = analyze(str(example), profile=profile)
    assert {u.span.key for u in analysis.units} >= set(profile["units"])
    assert any(d.heavy for d in analysis.heavy.values())


def test_deep_size_of_pandas_values_matches_pandas_deep_memory_usage() -> None:
    """Frames are sized from their buffers plus sampled strings, not by walking every string
    (``sys.getsizeof(df)`` is ``memory_usage(deep=True)``: seconds per unit on millions of rows)."""
    pd = pytest.importorskip("pandas")
    n = 50_000
    df = pd.DataFrame({"a": np.arange(n), "s": [f"item{i % 1000}" for i in range(n)],
                       "o": np.array([f"o{i % 7}" for i in range(n)], dtype=object),
                       "c": pd.Categorical(np.arange(n) % 5)})
    for value in (df, df["s"], df["o"], df["c"], df.set_index("s").index, df.index):
        want = value.memory_usage(deep=True)
        want = int(want.sum()) if hasattr(want, "sum") else int(want)
        assert abs(deep_size(value) - want) <= 0.05 * want, (type(value), deep_size(value), want)


def test_period_str_and_categorical_columns_are_sized_from_where_their_values_lie() -> None:
    """A Period column is int64 ordinals (8 bytes a row), not boxed Periods; a str column is its
    pointers plus its strings, sampled where they lie (no column converted to objects first); a
    categorical is its codes plus its categories' strings."""
    pd = pytest.importorskip("pandas")
    n = 200_000
    month = pd.period_range("2023-01", periods=12, freq="M")[np.arange(n) % 12]
    word = np.array(["web", "app", "store"], dtype=object)[np.arange(n) % 3]
    df = pd.DataFrame({"month": month, "s": pd.array(word, dtype=str), "o": word.copy(),
                       "c": pd.Categorical(word)})
    per_row = sum(sys.getsizeof(w) for w in word[:999]) / 999  # the sample's 1000 rows are 333 of each + one
    assert deep_size(df["month"]) == n * 8 + df.index.nbytes
    for name in ("s", "o"):
        assert abs(deep_size(df[name]) - (n * 8 + df.index.nbytes + n * per_row)) <= 0.01 * n * per_row
    categories = sum(sys.getsizeof(w) for w in ("app", "store", "web"))
    assert deep_size(df["c"]) == df["c"].memory_usage(deep=False) + categories
    assert deep_size(df) == df.memory_usage(deep=False).sum() + deep_size(df["s"]) + deep_size(df["o"]) \
        - 2 * (n * 8 + df.index.nbytes) + categories


def test_stored_sizes_are_what_the_runtime_allocates_not_the_in_memory_size(tmp_path: Path) -> None:
    """Rule 8: a frame's strings are stored joined as UTF-8, far smaller than Python's str objects."""
    pd = pytest.importorskip("pandas")
    from scadrt.remote.values import packed_nbytes

    path = tmp_path / "app.py"
    path.write_text("import numpy as np\nimport pandas as pd\n\ndef main():\n"
                    "    frame = pd.DataFrame({'n': np.arange(50_000), 's': [f'k{i}' for i in range(50_000)]})\n"
                    "    big = np.zeros(100_000)\n    grown = np.ones(8_000_000)\n    del grown\n"
                    "    print(len(frame), big.sum())\n\nif __name__ == '__main__':\n    main()\n")
    profile, status = profile_program(str(path))
    assert status == 0
    units = sorted(profile["units"].values(), key=lambda u: u["index"])
    frame = pd.DataFrame({"n": np.arange(50_000), "s": [f"k{i}" for i in range(50_000)]})
    assert units[0]["stored_bytes"] == {"frame": packed_nbytes(frame)}
    assert units[0]["stored_bytes"]["frame"] < units[0]["live_bytes"]["frame"] // 2
    assert units[1]["stored_bytes"] == {"big": 800_000, "frame": packed_nbytes(frame)}
    # 64 MB (above glibc's largest mmap threshold, so fresh pages): the unit rose by about that much
    assert units[2]["peak_rise_bytes"] >= 60_000_000
    assert all(u["start_rss_bytes"] > 0 and u["peak_rise_bytes"] >= 0 for u in units)
