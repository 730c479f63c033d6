"""Random programs over objects whose methods change them: split with ``--policy every``, the default
``resource`` policy and ``--profile``, run over shm (tcp for some), they print exactly what
``python app.py`` prints (issue 11, item 4).

The statements work on pandas DataFrames and Series (edited in place: ``inplace=True``, column
assignment, ``.loc[mask, c] =``, ``insert``, ``pop``, ``update``; through helpers that change the
frame they are given; and read without changing them: ``sum``, ``sort_values``, ``groupby``), on
``np.random.Generator``/``RandomState``/``random.Random`` objects drawn from directly, in helpers,
in loops and through an object that keeps the generator; on small program classes (methods that
change ``self``, call each other, change an argument, or only read); on dict/list/set/bytearray/
deque/Counter methods (changing and not); on numpy views (slices, ``reshape``, ``.T``) changed
through the view; and on shallow copies of lists of lists, dicts of lists and object arrays
(``list(a)``, ``a.copy()``, ``copy.copy``, comprehensions, ``sorted``, ``a + b``, items picked by
``next``/``max``/unpacking or a helper), changed through an item of the copy (alias rule A10).
Frames and arrays are ≥ 1 MiB, and some examples split with a small ``--heavy-bytes``, so memory
elements and cuts happen.

A program is drawn as a list of statement *specs* (a kind, two picks, a constant), interpreted
against the names bound so far: a kind whose operand type has no value yet binds one first, so
every spec yields code and hypothesis shrinks a failure by dropping specs. The failure message
holds the whole program, the commands that reproduce it, and expected vs got.

``make test`` runs a handful of examples; ``make fuzz`` (``SCAD_FUZZ`` set) runs up to
``SCAD_FUZZ`` examples (at most :data:`MAX_FUZZ_EXAMPLES`) within ``SCAD_FUZZ_SECONDS`` (default
:data:`FUZZ_SECONDS`) of generation, then shrinks what failed.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadrt.report import RunFailed
from scadrt.sizes import parse_size
from tests.scadc.test_split_fuzz import split_and_run

pytestmark = pytest.mark.usefixtures("no_leftovers")

QUICK_EXAMPLES = 3
MAX_FUZZ_EXAMPLES = 1000
FUZZ_SECONDS = 1200.0
N = 131_072  # rows of a frame, items of an array: a float64 column is 1 MiB

#: the names each type's values are bound to (two each, so ``x2 = x`` has a second name)
POOLS = {
    "df": ("df", "df2"), "ser": ("s", "s2"), "arr": ("a", "b"), "view": ("v", "w"), "gen": ("g", "g2"),
    "pyr": ("r", "r2"), "acc": ("acc", "acc2"), "win": ("win", "win2"), "stats": ("st", "st2"),
    "smp": ("smp", "smp2"), "dict": ("d", "d2"), "list": ("l", "l2"), "set": ("u", "u2"),
    "ba": ("ba", "ba2"), "dq": ("dq", "dq2"), "ctr": ("cnt", "cnt2"),
    "nest": ("nl", "nl2"), "dnest": ("dl", "dl2"), "oarr": ("oa", "oa2"),
}
#: column names a frame may get by rename/insert/assignment
COLUMNS = ("x", "y", "z", "p", "q", "w")

#: how a value of each type is printed: deterministic (rounded floats, sorted keys), and reading
#: enough of it that a stale copy prints differently (a generator is printed by drawing from it)
PRINT = {
    "df": "print('{y}', {y}.shape, list({y}.columns), {y}.index[:3].tolist(), "
          "round(float(np.nansum({y}.to_numpy())), 3))",
    "ser": "print('{y}', len({y}), {y}.index[:3].tolist(), round(float({y}.sum()), 3))",
    "arr": "print('{y}', {y}.shape, round(float({y}.sum()), 3), float({y}.ravel()[-1]))",
    "view": "print('{y}', {y}.shape, round(float({y}.sum()), 3), float({y}.ravel()[-1]))",
    "gen": "print('{y}', round(float({y}.random()), 9))",
    "pyr": "print('{y}', round({y}.random(), 9))",
    "acc": "print('{y}', {y}.summary())",
    "win": "print('{y}', {y}.mean())",
    "stats": "print('{y}', {y}.total(), {y}.top())",
    "smp": "print('{y}', {y}.count())",
    "dict": "print('{y}', len({y}), sorted({y}.items())[:3], sum({y}.values()))",
    "list": "print('{y}', len({y}), {y}[:3], {y}[-2:], sum({y}))",
    "set": "print('{y}', len({y}), sorted({y})[:5])",
    "ba": "print('{y}', len({y}), {y}[:4].hex(), {y}[-4:].hex())",
    "dq": "print('{y}', list({y}))",
    "ctr": "print('{y}', sorted({y}.items()))",
    "nest": "print('{y}', {y})",
    "dnest": "print('{y}', sorted({y}.items()))",
    "oarr": "print('{y}', [list(v) for v in {y}])",
}

#: module-level definitions a statement may use, included only when the program names them
HELPERS = {
    "noise": "def noise(gen, n):\n    return gen.standard_normal(n)\n",
    "jitter": "def jitter(values, gen):\n    values += gen.standard_normal(values.shape)\n",
    "pick": "def pick(r, n):\n    return [r.random() for _ in range(n)]\n",
    "scale": "def scale(values, k):\n    values *= k\n",
    "add_col": "def add_col(frame, name, k):\n    frame[name] = frame[frame.columns[0]] * k\n",
    "clean": "def clean(frame):\n    frame.fillna(0, inplace=True)\n    frame.reset_index(drop=True, inplace=True)\n",
    "sort_frame": "def sort_frame(frame):\n    frame.sort_values(frame.columns[-1], ascending=False, inplace=True)\n",
    "tally": "def tally(table, key):\n    table[key] = table.get(key, 0) + 1\n",
    "first": "def first(xs):\n    return xs[0]\n",
    "shallow": "def shallow(xs):\n    ys = list(xs)\n    return ys\n",
    "Acc": '''class Acc:
    def __init__(self):
        self.items = []
        self.total = 0.0

    def add(self, v):
        self.items.append(v)
        self.total += v

    def add_many(self, values):
        for v in values:
            self.add(v)

    def merge(self, other):
        self.add_many(other.items)

    def drain_into(self, out):
        out.extend(self.items)

    def snapshot(self):
        return list(self.items)

    def summary(self):
        return len(self.items), round(self.total, 6), self.items[-3:]
''',
    "Window": '''class Window:
    def __init__(self, n):
        self.data = np.zeros(n)

    def push(self, k):
        self.data[k] += k

    def shift(self):
        self.data = np.roll(self.data, 1)

    def stamp(self, values):
        values.flat[0] = self.data[:8].sum() + 1

    def mean(self):
        return round(float(self.data.mean()), 9)
''',
    "Stats": '''class Stats:
    def __init__(self, values):
        self.values = values

    def rescale(self, k):
        self.values *= k

    def total(self):
        return round(float(self.values.sum()), 3)

    def top(self):
        return float(self.values.max())
''',
    "Sampler": '''class Sampler:
    def __init__(self, gen):
        self.gen = gen
        self.n = 0

    def sample(self, k):
        self.n += 1
        return self.gen.random(k)

    def count(self):
        return self.n
''',
}
#: a module is imported when the program names it (``np.random.`` is not ``random.``)
IMPORTS = ((r"\bcollections\.", "import collections"), (r"(?<![\w.])copy\.copy\(", "import copy"),
           (r"(?<![\w.])random\.", "import random"), (r"\bnp\.", "import numpy as np"),
           (r"\bpd\.", "import pandas as pd"))


@dataclass(frozen=True)
class Obj:
    """What the generator knows of a value: its type, a frame's columns, whether an array is 1-D of N."""

    type: str
    cols: tuple[str, ...] = ()
    full: bool = False


#: (columns of the operand frame, pick, pick) -> (extra template fields, the operand's columns
#: afterwards, the bound frame's columns) or None when the kind does not apply to these columns
Columns = Callable[[tuple[str, ...], int, int], tuple[dict[str, str], tuple[str, ...], tuple[str, ...]] | None]


def _free(cols: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(c for c in COLUMNS if c not in cols)


def col_any(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    return {"c": cols[p % len(cols)]}, cols, cols


def col_two(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    return {"c": cols[p % len(cols)], "c2": cols[q % len(cols)]}, cols, cols


def col_rename(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]] | None:
    free = _free(cols)
    if not free:
        return None
    c, new = cols[p % len(cols)], free[q % len(free)]
    after = tuple(new if x == c else x for x in cols)
    return {"c": c, "new": new}, after, after


def col_drop(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]] | None:
    if len(cols) < 2:
        return None
    c = cols[p % len(cols)]
    rest = tuple(x for x in cols if x != c)
    return {"c": c}, rest, rest


def col_keep_drop(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...],
                                                                    tuple[str, ...]] | None:
    """``groupby(c)``: the operand keeps its columns, the result has all but ``c``."""
    dropped = col_drop(cols, p, q)
    return None if dropped is None else (dropped[0], cols, dropped[1])


def col_set(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """``df[c2] = df[c] * k``: ``c2`` an existing or a new column."""
    targets = cols + _free(cols)
    c, c2 = cols[p % len(cols)], targets[q % len(targets)]
    after = cols if c2 in cols else (*cols, c2)
    return {"c": c, "c2": c2}, after, after


def col_insert(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]] | None:
    free = _free(cols)
    if not free:
        return None
    c, new = cols[p % len(cols)], free[q % len(free)]
    return {"c": c, "new": new}, (new, *cols), (new, *cols)


def col_loop(cols: tuple[str, ...], p: int, q: int) -> tuple[dict[str, str], tuple[str, ...], tuple[str, ...]]:
    """``for i in range(n): df["c" + str(i)] = ...``: adds c0 … c(n-1) (n = q % 3 + 2)."""
    added = tuple(f"c{i}" for i in range(q % 3 + 2) if f"c{i}" not in cols)
    return {"c": cols[p % len(cols)], "n": str(q % 3 + 2)}, cols + added, cols + added


@dataclass(frozen=True)
class Kind:
    """A kind of statement: ``{y}``/``{z}`` are operands of the given types (``a|b`` for either),
    ``{x}`` a name the statement binds to a new value of type ``binds``, ``{k}`` a constant 1-9."""

    name: str
    template: str
    operands: tuple[str, ...] = ()
    binds: str | None = None
    columns: Columns | None = None
    #: for ``binds == "arr"``: the new array is 1-D of N items (``reshape(-1, 64)`` views it)
    full: bool = False
    #: an alias (``{x}`` gets the operand's object) rather than a new value
    alias: bool = False


ANY = "|".join(POOLS)
K = Kind
KINDS: tuple[Kind, ...] = (
    K("print", "", (ANY,)),
    # -- bindings: the first one of each type is also how a missing operand is made
    K("df_new", '{x} = pd.DataFrame({{"x": np.arange(N) * {k}.0, "y": np.arange(N) % {m} * 1.0, '
                '"z": np.where(np.arange(N) % 7 == 0, np.nan, 0.5)}})', binds="df"),
    K("ser_new", "{x} = pd.Series(np.arange(N) * {k}.0)", binds="ser"),
    K("arr_new", "{x} = np.arange(N) * {k}.0", binds="arr", full=True),
    K("view_new", "", ("arr",), binds="view"),  # template chosen by view_template()
    K("gen_new", "{x} = np.random.default_rng({k})", binds="gen"),
    K("pyr_new", "{x} = random.Random({k})", binds="pyr"),
    K("acc_new", "{x} = Acc()", binds="acc"),
    K("win_new", "{x} = Window(N)", binds="win"),
    K("stats_new", "{x} = Stats({y})", ("arr|view",), binds="stats"),
    K("smp_new", "{x} = Sampler({y})", ("gen",), binds="smp"),
    K("dict_new", '{x} = {{"k1": 1, "k{k}": {k}}}', binds="dict"),
    K("list_new", "{x} = [{k}, 3, 1]", binds="list"),
    K("set_new", "{x} = {{1, 2, {k}}}", binds="set"),
    K("ba_new", '{x} = bytearray(b"ab" * {k})', binds="ba"),
    K("dq_new", "{x} = collections.deque(range({k}), maxlen=6)", binds="dq"),
    K("ctr_new", '{x} = collections.Counter("abracadabra"[:{k}])', binds="ctr"),
    K("rs_new", "{x} = np.random.RandomState({k})", binds="gen"),
    K("dict_big", '{x} = {{"k" + str(i): i % {m} for i in range(N)}}', binds="dict"),
    K("list_big", "{x} = [i % {m} for i in range(N)]", binds="list"),
    K("set_big", "{x} = {{i * {k} for i in range(N)}}", binds="set"),
    K("ba_big", "{x} = bytearray(N * 8)", binds="ba"),
    K("alias", "{x} = {y}", (ANY,), alias=True),
    K("del", "del {y}", (ANY,)),
    # -- frames and series, changed in place
    K("df_sort_inplace", '{y}.sort_values("{c}", inplace=True)', ("df",), columns=col_any),
    K("df_rename_inplace", '{y}.rename(columns={{"{c}": "{new}"}}, inplace=True)', ("df",), columns=col_rename),
    K("df_fillna_inplace", "{y}.fillna({k}, inplace=True)", ("df",)),
    K("df_drop_inplace", '{y}.drop(columns=["{c}"], inplace=True)', ("df",), columns=col_drop),
    K("df_reset_inplace", "{y}.reset_index(drop=True, inplace=True)", ("df",)),
    K("df_setcol", '{y}["{c2}"] = {y}["{c}"] * {k}', ("df",), columns=col_set),
    K("df_loc", '{y}.loc[{y}["{c}"] > {k}, "{c2}"] = -{k}.5', ("df",), columns=col_two),
    K("df_insert", '{y}.insert(0, "{new}", {y}["{c}"] + {k})', ("df",), columns=col_insert),
    K("df_pop", '{x} = {y}.pop("{c}")', ("df",), binds="ser", columns=col_drop),
    K("df_loop_cols", 'for i in range({n}):\n    {y}["c" + str(i)] = {y}["{c}"] * i', ("df",), columns=col_loop),
    K("df_add_col", 'add_col({y}, "{c2}", {k})', ("df",), columns=col_set),
    K("df_clean", "clean({y})", ("df",)),
    K("df_sort_helper", "sort_frame({y})", ("df",)),
    K("df_noise_col", '{y}["{c2}"] = noise({z}, len({y}))', ("df", "gen"), columns=col_set),
    K("ser_update", "{y}.update(pd.Series([{k}.5, -{k}.0], index=[0, {k}]))", ("ser",)),
    K("ser_iloc", "{y}.iloc[-1] = -{k}.0", ("ser",)),
    K("ser_loc", "{y}.loc[{y} > {k}] = {k}.0", ("ser",)),
    K("ser_sort_inplace", "{y}.sort_values(inplace=True)", ("ser",)),
    K("ser_fillna_inplace", "{y}.fillna(0, inplace=True)", ("ser",)),
    # -- frames and series, read only
    K("df_col", '{x} = {y}["{c}"]', ("df",), binds="ser", columns=col_any),
    K("df_sum", "{x} = {y}.sum()", ("df",), binds="ser"),
    K("df_sorted", '{x} = {y}.sort_values("{c}")', ("df",), binds="df", columns=col_any),
    K("df_groupby", '{x} = {y}.groupby("{c}").sum()', ("df",), binds="df", columns=col_keep_drop),
    K("df_mean", "print('{y} mean', {y}.mean().round(3).tolist())", ("df",)),
    K("ser_sorted", "{x} = {y}.sort_values()", ("ser",), binds="ser"),
    K("ser_cumsum", "{x} = {y}.cumsum()", ("ser",), binds="ser"),
    # -- arrays and views, changed in place (through the view too)
    K("arr_iadd", "{y} += {k}", ("arr|view",)),
    K("arr_item", "{y}[{k}] = -{k}.5", ("arr|view",)),
    K("arr_sort", "{y}.sort()", ("arr|view",)),
    K("arr_scale", "scale({y}, {k})", ("arr|view",)),
    K("arr_out", "np.multiply({y}, {k}, out={y})", ("arr|view",)),
    K("arr_shuffle", "{z}.shuffle({y})", ("arr|view", "gen")),
    K("arr_jitter", "jitter({y}, {z})", ("arr|view", "gen")),
    # -- arrays, read only
    K("arr_derive", "{x} = {y} * {k} + 1", ("arr",), binds="arr", full=True),
    K("arr_sorted", "{x} = np.sort({y})", ("arr",), binds="arr", full=True),
    K("arr_copy", "{x} = {y}.copy()", ("arr",), binds="arr", full=True),
    K("arr_stats", "print('{y} stats', round(float({y}.mean()), 4), round(float({y}.std()), 4))", ("arr|view",)),
    # -- generators: drawn from directly, in helpers, in loops, through an object
    K("gen_draw", "{x} = {y}.standard_normal(N)", ("gen",), binds="arr", full=True),
    K("gen_noise", "{x} = noise({y}, N)", ("gen",), binds="arr", full=True),
    K("gen_print", "print('noise', round(float(noise({y}, 8).sum()), 6))", ("gen",)),
    K("gen_loop", "for i in range({n}):\n    print('draw', i, round(float(noise({y}, 4)[0]), 6))", ("gen",)),
    K("smp_sample", "print('{y} sample', round(float({y}.sample({k}).sum()), 6))", ("smp",)),
    K("smp_draw", "{x} = {y}.sample(N)", ("smp",), binds="arr", full=True),
    K("pyr_pick", "print('{y} pick', [round(v, 6) for v in pick({y}, 3)])", ("pyr",)),
    K("pyr_shuffle", "{z}.shuffle({y})", ("list", "pyr")),
    K("pyr_sample", "{x} = {y}.sample(range(100), {k})", ("pyr",), binds="list"),
    K("pyr_gauss", "print('{y} gauss', round({y}.gauss(0, 1), 6))", ("pyr",)),
    # -- program classes
    K("acc_add", "{y}.add({k})", ("acc",)),
    K("acc_add_many", "{y}.add_many([{k}, {k} * 2])", ("acc",)),
    K("acc_loop", "for i in range({n}):\n    {y}.add(i * {k})", ("acc",)),
    K("acc_total", "{y}.total += {k}", ("acc",)),
    K("acc_merge", "{y}.merge({z})", ("acc", "acc")),
    K("acc_drain", "{y}.drain_into({z})", ("acc", "list")),
    K("acc_from_list", "{y}.add_many({z}[:3])", ("acc", "list")),
    K("acc_snapshot", "{x} = {y}.snapshot()", ("acc",), binds="list"),
    K("win_push", "{y}.push({k})", ("win",)),
    K("win_shift", "{y}.shift()", ("win",)),
    K("win_stamp", "{y}.stamp({z})", ("win", "arr|view")),
    K("stats_rescale", "{y}.rescale({k})", ("stats",)),
    K("stats_print", "print('{y} top', {y}.top())", ("stats",)),
    # -- containers, changed in place
    K("dict_setdefault", '{y}.setdefault("k{k}", {k})', ("dict",)),
    K("dict_update", '{y}.update({{"k{k}": -{k}}})', ("dict",)),
    K("dict_item", '{y}["k{k}"] = {k} * 10', ("dict",)),
    K("dict_ior", '{y} |= {{"j{k}": {k}}}', ("dict",)),
    K("dict_pop", '{y}.pop("k{k}", None)', ("dict",)),
    K("dict_tally", 'tally({y}, "k{k}")', ("dict",)),
    K("dict_from_list", "{y}.update(zip(map(str, {z}[:3]), {z}[:3]))", ("dict", "list")),
    K("list_sort", "{y}.sort()", ("list",)),
    K("list_append", "{y}.append({k})", ("list",)),
    K("list_extend", "{y}.extend([{k}, -{k}])", ("list",)),
    K("list_reverse", "{y}.reverse()", ("list",)),
    K("list_iadd", "{y} += [{k}]", ("list",)),
    K("list_slice", "{y}[:1] = [{k}]", ("list",)),
    K("list_del", "del {y}[:1]", ("list",)),
    K("list_insert", "{y}.insert(0, -{k})", ("list",)),
    K("list_loop", "for i in range({n}):\n    {y}.append(i * {k})", ("list",)),
    K("set_ior", "{y} |= {{{k}, -{k}}}", ("set",)),
    K("set_ior_set", "{y} |= {z}", ("set", "set")),
    K("set_add", "{y}.add(-{k})", ("set",)),
    K("set_discard", "{y}.discard({k})", ("set",)),
    K("set_update", "{y}.update(range({k}))", ("set",)),
    K("set_isub", "{y} -= {{1}}", ("set",)),
    K("set_from_list", "{y} |= set({z}[:5])", ("set", "list")),
    K("ba_extend", '{y}.extend(b"xy")', ("ba",)),
    K("ba_item", "{y}[0] = {k}", ("ba",)),
    K("ba_iadd", '{y} += b"z"', ("ba",)),
    K("ba_reverse", "{y}.reverse()", ("ba",)),
    K("dq_rotate", "{y}.rotate({k})", ("dq",)),
    K("dq_appendleft", "{y}.appendleft({k})", ("dq",)),
    K("dq_extend", "{y}.extend(range({k}))", ("dq",)),
    K("ctr_update", '{y}.update("banana"[:{k}])', ("ctr",)),
    K("ctr_subtract", '{y}.subtract("ab")', ("ctr",)),
    K("ctr_item", '{y}["z"] += {k}', ("ctr",)),
    K("ctr_from_list", "{y}.update(map(str, {z}[:5]))", ("ctr", "list")),
    # -- containers, read only
    K("dict_get", "print('{y} get', {y}.get(\"k{k}\"), \"k{k}\" in {y})", ("dict",)),
    K("dict_copy", "{x} = dict({y})", ("dict",), binds="dict"),
    K("list_sorted", "{x} = sorted({y})", ("list",), binds="list"),
    K("list_plus", "{x} = {y} + [{k}]", ("list",), binds="list"),
    K("list_count", "print('{y} count', {y}.count({k}), sorted({y})[:3])", ("list",)),
    K("set_or", "{x} = {y} | {z}", ("set", "set"), binds="set"),
    K("set_and", "print('{y} and', sorted({y} & {z})[:5])", ("set", "set")),
    K("ba_count", "print('{y} count', {y}.count(b\"a\"), bytes({y}[:3]))", ("ba",)),
    K("dq_count", "print('{y} count', {y}.count(1))", ("dq",)),
    K("ctr_common", "print('{y} common', {y}.most_common(2))", ("ctr",)),
    K("ctr_plus", "{x} = {y} + {z}", ("ctr", "ctr"), binds="ctr"),
    # -- shallow copies, picked items, comprehensions and helpers that return a part (alias rule A10):
    # the result shares the items, so a change through one shows in the other
    K("nest_new", "{x} = [[{k}], [1, 2]]", binds="nest"),
    K("dnest_new", '{x} = {{"a": [{k}], "b": [1]}}', binds="dnest"),
    K("oarr_new", "{x} = np.empty(2, dtype=object)\n{x}[0] = [{k}]\n{x}[1] = [1]", binds="oarr"),
    K("nest_list", "{x} = list({y})", ("nest",), binds="nest"),
    K("nest_copy", "{x} = {y}.copy()", ("nest",), binds="nest"),
    K("nest_copy_copy", "{x} = copy.copy({y})", ("nest",), binds="nest"),
    K("nest_comp", "{x} = [e for e in {y}]", ("nest",), binds="nest"),
    K("nest_sorted", "{x} = sorted({y})", ("nest",), binds="nest"),
    K("nest_tuple_back", "{x} = list(tuple({y}))", ("nest",), binds="nest"),
    K("nest_plus", "{x} = {y} + [[{k}]]", ("nest",), binds="nest"),
    K("nest_shallow", "{x} = shallow({y})", ("nest",), binds="nest"),
    K("nest_first", "{x} = first({y})", ("nest",), binds="list"),
    K("nest_next", "{x} = next(iter({y}))", ("nest",), binds="list"),
    K("nest_max", "{x} = max({y}, key=len)", ("nest",), binds="list"),
    K("nest_unpack", "{x}, *_ = {y}", ("nest",), binds="list"),
    K("nest_item_append", "{y}[0].append({k})", ("nest",)),
    K("nest_loop_append", "for e in {y}:\n    e.append({k})", ("nest",)),
    K("nest_call_append", "list({y})[-1].append({k})", ("nest",)),
    K("nest_len", "print('{y} len', len({y}), [len(e) for e in {y}])", ("nest",)),
    K("dnest_dict", "{x} = dict({y})", ("dnest",), binds="dnest"),
    K("dnest_copy", "{x} = {y}.copy()", ("dnest",), binds="dnest"),
    K("dnest_comp", "{x} = {{k: v for k, v in {y}.items()}}", ("dnest",), binds="dnest"),
    K("dnest_values", "{x} = list({y}.values())", ("dnest",), binds="nest"),
    K("dnest_item_append", '{y}["a"].append({k})', ("dnest",)),
    K("oarr_copy", "{x} = {y}.copy()", ("oarr",), binds="oarr"),
    K("oarr_item_append", "{y}[0].append({k})", ("oarr",)),
)
KIND = {k.name: k for k in KINDS}
#: the kind that makes a value of each type when a statement needs one and none is bound
MAKE = {"df": "df_new", "ser": "ser_new", "arr": "arr_new", "view": "view_new", "gen": "gen_new",
        "pyr": "pyr_new", "acc": "acc_new", "win": "win_new", "stats": "stats_new", "smp": "smp_new",
        "dict": "dict_new", "list": "list_new", "set": "set_new", "ba": "ba_new", "dq": "dq_new",
        "ctr": "ctr_new", "nest": "nest_new", "dnest": "dnest_new", "oarr": "oarr_new"}


def view_template(base: Obj, k: int) -> str:
    """A view of an array: a slice, a 2-D reshape, its transpose (reshapes only of 1-D arrays of N)."""
    views = ["{x} = {y}[::2]", "{x} = {y}[{k}:]"]
    if base.full:
        views += ["{x} = {y}.reshape(-1, 64)", "{x} = {y}.reshape(-1, 64).T"]
    return views[k % len(views)]


@dataclass(frozen=True)
class Spec:
    """One drawn statement: a kind, two picks (operands, names, columns) and a constant 1-9."""

    kind: str
    p: int
    q: int
    k: int


class Builder:
    """Interprets specs against the names bound so far (a test-local, mutable accumulator)."""

    def __init__(self) -> None:
        self.env: dict[str, int] = {}  # name -> object id (aliases share one)
        self.objects: dict[int, Obj] = {}
        self.lines: list[str] = []

    def _new(self, obj: Obj) -> int:
        oid = len(self.objects)
        self.objects[oid] = obj
        return oid

    def _of(self, types: str) -> list[str]:
        wanted = set(types.split("|"))
        return [n for n in self.env if self.objects[self.env[n]].type in wanted]

    def operand(self, types: str, p: int, avoid: str | None = None) -> str:
        """A bound name of one of ``types`` (not ``avoid``), binding a new value first if there is none."""
        names = [n for n in self._of(types) if n != avoid]
        if not names:
            first = types.split("|", maxsplit=1)[0]
            free = [i for i, n in enumerate(POOLS[first]) if n != avoid]
            self.add(Spec(MAKE[first], free[0], 0, 1))
            names = [n for n in self._of(types) if n != avoid]
        return names[p % len(names)]

    def add(self, spec: Spec) -> None:
        kind = KIND[spec.kind]
        picks = (spec.p, spec.q)
        ys: list[str] = []
        for i, types in enumerate(kind.operands):
            # two operands of one type are two values (``acc.merge(acc)`` would never end)
            ys.append(self.operand(types, picks[i], avoid=ys[0] if i and types == kind.operands[0] else None))
        fields = {"k": str(spec.k), "m": str(spec.k % 4 + 2), "n": str(spec.k % 3 + 2)}
        if ys:
            fields["y"] = ys[0]
        if len(ys) > 1:
            fields["z"] = ys[1]
        template = kind.template
        y_obj = self.objects[self.env[ys[0]]] if ys else None
        bound = Obj(kind.binds, full=kind.full) if kind.binds else None
        if kind.name == "print":
            template = PRINT[y_obj.type]
        elif kind.name == "view_new":
            template = view_template(y_obj, spec.k)
        elif kind.name == "del":
            del self.env[ys[0]]
        if kind.columns is not None:
            assert y_obj is not None
            got = kind.columns(y_obj.cols, spec.p, spec.q)
            if got is None:  # does not apply to this frame's columns: the spec yields nothing
                return
            extra, after, result = got
            fields.update(extra)
            self.objects[self.env[ys[0]]] = dataclasses.replace(y_obj, cols=after)
            if bound is not None and bound.type == "df":
                bound = dataclasses.replace(bound, cols=result)
        elif bound is not None and bound.type == "df":
            bound = dataclasses.replace(bound, cols=("x", "y", "z") if y_obj is None else y_obj.cols)
        if kind.alias:
            pool = POOLS[y_obj.type]
            fields["x"] = pool[(pool.index(ys[0]) + 1) % len(pool)]
            self.env[fields["x"]] = self.env[ys[0]]
        elif bound is not None:
            pool = POOLS[bound.type]
            fields["x"] = pool[spec.p % len(pool)]
            self.env[fields["x"]] = self._new(bound)
        self.lines.append(template.format(**fields))

    def dump(self) -> None:
        for name in self.env:
            self.lines.append(PRINT[self.objects[self.env[name]].type].format(y=name))


def source(lines: list[str]) -> str:
    """The whole program: the imports and definitions the body uses, main(), the __main__ guard."""
    body = "".join("".join(f"    {line}\n" for line in s.split("\n")) for s in lines) + '    print("end")\n'
    used = [name for name in HELPERS if re.search(rf"\b{name}\(", body)]
    defs = "".join(HELPERS[name] + "\n\n" for name in used)
    text = defs + body
    imports = "\n".join(imp for pattern, imp in IMPORTS if re.search(pattern, text))
    return (f"{imports}\n\nN = {N}\n\n\n{defs}def main():\n{body}\n\n"
            'if __name__ == "__main__":\n    main()\n')


@dataclass(frozen=True)
class Case:
    """A generated program and how to split and run it."""

    text: str
    transport: str
    heavy_bytes: str


#: the kinds of alias rule A10 (a copy and a change through it must meet in one program): drawn a
#: third of the time, or a program of 14 statements out of ~160 kinds would rarely hold both
SHARING = tuple(k.name for k in KINDS if k.name.startswith(("nest", "dnest", "oarr")))
SPECS = st.builds(Spec, st.one_of(st.sampled_from([k.name for k in KINDS]), st.sampled_from([k.name for k in KINDS]),
                                  st.sampled_from(SHARING)),
                  st.integers(0, 3), st.integers(0, 3), st.integers(1, 9))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    builder = Builder()
    for spec in draw(st.lists(SPECS, min_size=1, max_size=14)):
        builder.add(spec)
    if draw(st.booleans()):  # print every value still bound at the end: a stale one shows
        builder.dump()
    transport = draw(st.sampled_from(("shm", "tcp")))
    heavy = draw(st.sampled_from(("1MiB", "16KiB")))
    return Case(source(builder.lines), transport, heavy)


def _diff(expected: bytes, got: bytes) -> str:
    lines = difflib.unified_diff(expected.decode(errors="replace").splitlines(),
                                 got.decode(errors="replace").splitlines(),
                                 "expected (python app.py)", "got (scadc run)", lineterm="", n=1)
    shown = list(lines)
    return "\n".join(shown[:40] + (["…"] if len(shown) > 40 else []))


#: how each program is split: (policy, with a profile from `scadc profile` first)
CONFIGS = (("every", False), ("resource", False), ("resource", True))


def check(case: Case, tmp: Path, configs: tuple[tuple[str, bool], ...] = CONFIGS) -> None:
    """``python app.py`` vs the program split with each of ``configs`` and run; fail with the program,
    the commands that reproduce it, and expected vs got."""
    app = tmp / "app.py"
    app.write_text(case.text)
    original = subprocess.run([sys.executable, str(app)], capture_output=True, timeout=120, check=False)
    assert original.returncode == 0, f"the generated program itself fails:\n{original.stderr.decode()}\n{case.text}"
    heavy = parse_size(case.heavy_bytes)
    split_opts = f"--heavy-bytes {case.heavy_bytes}"
    run_cmd = f"scadc run prog --quiet --transport {case.transport}"
    for policy, with_profile in configs:
        profile = None
        if with_profile:
            profile = str(tmp / "app.profile.json")
            ran = subprocess.run([sys.executable, "-m", "scadc", "profile", str(app), "-o", profile],
                                 capture_output=True, timeout=300, check=False)
            assert ran.returncode == 0 and ran.stdout == original.stdout, (
                f"scadc profile changed the program's output or failed:\n{ran.stderr.decode()[-2000:]}\n"
                f"{_diff(original.stdout, ran.stdout)}\n{case.text}")
        how = (f"scadc split app.py -o prog --force --policy {policy} {split_opts}"
               + (" --profile app.profile.json" if profile else ""))
        commands = ("  python app.py > expected.txt\n" + ("  scadc profile app.py -o app.profile.json\n"
                                                           if profile else "")
                    + f"  {how}\n  {run_cmd} > got.txt")
        # pytest turns warnings into errors; the instances fork from here and would inherit that, while
        # the original prints pandas' deprecation warnings to stderr and goes on
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = split_and_run(app, tmp / "prog", policy, transport=case.transport, heavy_bytes=heavy,
                                    profile=profile)
            except RunFailed as failed:
                pytest.fail(f"the split program failed ({failed.failure.format()}):\n{commands}\n"
                            f"{failed.failure.traceback.rstrip()[-3000:]}\nprogram:\n{case.text}", pytrace=False)
        if out != original.stdout:
            pytest.fail(f"the split program printed other output:\n{commands}\n{_diff(original.stdout, out)}\n"
                        f"program:\n{case.text}", pytrace=False)


_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                         HealthCheck.data_too_large]}


@settings(max_examples=QUICK_EXAMPLES, **_SETTINGS)
@given(cases())
def test_object_programs_split_and_run_print_the_same(tmp_path: Path, case: Case) -> None:
    check(case, tmp_path)


class _Budget:
    """``make fuzz`` stops trying new programs after ``SCAD_FUZZ_SECONDS``, but once a failure is seen
    every call runs for real, so hypothesis shrinks it and replays it consistently."""

    def __init__(self) -> None:
        self.end: float | None = None
        self.failed = False

    def spent(self) -> bool:
        if self.end is None:
            self.end = time.monotonic() + float(os.environ.get("SCAD_FUZZ_SECONDS") or FUZZ_SECONDS)
        return not self.failed and time.monotonic() > self.end


_BUDGET = _Budget()


@pytest.mark.slow
@pytest.mark.timeout(7200)
@settings(max_examples=min(MAX_FUZZ_EXAMPLES, max(1, int(os.environ.get("SCAD_FUZZ") or 1))),
          **_SETTINGS)
@given(cases())
def test_object_programs_split_and_run_print_the_same_fuzz(tmp_path: Path, case: Case) -> None:
    if _BUDGET.spent():
        return
    try:
        check(case, tmp_path)
    except BaseException:
        _BUDGET.failed = True
        raise
