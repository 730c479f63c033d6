"""Rule 8 of scadc.analysis.effects: what the analysis may not assume pure, and what it may.

Each case is a small program and one of its entry statements; the test checks which locals that
statement may change in place. The "mutates" cases are the unsound gaps issue 11 names (the old
rule 8 assumed every method it did not know was pure); the "pure" cases are the precision the
type table buys back, so that numpy and pandas programs keep their cuts.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from scadc.analysis import HiddenState, StateKind, analyze

PRELUDE = """\
import collections
import random
import numpy as np
import pandas as pd
import somelib


class Acc:
    def __init__(self):
        self.total = np.zeros(3)
        self.n = 0

    def add(self, x):
        self.total += x
        self.n += 1

    def mean(self):
        return self.total / max(self.n, 1)


def draw(gen, n):
    return gen.standard_normal(n)


def total(a):
    return a.sum()


def scale(frame):
    frame["x"] = frame["x"] * 2


"""

#: (name, body of main (the statement under test is marked `# <-`), names it may change, names it must not)
CASES = [
    ("inplace_sort_values", """
        df = pd.DataFrame({"a": [3, 1, 2]})
        df.sort_values("a", inplace=True)  # <-
        print(df)""", {"df"}, set()),
    ("inplace_any_value", """
        df = pd.DataFrame({"a": [3, 1, 2]})
        flag = len(df) > 1
        df.rename(columns={"a": "b"}, inplace=flag)  # <-
        print(df)""", {"df"}, set()),
    ("sort_values_returns_new", """
        df = pd.DataFrame({"a": [3, 1, 2]})
        out = df.sort_values("a")  # <-
        print(df, out)""", set(), {"df"}),
    ("groupby_sum_pure", """
        df = pd.DataFrame({"a": [3, 1, 2], "k": [1, 1, 2]})
        g = df.groupby("k")["a"].sum()  # <-
        print(g)""", set(), {"df"}),
    ("generator_passed_to_helper", """
        gen = np.random.default_rng(1)
        a = draw(gen, 5)  # <-
        print(a, gen.random())""", {"gen"}, {"a"}),
    ("generator_passed_to_library", """
        gen = np.random.default_rng(1)
        df = pd.DataFrame({"a": [3, 1, 2]})
        s = df.sample(2, random_state=gen)  # <-
        print(s, gen.random())""", {"gen"}, {"df"}),
    ("helper_reading_an_array_is_pure", """
        x = np.arange(5.0)
        t = total(x)  # <-
        print(t, x)""", set(), {"x"}),
    ("helper_on_an_unknown_object_may_mutate", """
        obj = somelib.make()
        t = total(obj)  # <-
        print(t, obj)""", {"obj"}, set()),
    ("helper_adding_a_column", """
        df = pd.DataFrame({"x": [1.0, 2.0]})
        scale(df)  # <-
        print(df)""", {"df"}, set()),
    ("library_object_method_mutates_receiver_and_arguments", """
        model = somelib.Model()
        X = np.ones((4, 2))
        model.fit(X)  # <-
        print(model, X)""", {"model", "X"}, set()),
    ("unknown_callee_keyword_argument", """
        X = np.ones(4)
        somelib.process(data=X)  # <-
        print(X)""", {"X"}, set()),
    ("program_class_mutating_method", """
        acc = Acc()
        acc.add(np.ones(3))  # <-
        print(acc.mean())""", {"acc"}, set()),
    ("program_class_pure_method", """
        acc = Acc()
        acc.add(np.ones(3))
        m = acc.mean()  # <-
        print(m)""", set(), {"acc"}),
    ("ordered_dict_move_to_end", """
        d = collections.OrderedDict(a=1, b=2)
        d.move_to_end("a")  # <-
        print(list(d))""", {"d"}, set()),
    ("counter_subtract_and_most_common", """
        c = collections.Counter("abracadabra")
        c.subtract("aaa")  # <-
        print(c.most_common(2))""", {"c"}, set()),
    ("counter_most_common_pure", """
        c = collections.Counter("abracadabra")
        top = c.most_common(2)  # <-
        print(top)""", set(), {"c"}),
    ("deque_rotate", """
        dq = collections.deque([1, 2, 3])
        dq.rotate(1)  # <-
        print(list(dq))""", {"dq"}, set()),
    ("bytearray_extend", """
        ba = bytearray(b"ab")
        ba.extend(b"cd")  # <-
        print(ba)""", {"ba"}, set()),
    ("str_methods_pure", """
        s = "a,b,c"
        parts = s.split(",")  # <-
        print(parts)""", set(), {"s"}),
    ("iterator_used_up_by_list", """
        it = somelib.rows()
        first = list(it)  # <-
        print(first, list(it))""", {"it"}, set()),
    ("iterator_used_up_by_a_loop", """
        it = somelib.rows()
        for row in it:  # <-
            print(row)
        print(list(it))""", {"it"}, set()),
    ("list_iterated_by_a_loop_is_pure", """
        xs = [1, 2, 3]
        for v in xs:  # <-
            print(v)
        print(xs)""", set(), {"xs"}),
    ("comprehension_variable_mutates_what_it_iterates", """
        rows = [[3, 1], [2, 0]]
        done = [r.sort() for r in rows]  # <-
        print(rows, done)""", {"rows"}, set()),
    ("lambda_that_mutates_its_argument", """
        df = pd.DataFrame({"a": [1.0, None]})
        out = df.apply(lambda col: col.fillna(0, inplace=True))  # <-
        print(df, out)""", {"df"}, set()),
    ("lambda_that_reads_its_argument", """
        df = pd.DataFrame({"a": [1.0, 2.0]})
        out = df.apply(lambda col: col.sum())  # <-
        print(df, out)""", set(), {"df"}),
    ("helper_applied_to_a_frame_reads_it", """
        df = pd.DataFrame({"a": [1.0, 2.0]})
        out = df.apply(total)  # <-
        print(df, out)""", set(), {"df"}),
    ("helper_applied_to_a_frame_changes_it", """
        df = pd.DataFrame({"x": [1.0, 2.0]})
        out = df.apply(scale, axis=1)  # <-
        print(df, out)""", {"df"}, set()),
    ("random_module_generator_object", """
        r = random.Random(3)
        x = r.random()  # <-
        print(x, r.random())""", {"r"}, set()),
    ("a_view_written_through", """
        a = np.zeros((2, 3))
        v = a.reshape(-1)
        v.fill(1.0)  # <-
        print(a)""", {"a", "v"}, set()),
    ("defaultdict_lookup_inserts", """
        d = collections.defaultdict(list)
        x = d["k"]  # <-
        print(len(d), x)""", {"d"}, set()),
    ("defaultdict_passed_to_a_pure_method", """
        d = collections.defaultdict(str)
        s = "{x}".format_map(d)  # <-
        print(dict(d), s)""", {"d"}, set()),
    ("astype_without_a_copy_is_a_view", """
        a = np.zeros(3)
        b = a.astype(float, copy=False)
        b[0] = 1.0  # <-
        print(a)""", {"a", "b"}, set()),
    ("astype_copies", """
        a = np.zeros(3)
        b = a.astype(np.float32)
        b[0] = 1.0  # <-
        print(a, b)""", {"b"}, {"a"}),
    ("getfield_is_a_view", """
        a = np.zeros(3)
        b = a.getfield(np.float64)
        b[0] = 1.0  # <-
        print(a)""", {"a", "b"}, set()),
    ("a_long_chain_of_arrays_stays_typed", """
        v0 = np.zeros(3)
        v1 = v0 + 1.0
        v2 = v1 + 1.0
        v3 = v2 + 1.0
        v4 = v3 + 1.0
        v5 = v4 + 1.0
        v6 = v5 + 1.0
        v7 = v6 + 1.0
        v8 = v7 + 1.0
        v9 = v8 + 1.0
        v10 = v9 + 1.0
        v11 = v10 + 1.0
        v12 = v11 + 1.0
        v13 = v12 + 1.0
        v14 = v13 + 1.0
        v15 = v14 + 1.0
        v16 = v15 + 1.0
        v17 = v16 + 1.0
        v18 = v17 + 1.0
        v19 = v18 + 1.0
        v20 = v19 + 1.0
        t = v20.sum()  # <-
        print(t)""", set(), {"v20"}),
    ("an_element_of_an_object_array", """
        a = np.empty(2, dtype=object)
        a[0] = set()
        a[0].add(1)  # <-
        print(a)""", {"a"}, set()),
]


def _mutated(tmp_path: Path, body: str) -> frozenset[str]:
    body = textwrap.dedent(body).strip("\n")
    src = PRELUDE + "def main():\n" + textwrap.indent(body, "    ") + '\n\n\nif __name__ == "__main__":\n    main()\n'
    path = tmp_path / "app.py"
    path.write_text(src)
    marked = next(i for i, line in enumerate(src.splitlines(), 1) if line.endswith("# <-"))
    analysis = analyze(str(path), inline=False)  # the statement itself, a helper's call too: not inlined
    unit = next(u for u in analysis.units if u.span.line == marked)
    return unit.mutated


@pytest.mark.parametrize(("body", "mutates", "keeps"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_which_locals_a_statement_may_change(tmp_path: Path, body: str, mutates: set[str], keeps: set[str]) -> None:
    mutated = _mutated(tmp_path, body)
    assert mutates <= mutated, f"missed: {sorted(mutates - mutated)} (mutated: {sorted(mutated)})"
    assert not (keeps & mutated), f"imprecise: {sorted(keeps & mutated)} (mutated: {sorted(mutated)})"


def test_a_mutation_names_its_reason(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PRELUDE + textwrap.dedent("""\
        def main():
            model = somelib.Model()
            model.fit(1)
            df = pd.DataFrame({"a": [1]})
            df.describe()
            df.update(df)


        if __name__ == "__main__":
            main()
        """))
    reasons = {(m.name, m.reason) for u in analyze(str(tmp_path / "app.py")).units for m in u.mutations}
    assert ("model", "`.fit()` on a value of unknown type") in reasons
    assert ("df", "`.update()` is not a known-pure method of pandas") in reasons
    assert not any(r for n, r in reasons if "describe" in r)


def test_sample_without_random_state_draws_from_the_global_generator(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PRELUDE + textwrap.dedent("""\
        def main():
            df = pd.DataFrame({"a": [1, 2, 3]})
            s = df.sample(2)
            t = df.sample(2, random_state=1)


        if __name__ == "__main__":
            main()
        """))
    units = analyze(str(tmp_path / "app.py")).units
    numpy_random = HiddenState(StateKind.RNG, "numpy.random")
    assert numpy_random in units[1].hidden and numpy_random not in units[2].hidden


def test_a_chunked_pandas_reader_cannot_cross_a_cut(tmp_path: Path) -> None:
    """It holds an open file: found only when its pickle failed at run time before."""
    (tmp_path / "app.py").write_text(PRELUDE + textwrap.dedent("""\
        def main():
            reader = pd.read_csv("data.csv", chunksize=1000)
            first = next(reader)
            print(first)


        if __name__ == "__main__":
            main()
        """))
    assert "reader" in analyze(str(tmp_path / "app.py")).not_transferable
