"""An element header's YAML, read into a mapping and the line of every key (rule 2 and 9 of :mod:`scadrt.dag`).

Headers as ``scadc split`` writes them, and as people write them by hand (``type: compute``,
``parents: [a, b]``, ``limits: {cpu: 1, mem: 256 MiB}``, nested ``corunning`` mappings), are
*plain*: block mappings of keys, flow lists and flow mappings of words and small integers.
:func:`plain_header` reads those itself; anything else (quotes, floats, booleans, anchors,
comments after a value, block lists, a duplicate key, anything it is unsure of) is read by
PyYAML's SafeLoader within rule 9. Both give the same result wherever the first gives one
(``tests/scadrt/test_header.py`` checks that on generated headers): the first only exists
because importing PyYAML takes ~10 ms, a tenth of the start of ``scadc run`` of a one-element
program that runs inside it.

Resolution is where the two could part: YAML 1.1 reads ``yes``, ``off``, ``null``, ``~``,
``012`` (octal), ``1_000``, ``1.5``, ``.inf``, ``1:20`` (base 60) and ``2001-12-14`` as other
types than strings. The plain reader takes a word for a string only if it starts with a letter
or ``_`` (no implicit type but bool and null starts so; those words are left to PyYAML) or is
a number followed by a unit (``256 MiB``: no implicit type has a space after digits and a dot),
and an integer only in the form ``0`` or ``[1-9][0-9]*`` of at most 18 digits.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from scadrt.errors import Problem, shorten

if TYPE_CHECKING:
    import yaml

__all__ = ["parse_header", "plain_header"]

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 64

#: a path of keys (and list indexes) → its line (0-based in the YAML from plain_header, the file's from parse_header)
Lines = dict[tuple[Any, ...], int]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INT = re.compile(r"0|[1-9][0-9]{0,17}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*(?: [A-Za-z0-9_./-]+)*")
_QUANTITY = re.compile(r"[0-9]+(?:\.[0-9]+)? [A-Za-z]+")
#: what YAML 1.1 resolves to a bool or null among the words that start with a letter (any case: safe side)
_NOT_STRINGS = frozenset({"yes", "no", "true", "false", "on", "off", "null"})
_LINE = re.compile(r"( *)([^ :]+):(?: (.*))?")
#: nesting the plain reader takes (far below MAX_DEPTH: PyYAML judges deeper headers)
_PLAIN_DEPTH = 8


class _NotPlain(Exception):
    """The header is outside the plain subset: PyYAML reads it."""


def plain_header(lines: Sequence[str]) -> tuple[dict[str, Any], Lines] | None:
    """The header of YAML ``lines`` and the 0-based line of every key path, if it is plain; else None."""
    try:
        rows = [(i, line) for i, line in enumerate(lines) if not _skipped(line)]
        if not rows:
            raise _NotPlain
        where: Lines = {}
        data, end = _block(rows, 0, 0, (), where)
        if end != len(rows):
            raise _NotPlain
        return data, where
    except _NotPlain:
        return None


def _skipped(line: str) -> bool:
    """A blank or comment line (YAML ignores both); a character YAML's reader refuses is not plain."""
    if not line.isprintable():  # what Python prints YAML accepts; the converse need not hold
        raise _NotPlain
    stripped = line.lstrip(" ")
    return not stripped or stripped.startswith("#")


def _block(rows: list[tuple[int, str]], at: int, indent: int, path: tuple[Any, ...],
           where: Lines) -> tuple[dict[str, Any], int]:
    """The block mapping whose keys start at column ``indent``, from ``rows[at]``; and the row after it."""
    mapping: dict[str, Any] = {}
    while at < len(rows):
        number, line = rows[at]
        match = _LINE.fullmatch(line.rstrip(" "))
        if match is None:
            raise _NotPlain
        spaces, key, value = len(match[1]), match[2], match[3]
        if spaces < indent:
            break
        if spaces > indent or key in mapping:
            raise _NotPlain
        key = _key(key)
        where[(*path, key)] = number
        at += 1
        if value:
            mapping[key] = _value(value, number, (*path, key), where)
            continue
        # a key alone on its line opens a mapping indented further (a null otherwise: left to PyYAML)
        child = _LINE.fullmatch(rows[at][1].rstrip(" ")) if at < len(rows) else None
        if child is None or len(child[1]) <= indent or len(path) >= _PLAIN_DEPTH:
            raise _NotPlain
        mapping[key], at = _block(rows, at, len(child[1]), (*path, key), where)
    return mapping, at


def _key(text: str) -> str:
    if not _KEY.fullmatch(text) or text.lower() in _NOT_STRINGS:
        raise _NotPlain
    return text


def _value(text: str, number: int, path: tuple[Any, ...], where: Lines) -> Any:
    if text.startswith("["):
        if not text.endswith("]"):
            raise _NotPlain
        items = [_scalar(item) for item in _items(text[1:-1])]
        where.update({(*path, index): number for index in range(len(items))})
        return items
    if text.startswith("{"):
        if not text.endswith("}"):
            raise _NotPlain
        pairs: dict[str, Any] = {}
        for item in _items(text[1:-1]):
            key, colon, value = item.partition(": ")
            key = _key(key.strip(" "))
            if not colon or key in pairs:
                raise _NotPlain
            pairs[key] = _scalar(value)
            where[(*path, key)] = number
        return pairs
    return _scalar(text)


def _items(inside: str) -> list[str]:
    if not inside.strip(" "):
        return []
    return inside.split(",")


def _scalar(text: str) -> str | int:
    word = text.strip(" ")
    if _INT.fullmatch(word):
        return int(word)
    if _QUANTITY.fullmatch(word) or (_WORD.fullmatch(word) and word.lower() not in _NOT_STRINGS):
        return word
    raise _NotPlain


# ----------------------------------------------------------------------------- the rest: PyYAML


def parse_header(shown: str, header: list[tuple[int, str]],
                 problems: list[Problem]) -> tuple[dict[str, Any] | None, Lines]:
    """Parse header YAML (``(file line, text)`` pairs); return the mapping and the file line of every
    key path, or ``(None, {})`` after appending the problem to ``problems``."""

    def file_line(yaml_line: int) -> int:  # 0-based YAML line → 1-based file line
        return header[min(yaml_line, len(header) - 1)][0]

    plain = plain_header([line for _, line in header])
    if plain is not None:
        data, where = plain
        return data, {(): header[0][0], **{path: file_line(line) for path, line in where.items()}}
    return _parse_yaml(shown, header, problems, file_line)


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader within rule 9: no aliases, bounded nesting and numbers, no value a scalar
        constructor chokes on (``2001-02-30``); each refusal carries its mark, hence its line."""

        def __init__(self, text: str) -> None:
            super().__init__(text)
            self._depth = 0

        def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
            # types-PyYAML leaves Parser.peek_event unannotated (and untyped_calls_exclude misses inherited methods)
            event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
            if isinstance(event, yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, (
                    f"aliases ('*{(event.anchor or '')[:40]}') are not allowed in element headers; "
                    "write the value out"
                ), _mark(event.start_mark))
            if self._depth >= MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, (
                    f"nested more than {MAX_DEPTH} levels deep"
                ), _mark(event.start_mark))
            self._depth += 1
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            if (isinstance(node, yaml.ScalarNode)
                    and node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
                    and len(node.value) > MAX_NUMBER_CHARS):
                raise yaml.composer.ComposerError(None, None, (
                    f"a number of {len(node.value)} characters; numbers have at most {MAX_NUMBER_CHARS}"
                ), node.start_mark)
            return node

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, OverflowError) as exc:
                raise yaml.constructor.ConstructorError(None, None, (
                    f"cannot read {shorten(getattr(node, 'value', None), 40)} as "
                    f"{node.tag.rpartition(':')[2]}: {exc}"
                ), node.start_mark) from exc

    return Loader


def _mark(mark: object) -> yaml.error.Mark | None:
    """An event's mark, as the pure-Python loader makes it (the stubs also allow libyaml's)."""
    import yaml

    return mark if isinstance(mark, yaml.error.Mark) else None


def _parse_yaml(shown: str, header: list[tuple[int, str]], problems: list[Problem],
                file_line: Callable[[int], int]) -> tuple[dict[str, Any] | None, Lines]:
    import yaml

    text = "\n".join(line for _, line in header)
    try:
        # The reader rejects control characters in the constructor already, so it is inside the try.
        loader = _loader()(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:
        line = file_line(text.count("\n", 0, exc.position))
        problems.append(Problem(shown, line, f"YAML error: {exc.reason} (character U+{exc.character:04X})"))
        return None, {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        if len(reason) > 160:  # PyYAML quotes tags and values in its messages
            reason = f"{reason[:159]}…"
        problems.append(Problem(shown, file_line(mark.line) if mark else header[0][0], f"YAML error: {reason}"))
        return None, {}
    if node is None or not isinstance(data, dict):  # no node: an empty header, hence no data
        problems.append(Problem(shown, header[0][0], "the header must be a YAML mapping such as 'type: compute'"))
        return None, {}
    lines: Lines = {(): header[0][0]}

    def walk(path: tuple[Any, ...], n: yaml.Node) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in n.value:
                key = key_node.value
                if key in seen:
                    problems.append(Problem(shown, file_line(key_node.start_mark.line),
                                            f"duplicate key {shorten(key)}"))
                seen.add(key)
                lines[(*path, key)] = file_line(key_node.start_mark.line)
                walk((*path, key), value_node)
        elif isinstance(n, yaml.SequenceNode):
            for index, item in enumerate(n.value):
                lines[(*path, index)] = file_line(item.start_mark.line)
                walk((*path, index), item)

    walk((), node)
    return data, lines
