"""The public surface of both packages is exactly what it should be, and its doors work."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

import scadc
import scadrt
import scadrt.dag
import scadrt.errors
import scadrt.export
from scadc.errors import CompileError
from scadc.partition.plan import PartitionPlan
from scadrt.report import RunFailed, RunReport
from tests.programs import scadc as scadc_cli
from tests.programs import write

ROOT = Path(__file__).resolve().parents[1]
#: small, quick, and with a memory element: the run needs a transport
EXAMPLE = ROOT / "examples" / "monolithic" / "script.py"

EXPECTED = {
    scadrt: ["Corun", "ElementSpec", "InternalError", "Limits", "MissingToolError", "Problem", "Program",
             "ProgramError", "RunFailed", "ScadError", "UserError", "__version__", "load_program", "run"],
    scadc: ["__version__", "analyze_program", "split_program"],
}


def test_all_is_as_documented() -> None:
    for module, names in EXPECTED.items():
        assert sorted(module.__all__) == names, module.__name__


def test_all_names_exist_and_cover_the_public_names() -> None:
    for module in (scadrt, scadc, scadrt.dag, scadrt.errors, scadrt.export):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
    public_classes = {n for n, v in vars(scadrt.errors).items() if isinstance(v, type) and not n.startswith("_")}
    assert public_classes <= set(scadrt.errors.__all__) | {"Iterable"}


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PartitionPlan]:
    """EXAMPLE split once for the module (splitting is the expensive part)."""
    prog = tmp_path_factory.mktemp("api") / "prog"
    return prog, scadc.split_program(EXAMPLE, prog)


def test_split_program_writes_the_directory_and_returns_the_plan(split: tuple[Path, PartitionPlan]) -> None:
    prog, plan = split
    assert isinstance(plan, PartitionPlan) and plan.policy == "resource"
    assert plan.computes and plan.memories
    written = sorted(p.name for p in prog.iterdir())
    assert written == sorted([*(f"{c.name}.o.py" for c in plan.computes), *(f"{m.name}.o.yaml" for m in plan.memories),
                              "split.json", "sourcemap.json"])
    assert sorted(scadrt.load_program(prog).elements) == sorted([*(c.name for c in plan.computes),
                                                                 *(m.name for m in plan.memories)])


def test_split_program_refuses_what_the_cli_refuses(split: tuple[Path, PartitionPlan], tmp_path: Path) -> None:
    prog, _ = split
    with pytest.raises(CompileError, match="exists; pass --force"):
        scadc.split_program(EXAMPLE, prog)
    with pytest.raises(scadrt.UserError, match="unknown policy"):
        scadc.split_program(EXAMPLE, tmp_path / "other", policy="nope")
    assert not (tmp_path / "other").exists()


def test_analyze_program_returns_the_analysis() -> None:
    analysis = scadc.analyze_program(EXAMPLE, heavy_bytes="1MiB")
    assert analysis.program.path == str(EXAMPLE) and analysis.units
    assert "sim" in analysis.heavy and analysis.heavy["sim"].heavy
    assert analysis.format().startswith("program script.py:")


@pytest.mark.usefixtures("no_leftovers")
def test_run_prints_what_the_program_prints(split: tuple[Path, PartitionPlan],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    prog, plan = split
    original = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, check=True,
                              timeout=120)
    report = scadrt.run(prog)
    assert isinstance(report, RunReport) and report.status == "ok"
    assert sorted({i.element for i in report.instances}) == sorted(c.name for c in plan.computes)
    assert capsys.readouterr().out == original.stdout


def test_importing_the_packages_imports_neither_engine_nor_compiler() -> None:
    code = "import sys, scadc, scadrt; print(sorted(m for m in sys.modules if m.startswith(('libcst', 'scadrt.eng'))))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=60).stdout == "[]\n"


def _loaded(code: str, *prefixes: str) -> list[str]:
    """The modules starting with one of ``prefixes`` that a fresh interpreter has loaded after ``code``."""
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def test_importing_scadrt_imports_no_numpy_and_no_transport() -> None:
    # the lazy names still resolve, to the same objects as their modules'
    assert _loaded("import scadrt", "numpy", "scadrt.transports.", "scadrt.report") == []
    assert scadrt.RunFailed is RunFailed and scadrt.load_program is scadrt.dag.load_program


def test_the_memory_server_module_imports_no_numpy_yaml_or_loader() -> None:
    # numpy comes with the region, when a server starts (test_memory_server covers that it serves)
    assert _loaded("import scadrt.transports.memory_server", "numpy", "yaml", "scadrt.dag", "scadrt.report") == []


def test_the_cli_parser_imports_neither_numpy_nor_the_compiler() -> None:
    assert _loaded("import scadc.cli; scadc.cli.build_parser()", "numpy", "libcst", "scadrt.engines", "zmq") == []


def test_a_command_line_imports_only_its_own_command() -> None:
    # `scadc run` of a one-element program runs it in this process: the other commands' imports
    # (subprocess, selectors, the exporter, ...) were a third of the CLI's import time
    code = "import scadc.cli; scadc.cli.build_parser('run').parse_args(['run', 'prog'])"
    assert _loaded(code, "scadc.cli.") == ["scadc.cli.command", "scadc.cli.params", "scadc.cli.run"]
    assert _loaded("import scadc.cli; scadc.cli.build_parser()", "scadc.cli.wsk") == ["scadc.cli.wsk"]


def test_scadc_run_of_one_element_imports_no_compiler_yaml_or_unused_runtime(tmp_path: Path) -> None:
    # The element runs inside `scadc run`, so what it finds in sys.modules is what the run imported.
    # A 0.1 s program pays each import: the compiler (12 ms), PyYAML (10 ms), the remote-value
    # runtime an element that sends nothing does not use, output files' tempfile/shutil.
    source = write(tmp_path, {"app.py": (
        "import sys\n\n\ndef main():\n"
        "    heavy = ('yaml', 'libcst', 'networkx', 'jinja2', 'scadc.pipeline', 'scadrt.remote', 'tempfile')\n"
        "    print(sorted(m for m in sys.modules if m.startswith(heavy)))\n\n\n"
        "if __name__ == '__main__':\n    main()\n")}) / "app.py"
    split = scadc_cli("split", source, "-o", tmp_path / "prog")
    assert split.returncode == 0, split.stderr
    assert len(list((tmp_path / "prog").glob("*.o.py"))) == 1
    run = scadc_cli("run", "-q", tmp_path / "prog")
    assert (run.returncode, run.stdout, run.stderr) == (0, "[]\n", "")


def test_run_refuses_an_invalid_directory(tmp_path: Path) -> None:
    with pytest.raises(scadrt.ProgramError, match="program directory does not exist"):
        scadrt.run(tmp_path / "nope")


@pytest.mark.usefixtures("no_leftovers")
def test_run_raises_run_failed_with_the_report(tmp_path: Path) -> None:
    (tmp_path / "boom.o.py").write_text("#@ type: compute\ndef main(params, action):\n    raise ValueError('no')\n")
    with pytest.raises(RunFailed) as failed:
        scadrt.run(tmp_path, stderr=io.BytesIO())
    assert failed.value.failure.kind == "ValueError" and failed.value.report.status == "failed"
