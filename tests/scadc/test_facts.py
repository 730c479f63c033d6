"""The typed facts that flow from the analysis to the partitioner: their values decide, their text
forms only print (issue 12, items 4-5)."""

from __future__ import annotations

from pathlib import Path

from scadc.analysis import HeavyReason, HeavyRule, HiddenState, StateKind, analyze
from scadc.analysis.hidden_state import IO
from scadc.analysis.shapes import ForLoop, UnitShape

PROGRAM = """\
import numpy as np


def main():
    a = np.zeros(1000000, dtype=b"f4")
    out = []
    for i in range(2, 10, 2):
        out.append(i)
        if i > 4:
            continue
    del out
    print(a.sum())


if __name__ == "__main__":
    main()
"""


def test_heavy_reasons_print_as_before() -> None:
    inner = HeavyReason(HeavyRule.STATIC, "np.zeros(n) = 10 × 8 B = 80 B")
    assert str(HeavyReason(HeavyRule.RETURNED, "load", 7, inner)) == \
        "returned by load() (static: np.zeros(n) = 10 × 8 B = 80 B) (line 7)"
    assert str(HeavyReason(HeavyRule.LOADER, "np.load")) == "loader np.load() (size known at run time)"
    assert str(HeavyReason(HeavyRule.PRAGMA, "memory", 3)) == "pragma: # scad: memory (line 3)"
    assert str(HeavyReason(HeavyRule.DERIVED, "a", 9)) == "derived from heavy a (line 9)"
    assert str(HeavyReason(HeavyRule.NO_RULE)) == "no rule applies"


def test_hidden_state_prints_and_sorts_as_its_text() -> None:
    states = [HiddenState(StateKind.RNG, "random"), HiddenState(StateKind.MODULE, "cache"), IO,
              HiddenState(StateKind.RNG, "numpy.random")]
    assert [str(s) for s in sorted(states)] == ["io", "module:cache", "numpy.random", "random"]


def test_shapes_hold_what_the_partitioner_asks(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PROGRAM)
    analysis = analyze(str(tmp_path / "app.py"))
    shapes = [u.shape for u in analysis.units]
    assert shapes[1] == UnitShape(list_display="out")
    assert shapes[2] == UnitShape(loop=ForLoop("range(2, 10, 2)", 4, "a continue", frozenset({"out"}),
                                               frozenset({"out"})))
    assert shapes[3] == UnitShape(deletes_only=True)
    assert [str(s) for s in shapes] == [
        "-", "binds out to a list display",
        "for over range(2, 10, 2): 4 iterations, control a continue, appended [out], only appended [out]",
        "deletes only", "-"]


def test_a_bytes_dtype_is_sized_like_its_text(tmp_path: Path) -> None:
    """It raised TypeError (bytes.lstrip of a str) before the reasons were typed."""
    (tmp_path / "app.py").write_text(PROGRAM)
    decision = analyze(str(tmp_path / "app.py")).heavy["a"]
    assert decision.heavy and decision.size == 4_000_000 and decision.reason.rule is HeavyRule.STATIC
    assert decision.reason.line == 5
