"""The plain header reader (scadrt.header.plain_header) against PyYAML: wherever it gives an answer,
it is PyYAML's, to the type of every value and the line of every key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from scadrt.errors import Problem
from scadrt.header import _parse_yaml, parse_header, plain_header

ROOT = Path(__file__).resolve().parents[2]


def _typed(value: Any) -> Any:
    """``value`` with the type of every leaf beside it: 1, True and '1' must not compare equal."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def _by_yaml(lines: list[str]) -> tuple[Any, dict[tuple[Any, ...], int], list[Problem]]:
    header = [(i + 1, line) for i, line in enumerate(lines)]
    problems: list[Problem] = []
    data, where = _parse_yaml("h", header, problems, lambda n: header[min(n, len(header) - 1)][0])
    return data, where, problems


def _agrees(lines: list[str]) -> bool:
    """Whether the plain reader took ``lines``; if it did, it must agree with PyYAML."""
    plain = plain_header(lines)
    if plain is None:
        return False
    problems: list[Problem] = []
    data, where = parse_header("h", [(i + 1, line) for i, line in enumerate(lines)], problems)
    by_yaml, yaml_where, yaml_problems = _by_yaml(lines)
    assert (problems, yaml_problems) == ([], []), lines
    assert _typed(data) == _typed(by_yaml), lines
    assert where == yaml_where, lines
    return True


# What scadc and people write, and words near the edges of YAML 1.1's implicit types (most of which
# the plain reader must refuse); drawn so that about half the headers are plain, or the edges go untested
_PLAIN_WORDS = ["compute", "memory", "rdma", "mem_web", "256 MiB", "128 MB", "0", "7", "12", "a b", "a/b", "e.g"]
_EDGE_WORDS = ["compute", "memory", "rdma", "mem_web", "256 MiB", "1.5 GiB", "128 MB", "0", "7", "12", "012", "1_000",
          "1.5", ".inf", ".NaN", "~", "null", "Null", "yes", "No", "ON", "off", "y", "n", "2001-12-14",
          "2001-12-14 21:59:43.10 -5", "1:20", "0x1f", "0o17", "0b11", "-1", "+1", "1e3", "a b", "a  b", "a#b",
          "a #b", "'q'", '"q"', "*x", "&x y", "!!str z", "a: b", "a:b", "", " ", "a/b", "a-", "-a", "e.g",
          "999999999999999999", "9999999999999999999", "<<", "=", "a,b", "[a]", "{a: b}", "é", "a\tb", "\x07"]
_PLAIN_KEYS = ["type", "parents", "limits", "cpu", "mem", "x.y", "k-1", "_k", *"abcdefghijklmnop"]
_EDGE_KEYS = ["yes", "Off", "null", "1st", "0", "?", "<<", "- a", "a b", "'a'"]
# one edge in ten: a header of a few lines is then plain about half the time
_WORD = st.sampled_from(_PLAIN_WORDS * (9 * len(_EDGE_WORDS) // len(_PLAIN_WORDS)) + _EDGE_WORDS)
_KEY = st.sampled_from(_PLAIN_KEYS * (9 * len(_EDGE_KEYS) // len(_PLAIN_KEYS)) + _EDGE_KEYS)
_SEP = st.sampled_from([",", ", ", " , ", ",  "])


@st.composite
def _value(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["scalar", "list", "map"] * 3 + ["empty"]))
    if kind == "scalar":
        return draw(_WORD)
    if kind == "empty":
        return ""
    sep = draw(_SEP)
    if kind == "list":
        return "[" + sep.join(draw(st.lists(_WORD, max_size=4))) + "]"
    pairs = draw(st.lists(st.tuples(_KEY, _WORD), max_size=3))
    return "{" + sep.join(f"{k}: {v}" for k, v in pairs) + "}"


@st.composite
def _line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["entry"] * 12 + ["comment", "blank", "odd"]))
    if kind == "comment":
        return draw(st.sampled_from(["# a note", "  # indented", "#", "# × non-ASCII", "#\x07"]))
    if kind == "blank":
        return draw(st.sampled_from(["", "  "]))
    if kind == "odd":
        return draw(st.sampled_from(["---", "- a", "%YAML 1.1", "a", "  a", "\ta: b", "a: b # c", "a:  b", "a: b  "]))
    indent = " " * draw(st.sampled_from([0] * 12 + [2, 2, 4, 1, 3]))
    value = draw(_value())
    return f"{indent}{draw(_KEY)}:{' ' + value if value else ''}"


@settings(max_examples=400, deadline=None)
@given(st.lists(_line(), min_size=1, max_size=6))
def test_the_plain_reader_agrees_with_yaml_wherever_it_answers(lines: list[str]) -> None:
    event("plain" if _agrees(lines) else "left to PyYAML")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["type", "parents", "limits", "mem", "a"]),
                          st.sampled_from(["compute", "[a, b]", "{cpu: 1, mem: 256 MiB}", "7", "[]", "{}"])),
                min_size=1, max_size=5, unique_by=lambda kv: kv[0]))
def test_plain_headers_are_read_without_yaml(entries: list[tuple[str, str]]) -> None:
    # the form scadc writes: the plain reader must take it (else the 10 ms are paid) and agree
    assert _agrees([f"{key}: {value}" for key, value in entries])


_CONTEXTS = ["a: {}", "a: [{}]", "a: [b, {}]", "a: {{b: {}}}", "{}: a", "a: {{{}: b}}", "a:\n  {}: b", "a:\n  b: {}"]


@pytest.mark.parametrize("context", _CONTEXTS)
def test_every_word_in_every_place_is_read_as_yaml_reads_it_or_left_to_it(context: str) -> None:
    taken = [word for word in [*_PLAIN_WORDS, *_EDGE_WORDS, *_PLAIN_KEYS, *_EDGE_KEYS]
             if _agrees(context.format(word).split("\n"))]
    assert set(_PLAIN_KEYS if context.startswith("{}") or "{}:" in context else _PLAIN_WORDS) <= set(taken)


@pytest.mark.parametrize("lines", [
    ["a: yes"], ["a: Off"], ["a: null"], ["a: ~"], ["a: 012"], ["a: 1_000"], ["a: 1.5"], ["a: .inf"], ["a: 1:20"],
    ["a: 2001-12-14"], ["a: 0x1f"], ["a: -1"], ["a:"], ["a: b # c"], ["a: [b, ]"], ["a: 'b'"], ["a: *b"],
    ["a: b", "a: c"], ["a: {b: 1, b: 2}"], ["yes: a"], ["a:", "  b: 1", " c: 2"], ["  a: 1"], ["a: [b, [c]]"],
    ["a: 1e3"], ["a: 9999999999999999999"], ["a:\tb"], ["a: b", "  c"],
], ids=repr)
def test_the_plain_reader_leaves_what_yaml_reads_otherwise_to_yaml(lines: list[str]) -> None:
    assert plain_header(lines) is None


def test_nested_mappings_and_comments_keep_their_lines() -> None:
    lines = ["# made by hand", "type: compute", "corunning:", "  mem:", "    trans: mem", "", "    type: rdma",
             "limits: {cpu: 1, mem: 64 MB}", "parents: [first, second]"]
    assert _agrees(lines)
    data, where = parse_header("h", [(10 + i, line) for i, line in enumerate(lines)], [])
    assert data == {"type": "compute", "corunning": {"mem": {"trans": "mem", "type": "rdma"}},
                    "limits": {"cpu": 1, "mem": "64 MB"}, "parents": ["first", "second"]}
    assert where[("corunning", "mem", "type")] == 16 and where[("parents", 1)] == 18 and where[()] == 10


def test_every_header_in_the_repository_is_plain() -> None:
    # examples/elements are hand-written, golden/ is what scadc split writes
    files = [*ROOT.glob("examples/elements/*/*.o.*"), *ROOT.glob("golden/**/*.o.*")]
    assert len(files) > 20
    for path in files:
        text = path.read_text()
        lines = ([line[3:] for line in text.splitlines() if line.startswith("#@ ")] if path.suffix == ".py"
                 else text.splitlines())
        assert _agrees(lines), path
