"""Liveness is sound: in random straight-line programs, every name read after a boundary and
bound before it is live at that boundary (and nothing bound only after it is)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scadc.analysis import analyze

NAMES = ["a", "b", "c", "d", "e"]

# one statement: (kind, target, operands)
statement = st.tuples(st.sampled_from(["assign", "augassign", "del", "print", "if"]),
                      st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES), min_size=0, max_size=3))


def render(program: list[tuple[str, str, list[str]]]) -> tuple[str, list[set[str]], list[set[str]]]:
    """The source, and per statement the names it reads and the names it binds."""
    lines, reads, binds = ["def main():"], [], []
    for kind, target, operands in program:
        expr = " + ".join(operands) or "1"
        if kind == "assign":
            lines.append(f"    {target} = {expr}")
            reads.append(set(operands))
            binds.append({target})
        elif kind == "augassign":
            lines.append(f"    {target} += {expr}")
            reads.append({target, *operands})
            binds.append({target})
        elif kind == "del":
            lines.append(f"    del {target}")
            reads.append({target})
            binds.append(set())
        elif kind == "print":
            lines.append(f"    print({expr})")
            reads.append(set(operands))
            binds.append(set())
        else:
            lines += [f"    if {expr}:", f"        {target} = 0"]
            reads.append(set(operands))
            binds.append({target})
    lines += ["", 'if __name__ == "__main__":', "    main()", ""]
    return "\n".join(lines), reads, binds


@settings(max_examples=60, deadline=None)
@given(st.lists(statement, min_size=1, max_size=8))
def test_liveness_is_sound(tmp_path_factory: object, program: list[tuple[str, str, list[str]]]) -> None:
    source, reads, binds = render(program)
    path = Path(tmp_path_factory.mktemp("live")) / "app.py"  # type: ignore[attr-defined]
    path.write_text(source)
    result = analyze(str(path))
    n = len(program)
    for b in range(n + 1):
        live = result.boundaries[b].names
        bound_before: set[str] = set()  # may be bound just before b (a del unbinds)
        for j in range(b):
            if program[j][0] == "del":
                bound_before.discard(program[j][1])
            else:
                bound_before |= binds[j]
        # a name read at or after b, with no binding (or deletion) in between, and bound before b
        for name in bound_before:
            for j in range(b, n):
                if name in reads[j]:
                    assert name in live, (source, b, name)
                    break
                # an if may not bind: keep looking past it
                if (name in binds[j] or (program[j][0] == "del" and program[j][1] == name)) and program[j][0] != "if":
                    break
        # nothing is live that was never bound before the boundary
        assert live <= bound_before, (source, b, live)
