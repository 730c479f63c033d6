"""Property: whatever the files say, the loader returns a Program or raises ProgramError.

A quick run is part of `make test`; `make fuzz` runs the slow variant with SCAD_FUZZ examples.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadrt.dag import Program, load_program
from scadrt.errors import ProgramError

NAMES = st.sampled_from(["a", "b", "c", "m", "n", "bad name", "x.y"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=True),
                    st.sampled_from(["", "512 MB", "640M", "1 GiB", "lots", "rdma", "tcp", "compute", "memory",
                                     "1.5 GiB", "9" * 400 + " GB", "../../etc/x", "m@1", "a" * 300]),
                    st.sampled_from([10**19, 2**63, 10**100, 10**400, float("inf")]), NAMES)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.one_of(NAMES, SCALARS), inner, max_size=3)),
                      max_leaves=8)
KEYS = st.sampled_from(["type", "parents", "dependents", "corunning", "parallelism", "limits", "withMerged",
                        "typo", "cpu", "mem", "trans"])
HEADERS = st.dictionaries(KEYS, VALUES, max_size=6)
CODE = st.sampled_from(["def main(params, action):\n    return {}\n", "def main(p):\n  pass\n", "x = (\n",
                        "import os\n#@ type: compute\n", "", "async def main(a, b): pass\n",
                        "def main(params, action):\n    return " + "-" * 10_000 + "1\n"])
# YAML no dump writes: anchors and aliases, deep nesting, odd tags and scalars (appended to a header)
RAW = st.sampled_from(["", "x: &a [1, 2]\ny: *a\n", "<<: &m {parents: [a]}\n", "withMerged: " + "[" * 200 + "]" * 200,
                       "withMerged: [2001-02-30]\n", "withMerged: [!!binary aGVsbG8=]\n", "limits: {cpu: .inf}\n",
                       "parallelism: " + "9" * 5000 + "\n", "x: !!python/name:os.system\n", "? [a]\n: 1\n"])


def render(header: dict[object, object], flow_style: bool) -> str:
    return yaml.safe_dump(header, default_flow_style=flow_style, allow_unicode=True) if header else ""


FILES = st.lists(st.tuples(NAMES, st.sampled_from(["py", "yaml", "txt"]), HEADERS, CODE, st.booleans(),
                           st.binary(max_size=8), RAW), max_size=5)
File = tuple[str, str, dict[object, object], str, bool, bytes, str]


def check(files: list[File]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, ext, header, code, flow, junk, raw in files:
            text = render(header, flow) + raw
            if ext == "py":
                text = "".join(f"#@ {line}\n" for line in text.splitlines()) + code
            try:
                (root / f"{name}.o.{ext}").write_bytes(text.encode() + junk)
            except OSError:
                continue
        try:
            program = load_program(root)
        except ProgramError as exc:
            assert exc.problems and all(p.message for p in exc.problems)
            assert all(len(p.message) < 500 for p in exc.problems)  # quoted values are cut short
        else:
            assert isinstance(program, Program)
            for spec in program.elements.values():  # relations are complete in both directions
                for parent in spec.parents:
                    assert spec.name in program.elements[parent].dependents
                for peer in spec.corunning_names:
                    assert spec.name in program.elements[peer].corunning_names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES)
def test_loader_never_crashes_quick(files: list[File]) -> None:
    check(files)


@pytest.mark.slow
@settings(max_examples=max(1, int(os.environ.get("SCAD_FUZZ") or 1)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(FILES)
def test_loader_never_crashes_fuzz(files: list[File]) -> None:
    check(files)
