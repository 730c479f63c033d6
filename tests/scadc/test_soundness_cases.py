"""Small programs the analysis split wrongly before issue 11 was fixed, each the shrunk form of a
failure the object fuzzer (test_split_fuzz_objects.py) found, or of one it is built to find.

Each is split with ``--policy every``, the default ``resource`` policy and ``resource --profile``
(after ``scadc profile``), run, and must print what ``python app.py`` prints. Before the fix 14 of
the 21 (case, split) pairs failed; the others pass either way, because no cut separates the change
from the read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scadc.test_split_fuzz_objects import CONFIGS, Case, check

pytestmark = pytest.mark.usefixtures("no_leftovers")

#: name -> (program, transport, why it fails today)
CASES: dict[str, tuple[str, str, str]] = {
    # rule 8: `sort_values(..., inplace=True)` is an unknown method, taken for pure; with a profile
    # the frame is heavy, the resource policy cuts around the independent array, and the element
    # that prints loads the frame as it was before the sort
    "frame_sort_values_inplace": ('''import numpy as np
import pandas as pd

N = 131072


def main():
    df = pd.DataFrame({"x": np.arange(N) * 1.0, "y": np.arange(N) % 3 * 1.0})
    a = np.arange(N) * 1.0
    df.sort_values("y", inplace=True)
    a += 1
    print("df", df.index[:3].tolist(), float(a[0]))


if __name__ == "__main__":
    main()
''', "shm", "every and --profile print the unsorted index [0, 1, 2]"),
    # rule 8 again, seen as a crash: the later element gets the frame without the renamed column
    "frame_rename_inplace": ('''import numpy as np
import pandas as pd

N = 131072


def main():
    df = pd.DataFrame({"x": np.arange(N) * 1.0, "y": np.arange(N) % 3 * 1.0})
    df.rename(columns={"y": "w"}, inplace=True)
    print("w", round(float(df["w"].sum()), 3))


if __name__ == "__main__":
    main()
''', "shm", "every: KeyError: 'w' in the element that prints"),
    # rule 8 inside a helper: its summary does not count the in-place sort of its parameter
    "frame_sorted_by_a_helper": ('''import numpy as np
import pandas as pd

N = 131072


def sort_frame(frame):
    frame.sort_values(frame.columns[-1], ascending=False, inplace=True)


def main():
    df = pd.DataFrame({"x": np.arange(N) * 1.0, "y": np.arange(N) % 3 * 1.0})
    sort_frame(df)
    print("df", df.index[:3].tolist())


if __name__ == "__main__":
    main()
''', "shm", "every: the index before the sort, [0, 1, 2]"),
    # rule 6: a generator is known only where it is bound; drawn from inside a helper it is not
    # seen to change, so the later element draws from the state before jitter(): wrong numbers
    # under every policy, the default one without a profile included
    "generator_passed_to_helper": ('''import numpy as np

N = 131072


def noise(gen, n):
    return gen.standard_normal(n)


def jitter(values, gen):
    values += gen.standard_normal(values.shape)


def main():
    g = np.random.default_rng(1)
    a = np.zeros(N)
    b = np.ones(N)
    jitter(b, g)
    c = np.full(N, 2.0)
    print("noise", round(float(noise(g, 3).sum()), 6), float(a[0] + c[0]), round(float(b.sum()), 3))


if __name__ == "__main__":
    main()
''', "tcp", "every, resource and --profile print the noise drawn before jitter()"),
    # rule 6 and the parallel loop: the iterations look independent, become instances, and each
    # draws from the same starting state
    "generator_drawn_in_a_parallel_loop": ('''import numpy as np

N = 131072


def noise(gen, n):
    return gen.standard_normal(n)


def main():
    g = np.random.default_rng(1)
    for i in range(3):
        print("draw", i, round(float(noise(g, 4)[0]), 6))


if __name__ == "__main__":
    main()
''', "shm", "every: draws 1 and 2 print draw 0's number"),
    # rule 6 for random.Random: drawn from in a helper, the next element has the old state
    "random_Random_passed_to_helper": ('''import random


def pick(r, n):
    return [r.random() for _ in range(n)]


def main():
    r = random.Random(3)
    print("pick", [round(v, 6) for v in pick(r, 3)])
    print("r", round(r.random(), 9))


if __name__ == "__main__":
    main()
''', "shm", "every: r prints pick's first number again"),
    # the table of mutating methods misses Counter.subtract (a dict method table is not enough)
    "counter_subtract": ('''import collections


def main():
    cnt = collections.Counter("abracadabra")
    cnt.subtract("ab")
    print("cnt", sorted(cnt.items()))


if __name__ == "__main__":
    main()
''', "shm", "every: the counts before subtract()"),
}


@pytest.mark.parametrize(("policy", "with_profile"), CONFIGS,
                         ids=[f"{p}{'-profile' if w else ''}" for p, w in CONFIGS])
@pytest.mark.parametrize("name", sorted(CASES))
def test_split_prints_what_the_program_prints(tmp_path: Path, name: str, policy: str, with_profile: bool) -> None:
    text, transport, _ = CASES[name]
    check(Case(text, transport, "1MiB"), tmp_path, ((policy, with_profile),))
