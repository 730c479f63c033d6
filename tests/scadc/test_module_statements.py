"""Module-level statements that must run once (cut rule (6), :mod:`scadc.analysis.module_effects`),
and a program's exit (element ABI rule 7): through the real ``scadc split`` and ``scadc run``.

Before the fix every element ran the prelude's definitions but dropped the statements: under
``--policy every`` each program in :data:`ONCE` printed or wrote other bytes (the module's
``print`` and the seed were lost, the file opened at module level stayed empty, logging went
unconfigured). And a program of one element runs in the ``scadc run`` process, which ended with
``os._exit``: the buffer of a file opened at module level and logging's exit handler were lost
(the forked instances of the local engine lost them the same way).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scadc.analysis import analyze
from tests.programs import scadc

pytestmark = pytest.mark.usefixtures("no_leftovers")

_MAIN = '''

def main():
    a = np.arange(5) * 1.0
    print("a", a.sum())
    b = a * 2
    print("b", b.sum())
    c = b + np.random.random(5).round(6)
    print("c", c.tolist())


if __name__ == "__main__":
    main()
'''

#: name -> (module-level lines above main, from line 3 on (numpy is imported above them), and the
#: line of the first one that must run once)
ONCE: dict[str, tuple[str, int]] = {
    "print": ('print("loading")\n', 3),
    "seed": ("np.random.seed(3)\n", 3),
    "seeded_draw": ("np.random.seed(4)\nW = np.random.random(3)\nprint(W.round(6).tolist())\n", 3),
    "file_written_in_main": ('OUT = open("out.txt", "w")\nOUT.write("opened\\n")\n', 3),
    "try_import": ("try:\n    import ujson as json\nexcept ImportError:\n    import json\nprint(json.dumps([1]))\n", 3),
    "module_if": ('CACHE = {}\nCACHE["k"] = 1\nif CACHE:\n    print("cached")\n', 5),  # the first two are repeatable
    # a "setting" by its method's name, but the program's own: it prints, and must run once
    "own_set_option": ("class Config:\n    @staticmethod\n    def set_option(key):\n        print('set', key)\n\n\n"
                       "Config.set_option('mode')\n", 9),
    "log_file": ('import logging\nlogging.basicConfig(filename="log.txt", filemode="w", level=logging.INFO)\n'
                 'logging.info("start")\n', 4),
}


def _program(name: str) -> str:
    text = "import numpy as np\n\n" + ONCE[name][0] + _MAIN
    if "seed" not in ONCE[name][0]:  # draws of an unseeded generator differ from run to run
        text = text.replace("np.random.random(5)", "np.ones(5)")
    if name == "file_written_in_main":  # main writes to it, never closes it: the exit flushes it
        text = text.replace('    print("b", b.sum())\n', '    print("b", b.sum())\n    OUT.write(f"{b.sum()}\\n")\n')
    return text


def _outputs(cwd: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cwd.iterdir()) if p.suffix in (".txt",)}


def _original(tmp_path: Path, text: str) -> tuple[bytes, dict[str, bytes]]:
    app = tmp_path / "app.py"
    app.write_text(text)
    here = tmp_path / "original"
    here.mkdir()
    ran = subprocess.run([sys.executable, str(app)], cwd=here, capture_output=True, timeout=60, check=True)
    return ran.stdout, _outputs(here)


@pytest.mark.parametrize("name", sorted(ONCE))
def test_module_statements_run_once_as_before_main(tmp_path: Path, name: str) -> None:
    text = _program(name)
    stdout, files = _original(tmp_path, text)
    assert analyze(str(tmp_path / "app.py")).module_effects.run_once, "the table takes a statement for repeatable"
    split = scadc("split", tmp_path / "app.py", "-o", tmp_path / "prog", "--policy", "every", "--explain")
    assert split.returncode == 0, split.stderr
    assert f"(6) the module-level statement at line {ONCE[name][1]} " in split.stderr
    # in the scadc process (one element, no retries) and in a forked instance (--retries)
    for how in ((), ("--retries", "1")):
        here = tmp_path / f"split{len(how)}"
        here.mkdir()
        ran = scadc("run", tmp_path / "prog", "--quiet", *how, cwd=here)
        assert ran.returncode == 0, ran.stderr
        assert (ran.stdout.encode(), _outputs(here)) == (stdout, files), how


#: module-level statements every element may run again: the program is still cut everywhere
REPEATABLE = '''import logging
import re
import sys

import numpy as np

logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
np.set_printoptions(precision=3)
rng = np.random.default_rng(0)
TABLE = np.arange(4) * 2.0
WORD = re.compile(r"\\w+")
''' + _MAIN.replace("np.random.random(5)", "rng.random(5)")


def test_repeatable_module_statements_keep_every_cut(tmp_path: Path) -> None:
    stdout, _ = _original(tmp_path, REPEATABLE)
    assert analyze(str(tmp_path / "app.py")).module_effects.run_once == ()
    split = scadc("split", tmp_path / "app.py", "-o", tmp_path / "prog", "--policy", "every")
    assert split.returncode == 0, split.stderr
    assert len(list((tmp_path / "prog").glob("*.o.py"))) == 6
    ran = scadc("run", tmp_path / "prog", "--quiet", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.encode() == stdout


#: main opens the file it writes into a module-level list, so nothing closes it before the exit does
LEFT_OPEN = '''OPEN = []


def main():
    OPEN.append(open("out.txt", "w"))
    for i in range(3):
        OPEN[0].write(f"line {i}\\n")
    print("wrote")


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("how", [(), ("--retries", "1")], ids=["in-process", "forked"])
def test_a_program_ends_as_its_interpreter_would(tmp_path: Path, how: tuple[str, ...]) -> None:
    """The exit flushes what the program left open (element ABI rule 7): both when ``scadc run``
    runs the one element itself (it ended with ``os._exit``) and in a forked instance."""
    stdout, files = _original(tmp_path, LEFT_OPEN)
    assert files == {"out.txt": b"line 0\nline 1\nline 2\n"}
    split = scadc("split", tmp_path / "app.py", "-o", tmp_path / "prog")
    assert split.returncode == 0, split.stderr
    assert len(list((tmp_path / "prog").glob("*.o.py"))) == 1
    here = tmp_path / "split"
    here.mkdir()
    ran = scadc("run", tmp_path / "prog", "--quiet", *how, cwd=here)
    assert ran.returncode == 0, ran.stderr
    assert (ran.stdout.encode(), _outputs(here)) == (stdout, files)


#: a thread that main starts and leaves running: it prints after main's last line, and the
#: interpreter waits for it (a thread, or an executor's worker, which exit hooks join)
THREADS = {
    "thread": "threading.Thread(target=late).start()",
    "executor": "concurrent.futures.ThreadPoolExecutor(1).submit(late)",
}
_THREAD_PROGRAM = '''import concurrent.futures
import threading
import time


def late():
    time.sleep(0.3)
    print("late")


def main():
    a = [1, 2, 3]
    START
    b = a + [4]
    print(b)


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("how", [(), ("--retries", "1")], ids=["in-process", "forked"])
@pytest.mark.parametrize("name", sorted(THREADS))
def test_threads_left_running_finish_as_in_the_original(tmp_path: Path, name: str, how: tuple[str, ...]) -> None:
    """Cut rule (7) keeps such a program whole; its element waits for the thread when it ends."""
    stdout, _ = _original(tmp_path, _THREAD_PROGRAM.replace("START", THREADS[name]))
    assert stdout == b"[1, 2, 3, 4]\nlate\n"
    split = scadc("split", tmp_path / "app.py", "-o", tmp_path / "prog", "--policy", "every", "--explain")
    assert split.returncode == 0, split.stderr
    assert "(7) the program imports a module that starts threads or processes (line 1)" in split.stderr
    ran = scadc("run", tmp_path / "prog", "--quiet", *how, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.encode() == stdout


#: ``import a.b`` binds ``a``; libcst files the read of it under ``a.b``: the import was left out of
#: the elements that read it, in ``main`` and in a helper (NameError)
DOTTED = '''import os.path
import xml.etree.ElementTree


def base(p):
    return os.path.basename(p)


def main():
    a = [1, 2, 3]
    print(os.path.dirname("/x/y"), base("/x/y"))
    b = a + [4]
    print(xml.etree.ElementTree.fromstring("<a>1</a>").text, b)


if __name__ == "__main__":
    main()
'''


@pytest.mark.parametrize("inline", [(), ("--no-inline",)], ids=["inlined", "helper"])
def test_dotted_imports_reach_the_elements_that_read_them(tmp_path: Path, inline: tuple[str, ...]) -> None:
    stdout, _ = _original(tmp_path, DOTTED)
    split = scadc("split", tmp_path / "app.py", "-o", tmp_path / "prog", "--policy", "every", *inline)
    assert split.returncode == 0, split.stderr
    assert len(list((tmp_path / "prog").glob("*.o.py"))) == 4
    ran = scadc("run", tmp_path / "prog", "--quiet", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.encode() == stdout == b"/x y\n1 [1, 2, 3, 4]\n"
