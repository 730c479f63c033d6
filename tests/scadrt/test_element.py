"""The element ABI (scadrt.element), in this process: element files written to tmp_path are loaded
and run for real, and the fanout example runs through it as an engine would run it."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from scadrt.action import PAR_INDEX_ENV
from scadrt.dag import load_program
from scadrt.element import (
    PROGRAM_MODULE,
    check_result,
    element_params,
    format_element_error,
    instance_name,
    instance_names,
    run_element,
)
from scadrt.transports.local import LocalTransport

FANOUT = Path(__file__).parents[2] / "examples" / "elements" / "fanout"


@pytest.fixture(autouse=True)
def instance_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_element changes what an instance's process owns (environment, sys.path, sys.modules):
    put it back after each test, which shares its process with the rest of the suite."""
    monkeypatch.setenv(PAR_INDEX_ENV, "")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, PROGRAM_MODULE, types.ModuleType(PROGRAM_MODULE))


def element(tmp_path: Path, code: str, name: str = "e") -> str:
    path = tmp_path / f"{name}.o.py"
    path.write_text(code, encoding="utf-8")
    return str(path)


def run(path: str, params: Any = None, index: int = 0, transports: dict[str, Any] | None = None) -> dict[str, Any]:
    return run_element(path, Path(path).name.partition(".")[0], index, params or {}, transports or {}).result


def test_main_runs_as_the_program_module_with_its_directory_on_the_path(tmp_path: Path) -> None:
    (tmp_path / "beside_e.py").write_text("WORD = 'beside'\n", encoding="utf-8")
    path = element(tmp_path, (
        "import beside_e\n"
        "\n"
        "class Point:\n"
        "    pass\n"
        "\n"
        "def main(params, action):\n"
        "    return {'module': __name__, 'class': Point.__module__, 'word': beside_e.WORD, 'n': params['n'] + 1,\n"
        "            'name': action.name}\n"))
    try:
        assert run(path, {"n": 41}) == {"module": PROGRAM_MODULE, "class": PROGRAM_MODULE, "word": "beside", "n": 42,
                                        "name": "e"}
        assert sys.modules[PROGRAM_MODULE].__file__ == path
    finally:
        sys.modules.pop("beside_e", None)


def test_none_is_an_empty_result(tmp_path: Path) -> None:
    assert run(element(tmp_path, "def main(params, action):\n    pass\n")) == {}


def test_the_instance_index_is_in_the_action_and_the_environment(tmp_path: Path) -> None:
    path = element(tmp_path, (
        "import os\n"
        "\n"
        f"def main(params, action):\n"
        f"    return {{'env': os.environ[{PAR_INDEX_ENV!r}], 'action': action.par_index}}\n"))
    assert [run(path, index=i) for i in (0, 2)] == [{"env": "0", "action": 0}, {"env": "2", "action": 2}]


def test_the_outcome_counts_the_bytes_moved(tmp_path: Path) -> None:
    path = element(tmp_path, (
        "def main(params, action):\n"
        "    mem = action.get_transport('mem', 'rdma')\n"
        "    mem.reg(16)\n"
        "    mem.write(16, 0)\n"
        "    mem.read(8, 0)\n"))
    outcome = run_element(path, "e", 0, {}, {"mem": LocalTransport(size=64, name="mem")})
    assert outcome.result == {}
    assert outcome.transfer == {"local": {"read": 8, "written": 16}}


def test_a_result_that_is_not_a_dict_is_refused(tmp_path: Path) -> None:
    path = element(tmp_path, "def main(params, action):\n    return [1, 2]\n")
    with pytest.raises(TypeError, match=r"^main\(\) must return a dict \(a JSON object\), not list$"):
        run(path)


def test_a_result_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = element(tmp_path, "def main(params, action):\n    return {'when': {1, 2}}\n")
    with pytest.raises(TypeError, match=r"^main\(\) returned a value that is not JSON-serialisable: .*set"):
        run(path)
    assert check_result({"values": {"x": [1, 2.5, "a", None]}}) == {"values": {"x": [1, 2.5, "a", None]}}


def test_the_error_starts_at_the_elements_own_frame(tmp_path: Path) -> None:
    path = element(tmp_path, (
        "def helper(x):\n"
        "    return 1 / x\n"
        "\n"
        "def main(params, action):\n"
        "    return {'r': helper(params['x'])}\n"))
    with pytest.raises(ZeroDivisionError) as caught:
        run(path, {"x": 0})
    # the caret lines under each source line differ between Python versions
    lines = [line for line in format_element_error(caught.value).splitlines() if line.strip(" ^~")]
    assert lines == [
        "Traceback (most recent call last):",
        f'  File "{path}", line 5, in main',
        "    return {'r': helper(params['x'])}",
        f'  File "{path}", line 2, in helper',
        "    return 1 / x",
        "ZeroDivisionError: division by zero",
    ]


def test_an_error_of_the_module_level_code_starts_there(tmp_path: Path) -> None:
    path = element(tmp_path, "import no_such_module_here\n\ndef main(params, action):\n    pass\n")
    with pytest.raises(ModuleNotFoundError) as caught:
        run(path)
    lines = format_element_error(caught.value).splitlines()
    assert lines[:2] == ["Traceback (most recent call last):", f'  File "{path}", line 1, in <module>']


def test_an_error_the_abi_raises_keeps_only_its_message(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as caught:
        run(element(tmp_path, "def main(params, action):\n    return 3\n"))
    assert format_element_error(caught.value) == "TypeError: main() must return a dict (a JSON object), not int\n"
    with pytest.raises(SyntaxError) as syntax:
        run(element(tmp_path, "def main(params, action)\n    pass\n", "bad"))
    assert "Traceback" not in format_element_error(syntax.value)


def test_a_parents_results_read_as_its_one_result_only_when_it_has_one_instance() -> None:
    params = element_params(("a", "b"), {}, {"a": [{"meta": "x"}], "b": [{"i": 0}, {"i": 1}]})
    assert params["a"]["meta"] == "x" and params["a"][0] == {"meta": "x"}
    assert json.loads(json.dumps(params)) == {"a": [{"meta": "x"}], "b": [{"i": 0}, {"i": 1}]}
    with pytest.raises(TypeError, match=r"a parent with 2 instances gives a list of their results"):
        params["b"]["i"]


def test_instance_names() -> None:
    assert instance_names("m", 1) == ("m",) and instance_name("m", 0, 1) == "m"
    assert instance_names("m", 3) == ("m@0", "m@1", "m@2") and instance_name("m", 1, 3) == "m@1"
    spec = load_program(FANOUT).elements["square"]
    assert spec.instance_names() == instance_names("square", spec.parallelism) == ("square@0", "square@1", "square@2")


def test_params_from_parents_with_one_and_with_many_instances() -> None:
    assert element_params((), {"n": 3}, {"a": [{}]}) == {"n": 3}
    results: dict[str, list[dict[str, int]]] = {"one": [{"x": 1}], "many": [{"i": 0}, {"i": 1}, {"i": 2}],
                                               "other": [{}]}
    params = element_params(("one", "many"), {"n": 3}, results)
    assert params == {"one": [{"x": 1}], "many": [{"i": 0}, {"i": 1}, {"i": 2}]}
    assert params["many"] is not results["many"]  # the params do not alias the caller's results


def test_the_fanout_example_runs_through_the_abi(capsys: pytest.CaptureFixture[str]) -> None:
    """produce → square ×3 → collect: params built from the parents' results, one region shared."""
    program = load_program(FANOUT)
    region = bytearray(64 << 20)
    results: dict[str, list[Any]] = {}
    for name in program.topological_order():
        spec = program.elements[name]
        params = element_params(spec.parents, {"n": 3000}, results)
        results[name] = [run_element(str(FANOUT / f"{name}.o.py"), name, i, params,
                                     {"mem": LocalTransport(region, name="mem")}).result
                         for i in range(spec.parallelism)]
    assert [len(results[n]) for n in ("produce", "square", "collect")] == [1, 3, 1]
    assert results["collect"] == [{"total": float(sum(i * i for i in range(3000)))}]
    assert "parts agree: True" in capsys.readouterr().out
