"""Compile errors: every unsupported construct of input-subset.md, bad files, and the CLI's exit 2.

The messages themselves (file:line:col, source line, caret, hint) are checked in
``data/errors.test``; this module checks that every construct has a case there, and the
errors that need real files or the command line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import scadc.cli
from scadc.analysis import analyze
from scadc.errors import CompileError, InternalCompilerError
from scadrt.errors import InternalError, UserError
from tests.scadc.datadriven import DATA, ROOT, parse

#: each construct the contract refuses -> the cases of errors.test that show its message
CONSTRUCTS = {
    "global/nonlocal in the entry region": ["global_in_entry", "nonlocal_in_entry"],
    "yield/await in the entry region": ["yield_in_entry", "await_in_entry"],
    "exec/eval of code that defines names": ["exec_of_unknown_code", "exec_defining_names", "eval_with_walrus"],
    "sys.exit in the middle of the entry region": ["sys_exit_in_the_middle", "raise_system_exit_in_the_middle"],
    "star imports whose names the units use": ["star_import_used_by_a_unit", "star_import_used_by_a_helper"],
    "input files that do not parse": ["syntax_error"],
    # not in the shared contract: a handler registered in an element would be dropped silently
    "exit handlers (atexit.register, weakref.finalize)": ["atexit_handler", "exit_handler_decorator_in_a_helper"],
    "the namespace itself (locals(), vars(), dir(), globals())": ["locals_in_the_entry"],
}


def test_every_unsupported_construct_has_a_message_case() -> None:
    cases = {c.name: c.expected for c in parse(DATA / "errors.test")}
    for construct, names in CONSTRUCTS.items():
        for name in names:
            assert name in cases, f"{construct}: no case {name}"
            first = cases[name].splitlines()[0]
            assert first.startswith("error: app.py:"), (construct, first)
            assert "^" in cases[name], f"{name}: no caret"


def test_the_constructs_are_those_of_the_contract() -> None:
    doc = Path("/work/shared/docs/input-subset.md")
    if not doc.exists():
        pytest.skip("the shared docs are not here")
    section = doc.read_text().split("## Not supported")[1]
    for word in ("global", "nonlocal", "yield", "await", "exec", "eval", "sys.exit", "star imports", "parse"):
        assert word in section and any(word.split()[0] in k for k in CONSTRUCTS), word


def test_errors_sit_in_the_runtime_tree() -> None:
    assert issubclass(CompileError, UserError)
    assert issubclass(InternalCompilerError, InternalError)


def test_missing_file() -> None:
    with pytest.raises(CompileError) as info:
        analyze("no/such/app.py")
    assert str(info.value) == "no/such/app.py: no such file"


def test_non_utf8_input(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes(b"def main():\n    name = 'caf\xe9'\n    print(name)\n")
    with pytest.raises(CompileError) as info:
        analyze(str(path))
    text = str(info.value)
    assert text.splitlines()[0] == f"{path}:2:16: not UTF-8: byte 0xe9 cannot be decoded"
    assert text.splitlines()[2].strip() == "^"
    assert "hint: save the file as UTF-8" in text


def test_syntax_error_points_at_the_token(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text("def main():\n    x = = 1\n")
    with pytest.raises(CompileError) as info:
        analyze(str(path))
    assert str(info.value).splitlines()[0] == f"{path}:2:9: syntax error: invalid syntax"


def test_cli_prints_the_error_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.py"
    path.write_text("def main():\n    global g\n\nif __name__ == '__main__':\n    main()\n")
    assert scadc.cli.main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"scadc: error: {path}:2:5: `global` is not supported in the entry region\n")
    assert "Traceback" not in err and "    ^^^^^^^^" in err


def test_cli_analyze_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert scadc.cli.main(["analyze", str(ROOT / "examples/monolithic/script.py"), "--explain"]) == 0
    assert capsys.readouterr().out.startswith("program script.py: entry the module body")


def test_a_long_source_line_is_shown_as_a_window_around_the_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A minified line (here 15 KB) used to be printed whole in the error message."""
    path = tmp_path / "app.py"
    long = "x = [" + "1, " * 5_000 + "1]"
    path.write_text(f"def main():\n    {long}; global g\n\nif __name__ == '__main__':\n    main()\n")
    assert scadc.cli.main(["analyze", str(path)]) == 2
    err = capsys.readouterr().err
    assert "`global` is not supported in the entry region" in err
    shown, carets = err.splitlines()[1:3]
    assert len(shown) < 220 and shown.lstrip().startswith("…") and shown.endswith("global g")
    assert carets.index("^") == shown.index("global") and carets.strip() == "^" * len("global g")
