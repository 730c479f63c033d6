"""The scheduler state machine, driven by hand; its whole state is compared after each step."""

from __future__ import annotations

from pathlib import Path

import pytest

from scadrt.dag import load_program
from scadrt.engines.core import Abort, Failure, Finish, Scheduler, StartMemory, StopMemory, Submit, widest_antichain
from scadrt.errors import InternalError
from tests.programs import write

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "elements"


def test_fanout_state_after_each_step() -> None:
    s = Scheduler(load_program(EXAMPLES / "fanout"), {"n": 6})
    assert s.snapshot() == {
        "waiting": {"collect": ["square"], "square": ["produce"]}, "ready": ["produce"], "running": {},
        "done": {}, "attempts": {}, "memory": {"mem": "pending"}, "users": {"mem": ["collect", "produce", "square"]},
        "failing": None,
    }
    assert s.start() == [StartMemory("mem"), Submit("produce", 0, {"n": 6})]
    assert s.snapshot()["running"] == {"produce": [0]}
    assert s.snapshot()["memory"] == {"mem": "started"}

    produced = {"n": 6}
    assert s.instance_done("produce", 0, produced) == [
        Submit("square", i, {"produce": [produced]}) for i in range(3)
    ]
    assert s.snapshot() == {
        "waiting": {"collect": ["square"]}, "ready": [], "running": {"square": [0, 1, 2]},
        "done": {"produce": [produced]}, "attempts": {}, "memory": {"mem": "started"},
        "users": {"mem": ["collect", "square"]}, "failing": None,
    }
    # instances finish out of order; the results keep instance order
    assert s.instance_done("square", 2, {"i": 2}) == []
    assert s.instance_done("square", 0, {"i": 0}) == []
    assert s.instance_done("square", 1, {"i": 1}) == [
        Submit("collect", 0, {"square": [{"i": 0}, {"i": 1}, {"i": 2}]}),
    ]
    assert s.instance_done("collect", 0, {"total": 1}) == [StopMemory("mem"), Finish({"collect": [{"total": 1}]})]
    assert s.snapshot()["memory"] == {"mem": "released"} and s.snapshot()["users"] == {"mem": []}


MAIN = "def main(params, action):\n    return {}\n"


def test_independent_elements_are_ready_together_in_name_order(tmp_path: Path) -> None:
    write(tmp_path, {
        "b.o.py": "#@ type: compute\n#@ dependents: [d]\n" + MAIN,
        "a.o.py": "#@ type: compute\n#@ dependents: [d]\n" + MAIN,
        "d.o.py": "#@ type: compute\n" + MAIN,
        "m.o.yaml": "type: memory\ncorunning: [d]\n",
        "unused.o.yaml": "type: memory\n",
    })
    s = Scheduler(load_program(tmp_path), {"x": 1})
    assert s.start() == [Submit("a", 0, {"x": 1}), Submit("b", 0, {"x": 1})]
    assert s.snapshot()["memory"] == {"m": "pending", "unused": "released"}
    assert s.instance_done("b", 0, {"b": 1}) == []
    # the memory element starts only when its first user is about to run
    assert s.instance_done("a", 0, {"a": 1}) == [StartMemory("m"), Submit("d", 0, {"a": [{"a": 1}], "b": [{"b": 1}]})]
    assert s.instance_done("d", 0, {}) == [StopMemory("m"), Finish({"d": [{}]})]


def test_memory_is_released_after_its_last_user_not_at_the_end(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.o.py": "#@ type: compute\n#@ dependents: [b]\n#@ corunning: [m]\n" + MAIN,
        "b.o.py": "#@ type: compute\n" + MAIN,
        "m.o.yaml": "type: memory\n",
    })
    s = Scheduler(load_program(tmp_path))
    assert s.start() == [StartMemory("m"), Submit("a", 0, {})]
    assert s.instance_done("a", 0, {}) == [StopMemory("m"), Submit("b", 0, {"a": [{}]})]


def test_retries_resubmit_with_the_same_params_then_abort() -> None:
    s = Scheduler(load_program(EXAMPLES / "failing"), {}, retries=1)
    assert s.start() == [Submit("first", 0, {})]
    assert s.instance_done("first", 0, {"value": 42}) == [Submit("second", 0, {"first": [{"value": 42}]})]
    failure = Failure("second", 0, "ValueError", "expected 0, got 42")
    params = {"first": [{"value": 42}]}
    assert s.instance_failed(failure, params) == [Submit("second", 0, params, attempt=1)]
    assert s.instance_failed(failure, params) == [Abort(failure)]
    assert s.snapshot()["attempts"] == {("second", 0): 2}
    with pytest.raises(InternalError):
        s.instance_done("second", 0, {})


def test_event_for_an_instance_that_is_not_running_is_a_bug() -> None:
    s = Scheduler(load_program(EXAMPLES / "chain"))
    s.start()
    with pytest.raises(InternalError, match="second"):
        s.instance_done("second", 0, {})


def siblings(tmp_path: Path) -> Scheduler:
    """a → (b → b2) and a → c: c comes after b and b2 in program order."""
    write(tmp_path, {
        "a.o.py": "#@ type: compute\n#@ dependents: [b, c]\n" + MAIN,
        "b.o.py": "#@ type: compute\n#@ dependents: [b2]\n" + MAIN,
        "b2.o.py": "#@ type: compute\n" + MAIN,
        "c.o.py": "#@ type: compute\n#@ dependents: [d]\n" + MAIN,
        "d.o.py": "#@ type: compute\n" + MAIN,
    })
    s = Scheduler(load_program(tmp_path))
    assert s.order == ("a", "b", "b2", "c", "d")
    assert s.start() == [Submit("a", 0, {})]
    assert s.instance_done("a", 0, {}) == [Submit("b", 0, {"a": [{}]}), Submit("c", 0, {"a": [{}]})]
    return s


def test_a_failure_waits_for_what_comes_before_it_in_program_order(tmp_path: Path) -> None:
    s = siblings(tmp_path)
    failure = Failure("c", 0, "ValueError", "late sibling")
    assert s.instance_failed(failure, {}) == []  # b, and b2 after it, would have run first
    assert s.snapshot()["failing"] == "c[0]: ValueError: late sibling"
    assert s.instance_done("b", 0, {}) == [Submit("b2", 0, {"b": [{}]})]
    assert s.still_needed("b2", 0) and not s.still_needed("d", 0)
    assert s.instance_done("b2", 0, {}) == [Abort(failure)]


def test_the_earliest_failure_in_program_order_is_the_one_reported(tmp_path: Path) -> None:
    s = siblings(tmp_path)
    assert s.instance_failed(Failure("c", 0, "ValueError", "late"), {}) == []
    early = Failure("b", 0, "KeyError", "early")
    assert s.instance_failed(early, {}) == [Abort(early)]  # b2 depends on b: nothing else before c runs


def diamond(tmp_path: Path) -> Scheduler:
    """a → (b ×3, c) → d, and e alone: at most 3 + 1 + 1 instances can run at once."""
    write(tmp_path, {
        "a.o.py": "#@ type: compute\n#@ dependents: [b, c]\n" + MAIN,
        "b.o.py": "#@ type: compute\n#@ parallelism: 3\n#@ dependents: [d]\n" + MAIN,
        "c.o.py": "#@ type: compute\n#@ dependents: [d]\n" + MAIN,
        "d.o.py": "#@ type: compute\n" + MAIN,
        "e.o.py": "#@ type: compute\n" + MAIN,
    })
    return Scheduler(load_program(tmp_path))


def test_widest_antichain_counts_instances_that_can_run_at_once(tmp_path: Path) -> None:
    s = diamond(tmp_path)
    ones = dict.fromkeys(s.order, 1)
    assert widest_antichain(s.program, ones) == 3  # {b, c, e}
    assert widest_antichain(s.program, {**ones, "b": 3}) == 5
    assert widest_antichain(s.program, {"a": 2, "d": 4}) == 4  # a and d are a chain: never at once
    assert widest_antichain(s.program, {**ones, "a": 9}) == 10  # a with e
    assert widest_antichain(load_program(EXAMPLES / "chain"), dict.fromkeys(["first", "second", "third"], 1)) == 1
    assert widest_antichain(s.program, {}) == 0


def test_workers_wanted_follow_what_can_still_run(tmp_path: Path) -> None:
    s = diamond(tmp_path)
    assert s.remaining_width() == 5
    assert s.start() == [Submit("a", 0, {}), Submit("e", 0, {})]
    # a and e run; b's three instances and c become ready when a finishes: warm workers for them,
    # but a never runs with b or c, so 5 (e, b ×3, c) at most
    assert s.wanted_workers(cap=8) == 5 and s.wanted_workers(cap=3) == 3
    s.instance_done("e", 0, {})
    assert s.remaining_width() == 4 and s.wanted_workers(cap=8) == 4
    s.instance_done("a", 0, {})
    s.instance_done("b", 1, {})
    assert s.remaining_width() == 3 and s.wanted_workers(cap=8) == 3  # b[0], b[2], c; d comes after them
    for i in (0, 2):
        s.instance_done("b", i, {})
    s.instance_done("c", 0, {})
    assert s.wanted_workers(cap=8) == 1
    s.instance_done("d", 0, {})
    assert s.remaining_width() == 0 and s.wanted_workers(cap=8) == 0  # the pool can go


def test_a_chain_wants_one_worker_and_nothing_after_a_failure(tmp_path: Path) -> None:
    s = Scheduler(load_program(EXAMPLES / "chain"))
    s.start()
    assert s.wanted_workers(cap=8) == 1  # first runs, second comes after it: one worker does both
    s = siblings(tmp_path)
    assert s.instance_failed(Failure("c", 0, "ValueError", "late"), {}) == []
    assert s.wanted_workers(cap=8) == 1  # b runs, b2 may still run; d never will


def test_widest_antichain_is_the_brute_force_answer_on_random_dags(tmp_path: Path) -> None:
    """The flow network passes flow through elements (done ones, weight 0, included) instead of
    linking every pair of comparable elements; checked against every subset on random DAGs."""
    import itertools
    import random

    rng = random.Random(7)
    for case in range(25):
        n = rng.randint(1, 7)
        parents = {i: sorted(rng.sample(range(i), rng.randint(0, min(i, 2)))) for i in range(n)}
        children = {i: [j for j in range(n) if i in parents[j]] for i in range(n)}
        folder = tmp_path / str(case)
        folder.mkdir()
        for i in range(n):
            header = "#@ type: compute\n"
            header += f"#@ parents: [{', '.join(f'e{p}' for p in parents[i])}]\n" if parents[i] else ""
            header += f"#@ dependents: [{', '.join(f'e{c}' for c in children[i])}]\n" if children[i] else ""
            (folder / f"e{i}.o.py").write_text(header + MAIN)
        weights = {f"e{i}": rng.choice([0, 0, 1, 2, 3]) for i in range(n)}
        below: dict[int, set[int]] = {}
        for i in range(n):  # ancestors, in index order (parents have smaller indices)
            below[i] = set(parents[i]).union(*(below[p] for p in parents[i]))
        best = max(sum(weights[f"e{i}"] for i in subset)
                   for k in range(n + 1) for subset in itertools.combinations(range(n), k)
                   if not any(a in below[b] or b in below[a] for a, b in itertools.combinations(subset, 2)))
        assert widest_antichain(load_program(folder), weights) == best, (parents, weights)
