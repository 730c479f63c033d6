"""``scadc split`` scales near-linearly in the number of units (issue 10, item 8).

Not timed: the measures are deterministic, taken on a generated program of ``n`` top-level
statements and on one of ``4n``. Linear work grows 4×, quadratic work 16×; the bound (6×)
leaves room for sorting.

1. The whole pipeline (analysis, partition, writing the directory): the Python calls cProfile
   counts in scadc and in networkx, and the bytes the analysis and plan hold. One shape per way
   the work used to grow with the square of the units: a script of module constants (each was
   checked against every binding), every statement writing a file under ``--policy every``
   (every pair of elements was checked for a conflict and searched for a path), independent
   heavy phases (the resource policy re-ranked every cut per dropped cut), a heavy value derived
   step by step (one step per round over all bindings), helpers calling one another (one helper
   per round over all of them), one list holding every array (each aliased local kept its own
   copy of the alias class).
2. Each analysis's results, those analyze() drops included: plain assignments in main(), and
   ``v7 = v3 + v6`` with heavy numpy arrays (every "maybe defined" set held every earlier name).
3. The faster algorithms give what the plain ones give: liveness rule 4 against the solver, the
   conflict steps and the path test against brute force.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import random
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import scadc
from scadc.analysis import Options, analyze
from scadc.analysis.base import resolve
from scadc.analysis.dataflow import chain, run_analysis
from scadc.analysis.defuse import DefUseProvider
from scadc.analysis.effects import HelperSummaryProvider
from scadc.analysis.heavy import HeavyProvider
from scadc.analysis.hidden_state import HiddenStateProvider
from scadc.analysis.liveness import LivenessProvider, maybe_defined
from scadc.analysis.mutation import AliasProvider, MutationProvider
from scadc.analysis.program import deep_call, load_program
from scadc.analysis.transfer import TransferProvider
from scadc.codegen.emit import write_program
from scadc.partition.build import build_plan
from scadc.partition.plan import conflict, conflict_steps, longer_paths
from scadc.partition.policies import make_policy

#: how much more work 4× the units may take (quadratic growth would be 16×)
MAX_GROWTH = 6.0
SMALL = 25
SCADC = os.path.dirname(scadc.__file__) + os.sep
PROVIDERS = (DefUseProvider, LivenessProvider, MutationProvider, HiddenStateProvider, HeavyProvider, TransferProvider,
             AliasProvider, HelperSummaryProvider)
MAIN = '\n\nif __name__ == "__main__":\n    main()\n'

pytestmark = pytest.mark.usefixtures("no_leftovers")


def _chain(i: int) -> str:
    """``v7 = v3 + v6``: each value from earlier ones; a heavy array (8 MB) every ten."""
    if i % 10 == 0:
        return f"v{i} = np.zeros(1_000_000)"
    if i % 10 == 5:
        return f"v{i} = float(v{i - 5}.sum()) + v{i - 1}"
    return f"v{i} = v{i - 1} + {i}" if i < 4 else f"v{i} = v{i - 4} + v{i - 1}"


def _main(lines: list[str], head: str = "import numpy as np\n\n\n") -> str:
    return head + "def main():\n" + "".join(f"    {line}\n" for line in lines) + MAIN


def program(shape: str, n: int) -> str:
    """A program of ``n`` top-level statements (units, or module constants) of ``shape``."""
    if shape == "constants":
        return "".join(f"v{i} = {i} + 1\n" for i in range(n)) + f"print(v{n - 1})\n"
    if shape == "main":
        return _main([f"v{i} = {i} + 1" for i in range(n)], head="")
    if shape == "chain":
        return _main([_chain(i) for i in range(n)] + [f"print(v{n - 1})"])
    if shape == "phases":  # independent heavy phases: a cut before each, all but 7 dropped again (R2)
        return _main([f"a{i} = np.zeros(1_000_000)" for i in range(n)])
    if shape == "io":  # every statement writes a file: every two elements are ordered
        return _main([f"with open('log.txt', 'a') as f{i}:\n        f{i}.write('{i}')" for i in range(n)], head="")
    if shape == "append":  # one list holds every array: one alias class of all the names
        return _main(["acc = []", *(f"v{i} = np.zeros(3) + {i}\n    acc.append(v{i})" for i in range(n // 2)),
                      "print(len(acc))"])
    if shape == "derived":
        return _main(["v0 = np.zeros(1_000_000)", *(f"v{i} = v{i - 1} * 2" for i in range(1, n)), f"print(v{n - 1})"])
    if shape == "helpers":  # h0 calls h1 … calls the last, which changes its argument
        helpers = "".join(f"def h{i}(x):\n    h{i + 1}(x)\n\n\n" for i in range(n - 1))
        return _main(["v = []", *(f"h{i}(v)" for i in range(0, n, 4)), "print(v)"],
                     head=f"{helpers}def h{n - 1}(x):\n    x.append(1)\n\n\n")
    raise AssertionError(shape)


def _counted(filename: str) -> bool:
    """scadc's own functions and those of its graph library: the other libraries' calls (libcst
    visiting every node, jinja, json) are per node or per byte of output, the same for any
    program of that size, and their large constant would hide how the compiler's work grows."""
    return filename.startswith(SCADC) or f"{os.sep}networkx{os.sep}" in filename


def held(*roots: object) -> int:
    """Bytes of every object reachable from ``roots``: scadc's facts (classes, functions, modules
    and libcst's syntax tree aside)."""
    seen: set[int] = set()
    todo = list(roots)
    total = 0
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (type, types.ModuleType, types.FunctionType)) \
                or type(obj).__module__.startswith("libcst"):  # the syntax tree: the size of the source
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo += gc.get_referents(obj)
    return total


def work(tmp: Path, shape: str, n: int, policy: str) -> tuple[int, int]:
    """Python calls (see :func:`_counted`) of the split pipeline on ``program(shape, n)``, and the
    bytes its analysis and plan hold."""
    source = tmp / f"{shape}{n}.py"
    source.write_text(program(shape, n))
    profile = cProfile.Profile()

    def compile_it() -> tuple[Any, Any]:
        # on a deep stack, as scadc.pipeline runs these stages (a chain of helpers is read helper
        # within helper, deeper than the default recursion limit); profiled in that thread
        profile.enable()
        try:
            analysis = analyze(str(source))
            plan = build_plan(analysis, make_policy(policy))
            write_program(analysis, plan, tmp / f"out{n}")
        finally:
            profile.disable()
        return analysis, plan

    analysis, plan = deep_call(compile_it)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    return sum(nc for (filename, _, _), (_, nc, *_) in stats.items() if _counted(filename)), held(analysis, plan)


@pytest.mark.parametrize(("shape", "policy", "small"), [
    ("constants", "resource", SMALL), ("io", "every", SMALL), ("phases", "resource", SMALL),
    ("derived", "resource", SMALL), ("helpers", "resource", SMALL),
    ("append", "resource", 2 * SMALL),  # an alias class per boundary, until its bytes outgrow the rest
])
def test_split_work_and_memory_grow_near_linearly(tmp_path: Path, shape: str, policy: str, small: int) -> None:
    work(tmp_path, shape, 5, policy)  # imports, templates and caches: paid once, not counted
    calls, memory = work(tmp_path, shape, small, policy)
    calls4, memory4 = work(tmp_path, shape, 4 * small, policy)
    assert calls4 / calls <= MAX_GROWTH, f"{small} → {4 * small} units: {calls} → {calls4} calls"
    assert memory4 / memory <= MAX_GROWTH, f"{small} → {4 * small} units: scadc holds {memory} → {memory4} bytes"


def facts(tmp: Path, shape: str, n: int) -> dict[str, int]:
    """Per analysis (provider), the bytes of its results on ``program(shape, n)``, including those
    analyze() drops once it has built the Analysis."""
    source = tmp / f"{shape}{n}.py"
    source.write_text(program(shape, n))
    results = resolve(load_program(str(source)), *PROVIDERS, options=Options())
    return {provider.__name__: held(*result.values()) for provider, result in results.items()}


@pytest.mark.parametrize("shape", ["main", "chain"])
def test_analysis_facts_grow_near_linearly(tmp_path: Path, shape: str) -> None:
    small, large = facts(tmp_path, shape, SMALL), facts(tmp_path, shape, 4 * SMALL)
    grown = {name: f"{small[name]} → {large[name]} bytes" for name in small
             if large[name] > MAX_GROWTH * max(small[name], 1024)}  # some analyses find nothing here
    assert not grown, f"{SMALL} → {4 * SMALL} units: {grown}"


@pytest.mark.parametrize("seed", range(20))
def test_maybe_defined_is_the_forward_solution_cut_to_the_live_names(seed: int) -> None:
    rnd = random.Random(seed)
    names = "abcdefg"
    n = rnd.randint(1, 12)

    def some() -> frozenset[str]:
        return frozenset(rnd.sample(names, rnd.randint(0, 3)))

    gen, kill = [some() for _ in range(n)], [some() for _ in range(n)]
    kill = [k - g for k, g in zip(kill, gen, strict=True)]
    before, after = [some() for _ in range(n)], [some() for _ in range(n)]
    full = run_analysis(chain(n), gen, kill, backward=False)
    ins, outs = maybe_defined(gen, kill, before, after)
    assert ins == [b & d for b, d in zip(before, full.before, strict=True)]
    assert outs == [a & d for a, d in zip(after, full.after, strict=True)]


def _reachable(edges: set[tuple[int, int]], j: int, k: int) -> bool:
    todo, seen = [j], set()
    while todo:
        x = todo.pop()
        for a, b in edges:
            if a == x and b not in seen:
                seen.add(b)
                todo.append(b)
    return k in seen


@pytest.mark.parametrize("seed", range(30))
def test_conflict_steps_order_every_conflicting_pair(seed: int) -> None:
    """When the pairs of conflict_steps are ordered, so is every conflicting pair; longer_paths
    finds exactly the pairs joined by two or more edges."""
    rnd = random.Random(seed)
    n = rnd.randint(1, 14)
    reads = [set(rnd.sample("xyz", rnd.randint(0, 2))) for _ in range(n)]
    writes = [set(rnd.sample("xyz@", rnd.randint(0, 2))) for _ in range(n)]
    steps = set(conflict_steps(reads, writes))
    assert all(conflict(reads[j], writes[j], reads[k], writes[k]) for j, k in steps)
    for k in range(n):
        for j in range(k):
            if conflict(reads[j], writes[j], reads[k], writes[k]):
                assert (j, k) in steps or _reachable(steps, j, k), (j, k)
    edges = {(j, k) for k in range(n) for j in range(k) if rnd.random() < 0.3}
    pairs = {(j, k) for k in range(n) for j in range(k)}
    two_or_more = {(j, k) for j, k in pairs if any((j, m) in edges and _reachable(edges, m, k) for m in range(n))}
    assert longer_paths(n, edges, pairs) == two_or_more
