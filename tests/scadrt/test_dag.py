"""Loader and validator of the element format: one small directory per problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scadrt.dag import Corun, Limits, load_program
from scadrt.errors import ProgramError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "elements"

MAIN = "def main(params, action):\n    return {}\n"


def compute(header: str, code: str = MAIN) -> str:
    return "".join(f"#@ {line}\n" for line in header.strip("\n").splitlines()) + code


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        data = text if isinstance(text, bytes) else text.encode()
        (root / name).write_bytes(data)
    return root


# name → (files, expected problems as (file, line, substring of the message))
INVALID: dict[str, tuple[dict[str, str | bytes], list[tuple[str, int, str]]]] = {
    "yaml_error": (
        {"a.o.py": compute("type: compute\nparents: [b\nlimits: {cpu: 1}")},
        [("a.o.py", 3, "YAML error")],
    ),
    "control_character_in_yaml": (
        {"m.o.yaml": "type: memory\nlimits: {mem: 1 MB}\x00\n"},
        [("m.o.yaml", 2, "YAML error")],
    ),
    "unknown_key_did_you_mean": (
        {"a.o.py": compute("type: compute\npaernts: [b]"), "b.o.py": compute("type: compute")},
        [("a.o.py", 2, "unknown key 'paernts' (did you mean 'parents'?)")],
    ),
    "unknown_limit_key": (
        {"a.o.py": compute("type: compute\nlimits:\n  cpu: 1\n  memory: 1 GB")},
        [("a.o.py", 4, "unknown key 'memory' in limits (did you mean 'mem'?)")],
    ),
    "unknown_corunning_key": (
        {"a.o.py": compute("type: compute\ncorunning:\n  m: {trans: m, kind: rdma}"),
         "m.o.yaml": "type: memory\n"},
        [("a.o.py", 3, "unknown key 'kind' in corunning entry")],
    ),
    "unknown_transport_type": (
        {"a.o.py": compute("type: compute\ncorunning:\n  m:\n    type: rmda"), "m.o.yaml": "type: memory\n"},
        [("a.o.py", 4, "unknown transport type 'rmda' (did you mean 'rdma'?)")],
    ),
    "unknown_reference": (
        {"a.o.py": compute("type: compute\ndependents: [b]"),
         "b.o.py": compute("type: compute\nparents:\n  - a\n  - sceond"),
         "second.o.py": compute("type: compute")},
        [("b.o.py", 4, "unknown element 'sceond' in 'parents' (did you mean 'second'?)")],
    ),
    "contradictory_parents_dependents": (
        {"a.o.py": compute("type: compute\ndependents: [b]"),
         "b.o.py": compute("type: compute\nparents: [a]"),
         "c.o.py": compute("type: compute\nparents: [a]")},
        [("a.o.py", 2, "'dependents' does not list 'c', but ")],
    ),
    "contradiction_names_both_files": (
        {"a.o.py": compute("type: compute\ndependents: [b]"),
         "b.o.py": compute("type: compute\nparents: [c]"),
         "c.o.py": compute("type: compute")},
        [("b.o.py", 2, "'parents' does not list 'a', but ")],
    ),
    "dependency_cycle": (
        {"a.o.py": compute("type: compute\nparents: [c]"),
         "b.o.py": compute("type: compute\nparents: [a]"),
         "c.o.py": compute("type: compute\nparents: [b]")},
        [("a.o.py", 2, "dependency cycle: a → b → c → a")],
    ),
    "two_cycles_each_reported_once": (
        {"a.o.py": compute("type: compute\nparents: [b, e]"), "b.o.py": compute("type: compute\nparents: [a]"),
         "c.o.py": compute("type: compute\nparents: [d]"), "d.o.py": compute("type: compute\nparents: [c]"),
         "e.o.py": compute("type: compute")},
        [("a.o.py", 2, "dependency cycle: a → b → a"), ("c.o.py", 2, "dependency cycle: c → d → c")],
    ),
    "self_dependency": (
        {"a.o.py": compute("type: compute\nparents: [a]")},
        [("a.o.py", 2, "element 'a' lists itself in 'parents'")],
    ),
    "memory_as_parent": (
        {"a.o.py": compute("type: compute\nparents: [m]\ncorunning: [m]"),
         "m.o.yaml": "type: memory\ncorunning: [a]\n"},
        [("a.o.py", 2, "'m' is a memory element and cannot be a parent; list it under 'corunning'")],
    ),
    "memory_with_dependents": (
        {"a.o.py": compute("type: compute"), "m.o.yaml": "type: memory\ndependents: [a]\n"},
        [("m.o.yaml", 2, "a memory element has no dependents")],
    ),
    "memory_coruns_with_memory": (
        {"m.o.yaml": "type: memory\ncorunning: [n]\n", "n.o.yaml": "type: memory\n"},
        [("m.o.yaml", 2, "memory elements cannot corun with each other")],
    ),
    "duplicate_names": (
        {"x.o.py": compute("type: compute"), "x.o.yaml": "type: memory\n"},
        [("x.o.yaml", 0, "duplicate element name 'x' (also defined by")],
    ),
    "illegal_names": (
        {"bad.name.o.py": compute("type: compute"), "sp ace.o.py": compute("type: compute"),
         "ok.o.py": compute("type: compute")},
        [("bad.name.o.py", 0, "illegal element file name"), ("sp ace.o.py", 0, "illegal element file name")],
    ),
    "unknown_extension": (
        {"a.o.js": "function main() {}\n", "b.o.py": compute("type: compute")},
        [("a.o.js", 0, "unknown element file type '.o.js'")],
    ),
    "header_after_code": (
        {"a.o.py": compute("type: compute", "import os\n#@ parents: [b]\n" + MAIN)},
        [("a.o.py", 3, "'#@ ' header line after code")],
    ),
    "missing_main": (
        {"a.o.py": compute("type: compute", "def run(params, action):\n    return {}\n")},
        [("a.o.py", 1, "does not define main(params, action)")],
    ),
    "main_wrong_signature": (
        {"a.o.py": compute("type: compute", "\ndef main(params):\n    return {}\n")},
        [("a.o.py", 3, "main must accept two positional arguments")],
    ),
    "syntax_error": (
        {"a.o.py": compute("type: compute", "def main(params, action):\n    return {\n")},
        [("a.o.py", 3, "syntax error")],
    ),
    "missing_header": (
        {"a.o.py": MAIN},
        [("a.o.py", 1, "missing header")],
    ),
    "missing_type": (
        {"a.o.py": compute("limits: {cpu: 1}")},
        [("a.o.py", 1, "missing required key 'type'")],
    ),
    "type_does_not_match_extension": (
        {"m.o.yaml": "# a comment\ntype: compute\n"},
        [("m.o.yaml", 2, "'type: compute' does not match the file's extension")],
    ),
    "bad_type": (
        {"a.o.py": compute("type: storage")},
        [("a.o.py", 1, "'type' must be 'compute' or 'memory', not 'storage'")],
    ),
    "corunning_with_own_ancestor": (
        {"a.o.py": compute("type: compute\ncorunning: [b]"), "b.o.py": compute("type: compute\nparents: [a]")},
        [("a.o.py", 2, "'a' and 'b' are corunning, but one depends on the other")],
    ),
    "bad_sizes_and_numbers": (
        {"a.o.py": compute("type: compute\nparallelism: 0\nlimits: {cpu: -1, mem: lots, storage: 0}")},
        [("a.o.py", 2, "'parallelism' must be a whole number ≥ 1, not 0"),
         ("a.o.py", 3, "'limits.cpu' must be a positive number"),
         ("a.o.py", 3, "'limits.mem': expected a size"),
         ("a.o.py", 3, "'limits.storage' must be larger than 0")],
    ),
    "duplicate_key": (
        {"a.o.py": compute("type: compute\nparallelism: 2\nparallelism: 3")},
        [("a.o.py", 3, "duplicate key 'parallelism'")],
    ),
    "header_not_a_mapping": (
        {"a.o.py": compute("- type\n- compute")},
        [("a.o.py", 1, "the header must be a YAML mapping")],
    ),
    "not_utf8": (
        {"a.o.py": b"#@ type: compute\n# caf\xe9\n" + MAIN.encode()},
        [("a.o.py", 0, "not UTF-8 text")],
    ),
    "every_problem_is_reported": (
        {"a.o.py": compute("type: compute\nparents: [zz]\nparalelism: 2", "def main():\n    pass\n"),
         "b.o.yaml": "type: memory\nlimits: {mem: 1 XB}\n"},
        [("a.o.py", 2, "unknown element 'zz'"), ("a.o.py", 3, "unknown key 'paralelism'"),
         ("a.o.py", 4, "main must accept"), ("b.o.yaml", 2, "'limits.mem'")],
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_program_reports_every_problem_with_its_line(tmp_path: Path, case: str) -> None:
    files, expected = INVALID[case]
    write(tmp_path, files)
    with pytest.raises(ProgramError) as info:
        load_program(tmp_path)
    got = [(Path(p.file).name, p.line, p.message) for p in info.value.problems]
    assert len(got) == len(expected), "\n".join(p.format() for p in info.value.problems)
    for (file, line, message), (want_file, want_line, want_text) in zip(got, expected, strict=True):
        assert (file, line) == (want_file, want_line), message
        assert want_text in message


def test_contradiction_message_names_both_files(tmp_path: Path) -> None:
    files, _ = INVALID["contradictory_parents_dependents"]
    write(tmp_path, files)
    with pytest.raises(ProgramError) as info:
        load_program(tmp_path)
    (problem,) = info.value.problems
    assert problem.file == str(tmp_path / "a.o.py")
    assert f"{tmp_path / 'c.o.py'}:2 lists 'a' among its parents" in problem.message


def test_problem_list_renders_file_line_and_count(tmp_path: Path) -> None:
    write(tmp_path, INVALID["every_problem_is_reported"][0])
    with pytest.raises(ProgramError) as info:
        load_program(tmp_path)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid program: 4 problems"
    assert lines[1].startswith(f"{tmp_path / 'a.o.py'}:2: unknown element 'zz' in 'parents'")


@pytest.mark.parametrize("setup", ["missing", "file", "empty"])
def test_directory_itself_is_checked(tmp_path: Path, setup: str) -> None:
    target = tmp_path / "prog"
    if setup == "file":
        target.write_text("x")
    elif setup == "empty":
        target.mkdir()
        (target / "README.md").write_text("not an element")
    with pytest.raises(ProgramError) as info:
        load_program(target)
    expected = {"missing": "does not exist", "file": "is not a directory", "empty": "no elements found"}[setup]
    assert expected in str(info.value)


def test_one_written_side_is_enough_and_the_other_is_derived(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.o.py": compute("type: compute\ndependents: [b, c]"),
        "b.o.py": compute("type: compute"),
        "c.o.py": compute("type: compute\ndependents: [d]\ncorunning:\n  m: {trans: region, type: tcp}"),
        "d.o.py": compute("type: compute\nparents: [b, c]"),
        "m.o.yaml": "type: memory\nparallelism: 2\nlimits: {mem: 1 GiB}\n",
    })
    program = load_program(tmp_path)
    specs = program.elements
    assert list(specs) == ["a", "b", "c", "d", "m"]
    assert specs["b"].parents == ("a",) and specs["b"].dependents == ("d",)
    assert specs["d"].parents == ("b", "c")
    assert specs["c"].corunning == (Corun("m", "region", "tcp"),)
    assert specs["m"].corunning == (Corun("c", "c", "rdma"),)
    assert specs["m"].limits == Limits(cpu=1.0, mem=1024**3, storage=512 * 1024**2)
    assert specs["m"].instance_names() == ("m@0", "m@1")
    assert program.topological_order() == ("a", "b", "c", "d")


def test_what_scad_accepted_loads_with_a_warning(tmp_path: Path) -> None:
    # Scad's own programs list a memory element among dependents (accum_access/setup) and leave a
    # corunning peer out on one side (parallelism-2-node/mem1): accepted, and listed as warnings
    program = load_program(write(tmp_path, {
        "a.o.py": compute("type: compute\ncorunning: [m]\ndependents: [m, c]"),
        "b.o.py": compute("type: compute\ncorunning: [m]"),
        "c.o.py": compute("type: compute"),
        "m.o.yaml": "type: memory\ncorunning:\n  - a\n  - compute1\n",
    }))
    assert [(Path(w.file).name, w.line, w.message.split(":")[0]) for w in program.warnings] == [
        ("a.o.py", 3, "'m' is a memory element"),
        ("m.o.yaml", 2, "'corunning' does not list 'b', but " + str(tmp_path / "b.o.py")),
        ("m.o.yaml", 4, "'corunning' lists 'compute1', which is not an element of the program"),
    ]
    assert program.elements["a"].dependents == ("c",)  # the memory element adds no edge
    assert program.elements["m"].corunning_names == ("a", "b")  # b's link is taken
    assert load_program(EXAMPLES / "fanout").warnings == ()
    strict = subprocess.run([sys.executable, "-m", "scadc", "dag", str(tmp_path), "--strict"], capture_output=True,
                            text=True, check=False, timeout=60)
    assert strict.returncode == 2 and strict.stdout == ""
    assert "warning: " in strict.stderr and "3 warning(s) under --strict" in strict.stderr
    plain = subprocess.run([sys.executable, "-m", "scadc", "dag", str(tmp_path)], capture_output=True, text=True,
                           check=False, timeout=60)
    assert plain.returncode == 0 and plain.stdout.startswith("digraph")


def test_merged_memory_elements_are_read_from_with_merged_and_checked(tmp_path: Path) -> None:
    # Scad's withMerged (policy_test/merge*): the memory element lives in the compute element's
    # process and its code reaches it under action.name
    entry = ("  - action: {namespace: whisk.system, name: mem1}\n    resources: {mem: 512M, cpu: 0.5}\n"
             "    elem: Memory\n")
    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    write(tmp_path / "ok", {"c.o.py": compute("type: compute\nwithMerged:\n" + entry + "  - {elem: Compute}")})
    spec = load_program(tmp_path / "ok").elements["c"]
    assert [str(m) for m in spec.merged_memory] == [f"mem1 (merged, {512 * 1024**2} B)"]
    write(tmp_path / "bad", {
        "c.o.py": compute("type: compute\ncorunning: [mem1]\nwithMerged:\n" + entry
                          + "  - {elem: Memory, action: {name: m2}, resources: {mem: lots}}\n"
                          + "  - {elem: Memory, resources: {mem: 1M}}"),
        "mem1.o.yaml": "type: memory\n",
    })
    with pytest.raises(ProgramError) as caught:
        load_program(tmp_path / "bad")
    messages = [p.message for p in caught.value.problems]
    assert any("merged memory element 'mem1' has the name of a corunning link's transport" in m for m in messages)
    assert any(m.startswith("merged memory element 'm2': 'resources: {mem: <size>}'") for m in messages)
    assert any(m.startswith("a merged memory element needs 'action: {name: <name>}'") for m in messages)


def test_corunning_from_memory_side_only(tmp_path: Path) -> None:
    write(tmp_path, {"a.o.py": compute("type: compute"), "m.o.yaml": "type: memory\ncorunning: [a]\n"})
    assert load_program(tmp_path).elements["a"].corunning_names == ("m",)


def test_header_marker_inside_a_string_is_code(tmp_path: Path) -> None:
    code = 'TEXT = """\n#@ not: metadata\n"""\n' + MAIN
    write(tmp_path, {"a.o.py": "#!/usr/bin/env python3\n# comment before the header\n#@ type: compute\n#@\n" + code})
    spec = load_program(tmp_path).elements["a"]
    assert spec.code is not None
    assert "#@ not: metadata" in spec.code and "#@ type" not in spec.code
    assert "#@\n" in spec.code  # a bare '#@' is an ordinary comment


def test_examples_load() -> None:
    fanout = load_program(EXAMPLES / "fanout")
    assert fanout.format().splitlines() == [
        "program fanout",
        "collect [compute] parents=[square] dependents=[] corunning=[mem(mem:rdma)] parallelism=1"
        " cpu=1 mem=134217728 storage=536870912",
        "mem [memory] parents=[] dependents=[] corunning=[collect(collect:rdma), produce(produce:rdma),"
        " square(square:rdma)] parallelism=1 cpu=1 mem=67108864 storage=536870912",
        "produce [compute] parents=[] dependents=[square] corunning=[mem(mem:rdma)] parallelism=1"
        " cpu=1 mem=134217728 storage=536870912",
        "square [compute] parents=[produce] dependents=[collect] corunning=[mem(mem:rdma)] parallelism=3"
        " cpu=1 mem=134217728 storage=536870912",
    ]
    assert load_program(EXAMPLES / "chain").topological_order() == ("first", "second", "third")
    assert load_program(EXAMPLES / "failing").topological_order() == ("first", "second", "third")


def test_graph_edges_carry_their_kind() -> None:
    graph = load_program(EXAMPLES / "fanout").graph()
    kinds = sorted((a, b, d["kind"]) for a, b, d in graph.edges(data=True))
    assert kinds == [
        ("mem", "collect", "corunning"), ("mem", "produce", "corunning"), ("mem", "square", "corunning"),
        ("produce", "square", "dependent"), ("square", "collect", "dependent"),
    ]
    assert graph.nodes["square"]["spec"].parallelism == 3


def test_read_element_loads_one_file_without_its_peers(tmp_path: Path) -> None:
    """One element on its own (an OpenWhisk action gets one): relations as written, unchecked."""
    from scadrt.dag import read_element

    fanout = Path(__file__).resolve().parents[2] / "examples" / "elements" / "fanout"
    memory = read_element(fanout / "mem.o.yaml")
    assert (memory.kind, memory.limits.mem, memory.corunning_names) == ("memory", 64 * 1024**2,
                                                                        ("collect", "produce", "square"))
    square = read_element(fanout / "square.o.py")
    assert (square.kind, square.parents, square.parallelism) == ("compute", ("produce",), 3)
    (tmp_path / "a.o.yaml").write_text("type: memory\nlimts: {mem: 1 MB}\n")
    with pytest.raises(ProgramError, match="limts"):
        read_element(tmp_path / "a.o.yaml")
    with pytest.raises(ProgramError, match="illegal element file name"):
        read_element(tmp_path / "a.yaml")
