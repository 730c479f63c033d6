"""``scadc profile`` checks by running: which locals each unit changed in place, and what split does with it.

The programs are real and run for real: the profile fingerprints every local of the entry frame at
each unit boundary, ``split --profile`` counts what a unit was seen to change as a mutation of
that unit, and ``scadc profile`` warns about every change the static analysis did not predict.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scadc.analysis import analyze
from scadc.analysis.observed import OBSERVED_REASON
from scadc.errors import CompileError
from scadc.profile import fingerprint, profile_program

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.usefixtures("no_leftovers")

#: each unit of main() after the first five changes one thing in a way the analysis may not see, or
#: does something that must not count as a change. The method name ``bump`` is computed at run time:
#: no static analysis can know which method ``getattr`` finds, so that miss is certain.
PROGRAM = """\
import numpy as np
import pandas as pd


def tidy(df):
    df.sort_values("a", inplace=True)


def draw(gen, n):
    return gen.standard_normal(n)


class Counter:
    def __init__(self):
        self.total = 0

    def bump(self, k):
        self.total += k


def main():
    df = pd.DataFrame({"a": np.arange(200_000)[::-1] % 1000, "b": np.arange(200_000.0)})
    gen = np.random.default_rng(7)
    c = Counter()
    x = 1
    a = np.arange(300_000.0)
    tidy(df)
    first = draw(gen, 3)
    getattr(c, "bu" + "mp")(5)
    x = x + 1
    s = a.sum()
    second = draw(gen, 3)
    print(df["b"].iloc[:3].tolist(), c.total, x, s)
    print(np.round(first, 6).tolist(), np.round(second, 6).tolist())


if __name__ == "__main__":
    main()
"""
#: unit span key -> the locals it changes in place, for the units of PROGRAM; tidy(df) and the first
#: draw(gen, 3) are inlined: their units are the helpers' lines 6 and 10 (the second draw stays a call)
EXPECTED = {"6:4": ["df"], "10:4": ["gen"], "29:4": ["c"], "30:4": [], "31:4": [], "32:4": ["gen"]}


def scadc(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "scadc", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, check=False)
    assert done.returncode == 0, f"scadc {argv} exited {done.returncode}:\n{done.stderr}"
    return done


def python(app: Path) -> str:
    return subprocess.run([sys.executable, str(app)], capture_output=True, text=True, check=True,
                          cwd=app.parent, timeout=300).stdout


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """PROGRAM, its profile written by the CLI, and that run."""
    work = tmp_path_factory.mktemp("observed")
    app = work / "app.py"
    app.write_text(PROGRAM)
    return app, work / "app.profile.json", scadc("profile", app, "-o", work / "app.profile.json", cwd=work)


def load(path: Path) -> dict[str, Any]:
    profile: dict[str, Any] = json.loads(path.read_text())
    return profile


def without_observations(profile: dict[str, Any]) -> dict[str, Any]:
    """``profile`` as an earlier scadc wrote it: sizes and times, no ``changed``/``unchecked``."""
    units = {k: {f: v for f, v in u.items() if f not in ("changed", "unchecked")} for k, u in profile["units"].items()}
    return {**profile, "units": units}


# --- fingerprints -----------------------------------------------------------------------------------

def test_an_array_fingerprint_follows_its_contents_dtype_and_shape() -> None:
    a = np.arange(12.0)
    before = fingerprint(a)
    assert fingerprint(a) == before and fingerprint(a.copy()) == before
    a[5] = -1
    assert fingerprint(a) != before
    assert fingerprint(np.arange(12.0).reshape(3, 4)) != before  # same bytes, other shape
    assert fingerprint(np.arange(12.0).view(np.int64)) != before  # same bytes, other dtype
    big = np.zeros(1 << 20)  # large buffers take the CRC-32 path: one element still counts
    b0 = fingerprint(big)
    big[123_456] = 1e-300
    assert fingerprint(big) != b0
    m = np.arange(20.0).reshape(4, 5)
    view = m[:, ::2]  # not contiguous: its logical contents count
    v0 = fingerprint(view)
    m[0, 1] = 99  # outside the view
    assert fingerprint(view) == v0
    m[0, 2] = 99
    assert fingerprint(view) != v0
    when = np.array(["2024-01-01"], dtype="datetime64[D]")  # no buffer protocol for datetimes
    w0 = fingerprint(when)
    when[0] += 1
    assert w0 is not None and fingerprint(when) != w0
    objects = np.empty(2, dtype=object)  # the buffer holds pointers: the pointed-to lists count
    objects[0], objects[1] = [1], [2]
    o0 = fingerprint(objects)
    objects[0].append(3)
    assert fingerprint(objects) != o0


def test_a_pandas_fingerprint_follows_blocks_index_and_columns() -> None:
    df = pd.DataFrame({"a": [3, 1, 2], "b": [1.0, 2.0, 3.0], "s": ["x", "y", "z"]})
    f0 = fingerprint(df)
    assert fingerprint(df.copy()) == f0
    df["a"] = [1, 2, 3]  # the same object, a column replaced
    f1 = fingerprint(df)
    assert f1 != f0
    df.index = pd.RangeIndex(10, 13)  # (RangeIndex(3) would be equal to the default: no change)
    f2 = fingerprint(df)
    assert f2 != f1
    df.columns = ["a", "b", "t"]
    f3 = fingerprint(df)
    assert f3 != f2
    df.iloc[0, 2] = "q"  # an object column
    assert fingerprint(df) != f3
    s = pd.Series([1.0, 2.0], index=pd.Index(["u", "v"]), name="n")
    g0 = fingerprint(s)
    s.name = "m"
    g1 = fingerprint(s)
    s.iloc[1] = 5.0
    assert len({g0, g1, fingerprint(s)}) == 3
    cat = pd.Series(pd.Categorical(["a", "b", "a"]))  # an ExtensionArray
    c0 = fingerprint(cat)
    cat.iloc[0] = "b"
    assert c0 is not None and fingerprint(cat) != c0


def test_a_frame_fingerprint_follows_each_value_in_place() -> None:
    """Any element changed in place changes the fingerprint: numeric, str (joined, not pickled),
    Period, a list in an object column appended to, the index, a column name."""
    n = 5000
    df = pd.DataFrame({"x": np.arange(n, dtype=float), "s": pd.array([f"w{i % 7}" for i in range(n)], dtype=str),
                       "u": pd.array([f"u{i}" for i in range(n)], dtype=str),  # many distinct strings
                       "o": pd.Series([f"o{i % 3}" for i in range(n)], dtype=object),  # not inferred str
                       "m": pd.period_range("2023-01", periods=n, freq="D"),
                       "n": pd.array(np.arange(n), dtype="Int64")})
    df["l"] = [[i] for i in range(n)]
    df.loc[3, "s"] = None  # missing values among the strings
    df.loc[3, "o"] = None
    seen = {fingerprint(df)}

    def changed() -> None:
        now = fingerprint(df)
        assert now is not None and now not in seen
        seen.add(now)

    df.iloc[4000, 0] = -1.0
    changed()
    for col, value in (("s", "w1"), ("u", "u0"), ("o", "o0"), ("m", pd.Period("2020-01-01", "D")), ("n", 7)):
        df.loc[4321, col] = value  # each already elsewhere in its column
        changed()
    df.loc[3, "o"] = float("nan")  # another missing value: NaN is not None (str columns hold NaN for both)
    changed()
    df.loc[2500, "l"].append(0)  # the same list object, longer
    changed()
    df.index = df.index + 1
    changed()
    df.columns = [*df.columns[:-1], "list"]
    changed()
    df.loc[10, "u"], df.loc[11, "u"] = "a\x00b", "c"  # the strings are joined by NUL to be fed
    changed()
    df.loc[10, "u"], df.loc[11, "u"] = "a", "b\x00c"  # the same joined text, other strings
    changed()


def test_a_frame_fingerprint_follows_its_data_not_how_pandas_holds_it() -> None:
    """``kept = sales[mask]`` fills a cache inside ``sales``' datetime column (which its pickle,
    the old fingerprint, held: pandas_report's false change); consolidation regroups the blocks:
    neither changes the data, so neither changes the fingerprint; an equal frame built otherwise
    fingerprints equal."""
    n = 1000
    df = pd.DataFrame({"a": np.arange(n), "s": [f"s{i % 5}" for i in range(n)]})
    df["b"] = np.arange(n) * 2.0
    df["c"] = df["a"] + 1  # a block of its own until consolidated
    df["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n), unit="D")
    df["m"] = df["when"].dt.to_period("M")
    df["k"] = pd.Categorical(df["s"])
    when = next(block.values for block in df._mgr.blocks if block.dtype.kind == "M")
    f0 = fingerprint(df)
    assert "_cache" not in vars(when)
    kept = df[df["a"] % 2 == 0]
    assert "_cache" in vars(when)  # what the selection left behind
    assert fingerprint(df) == f0 and fingerprint(kept) != f0
    blocks = len(df._mgr.blocks)
    df._consolidate_inplace()
    assert len(df._mgr.blocks) < blocks
    assert fingerprint(df) == f0
    same = pd.DataFrame({"a": np.arange(n), "s": [f"s{i % 5}" for i in range(n)], "b": np.arange(n) * 2.0,
                         "c": np.arange(n) + 1, "when": df["when"].to_numpy(), "m": df["m"].to_numpy(),
                         "k": pd.Categorical([f"s{i % 5}" for i in range(n)])})
    assert fingerprint(same) == f0


def test_profile_does_not_report_a_mask_selection_as_a_change(tmp_path: Path) -> None:
    """``kept = sales[mask]`` consolidates ``sales``: no observed change (it was one in pandas_report)."""
    app = tmp_path / "app.py"
    app.write_text("import numpy as np\nimport pandas as pd\n\n\ndef main():\n"
                   "    sales = pd.DataFrame({'a': np.arange(100), 's': ['x', 'y'] * 50})\n"
                   "    sales['when'] = pd.Timestamp('2024-01-01') + pd.to_timedelta(sales['a'], unit='D')\n"
                   "    kept = sales[sales['a'] > 10]\n"
                   "    print(len(kept), len(sales))\n\n\nif __name__ == '__main__':\n    main()\n")
    profile, status = profile_program(str(app))
    assert status == 0
    assert profile["units"]["7:4"]["changed"] == ["sales"]  # a column added
    assert profile["units"]["8:4"]["changed"] == []


def test_what_cannot_be_fingerprinted_is_none() -> None:
    assert fingerprint(threading.Lock()) is None  # fails to pickle
    assert fingerprint(json) is None and fingerprint(len) is None and fingerprint(Path) is None
    assert fingerprint(x for x in range(3)) is None
    with open(__file__) as f:
        assert fingerprint(f) is None
    assert fingerprint({"when": datetime.date(2024, 1, 1)}) is not None


# --- the profile ------------------------------------------------------------------------------------

def test_the_profile_records_what_each_unit_changed_in_place(profiled: tuple[Path, Path, Any]) -> None:
    app, out, run = profiled
    units = load(out)["units"]
    assert {k: units[k]["changed"] for k in EXPECTED} == EXPECTED
    # the units that bind: a new object is not a change of the old one
    assert all(units[k]["changed"] == [] for k in ("22:4", "23:4", "24:4", "25:4", "26:4"))
    assert all(u["unchecked"] == [] for u in units.values())
    assert load(out)["format"] == "scadc-profile/1"
    assert run.stdout == python(app)  # the program's own output is untouched


def test_rebinding_and_reading_are_not_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "app.py"
    app.write_text("import numpy as np\n\ndef main():\n"
                   "    xs = [0] * 10\n"
                   "    xs = [1] * 10\n"              # a new list while the old one is still referenced
                   "    n = 1\n"
                   "    n = n + 1\n"
                   "    a = np.ones(1000)\n"
                   "    b = a\n"
                   "    t = float(a.sum()) + b[3]\n"
                   "    for i in range(3):\n"
                   "        xs.append(i)\n"           # a loop unit: one record, changed once
                   "    b *= 2\n"                     # through an alias: both names see it
                   "    print(xs, n, t, a[0])\n\n"
                   "if __name__ == '__main__':\n    main()\n")
    profile, status = profile_program(str(app))
    assert status == 0 and capsys.readouterr().out == f"{[1] * 10 + [0, 1, 2]} 2 1001.0 2.0\n"
    changed = {k: u["changed"] for k, u in profile["units"].items()}
    assert changed == {"4:4": [], "5:4": [], "6:4": [], "7:4": [], "8:4": [], "9:4": [], "10:4": [],
                       "11:4": ["xs"], "13:4": ["a", "b"], "14:4": []}


def test_a_script_records_its_module_level_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = tmp_path / "script.py"
    app.write_text("import numpy as np\n\n"
                   "class Box:\n    def __init__(self):\n        self.items = []\n\n"
                   "def fill(b):\n    getattr(b, 'it' + 'ems').append(1)\n\n"
                   "box = Box()\nfill(box)\nprint(box.items)\n")
    profile, status = profile_program(str(app))
    assert status == 0 and capsys.readouterr().out == "[1]\n"
    # the program's own class pickles (it runs as __main__), so its instance is fingerprinted
    assert profile["units"]["11:0"]["changed"] == ["box"] and profile["units"]["10:0"]["unchecked"] == []
    assert analyze(str(app), profile=profile).units[1].mutated == {"box"}


# --- what split and analyze do with it --------------------------------------------------------------

def test_profile_warns_about_each_change_the_analysis_did_not_predict(profiled: tuple[Path, Path, Any]) -> None:
    app, out, run = profiled
    static = analyze(str(app))
    units = load(out)["units"]
    expected = [f"scadc: warning: {f.span}: the unit changed `{n}` in place, which the analysis did not predict "
                "(the profile corrects this for split --profile)"
                for f in static.units for n in units[f.span.key]["changed"] if n not in f.mutated]
    warnings = [line for line in run.stderr.splitlines() if line.startswith("scadc: warning:")]
    assert warnings == expected
    # `getattr(c, "bu" + "mp")` cannot be seen through; the others are misses of today's rules
    assert f"scadc: warning: {app}:29:5: the unit changed `c` in place" in run.stderr
    assert "`x`" not in run.stderr and "`a`" not in run.stderr and "`s`" not in run.stderr


def test_split_with_the_profile_prints_what_the_original_prints(profiled: tuple[Path, Path, Any]) -> None:
    app, out, _ = profiled
    work = app.parent
    original = python(app)
    old = work / "old.profile.json"
    old.write_text(json.dumps(without_observations(load(out))))

    def split_and_run(name: str, *options: str | Path) -> str:
        scadc("split", app, "-o", work / name, "--policy", "every", "--force", *options, cwd=work)
        return scadc("run", work / name, "--quiet", cwd=work).stdout

    assert split_and_run("with", "--profile", out) == original
    # fails before: without what the run observed, a later element sees `c` (and today `df`, `gen`) unchanged
    assert split_and_run("sizes_only", "--profile", old) != original
    assert split_and_run("static") != original


def test_the_observation_is_explained(profiled: tuple[Path, Path, Any]) -> None:
    app, out, _ = profiled
    analysis = analyze(str(app), profile=str(out))
    static = analyze(str(app))
    for f, s in zip(analysis.units, static.units, strict=True):
        assert f.mutated == s.mutated | frozenset(EXPECTED.get(f.span.key, ()))  # only adds
        observed = {m.name for m in f.mutations if m.observed}
        assert observed == set(EXPECTED.get(f.span.key, ())) - s.mutated
    text = scadc("analyze", app, "--profile", out, "--explain", cwd=app.parent).stdout
    assert f"    because c: {OBSERVED_REASON} (line 29)" in text
    explained = scadc("split", app, "-o", app.parent / "explained", "--force", "--profile", out, "--explain",
                      cwd=app.parent).stderr
    assert "observed by the profile:" in explained
    assert f"  unit 7 (line 29): `c` {OBSERVED_REASON}; counted as a mutation" in explained


def test_observations_close_over_aliases(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("def main():\n    d = {'k': 1}\n    e = d\n    getattr(e, 'up' + 'date')(k=2)\n    print(d)\n\n"
                   "if __name__ == '__main__':\n    main()\n")
    profile, _ = profile_program(str(app))
    assert profile["units"]["4:4"]["changed"] == ["d", "e"]
    only_e = {**profile, "units": {**profile["units"], "4:4": {**profile["units"]["4:4"], "changed": ["e"]}}}
    assert analyze(str(app), profile=only_e).units[2].mutated == {"d", "e"}  # the alias class of e


def test_an_earlier_profile_still_reads(profiled: tuple[Path, Path, Any]) -> None:
    app, out, _ = profiled
    old = without_observations(load(out))
    assert [f.mutated for f in analyze(str(app), profile=old).units] == [f.mutated for f in analyze(str(app)).units]


def test_a_profile_of_another_version_or_malformed_is_refused(profiled: tuple[Path, Path, Any],
                                                              tmp_path: Path) -> None:
    app, out, _ = profiled
    edited = tmp_path / "app.py"
    edited.write_text(PROGRAM.replace("return gen.standard_normal(n)", "return gen.random(n)  # other"))
    with pytest.raises(CompileError, match="another version of the program"):
        analyze(str(edited), profile=str(out))
    bad = load(out)
    bad["units"]["6:4"]["changed"] = "df"
    with pytest.raises(CompileError, match="malformed 'changed'"):
        analyze(str(app), profile=bad)
